// Hookfleet console: sign-in, the page frame and hash routing.
// Views live in views-*.js; each is `view(page, params, session)` and
// fills `page`, a fresh element per visit (timers stop once it is gone).
import { h, mount, loading, errorBox, field } from './dom.js';
import * as api from './api.js';

const app = document.getElementById('app');
let session = null;

// What the UI may show, from GET /me. Controls the credential cannot use
// are hidden, so the console never provokes a 403 itself.
function makeSession(me) {
  const scopes = me.scopes || [];
  const limited = Array.isArray(me.endpoint_ids) && me.endpoint_ids.length > 0;
  return {
    me,
    admin: me.kind === 'admin',
    portal: me.kind === 'portal',
    manage: me.kind !== 'admin' && scopes.includes('manage'),
    createEndpoints: me.kind !== 'admin' && scopes.includes('manage') && !limited,
    manageEventTypes: me.kind === 'tenant' && scopes.includes('manage'),
    // A portal limited to some webhooks may not list all events (403).
    listEvents: me.kind !== 'admin' && !limited,
  };
}

// [path pattern, module, view]. Modules load on first use, so the sign-in
// page downloads only app.js, api.js and dom.js.
const TENANT_ROUTES = [
  [/^\/endpoints$/, './views-endpoints.js', 'endpointsView'],
  [/^\/endpoints\/new$/, './views-endpoints.js', 'newEndpointView'],
  [/^\/endpoints\/(ep_[\w-]+)\/edit$/, './views-endpoints.js', 'editEndpointView'],
  [/^\/endpoints\/(ep_[\w-]+)$/, './views-endpoints.js', 'endpointView'],
  [/^\/deliveries\/(dlv_[\w-]+)$/, './views-deliveries.js', 'deliveryView'],
  [/^\/event-types$/, './views-event-types.js', 'eventTypesView'],
  [/^\/events$/, './views-deliveries.js', 'findEventView'],
  [/^\/events\/(evt_[\w-]+)$/, './views-deliveries.js', 'eventView'],
];
const ADMIN_ROUTES = [
  [/^\/operator$/, './views-operator.js', 'operatorView'],
  [/^\/operator\/tenants\/(ten_[\w-]+)$/, './views-operator.js', 'tenantView'],
];

async function boot() {
  const inPortal = location.pathname.startsWith('/console/portal/');
  if (inPortal) {
    // The link's token is in the fragment: take it out of the address
    // bar (and history) before anything else, then trade it for a session.
    const token = location.hash.slice(1);
    if (token && !token.startsWith('/')) {
      history.replaceState(null, '', location.pathname);
      try {
        const linkId = location.pathname.split('/').pop();
        const created = await api.exchangePortalToken(token, linkId);
        api.setCredential(created.session);
      } catch (err) {
        api.setCredential(null);
        return refusal();
      }
    }
    if (!isPortalSession(api.credential())) return api.canKeepCredential() ? refusal() : storageBlocked();
  } else if (isPortalSession(api.credential())) {
    // A portal session opens only the portal; /console asks for a key.
    api.setCredential(null);
  }
  if (!api.credential()) return signIn();
  mount(app, loading());
  try {
    await start(await api.whoAmI());
  } catch (err) {
    if (err.status === 401) {
      api.setCredential(null);
      return inPortal ? refusal() : signIn('Your key is no longer accepted; sign in again.');
    }
    mount(app, h('main', { class: 'signin' }, errorBox(err),
      h('button', { type: 'button', onclick: () => location.reload() }, 'Try again')));
  }
}

function isPortalSession(credential) {
  return Boolean(credential) && credential.startsWith('hfs_');
}

function refusal() {
  document.title = 'Link expired — Hookfleet';
  mount(app, h('main', { class: 'refusal', id: 'main' },
    h('h1', {}, 'This link has expired or was revoked'),
    h('p', {}, 'Ask for a new link from the service that sent you here.')));
}

// Reloaded inside an iframe where the browser denies this site storage:
// the session could not be kept, and the link's token is used up.
function storageBlocked() {
  document.title = 'Session ended — Hookfleet';
  mount(app, h('main', { class: 'refusal', id: 'main' },
    h('h1', {}, 'This page was reloaded and its session could not be kept'),
    h('p', {}, 'Your browser does not let this embedded page keep its session. Open it again from the page that showed it.')));
}

function signIn(message) {
  document.title = 'Sign in — Hookfleet console';
  const input = h('input', { type: 'password', name: 'credential', autocomplete: 'off', required: true, spellcheck: 'false' });
  const status = h('div', { role: 'status' }, message ? errorBox(message) : null);
  const button = h('button', { type: 'submit' }, 'Sign in');
  const form = h('form', { class: 'panel', 'aria-label': 'Sign in' },
    field('API key or admin key', input, 'A tenant API key (hf_…) or the admin key. Kept in this tab only.'),
    button, status);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) return;
    button.disabled = true;
    mount(status, loading('Checking the key…'));
    api.setCredential(value);
    try {
      const me = await api.whoAmI();
      // replaceState: no hashchange event, start() routes once itself.
      history.replaceState(null, '', me.kind === 'admin' ? '#/operator' : '#/endpoints');
      await start(me);
    } catch (err) {
      api.setCredential(null);
      mount(status, errorBox(err.status === 401 ? 'This key was not accepted.' : err));
      button.disabled = false;
    }
  });
  mount(app, h('main', { class: 'signin', id: 'main' },
    h('h1', {}, 'Hookfleet console'), form));
  input.focus();
}

function signOut() {
  api.setCredential(null);
  session = null;
  history.replaceState(null, '', location.pathname);
  signIn();
}

async function start(me) {
  session = makeSession(me);
  applyBranding(me.branding);
  api.whenUnauthorized(() => {
    // The credential expired or was revoked while in use.
    api.setCredential(null);
    if (session && session.portal) refusal();
    else signIn('Your key is no longer accepted; sign in again.');
    session = null;
  });
  const main = h('main', { id: 'main', tabindex: '-1' });
  mount(app, header(session), banner(session), main);
  window.onhashchange = () => route(main);
  route(main);
}

function applyBranding(branding) {
  if (branding && /^#[0-9a-fA-F]{6}$/.test(branding.accent_color || '')) {
    document.documentElement.style.setProperty('--accent', branding.accent_color);
  }
}

function header(s) {
  const me = s.me;
  const brand = (me.branding && me.branding.name) || 'Hookfleet';
  const logo = me.branding && /^https:\/\//.test(me.branding.logo_url || '')
    ? h('img', { class: 'logo', src: me.branding.logo_url, alt: '' }) : null;
  const links = s.admin
    ? [['#/operator', 'Operator']]
    : [['#/endpoints', 'Endpoints'], ['#/event-types', 'Event types'], ['#/events', 'Events']];
  const who = s.admin ? 'Admin' : `${me.tenant_name || me.tenant_id || 'Tenant'}${s.portal ? ' (portal)' : ''}`;
  return h('header', { class: 'top' },
    h('a', { class: 'skip', href: '#main', onclick: skipToMain }, 'Skip to content'),
    h('div', { class: 'brand' }, logo, h('span', { class: 'brand-name' }, brand)),
    h('nav', { 'aria-label': 'Main' }, links.map(([href, label]) => h('a', { href, class: 'nav-link' }, label))),
    h('div', { class: 'who' }, h('span', { class: 'who-name' }, who),
      s.portal ? null : h('button', { type: 'button', class: 'secondary', onclick: signOut }, 'Sign out')));
}

function skipToMain(event) {
  // The hash is the router's: move focus without touching it.
  event.preventDefault();
  document.getElementById('main').focus();
}

function banner(s) {
  if (s.admin || s.manage) return null;
  return h('div', { class: 'banner', role: 'note' },
    'Read-only access: you can look at everything here but not change it.');
}

function route(main) {
  if (!session) return;
  const path = location.hash.replace(/^#/, '') || '';
  const routes = session.admin ? ADMIN_ROUTES : TENANT_ROUTES;
  for (const link of document.querySelectorAll('.nav-link')) {
    const target = link.getAttribute('href').slice(1);
    link.toggleAttribute('aria-current', path === target || path.startsWith(`${target}/`));
    if (link.hasAttribute('aria-current')) link.setAttribute('aria-current', 'page');
  }
  for (const [pattern, module, name] of routes) {
    const match = pattern.exec(path);
    if (match) {
      const page = h('div', { class: 'page' }, loading());
      mount(main, page);
      window.scrollTo(0, 0);
      const s = session;
      import(module).then((views) => {
        if (!page.isConnected) return; // the user moved on meanwhile
        page.replaceChildren();
        views[name](page, match.slice(1).map(decodeURIComponent), s);
      }, (err) => mount(page, errorBox(`The console could not load this page (${err.message}).`)));
      return;
    }
  }
  // Unknown or empty route: the view's home.
  location.replace(session.admin ? '#/operator' : '#/endpoints');
}

boot();
