// Endpoints ("webhooks" in the API): list, create, edit, and one
// endpoint's page (stats charts, delivery log, test send, secret
// rotation, replay).
import {
  h, mount, loading, errorBox, errorText, empty, badge, table, timeEl, fmtMs, fmtRate, field,
  actionButton, confirmDialog, secretBox, facts, pager, toLocalInput, fromLocalInput,
} from './dom.js';
import { get, post, patch, del, query, getAll } from './api.js';
import { countChart, latencyChart } from './chart.js';

const PAGE_SIZE = 20;

// The event-type catalog (built-in and the tenant's own), loaded once.
let catalogPromise = null;
export function catalog() {
  if (!catalogPromise) {
    catalogPromise = getAll('/webhooks/events').catch((err) => {
      catalogPromise = null;
      throw err;
    });
  }
  return catalogPromise;
}
export function forgetCatalog() {
  catalogPromise = null;
}

// ---------- list ----------

export function endpointsView(page, _params, s) {
  document.title = 'Endpoints — Hookfleet';
  const list = h('div', { class: 'list' }, loading());
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/webhooks${query({ limit: PAGE_SIZE, cursor })}`);
      if (res.data.length === 0) {
        mount(list, empty(s.createEndpoints ? 'No endpoints yet. Create one to start receiving events.' : 'No endpoints.'));
      } else {
        mount(list, endpointsTable(res.data));
      }
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  mount(page,
    h('div', { class: 'page-head' },
      h('h1', {}, 'Endpoints'),
      s.createEndpoints ? h('a', { class: 'button', href: '#/endpoints/new' }, 'New endpoint') : null),
    list, p.el);
  p.first();
}

function endpointsTable(endpoints) {
  return table([
    { label: 'URL', cell: (ep) => h('a', { href: `#/endpoints/${ep.id}`, class: 'url' }, ep.url) },
    { label: 'Status', cell: (ep) => badge(ep.status) },
    { label: 'Events', cell: (ep) => h('span', { class: 'events' }, ep.events.join(', ')) },
    { label: 'Success (24 h)', cell: (ep) => statCell(ep, (st) => fmtRate(st.success_rate)) },
    { label: 'Last failure', cell: (ep) => statCell(ep, (st) => (st.last_failure
      ? [timeEl(st.last_failure.at), st.last_failure.status_code ? ` (${st.last_failure.status_code})` : '']
      : 'none')) },
  ], endpoints);
}

// One cell filled from the endpoint's 24 h stats, fetched once per row.
const statsCache = new WeakMap();
function statCell(ep, render) {
  const cell = h('span', { class: 'muted' }, '…');
  if (!statsCache.has(ep)) statsCache.set(ep, get(`/webhooks/${ep.id}/stats?window=24h&series=false`));
  statsCache.get(ep).then(
    (st) => mount(cell, render(st)),
    (err) => mount(cell, h('span', { class: 'error-inline' }, errorText(err))),
  );
  return cell;
}

// ---------- create / edit ----------

export function newEndpointView(page, _params, s) {
  document.title = 'New endpoint — Hookfleet';
  const form = endpointForm(null, async (body) => {
    const ep = await post('/webhooks', body);
    mount(page,
      h('h1', {}, 'Endpoint created'),
      h('p', {}, h('a', { href: `#/endpoints/${ep.id}`, class: 'url' }, ep.url)),
      secretBox('Signing secret', ep.secret),
      h('p', {}, h('a', { class: 'button', href: `#/endpoints/${ep.id}` }, 'Go to the endpoint')));
  }, 'Create endpoint');
  mount(page, h('h1', {}, 'New endpoint'), s.createEndpoints ? form : empty('This access cannot create endpoints.'));
}

export function editEndpointView(page, [id]) {
  document.title = 'Edit endpoint — Hookfleet';
  mount(page, loading());
  get(`/webhooks/${id}`).then((ep) => {
    mount(page,
      h('p', { class: 'crumbs' }, h('a', { href: `#/endpoints/${id}` }, '← Back to the endpoint')),
      h('h1', {}, 'Edit endpoint'),
      endpointForm(ep, async (body) => {
        await patch(`/webhooks/${id}`, body);
        location.hash = `#/endpoints/${id}`;
      }, 'Save changes'));
  }, (err) => mount(page, errorBox(err)));
}

// The create/edit form. `ep` is the endpoint being edited or null.
function endpointForm(ep, submit, submitLabel) {
  const url = h('input', { type: 'url', required: true, value: ep ? ep.url : '', placeholder: 'https://example.com/hooks', maxlength: 2048 });
  const description = h('input', { type: 'text', value: ep ? ep.description : '', maxlength: 1024 });
  const events = eventsPicker(ep ? ep.events : []);
  const headers = headersEditor(ep ? ep.headers : {});
  const rate = h('input', { type: 'number', min: 1, max: 10000, value: ep && ep.rate_limit ? ep.rate_limit : '', inputmode: 'numeric' });
  const timeout = h('input', { type: 'number', min: 1, max: 55, value: ep && ep.timeout_s ? ep.timeout_s : '', inputmode: 'numeric' });
  const ordering = h('select', {},
    h('option', { value: 'none' }, 'none: as fast as the receiver takes them'),
    h('option', { value: 'fifo' }, 'fifo: one at a time, in publish order'));
  ordering.value = ep && ep.ordering === 'fifo' ? 'fifo' : 'none';
  const filter = h('textarea', { rows: 2, spellcheck: 'false', class: 'mono', maxlength: 2048,
    placeholder: 'data.amount >= 1000 && data.currency == "EUR"' }, ep && ep.filter ? ep.filter : '');
  const schedule = h('input', { type: 'text', class: 'mono', autocomplete: 'off', placeholder: '0s, 30s, 5m, 1h',
    value: ep && ep.retry_schedule ? ep.retry_schedule.join(', ') : '' });
  const status = h('div', { role: 'status' });
  const button = h('button', { type: 'submit' }, submitLabel);
  const form = h('form', { class: 'panel endpoint-form', 'aria-label': submitLabel },
    field('URL', url),
    field('Description', description),
    events.el,
    headers.el,
    h('div', { class: 'row' },
      field('Rate limit (deliveries/s)', rate, 'Empty: no limit.'),
      field('Timeout (s)', timeout, 'Empty: the server default.')),
    field('Delivery order', ordering, 'FIFO: a delivery waiting for its retry holds the ones behind it.'),
    field('Filter (CEL)', filter, 'Only events for which it is true are delivered; it sees type and data. Empty: every event of its types.'),
    field('Retry schedule', schedule, 'Delays before each attempt, comma-separated (the first before the first attempt). Empty: the server’s.'),
    h('div', { class: 'buttons' }, button), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const chosen = events.value();
    if (chosen.length === 0) {
      mount(status, errorBox('Choose at least one event type.'));
      return;
    }
    const body = { url: url.value.trim(), events: chosen, description: description.value, headers: headers.value() };
    // Empty: on create, leave it out; on edit, null clears it.
    if (rate.value) body.rate_limit = Number(rate.value);
    else if (ep) body.rate_limit = null;
    if (timeout.value) body.timeout_s = Number(timeout.value);
    else if (ep) body.timeout_s = null;
    if (!ep || ordering.value !== (ep.ordering || 'none')) body.ordering = ordering.value;
    if (filter.value.trim()) body.filter = filter.value.trim();
    else if (ep) body.filter = null;
    const delays = schedule.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (delays.length) body.retry_schedule = delays;
    else if (ep) body.retry_schedule = null;
    button.disabled = true;
    mount(status, loading('Saving…'));
    try {
      await submit(body);
    } catch (err) {
      mount(status, errorBox(err));
    } finally {
      button.disabled = false;
    }
  });
  return form;
}

// Chosen event types as removable chips, plus an input suggesting the
// catalog's names and their families (`invoice.*`) and `*`.
function eventsPicker(initial) {
  const chosen = [...initial];
  const chips = h('ul', { class: 'chips', 'aria-label': 'Chosen event types' });
  const listId = `events-${Math.random().toString(36).slice(2)}`;
  const datalist = h('datalist', { id: listId });
  const input = h('input', { type: 'text', list: listId, placeholder: 'user.created, invoice.* or *', autocomplete: 'off' });
  const add = h('button', { type: 'button', class: 'secondary' }, 'Add');
  const note = h('small', { class: 'hint' }, 'Loading the catalog…');
  function render() {
    mount(chips, chosen.map((name, i) => h('li', { class: 'chip' },
      h('span', {}, name),
      h('button', { type: 'button', class: 'chip-remove', 'aria-label': `Remove ${name}`,
        onclick: () => { chosen.splice(i, 1); render(); } }, '×'))));
  }
  function addValue() {
    for (const name of input.value.split(/[\s,]+/).filter(Boolean)) {
      if (!chosen.includes(name)) chosen.push(name);
    }
    input.value = '';
    render();
    input.focus();
  }
  add.addEventListener('click', addValue);
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter') {
      event.preventDefault();
      addValue();
    }
  });
  catalog().then((types) => {
    const families = new Set(['*']);
    for (const t of types) {
      const dot = t.name.lastIndexOf('.');
      if (dot > 0) families.add(`${t.name.slice(0, dot)}.*`);
    }
    mount(datalist, [...types.map((t) => h('option', { value: t.name }, t.description)),
      ...[...families].map((f) => h('option', { value: f }, 'wildcard'))]);
    note.textContent = `Suggestions from the catalog (${types.length} types); a family like invoice.* or * matches many.`;
  }, (err) => { note.textContent = `Catalog not available: ${errorText(err)}`; });
  render();
  const label = h('label', { for: (input.id = `f-${listId}`) }, 'Event types');
  return {
    el: h('div', { class: 'field' }, label, chips, h('div', { class: 'inline' }, input, add), datalist, note),
    value: () => {
      if (input.value.trim()) addValue();
      return [...chosen];
    },
  };
}

// Custom request headers as name/value rows.
function headersEditor(initial) {
  const rows = h('div', { class: 'header-rows' });
  function addRow(name = '', value = '') {
    const row = h('div', { class: 'inline header-row' },
      h('input', { type: 'text', value: name, placeholder: 'X-Header-Name', 'aria-label': 'Header name', class: 'hname' }),
      h('input', { type: 'text', value, placeholder: 'value', 'aria-label': 'Header value', class: 'hvalue' }),
      h('button', { type: 'button', class: 'secondary', 'aria-label': 'Remove this header', onclick: () => row.remove() }, '×'));
    rows.appendChild(row);
  }
  for (const [k, v] of Object.entries(initial || {})) addRow(k, v);
  return {
    el: h('fieldset', { class: 'field' }, h('legend', {}, 'Custom headers'), rows,
      h('button', { type: 'button', class: 'secondary', onclick: () => addRow() }, 'Add header')),
    value: () => {
      const out = {};
      for (const row of rows.querySelectorAll('.header-row')) {
        const name = row.querySelector('.hname').value.trim();
        if (name) out[name] = row.querySelector('.hvalue').value;
      }
      return out;
    },
  };
}

// ---------- one endpoint ----------

export function endpointView(page, [id], s) {
  document.title = 'Endpoint — Hookfleet';
  const head = h('section', { class: 'endpoint-head' }, loading());
  const log = deliveryLog(id);
  mount(page,
    h('p', { class: 'crumbs' }, h('a', { href: '#/endpoints' }, '← Endpoints')),
    head,
    statsSection(id),
    log,
    s.manage ? testSection(id, () => log.refresh()) : null,
    s.manage ? rotateSection(id) : null,
    s.manage ? replaySection(id) : null);
  const load = () => get(`/webhooks/${id}`).then((ep) => {
    document.title = `${ep.url} — Hookfleet`;
    mount(head, endpointHead(ep, s, load));
  }, (err) => mount(head, errorBox(err)));
  load();
}

function endpointHead(ep, s, reload) {
  const actions = s.manage ? h('div', { class: 'buttons' },
    h('a', { class: 'button secondary', href: `#/endpoints/${ep.id}/edit` }, 'Edit'),
    actionButton(ep.paused ? 'Resume' : 'Pause', async () => {
      await patch(`/webhooks/${ep.id}`, { paused: !ep.paused });
      await reload();
    }, { class: 'secondary' }),
    actionButton('Delete', async () => {
      if (!(await confirmDialog(`Delete the endpoint ${ep.url}? Its delivery log goes with it.`))) return;
      await del(`/webhooks/${ep.id}`);
      location.hash = '#/endpoints';
    }, { class: 'danger' })) : null;
  return [
    h('div', { class: 'page-head' }, h('h1', { class: 'url' }, ep.url), badge(ep.status)),
    ep.description ? h('p', {}, ep.description) : null,
    facts([
      ['Id', h('code', {}, ep.id)],
      ['Events', ep.events.join(', ')],
      ['Rate limit', ep.rate_limit ? `${ep.rate_limit}/s` : 'none'],
      ['Timeout', ep.timeout_s ? `${ep.timeout_s} s` : 'default'],
      ['Order', ep.ordering === 'fifo' ? 'FIFO (one at a time, in publish order)' : 'none'],
      ['Filter', ep.filter ? h('code', { class: 'filter-text' }, ep.filter) : 'none'],
      ['Retry schedule', ep.retry_schedule ? ep.retry_schedule.join(', ') : 'the server’s'],
      ep.ordering === 'fifo' ? ['Head of the line', headOfLine(ep.head_of_line)] : null,
      ['Custom headers', Object.keys(ep.headers || {}).join(', ') || 'none'],
      ['Created', timeEl(ep.created_at)],
    ]),
    actions,
  ];
}

// What a FIFO endpoint's line waits behind.
function headOfLine(head) {
  if (!head) return 'nothing waiting';
  return h('span', { class: 'head-of-line' },
    h('a', { href: `#/deliveries/${head.delivery_id}`, class: 'mono' }, head.delivery_id), ' ',
    badge(head.status), ` waiting ${fmtMs(head.age_ms)}, ${head.attempts} attempt${head.attempts === 1 ? '' : 's'}`,
    head.next_attempt_at ? [', next ', timeEl(head.next_attempt_at)] : null);
}

// Stats with a window switch and two hand-drawn SVG charts.
function statsSection(id) {
  const body = h('div', {}, loading());
  let current = '24h';
  const buttons = ['1h', '24h', '7d'].map((w) => h('button', {
    type: 'button', class: 'secondary', 'aria-pressed': String(w === current),
    onclick: () => { current = w; show(); },
  }, w));
  async function show() {
    for (const b of buttons) b.setAttribute('aria-pressed', String(b.textContent === current));
    mount(body, loading());
    try {
      const st = await get(`/webhooks/${id}/stats?window=${current}`);
      const lat = st.latency_ms || {};
      mount(body,
        facts([
          ['Attempts', `${st.attempts} (${st.attempts_succeeded} ok, ${st.attempts_failed} failed)`],
          ['Success rate', fmtRate(st.success_rate)],
          ['Latency p50 / p95 / p99', `${fmtMs(lat.p50)} / ${fmtMs(lat.p95)} / ${fmtMs(lat.p99)}`],
          ['Delivered / failed', `${st.delivered} / ${st.failed}`],
          ['Backlog / held', `${st.backlog} / ${st.held}`],
          ['Last success', st.last_success ? timeEl(st.last_success.at) : 'none'],
          ['Last failure', st.last_failure ? [timeEl(st.last_failure.at), st.last_failure.status_code ? ` (HTTP ${st.last_failure.status_code})` : ''] : 'none'],
        ]),
        Array.isArray(st.series)
          ? h('div', { class: 'charts' }, countChart(st.series, current), latencyChart(st.series, current))
          : empty('This API does not report a time series.'));
    } catch (err) {
      mount(body, errorBox(err));
    }
  }
  show();
  return h('section', { class: 'panel', 'aria-labelledby': 'stats-title' },
    h('div', { class: 'section-head' }, h('h2', { id: 'stats-title' }, 'Statistics'),
      h('div', { class: 'segmented', role: 'group', 'aria-label': 'Window' }, buttons)),
    body);
}

const STATUSES = ['pending', 'in_flight', 'scheduled', 'held', 'delivered', 'failed', 'cancelled'];

// The delivery log with the API's filters; pages follow `next`.
function deliveryLog(id) {
  const status = h('select', {}, h('option', { value: '' }, 'any'), STATUSES.map((x) => h('option', { value: x }, x.replace('_', ' '))));
  const eventType = h('input', { type: 'text', placeholder: 'user.created', autocomplete: 'off' });
  const since = h('input', { type: 'datetime-local' });
  const until = h('input', { type: 'datetime-local' });
  const list = h('div', { class: 'list' });
  let filters = {};
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/webhooks/${id}/deliveries${query({ ...filters, limit: 50, cursor })}`);
      mount(list, res.data.length
        ? deliveriesTable(res.data)
        : empty(res.next ? 'None on this part of the log; press Next to look further.' : 'No deliveries.'));
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  const form = h('form', { class: 'filters', 'aria-label': 'Filter deliveries' },
    field('Status', status), field('Event type', eventType), field('Created since', since), field('until', until),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Apply'),
      h('button', { type: 'button', class: 'secondary', onclick: () => p.reload() }, 'Refresh')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filters = {
      status: status.value,
      event_type: eventType.value.trim(),
      since: fromLocalInput(since.value),
      until: fromLocalInput(until.value),
    };
    p.first();
  });
  p.first();
  const section = h('section', { class: 'panel delivery-log', 'aria-labelledby': 'log-title' },
    h('h2', { id: 'log-title' }, 'Delivery log'), form, list, p.el);
  section.refresh = () => p.first();
  return section;
}

export function deliveriesTable(deliveries) {
  return table([
    { label: 'Delivery', cell: (d) => h('a', { href: `#/deliveries/${d.id}`, class: 'mono' }, d.id) },
    { label: 'Event type', cell: (d) => [d.event_type, d.test ? h('span', { class: 'tag' }, 'test') : null] },
    { label: 'Status', cell: (d) => badge(d.status) },
    { label: 'Attempts', cell: (d) => String(d.attempts) },
    { label: 'Last response', cell: (d) => (d.last_status_code ? `HTTP ${d.last_status_code}` : '—') },
    { label: 'Created', cell: (d) => timeEl(d.created_at) },
  ], deliveries, (d) => `delivery-row status-${d.status}`);
}

// Test send: event type from the catalog, `data` as JSON checked before sending.
function testSection(id, refreshLog) {
  const type = h('select', {}, h('option', { value: 'webhook.test' }, 'webhook.test'));
  const data = h('textarea', { rows: 6, spellcheck: 'false', class: 'mono' }, '{\n  "test": true\n}');
  const result = h('div', { class: 'test-result', role: 'status' });
  catalog().then((types) => {
    for (const t of types) type.appendChild(h('option', { value: t.name }, t.name));
  }, () => {});
  type.addEventListener('change', async () => {
    // Offer the type's example as a starting point.
    const types = await catalog().catch(() => []);
    const t = types.find((x) => x.name === type.value);
    if (t && t.example && typeof t.example === 'object') data.value = JSON.stringify(t.example, null, 2);
  });
  const send = actionButton('Send test event', async () => {
    let parsed;
    try {
      parsed = JSON.parse(data.value);
    } catch (err) {
      mount(result, errorBox(`The data is not valid JSON: ${err.message}`));
      return;
    }
    if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) {
      mount(result, errorBox('The data must be a JSON object ({…}).'));
      return;
    }
    mount(result, loading('Sending… (waits for the endpoint’s answer)'));
    try {
      const res = await post(`/webhooks/${id}/test`, { event_type: type.value, data: parsed });
      mount(result, testResult(res));
      refreshLog(); // the test send shows in the log too, marked test
    } catch (err) {
      mount(result, errorBox(err));
    }
  });
  return h('details', { class: 'panel', id: 'test-send' },
    h('summary', {}, h('h2', {}, 'Send a test event')),
    field('Event type', type), field('Data (JSON object)', data), send, result);
}

function testResult(res) {
  const a = res.attempt;
  return h('div', { class: 'result-box' },
    h('p', {}, 'Result: ', badge(res.status), ' ', h('a', { href: `#/deliveries/${res.delivery_id}` }, 'see the delivery')),
    typeof res.filter_matched === 'boolean'
      ? h('p', { class: `filter-verdict filter-${res.filter_matched ? 'pass' : 'miss'}` },
        res.filter_matched
          ? 'The endpoint’s filter would have passed this event.'
          : 'The endpoint’s filter would not have passed this event (a test send is sent anyway).')
      : null,
    a ? facts([
      ['Response', a.status_code ? `HTTP ${a.status_code}` : 'none'],
      ['Duration', fmtMs(a.duration_ms)],
      a.error ? ['Error', a.error] : null,
      ['Response body', a.response_body ? h('pre', {}, a.response_body) : 'empty'],
    ]) : h('p', {}, 'The attempt is still running; it will show in the delivery log.'));
}

function rotateSection(id) {
  const grace = h('input', { type: 'number', min: 0, max: 604800, value: 3600, inputmode: 'numeric' });
  const result = h('div');
  return h('details', { class: 'panel', id: 'rotate' },
    h('summary', {}, h('h2', {}, 'Rotate the signing secret')),
    field('Grace period (seconds)', grace, 'The old secret keeps signing (as a second signature) this long.'),
    actionButton('Rotate secret', async () => {
      if (!(await confirmDialog('Make a new signing secret for this endpoint?', 'Rotate'))) return;
      const res = await post(`/webhooks/${id}/secret/rotate`, { grace_period_s: Number(grace.value || 0) });
      mount(result, secretBox('New signing secret', res.secret),
        h('p', {}, 'The previous secret stops signing at ', timeEl(res.previous_secret_expires_at), '.'));
    }),
    result);
}

// Replay a window, polling its progress until it ends (or 10 minutes).
function replaySection(id) {
  const now = new Date();
  const since = h('input', { type: 'datetime-local', required: true, value: toLocalInput(new Date(now - 3600e3)) });
  const until = h('input', { type: 'datetime-local' });
  const which = h('select', {}, h('option', { value: 'failed' }, 'failed only'), h('option', { value: 'all' }, 'failed and delivered'));
  const progress = h('div', { class: 'replay-progress', role: 'status', 'aria-live': 'polite' });
  const section = h('details', { class: 'panel', id: 'replay' },
    h('summary', {}, h('h2', {}, 'Replay a time window')),
    h('div', { class: 'row' }, field('Since', since), field('Until', until, 'Empty: now.')),
    field('Deliveries', which),
    actionButton('Start replay', async () => {
      const body = { since: fromLocalInput(since.value), filter: which.value };
      if (until.value) body.until = fromLocalInput(until.value);
      let replay = await post(`/webhooks/${id}/replay`, body);
      const deadline = Date.now() + 10 * 60e3;
      showReplay(progress, replay);
      while (replay.status === 'running' && Date.now() < deadline && section.isConnected) {
        await new Promise((r) => setTimeout(r, 1000));
        replay = await get(`/webhooks/${id}/replay/${replay.id}`);
        showReplay(progress, replay);
      }
      if (replay.status === 'running') progress.appendChild(h('p', {}, 'Still running; stopped watching.'));
    }),
    progress);
  return section;
}

function showReplay(el, r) {
  const label = r.status === 'completed' ? 'done' : r.status;
  mount(el, h('p', { class: `replay-status replay-${r.status}` },
    badge(label), ` scanned ${r.scanned}, queued ${r.queued}`,
    r.finished_at ? [' — finished ', timeEl(r.finished_at)] : null));
}
