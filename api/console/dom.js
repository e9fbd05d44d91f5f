// Small DOM helpers. Data is only ever put in the page as text
// (textContent / attribute values), never parsed as HTML.

// h('a', {href: '#/x', class: 'btn', onclick: fn}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  const el = tag === 'svg' || SVG_TAGS.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'dataset') {
      Object.assign(el.dataset, value);
    } else if (name === 'value' && 'value' in el && !(el instanceof SVGElement)) {
      el.value = value;
    } else if (name === 'checked' || name === 'selected' || name === 'disabled') {
      el[name] = Boolean(value);
    } else {
      el.setAttribute(name, value === true ? '' : String(value));
    }
  }
  append(el, children);
  return el;
}

const SVG_TAGS = new Set(['g', 'path', 'line', 'rect', 'text', 'polyline', 'circle', 'title']);

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else if (child instanceof Node) el.appendChild(child);
    else el.appendChild(document.createTextNode(String(child)));
  }
}

// Replace everything inside `el` with `children`.
export function mount(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, text);
}

export function errorBox(err) {
  return h('div', { class: 'error', role: 'alert' }, errorText(err));
}

export function errorText(err) {
  if (err && err.message) return err.message;
  return String(err);
}

export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

export function badge(status) {
  return h('span', { class: `badge badge-${status}` }, status.replace('_', ' '));
}

// A table that turns into stacked cards on narrow screens: each cell
// carries its column name for the CSS to show.
export function table(columns, rows, rowClass) {
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'cards' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c.label)))),
      h('tbody', {}, rows.map((row) => h('tr', { class: rowClass ? rowClass(row) : null },
        columns.map((c) => h('td', { 'data-label': c.label }, c.cell(row))))))));
}

export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function timeEl(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, fmtTime(iso)) : '—';
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined) return '—';
  return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${ms} ms`;
}

export function fmtRate(rate) {
  if (rate === null || rate === undefined) return '—';
  return `${(rate * 100).toFixed(rate >= 0.999 || rate === 0 ? 0 : 1)} %`;
}

export function prettyJson(text) {
  if (typeof text !== 'string') return JSON.stringify(text, null, 2);
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}

// A labelled form field; `input` is the control itself.
export function field(label, input, hint) {
  if (!input.id) input.id = `f-${++fieldSeq}`;
  return h('div', { class: 'field' },
    h('label', { for: input.id }, label),
    input,
    hint ? h('small', { class: 'hint' }, hint) : null);
}
let fieldSeq = 0;

// A button that disables itself while its async action runs and shows
// the action's error next to it.
export function actionButton(label, action, attrs = {}) {
  const status = h('span', { class: 'action-status', role: 'status' });
  const button = h('button', { type: 'button', ...attrs }, label);
  button.addEventListener('click', async () => {
    button.disabled = true;
    status.replaceChildren();
    try {
      await action(status);
    } catch (err) {
      status.replaceChildren(h('span', { class: 'error-inline', role: 'alert' }, errorText(err)));
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'action' }, button, status);
}

// Confirmation in a modal <dialog> (keyboard friendly; Esc cancels).
export function confirmDialog(message, confirmLabel = 'Delete') {
  return new Promise((resolve) => {
    const dialog = h('dialog', { class: 'confirm', 'aria-label': 'Confirm' },
      h('p', {}, message),
      h('div', { class: 'buttons' },
        h('button', { type: 'button', class: 'secondary', onclick: () => dialog.close('no') }, 'Cancel'),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.close('yes') }, confirmLabel)));
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'yes');
    });
    document.body.appendChild(dialog);
    dialog.showModal();
  });
}

// A secret (signing secret, API key) shown once, with a copy button.
export function secretBox(label, secret) {
  const code = h('code', { class: 'secret-value' }, secret);
  const note = h('span', { class: 'action-status', role: 'status' });
  const copy = h('button', { type: 'button', class: 'secondary' }, 'Copy');
  copy.addEventListener('click', async () => {
    try {
      await navigator.clipboard.writeText(secret);
      note.textContent = 'Copied.';
    } catch {
      // No clipboard permission: select the text so Ctrl-C works.
      const range = document.createRange();
      range.selectNodeContents(code);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
      note.textContent = 'Selected: press Ctrl-C to copy.';
    }
  });
  return h('div', { class: 'secret-box', role: 'region', 'aria-label': label },
    h('strong', {}, label),
    h('p', { class: 'hint' }, 'Shown only this once: copy it now.'),
    h('div', { class: 'secret-row' }, code, copy, note));
}

// Key/value pairs as a definition list.
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function headersTable(headers) {
  const entries = Object.entries(headers || {});
  if (entries.length === 0) return empty('none');
  return h('table', { class: 'kv' }, h('tbody', {}, entries.map(([k, v]) =>
    h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, Array.isArray(v) ? v.join(', ') : String(v))))));
}

// RFC 3339 <-> <input type="datetime-local"> (local time, minutes).
export function toLocalInput(date) {
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
export function fromLocalInput(value) {
  if (!value) return undefined;
  return new Date(value).toISOString();
}

// Run `fn` now and then every `ms` while `page` is in the document
// (a view's timers end when the user leaves the view).
export function repeat(page, ms, fn) {
  const tick = async () => {
    if (!page.isConnected) return;
    try {
      await fn();
    } finally {
      if (page.isConnected) setTimeout(tick, ms);
    }
  };
  tick();
}

// Pager for cursor-paged lists: keeps the cursors seen so far so that
// "Previous" works too. load(cursor) renders a page and returns its `next`.
export function pager(load) {
  const stack = [undefined];
  let index = 0;
  let next = null;
  const info = h('span', { class: 'pager-info' });
  const prev = h('button', { type: 'button', class: 'secondary' }, '← Previous');
  const more = h('button', { type: 'button', class: 'secondary' }, 'Next →');
  const el = h('nav', { class: 'pager', 'aria-label': 'Pages' }, prev, info, more);
  async function go(i) {
    prev.disabled = more.disabled = true;
    try {
      next = await load(stack[i]);
      index = i;
      stack.length = i + 1;
      if (next) stack.push(next);
    } finally {
      prev.disabled = index === 0;
      more.disabled = !next;
      info.textContent = `Page ${index + 1}`;
      el.hidden = index === 0 && !next;
    }
  }
  prev.addEventListener('click', () => go(index - 1));
  more.addEventListener('click', () => go(index + 1));
  return { el, first: () => go(0), reload: () => go(index) };
}
