// The admin view, on the control API: a live journal of requests from the audit events,
// fault rules with their hits, fixtures, and usage.
import { control, isAdmin, APIError } from './api.js';
import { el, $ } from './dom.js';

const KEEP = 500; // the newest events the journal holds
let events = [];
let last = null; // the audit listing's last_cursor: events after it are new
let timers = [];

// readAll pages from the cursor to the newest kept event, keeping the newest KEEP.
async function readAll(cursor) {
  for (let page = 0; page < 200; page++) {
    const q = new URLSearchParams({ limit: '1000' });
    if (cursor !== null) q.set('cursor', cursor);
    const r = await control('GET', `/audit-events?${q}`);
    events.push(...r.events);
    if (events.length > KEEP) events = events.slice(events.length - KEEP);
    cursor = r.last_cursor;
    if (!r.next_cursor) break;
  }
  return cursor;
}

function matches(ev) {
  const has = (value, id) => {
    const want = $(id).value.trim().toLowerCase();
    return !want || String(value ?? '').toLowerCase().includes(want);
  };
  const outcome = $('f-outcome').value;
  return has(ev.action, 'f-action') && (!outcome || ev.outcome === outcome) &&
    has(`${ev.initiator?.name ?? ''} ${ev.initiator?.id ?? ''}`, 'f-caller') && has(ev.target?.id, 'f-target');
}

function renderJournal() {
  const rows = events.filter(matches).slice(-200).reverse().map((ev) => el('tr', { className: ev.outcome === 'failure' ? 'failure' : undefined, 'data-trace': ev.correlationId },
    el('td', { text: ev.eventTime }),
    el('td', { text: ev.action }),
    el('td', { text: ev.initiator?.name || ev.initiator?.id || '' }),
    el('td', { text: ev.target?.id ?? '' }),
    el('td', { text: ev.outcome }),
    el('td', { text: ev.reason?.reasonForFailure ?? `${ev.reason?.reasonCode ?? ''} ${ev.reason?.reasonType ?? ''}`.trim() }),
    el('td', { className: 'trace', text: ev.correlationId })));
  $('journal').tBodies[0].replaceChildren(...rows);
}

async function tail() {
  try {
    last = await readAll(last);
    renderJournal();
  } catch (e) {
    report('journal-message', e);
  }
}

function report(id, e) {
  if (!(e instanceof APIError)) throw e;
  const p = $(id);
  p.className = 'error';
  p.textContent = `${e.status}: ${e.message}`;
}

function done(id, text) {
  const p = $(id);
  p.className = 'message';
  p.textContent = text;
}

async function renderFaults() {
  const r = await control('GET', '/faults');
  $('faults').tBodies[0].replaceChildren(...r.faults.map((f) => {
    const effect = [f.status ? `status ${f.status}` : '', f.delay_ms ? `delay ${f.delay_ms} ms` : '', f.reset ? 'reset' : '',
      f.count ? `count ${f.count}` : '', f.probability ? `probability ${f.probability}` : ''].filter(Boolean).join(', ');
    const del = el('button', { type: 'button', 'aria-label': `Delete rule ${f.id}`, text: 'Delete' });
    del.addEventListener('click', async () => {
      try {
        await control('DELETE', `/faults/${encodeURIComponent(f.id)}`);
        done('fault-message', `Rule ${f.id} deleted.`);
        await renderFaults();
      } catch (e) {
        report('fault-message', e);
      }
    });
    return el('tr', { 'data-rule': f.id },
      el('td', { text: f.id }), el('td', { text: f.operation ?? 'any' }), el('td', { text: f.instance ?? 'any' }),
      el('td', { text: effect }), el('td', { className: 'seen', text: String(f.seen) }), el('td', { className: 'hits', text: String(f.hits) }),
      el('td', { text: f.live ? 'yes' : 'no' }), el('td', {}, del));
  }));
}

async function renderFixtures() {
  const r = await control('GET', '/fixtures');
  $('fixtures').tBodies[0].replaceChildren(...r.fixtures.map((f) => {
    const del = el('button', { type: 'button', 'aria-label': `Delete fixture ${f.id}`, text: 'Delete' });
    del.addEventListener('click', async () => {
      try {
        await control('DELETE', `/fixtures/${encodeURIComponent(f.id)}`);
        await renderFixtures();
      } catch (e) {
        report('fixture-message', e);
      }
    });
    return el('tr', { 'data-fixture': f.id }, el('td', { text: f.id }), el('td', { text: f.created_at }),
      el('td', { text: f.instances.join(' ') }), el('td', { text: f.principals.map((p) => p.id).join(' ') }), el('td', {}, del));
  }));
}

function every(ms, f) {
  let running = false;
  const tick = async () => {
    if (running || !isAdmin()) return;
    running = true;
    try {
      await f();
    } catch (e) {
      if (!(e instanceof APIError)) console.error(e);
    } finally {
      running = false;
    }
  };
  tick();
  timers.push(setInterval(tick, ms));
}

export function stopAdmin() {
  timers.forEach(clearInterval);
  timers = [];
  events = [];
  last = null;
}

// showAdmin checks the token, then starts the journal and the lists.
export async function showAdmin() {
  await control('GET', '/faults'); // a wrong token stops here, with the control API's message
  for (const id of ['f-action', 'f-outcome', 'f-caller', 'f-target']) $(id).addEventListener('input', renderJournal);
  $('journal-filters').addEventListener('submit', (ev) => ev.preventDefault());
  $('fault-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const rule = { status: Number($('fault-status').value) };
    if ($('fault-operation').value) rule.operation = $('fault-operation').value;
    if ($('fault-count').value) rule.count = Number($('fault-count').value);
    if ($('fault-instance').value.trim()) rule.instance = $('fault-instance').value.trim();
    try {
      const r = await control('POST', '/faults', rule);
      done('fault-message', `Rule ${r.id} added.`);
      await renderFaults();
    } catch (e) {
      report('fault-message', e);
    }
  });
  $('usage-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const r = await control('POST', '/usage', { instance: $('usage-instance').value.trim(), seconds: Number($('usage-seconds').value) });
      done('usage-message', `Recorded: ${r.usage_consumed_seconds} s consumed now.`);
    } catch (e) {
      report('usage-message', e);
    }
  });
  $('advance').addEventListener('click', async () => {
    try {
      const r = await control('POST', '/usage-period/advance', { instance: $('usage-instance').value.trim() });
      done('usage-message', `The period now starts ${r.usage_period?.start_time ?? ''}.`);
    } catch (e) {
      report('usage-message', e);
    }
  });
  every(500, tail);
  every(1000, renderFaults);
  every(2000, renderFixtures);
}
