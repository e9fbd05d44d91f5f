// One delivery (body and every attempt, Retry) and one event (its data
// and each of its deliveries).
import {
  h, mount, loading, errorBox, empty, badge, timeEl, fmtMs, field, actionButton, facts,
  headersTable, prettyJson,
} from './dom.js';
import { get, post, enc } from './api.js';
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

export function findEventView(page) {
  document.title = 'Find an event — Hookfleet';
  const input = h('input', { type: 'text', required: true, placeholder: 'evt_…', pattern: 'evt_[A-Za-z0-9_\\-]+', autocomplete: 'off' });
  const form = h('form', { class: 'panel', 'aria-label': 'Find an event' },
    field('Event id', input, 'The id returned when the event was published (evt_…).'),
    h('button', { type: 'submit' }, 'Show'));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    location.hash = `#/events/${enc(input.value.trim())}`;
  });
  mount(page, h('h1', {}, 'Find an event'), form);
  input.focus();
}

export function eventView(page, [id]) {
  document.title = 'Event — Hookfleet';
  mount(page, loading());
  get(`/events/${id}`).then((ev) => {
    mount(page,
      h('p', { class: 'crumbs' }, h('a', { href: '#/events' }, '← Find an event')),
      h('h1', {}, 'Event ', h('code', {}, ev.id)),
      facts([['Type', ev.event_type], ['Created', timeEl(ev.created_at)]]),
      h('section', { class: 'panel' }, h('h2', {}, 'Data'), h('pre', { class: 'body' }, prettyJson(ev.data))),
      h('section', { class: 'panel' }, h('h2', {}, `Deliveries (${ev.deliveries.length})`),
        ev.deliveries.length ? deliveriesTable(ev.deliveries) : empty('No endpoint was subscribed to it.')));
  }, (err) => mount(page, h('h1', {}, 'Event'), errorBox(err)));
}
