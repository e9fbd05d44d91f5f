// Event types: the catalog (built-in and the tenant's own) with examples;
// the tenant's own can be created and deleted.
import { h, mount, loading, errorBox, empty, field, actionButton, confirmDialog, table, pager, prettyJson } from './dom.js';
import { get, post, del, query, enc } from './api.js';
import { forgetCatalog } from './views-endpoints.js';

export function eventTypesView(page, _params, s) {
  document.title = 'Event types — Hookfleet';
  const list = h('div', { class: 'list' });
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/webhooks/events${query({ limit: 50, cursor })}`);
      mount(list, res.data.length ? typesTable(res.data, s, () => p.reload()) : empty('No event types.'));
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  mount(page,
    h('h1', {}, 'Event types'),
    s.manageEventTypes ? createForm(() => p.first()) : null,
    h('section', { class: 'panel' }, h('h2', {}, 'Catalog'), list, p.el));
  p.first();
}

function typesTable(types, s, reload) {
  return table([
    { label: 'Name', cell: (t) => h('code', {}, t.name) },
    { label: 'Kind', cell: (t) => (t.built_in ? (t.operational ? 'built-in (operational)' : 'built-in') : 'yours') },
    { label: 'Description', cell: (t) => t.description },
    { label: 'Example', cell: (t) => (t.example === undefined || t.example === null ? '—'
      : h('details', {}, h('summary', {}, 'Example data'), h('pre', {}, prettyJson(t.example)))) },
    { label: '', cell: (t) => (s.manageEventTypes && !t.built_in ? actionButton('Delete', async () => {
      if (!(await confirmDialog(`Delete the event type ${t.name}?`))) return;
      await del(`/event-types/${enc(t.name)}`);
      forgetCatalog();
      reload();
    }, { class: 'danger', 'aria-label': `Delete ${t.name}` }) : null) },
  ], types);
}

function createForm(reload) {
  const name = h('input', { type: 'text', required: true, maxlength: 128, placeholder: 'invoice.paid', pattern: '[A-Za-z0-9_\\-]+(\\.[A-Za-z0-9_\\-]+)*' });
  const description = h('input', { type: 'text', required: true, maxlength: 1024 });
  const example = h('textarea', { rows: 4, class: 'mono', spellcheck: 'false', placeholder: '{"invoice_id": "in_123"}' });
  const status = h('div', { role: 'status' });
  const form = h('form', { class: 'panel', 'aria-label': 'New event type' },
    h('h2', {}, 'New event type'),
    h('div', { class: 'row' }, field('Name', name), field('Description', description)),
    field('Example data (JSON object, optional)', example),
    h('button', { type: 'submit' }, 'Create event type'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = { name: name.value.trim(), description: description.value };
    if (example.value.trim()) {
      try {
        body.example = JSON.parse(example.value);
      } catch (err) {
        mount(status, errorBox(`The example is not valid JSON: ${err.message}`));
        return;
      }
    }
    try {
      await post('/event-types', body);
      forgetCatalog();
      mount(status, h('p', { class: 'ok' }, `Created ${body.name}.`));
      name.value = description.value = example.value = '';
      reload();
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  return form;
}
