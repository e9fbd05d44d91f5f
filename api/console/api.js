// The only way the console talks to Hookfleet: the public API under
// /api/v1, with the credential as a Bearer token. The credential lives
// in sessionStorage (gone when the tab closes), never in a URL or cookie.

const CREDENTIAL = 'hookfleet.credential';

// A portal embedded in an <iframe> on another site may be denied storage
// (third-party storage blocked): then the credential lives in memory
// only, and a reload needs a new link.
let memory = null;
function storage() {
  try {
    return window.sessionStorage;
  } catch {
    return null;
  }
}

export function canKeepCredential() {
  return storage() !== null;
}

export function credential() {
  const store = storage();
  return store ? store.getItem(CREDENTIAL) : memory;
}

export function setCredential(value) {
  const store = storage();
  if (!store) memory = value || null;
  else if (value) store.setItem(CREDENTIAL, value);
  else store.removeItem(CREDENTIAL);
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.code = body && body.code;
    this.field = body && body.field;
  }
}

// Calls listening for a 401 (credential expired or revoked).
let onUnauthorized = null;
export function whenUnauthorized(fn) {
  onUnauthorized = fn;
}

export async function api(method, path, body, { auth = true } = {}) {
  const headers = { accept: 'application/json' };
  if (auth) {
    // Signed out while a page was still loading: do not ask without a key.
    if (!credential()) throw new ApiError(0, { message: 'Signed out.' });
    headers.authorization = `Bearer ${credential()}`;
  }
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res;
  try {
    res = await fetch(`/api/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, { message: `The API cannot be reached (${err.message}).` });
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { message: text.slice(0, 300) };
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data);
    if (res.status === 401 && auth && onUnauthorized) onUnauthorized(err);
    throw err;
  }
  return data;
}

export const get = (path) => api('GET', path);
export const post = (path, body) => api('POST', path, body === undefined ? {} : body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

// "?a=1&b=2", leaving out empty values.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') q.set(k, v);
  }
  const s = q.toString();
  return s ? `?${s}` : '';
}

export const enc = encodeURIComponent;

// Every page of a list, for small lists only (the event-type catalog).
export async function getAll(path, maxPages = 10) {
  const items = [];
  let cursor;
  for (let i = 0; i < maxPages; i++) {
    const sep = path.includes('?') ? '&' : '?';
    const page = await get(`${path}${sep}limit=250${cursor ? `&cursor=${enc(cursor)}` : ''}`);
    items.push(...page.data);
    if (!page.next) break;
    cursor = page.next;
  }
  return items;
}

// What the credential is and may do (GET /me), as
// {kind, tenant_id?, tenant_name?, scopes, endpoint_ids?, expires_at?, branding?}.
export async function whoAmI() {
  try {
    return await get('/me');
  } catch (err) {
    if (err.status !== 404) throw err;
    // An API from before /me: tell a tenant key (hf_…) from the admin key.
    if (credential().startsWith('hf_')) {
      await get('/webhooks?limit=1');
      return { kind: 'tenant', scopes: ['publish', 'manage', 'read'] };
    }
    await get('/admin/workers');
    return { kind: 'admin', scopes: [] };
  }
}

// Portal link token -> session (no Authorization header).
// The link's id (the page's path) goes along: the token must be that
// link's, whose framing rules this page was served with.
export async function exchangePortalToken(token, linkId) {
  return api('POST', '/portal-sessions', { token, link_id: linkId }, { auth: false });
}
