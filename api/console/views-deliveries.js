// One delivery (body and every attempt, Retry), the tenant's events (a
// list with filters, and finding one by id) and one event (its data and
// each of its deliveries).
import {
  h, mount, loading, errorBox, empty, badge, timeEl, fmtMs, field, actionButton, facts,
  headersTable, prettyJson, table, pager,
} from './dom.js';
import { get, post, enc, query } from './api.js';
import { deliveriesTable } from './views-endpoints.js';

export function deliveryView(page, [id], s) {
  document.title = 'Delivery — Hookfleet';
  mount(page, loading());
  const show = async () => {
    const detail = await get(`/deliveries/${id}`);
    mount(page, deliveryDetail(detail, s, show));
    return detail;
  };
  show().catch((err) => mount(page, errorBox(err)));
}

function deliveryDetail(detail, s, reload) {
  const d = detail.delivery;
  const retry = s.manage ? actionButton('Retry', async (status) => {
    const before = detail.attempts.length;
    const res = await post(`/deliveries/${d.id}/retry`);
    status.textContent = res.result === 'queued' ? 'Queued; waiting for the attempt…' : 'Already queued; waiting…';
    // Follow the delivery until the new attempt is recorded (at most 60 s).
    const deadline = Date.now() + 60e3;
    while (Date.now() < deadline && status.isConnected) {
      await new Promise((r) => setTimeout(r, 1000));
      const next = await get(`/deliveries/${d.id}`);
      if (next.attempts.length > before && !['pending', 'in_flight'].includes(next.delivery.status)) {
        await reload();
        return;
      }
    }
    if (status.isConnected) status.textContent = 'No new attempt yet; refresh later.';
  }) : null;
  return [
    h('p', { class: 'crumbs' }, h('a', { href: `#/endpoints/${d.webhook_id}` }, '← The endpoint')),
    h('div', { class: 'page-head' }, h('h1', {}, 'Delivery'), badge(d.status), d.test ? h('span', { class: 'tag' }, 'test') : null),
    facts([
      ['Id', h('code', {}, d.id)],
      ['Event', h('a', { href: `#/events/${d.event_id}`, class: 'mono' }, d.event_id)],
      ['Event type', d.event_type],
      ['Endpoint', h('a', { href: `#/endpoints/${d.webhook_id}`, class: 'mono' }, d.webhook_id)],
      ['Attempts', String(d.attempts)],
      ['Created', timeEl(d.created_at)],
      d.next_attempt_at ? ['Next attempt', timeEl(d.next_attempt_at)] : null,
    ]),
    h('div', { class: 'buttons' }, retry,
      h('button', { type: 'button', class: 'secondary', onclick: () => reload() }, 'Refresh')),
    h('section', { class: 'panel' }, h('h2', {}, 'Body sent'),
      detail.request_body ? h('pre', { class: 'body' }, prettyJson(detail.request_body)) : empty('Not kept.')),
    h('section', { class: 'attempts', 'aria-labelledby': 'attempts-title' },
      h('h2', { id: 'attempts-title' }, `Attempts (${detail.attempts.length})`),
      detail.attempts.length ? h('ol', { class: 'attempt-list' }, detail.attempts.map(attemptCard)) : empty('No attempt yet.')),
  ];
}

function attemptCard(a) {
  return h('li', { class: `panel attempt outcome-${a.outcome}` },
    h('div', { class: 'section-head' },
      h('h3', {}, `Attempt ${a.attempt}`), badge(a.outcome),
      a.status_code ? h('span', { class: 'status-code' }, `HTTP ${a.status_code}`) : null,
      a.test ? h('span', { class: 'tag' }, 'test') : null),
    facts([
      ['At', timeEl(a.at)],
      ['Duration', fmtMs(a.duration_ms)],
      a.error ? ['Error', h('span', { class: 'error-text' }, a.error)] : null,
      a.next_attempt_at ? ['Next attempt', timeEl(a.next_attempt_at)] : null,
    ]),
    h('details', {}, h('summary', {}, 'Request headers'), headersTable(a.request_headers)),
    h('details', {}, h('summary', {}, 'Response headers'), headersTable(a.response_headers)),
    h('div', { class: 'response-body' }, h('h4', {}, 'Response body'),
      a.response_body ? h('pre', {}, a.response_body) : empty('empty')));
}

export function findEventView(page, _params, s) {
  document.title = 'Events — Hookfleet';
  const input = h('input', { type: 'text', required: true, placeholder: 'evt_…', pattern: 'evt_[A-Za-z0-9_\\-]+', autocomplete: 'off' });
  const form = h('form', { class: 'panel', 'aria-label': 'Find an event' },
    field('Event id', input, 'The id returned when the event was published (evt_…).'),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/events/${enc(input.value.trim())}`;
  });
  mount(page, h('h1', {}, 'Events'), form, s && s.listEvents ? eventList() : null);
  input.focus();
}

// The tenant's events, newest first, with the API's filters; pages follow
// `next` (a type filter may give short pages).
function eventList() {
  const type = h('input', { type: 'text', placeholder: 'user.created', autocomplete: 'off' });
  const failed = h('input', { type: 'checkbox', id: 'events-failed' });
  const list = h('div', { class: 'list' });
  let filters = {};
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/events${query({ ...filters, limit: 50, cursor })}`);
      mount(list, res.data.length
        ? table([
          { label: 'Event', cell: (e) => h('a', { href: `#/events/${e.id}`, class: 'mono' }, e.id) },
          { label: 'Type', cell: (e) => e.event_type },
          { label: 'Published', cell: (e) => timeEl(e.created_at) },
        ], res.data, () => 'event-row')
        : empty(res.next ? 'None on this part of the list; press Next to look further.' : 'No events.'));
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  const form = h('form', { class: 'filters', 'aria-label': 'Filter events' },
    field('Event type', type),
    h('div', { class: 'field check' }, failed, h('label', { for: 'events-failed' }, 'Only with a failed delivery')),
    h('div', { class: 'buttons' }, h('button', { type: 'submit' }, 'Apply')));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    filters = { event_type: type.value.trim(), outcome: failed.checked ? 'failed' : '' };
    p.first();
  });
  p.first();
  return h('section', { class: 'panel event-list', 'aria-labelledby': 'events-title' },
    h('h2', { id: 'events-title' }, 'Recent events'), form, list, p.el);
}

export function eventView(page, [id]) {
  document.title = 'Event — Hookfleet';
  mount(page, loading());
  get(`/events/${id}`).then((ev) => {
    mount(page,
      h('p', { class: 'crumbs' }, h('a', { href: '#/events' }, '← Events')),
      h('h1', {}, 'Event ', h('code', {}, ev.id)),
      facts([['Type', ev.event_type], ['Created', timeEl(ev.created_at)]]),
      h('section', { class: 'panel' }, h('h2', {}, 'Data'), h('pre', { class: 'body' }, prettyJson(ev.data))),
      h('section', { class: 'panel' }, h('h2', {}, `Deliveries (${ev.deliveries.length})`),
        ev.deliveries.length ? deliveriesTable(ev.deliveries) : empty('No endpoint was subscribed to it.')));
  }, (err) => mount(page, h('h1', {}, 'Event'), errorBox(err)));
}
