// The user's view: the instances the signed-in user's policies reach, found as IBM's
// console finds them (Global Search), each with its plan, backends and usage; the limit,
// where the user's role may change it; and the account's plans.
import { api, APIError } from './api.js';
import { el, $, secs } from './dom.js';

const SEARCH = '/global-search/v3/resources/search?limit=100';

// searchAll pages through Global Search for the user's quantum-computing instances.
async function searchAll() {
  const items = [];
  let cursor;
  for (let page = 0; page < 100; page++) {
    const body = { query: 'service_name:quantum-computing', fields: ['crn', 'name', 'region', 'service_plan_unique_id', 'doc'] };
    if (cursor) body.search_cursor = cursor;
    const r = await api('POST', SEARCH, { body });
    items.push(...r.items);
    cursor = r.search_cursor;
    if (!cursor) break;
  }
  return items;
}

// attrs is a policy attribute list as an object.
function attrs(list) {
  return Object.fromEntries((list?.attributes ?? []).map((a) => [a.name, a.value]));
}

// mayUpdate says whether a policy grants a role that includes
// quantum-computing.instance.configuration.update (Manager, Administrator) on the instance.
export function mayUpdate(policies, crn) {
  const parts = crn.split(':');
  const account = (parts[6] ?? '').replace(/^a\//, '');
  const guid = parts[7];
  return policies.some((p) => {
    const updates = p.roles.some((r) => /:(serviceRole:Manager|role:Administrator)$/.test(r.role_id));
    return updates && p.resources.some((res) => {
      const a = attrs(res);
      return a.accountId === account && (!a.serviceInstance || a.serviceInstance === guid);
    });
  });
}

function row(term, value) {
  return [el('dt', { text: term }), el('dd', { text: value })];
}

// card shows one instance: its numbers as the API answers them, re-read after a change.
async function card(item, policies) {
  const crn = item.crn;
  const guid = crn.split(':')[7];
  const box = el('article', { className: 'card', 'aria-labelledby': `name-${guid}`, 'data-crn': crn });
  const message = el('p', { className: 'message', role: 'alert', id: `message-${guid}` });
  const editable = mayUpdate(policies, crn);

  async function render() {
    const [usage, config] = await Promise.all([
      api('GET', '/api/v1/instances/usage', { crn }),
      api('GET', '/api/v1/instances/configuration', { crn }).catch((e) => ({ error: e })),
    ]);
    const backends = item.doc?.extensions?.quantum_computing?.backends ?? [];
    const limit = usage.usage_limit_seconds;
    const allocation = usage.usage_allocation_seconds;
    const consumed = usage.usage_consumed_seconds;
    const max = Math.max(Number(limit ?? 0), Number(allocation ?? 0), Number(consumed ?? 0), 1);
    const period = usage.usage_period ? `${usage.usage_period.start_time} to ${usage.usage_period.end_time}` : 'none';
    const instanceLimit = config.error ? `not readable with your role (${config.error.status})` : secs(config.instance_limit);
    const meterLabel = `usage-label-${guid}`;
    const input = el('input', { id: `limit-${guid}`, type: 'number', min: '1', step: '1', inputmode: 'numeric', disabled: !editable, value: config.instance_limit ?? '' });
    const set = el('button', { type: 'submit', disabled: !editable, text: 'Set the limit' });
    const remove = el('button', { type: 'button', disabled: !editable, text: 'Remove the limit' });
    const form = el('form', { className: 'limit', 'aria-label': `The limit of ${item.name}` },
      el('label', { for: input.id, text: 'Instance limit (seconds)' }), input, set, remove,
      editable ? null : el('p', { className: 'note', text: 'Your role on this instance cannot change its limit (Manager or Administrator can).' }));
    const change = async (value) => {
      message.textContent = '';
      message.className = 'message';
      try {
        await api('PUT', '/api/v1/instances/configuration', { crn, body: { instance_limit: value } });
        await render();
        message.textContent = value === null ? 'The limit was removed.' : `The limit is now ${value} s.`;
      } catch (e) {
        if (!(e instanceof APIError)) throw e;
        message.className = 'message error';
        message.textContent = `${e.status}: ${e.message}`;
      }
    };
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const v = input.value.trim();
      change(v === '' ? null : Number(v));
    });
    remove.addEventListener('click', () => change(null));
    box.replaceChildren(
      el('h3', { id: `name-${guid}`, text: item.name || crn }),
      el('dl', {},
        row('CRN', crn),
        row('Plan', usage.plan_id),
        row('Region', item.region ?? ''),
        row('Backends', backends.length ? backends.join(', ') : 'none'),
        row('Usage period', period),
        row('Consumed', secs(consumed)),
        row('Limit', secs(limit)),
        row('Allocation', secs(allocation)),
        row('Instance limit', instanceLimit),
        row('Limit reached', usage.usage_limit_reached === undefined ? '—' : String(usage.usage_limit_reached))),
      el('p', { id: meterLabel, className: 'meter-label', text: `Used ${consumed} s of ${limit ?? allocation ?? '—'} s` }),
      el('meter', { min: '0', max: String(max), value: String(consumed), high: limit ? String(limit) : undefined, 'aria-labelledby': meterLabel }),
      form, message);
  }
  await render();
  return box;
}

async function plans(account) {
  const box = $('plans');
  try {
    const r = await api('GET', `/api/v1/accounts/${encodeURIComponent(account)}`);
    const table = el('table', { id: 'plans-table' },
      el('thead', {}, el('tr', {}, ['Plan', 'Allocation', 'Unallocated', 'Max TTL', 'Active TTL', 'Interactive TTL', 'Backends'].map((h) => el('th', { scope: 'col', text: h })))),
      el('tbody', {}, r.plans.map((p) => el('tr', {},
        el('td', { text: p.plan_id }), el('td', { text: secs(p.usage_allocation_seconds) }), el('td', { text: secs(p.unallocated_usage_seconds) }),
        el('td', { text: p.max_ttl ?? '—' }), el('td', { text: p.active_ttl ?? '—' }), el('td', { text: p.interactive_ttl ?? '—' }),
        el('td', { text: (p.backends ?? []).join(', ') })))));
    box.replaceChildren(el('div', { className: 'scroll' }, table));
  } catch (e) {
    if (!(e instanceof APIError)) throw e;
    box.replaceChildren(el('p', { className: 'note', text: `The account's configuration is not readable with your role: ${e.status}: ${e.message}` }));
  }
}

// showUser fills the user's view for the token's claims.
export async function showUser(claims) {
  const account = claims.account?.bss ?? '';
  const status = $('user-status');
  status.textContent = 'Loading…';
  const [policies, items] = await Promise.all([
    api('GET', `/v1/policies?account_id=${encodeURIComponent(account)}`).then((r) => r.policies),
    searchAll(),
  ]);
  const cards = await Promise.all(items.map((it) => card(it, policies)));
  $('instances').replaceChildren(...cards);
  status.textContent = `${items.length} instance${items.length === 1 ? '' : 's'} in reach of ${claims.iam_id}.`;
  await plans(account);
}
