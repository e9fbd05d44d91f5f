// Operator view (admin key): tenants, a tenant's API keys, live workers
// and queue depth per partition.
import {
  h, mount, loading, errorBox, empty, field, actionButton, confirmDialog, table, pager, secretBox,
  timeEl, fmtMs, repeat,
} from './dom.js';
import { get, post, patch, del, query } from './api.js';

const SCOPES = ['publish', 'manage', 'read'];

export function operatorView(page) {
  document.title = 'Operator — Hookfleet';
  const list = h('div', { class: 'list' });
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/tenants${query({ limit: 25, cursor })}`);
      mount(list, res.data.length ? table([
        { label: 'Name', cell: (t) => h('a', { href: `#/operator/tenants/${t.id}` }, t.name) },
        { label: 'Id', cell: (t) => h('code', {}, t.id) },
        { label: 'Retention', cell: (t) => t.retention },
        { label: 'Created', cell: (t) => timeEl(t.created_at) },
      ], res.data) : empty('No tenants yet.'));
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  const workers = h('div', {}, loading());
  const queues = h('div', {}, loading());
  const deletions = h('div', {}, loading());
  mount(page,
    h('h1', {}, 'Operator'),
    h('div', { class: 'columns' },
      h('section', { class: 'panel', 'aria-labelledby': 'workers-title' },
        h('h2', { id: 'workers-title' }, 'Workers'), workers),
      h('section', { class: 'panel', 'aria-labelledby': 'queues-title' },
        h('h2', { id: 'queues-title' }, 'Queues'), queues)),
    h('section', { class: 'panel', 'aria-labelledby': 'tenants-title' },
      h('h2', { id: 'tenants-title' }, 'Tenants'), newTenantForm(() => p.first()), list, p.el),
    h('section', { class: 'panel', 'aria-labelledby': 'deletions-title' },
      h('h2', { id: 'deletions-title' }, 'Tenant deletions under way'), deletions));
  p.first();
  // Live figures, refreshed every 5 s while this page is shown.
  repeat(page, 5000, () => Promise.all([showWorkers(workers), showQueues(queues), showDeletions(deletions)]));
}

async function showWorkers(el) {
  try {
    const list = await get('/admin/workers');
    mount(el, list.length ? table([
      { label: 'Worker', cell: (w) => h('code', {}, w.id) },
      { label: 'Host / pid', cell: (w) => `${w.host} / ${w.pid}` },
      { label: 'In flight', cell: (w) => String(w.in_flight) },
      { label: 'Deliveries/s', cell: (w) => w.deliveries_per_second.toFixed(1) },
      { label: 'Heartbeat', cell: (w) => timeEl(w.last_heartbeat) },
      { label: 'Version', cell: (w) => w.version },
    ], list) : empty('No live worker.'), updated());
  } catch (err) {
    mount(el, errorBox(err));
  }
}

async function showQueues(el) {
  try {
    const list = await get('/admin/queues');
    mount(el, list.length ? table([
      { label: 'Partition', cell: (q) => String(q.partition) },
      { label: 'Queued', cell: (q) => String(q.queued) },
      { label: 'In flight', cell: (q) => String(q.in_flight) },
      { label: 'Oldest due waiting', cell: (q) => (q.oldest_due_age_ms === undefined ? 'nothing due' : fmtMs(q.oldest_due_age_ms)) },
    ], list) : empty('No partitions.'), updated());
  } catch (err) {
    mount(el, errorBox(err));
  }
}

async function showDeletions(el) {
  try {
    const list = await get('/admin/tenant-deletions');
    mount(el, list.length ? table([
      { label: 'Tenant', cell: (d) => h('span', {}, d.name || '—', ' ', h('code', {}, d.tenant_id)) },
      { label: 'Asked', cell: (d) => timeEl(d.requested_at) },
      { label: 'Removing', cell: (d) => d.phase },
      { label: 'Removed', cell: (d) => `${d.endpoints_removed} webhooks, ${d.deliveries_removed} deliveries, ${d.events_removed} other events` },
    ], list) : empty('None.'), updated());
  } catch (err) {
    mount(el, errorBox(err));
  }
}

function updated() {
  return h('p', { class: 'hint' }, `Updated ${new Date().toLocaleTimeString()}; refreshes every 5 s.`);
}

function newTenantForm(reload) {
  const name = h('input', { type: 'text', required: true, maxlength: 200 });
  const status = h('div', { role: 'status' });
  const form = h('form', { class: 'inline-form', 'aria-label': 'New tenant' },
    field('New tenant name', name), h('button', { type: 'submit' }, 'Create tenant'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const t = await post('/tenants', { name: name.value.trim() });
      mount(status, h('p', { class: 'ok' }, 'Created ', h('a', { href: `#/operator/tenants/${t.id}` }, t.name), '.'));
      name.value = '';
      reload();
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  return form;
}

export function tenantView(page, [id]) {
  document.title = 'Tenant — Hookfleet';
  const head = h('div', {}, loading());
  const list = h('div', { class: 'list' });
  const created = h('div');
  const p = pager(async (cursor) => {
    mount(list, loading());
    try {
      const res = await get(`/tenants/${id}/api-keys${query({ limit: 25, cursor })}`);
      mount(list, res.data.length ? keysTable(id, res.data, () => p.reload()) : empty('No API keys.'));
      return res.next;
    } catch (err) {
      mount(list, errorBox(err));
      return null;
    }
  });
  const keysPanel = h('section', { class: 'panel', 'aria-labelledby': 'keys-title' },
    h('h2', { id: 'keys-title' }, 'API keys'),
    newKeyForm(id, created, () => p.first()), created, list, p.el);
  mount(page,
    h('p', { class: 'crumbs' }, h('a', { href: '#/operator' }, '← Operator')),
    head, keysPanel);
  const showDeleted = (d) => {
    mount(head, h('h1', {}, d.name || d.tenant_id), h('p', {}, h('code', {}, d.tenant_id)),
      h('p', { class: 'error', role: 'status' },
        `Deleted (${new Date(d.requested_at).toLocaleString()}): its keys and portal links no longer work. `
        + 'Its data is being removed in the background; the Operator page shows the progress.'));
    keysPanel.remove();
  };
  const showTenant = (t) => {
    if (t.tenant_id) {
      showDeleted(t);
      return;
    }
    mount(head, h('h1', {}, t.name), h('p', {}, h('code', {}, t.id), ' — created ', timeEl(t.created_at)));
    const u = t.usage || {};
    head.append(
      h('p', {}, `Keeps its data ${t.retention}${t.own_retention ? ' (its own retention)' : ' (the server\'s retention)'}; `
        + `${u.retained_events ?? 0} events retained`
        + (t.max_retained_events ? ` of at most ${t.max_retained_events} (${u.counted_events ?? 0} counted).` : ', no cap.')),
      renameForm(t, showTenant), limitsForm(t, showTenant), deleteButton(t, showTenant));
  };
  get(`/tenants/${id}`).then(showTenant, (err) => mount(head, errorBox(err)));
  p.first();
}

function renameForm(tenant, show) {
  const name = h('input', { type: 'text', required: true, maxlength: 200, value: tenant.name });
  const status = h('div', { role: 'status' });
  const form = h('form', { class: 'inline-form', 'aria-label': 'Rename tenant' },
    field('Tenant name', name), h('button', { type: 'submit' }, 'Rename'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      show(await patch(`/tenants/${tenant.id}`, { name: name.value.trim() }));
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  return form;
}

function limitsForm(tenant, show) {
  const retention = h('input', { type: 'text', maxlength: 16, value: tenant.own_retention ? tenant.retention : '', placeholder: `server's (${tenant.own_retention ? '' : tenant.retention})` });
  const cap = h('input', { type: 'number', min: 1, max: 1000000000, value: tenant.max_retained_events ?? '', placeholder: 'no cap' });
  const status = h('div', { role: 'status' });
  const form = h('form', { class: 'inline-form', 'aria-label': 'Tenant limits' },
    field('Retention', retention, 'e.g. 7d or 90d; empty for the server\'s'),
    field('Most retained events', cap, 'empty for no cap'),
    h('button', { type: 'submit' }, 'Save limits'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      show(await patch(`/tenants/${tenant.id}`, {
        retention: retention.value.trim() || null,
        max_retained_events: cap.value.trim() ? Number(cap.value) : null,
      }));
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  return form;
}

function deleteButton(tenant, show) {
  return actionButton('Delete tenant', async () => {
    const question = `Delete the tenant ${tenant.name}? Its API keys and portal links stop working at once, `
      + 'and its webhooks, events, deliveries and logs are removed. This cannot be undone.';
    if (!(await confirmDialog(question, 'Delete tenant'))) return;
    show(await del(`/tenants/${tenant.id}`));
  }, { class: 'danger' });
}

function keysTable(tenantId, keys, reload) {
  return table([
    { label: 'Name', cell: (k) => k.name || '—' },
    { label: 'Prefix', cell: (k) => h('code', {}, `${k.prefix}…`) },
    { label: 'Scopes', cell: (k) => (k.scopes ? k.scopes.join(', ') : 'all') },
    { label: 'Created', cell: (k) => timeEl(k.created_at) },
    { label: '', cell: (k) => actionButton('Revoke', async () => {
      if (!(await confirmDialog(`Revoke the key ${k.name || k.prefix}? Anything using it stops working at once.`, 'Revoke'))) return;
      await del(`/tenants/${tenantId}/api-keys/${k.id}`);
      reload();
    }, { class: 'danger', 'aria-label': `Revoke ${k.name || k.prefix}` }) },
  ], keys, () => 'key-row');
}

function newKeyForm(tenantId, created, reload) {
  const name = h('input', { type: 'text', maxlength: 200 });
  const boxes = SCOPES.map((scope) => h('input', { type: 'checkbox', value: scope, checked: true, id: `scope-${scope}` }));
  const status = h('div', { role: 'status' });
  const form = h('form', { class: 'panel inner', 'aria-label': 'New API key' },
    field('Key name', name),
    h('fieldset', { class: 'field' }, h('legend', {}, 'Scopes'),
      boxes.map((box) => h('label', { class: 'check', for: box.id }, box, ` ${box.value}`))),
    h('button', { type: 'submit' }, 'Create key'), status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const scopes = boxes.filter((b) => b.checked).map((b) => b.value);
    if (scopes.length === 0) {
      mount(status, errorBox('Choose at least one scope.'));
      return;
    }
    // All three is the default: only a narrower key needs to say so.
    const body = scopes.length < SCOPES.length ? { scopes } : {};
    if (name.value.trim()) body.name = name.value.trim();
    try {
      const key = await post(`/tenants/${tenantId}/api-keys`, body);
      mount(status);
      mount(created, secretBox(`API key ${key.name || key.prefix}${key.scopes ? ` (${key.scopes.join(', ')})` : ''}`, key.key));
      name.value = '';
      reload();
    } catch (err) {
      mount(status, errorBox(err));
    }
  });
  return form;
}
