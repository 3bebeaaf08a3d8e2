// Small DOM helpers: every text goes in as text, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'className') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, '');
    else e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export function $(id) {
  return document.getElementById(id);
}

// seconds as "3600 s (1:00:00)".
export function secs(s) {
  if (s === undefined || s === null || s === '') return '—';
  const n = Number(s);
  const whole = Math.round(n);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const sec = whole % 60;
  return `${n} s (${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')})`;
}
