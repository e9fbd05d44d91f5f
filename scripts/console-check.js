// The web console (/console) and the customer portal in a real browser, as
// a person would use them: sign in with a tenant key, create an endpoint,
// watch deliveries, retries, a replay, a test send, a secret rotation, an
// edit, pause and resume, paging and deletion, event types, finding an
// event; the same pages on a phone-sized screen; then portal links, in an
// <iframe> on another origin and on their own; then the operator view with
// the admin key. Every check prints one line; the first failure stops the
// run (exit 1).
//
//   node scripts/console-check.js BASE_URL ADMIN_KEY OUTPUT_DIR
//
// The API and one worker must be running at BASE_URL with
// HOOKFLEET_ALLOW_CIDRS=127.0.0.0/8 and HOOKFLEET_RETRY_SCHEDULE=0s,2s,4s,8s.
// Needs playwright-core (NODE_PATH) and Debian's chromium at
// /usr/bin/chromium (or HOOKFLEET_CHROMIUM). Screenshots go to
// OUTPUT_DIR/console-<step>.png.
//
// Any page error, console error, failed request or HTTP answer >= 400
// that the script did not provoke on purpose fails the run.
'use strict';

const fs = require('fs');
const path = require('path');
const http = require('http');
const { launch } = require('./chromium');

const [base, adminKey, outDir] = process.argv.slice(2);
if (!base || !adminKey || !outDir) {
  console.error('usage: console-check.js BASE_URL ADMIN_KEY OUTPUT_DIR');
  process.exit(2);
}
const origin = new URL(base).origin;
const RETRY_ATTEMPTS = 4; // HOOKFLEET_RETRY_SCHEDULE=0s,2s,4s,8s

// ---------- small helpers ----------

let passed = 0;
// What went wrong in the browser (page errors, console errors, failed
// requests, unexpected HTTP errors): printed with any failure.
const problems = [];
function ok(message) {
  passed += 1;
  console.log(`ok: ${message}`);
}

class CheckFailed extends Error {}
function fail(message) {
  throw new CheckFailed(message);
}
function assert(condition, message) {
  if (!condition) fail(message);
}

// Poll `fn` until it returns a truthy value, or fail after `ms`.
async function until(what, fn, ms = 30000) {
  const deadline = Date.now() + ms;
  let last = null;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (err) {
      last = err;
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  fail(`timed out after ${ms / 1000} s waiting for ${what}${last ? ` (${last.message.split('\n')[0]})` : ''}`);
}

// The API through Node's fetch (not the browser).
async function call(method, urlPath, token, body) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}/api/v1${urlPath}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = text;
  }
  return { status: res.status, data };
}
async function must(method, urlPath, token, body, expected) {
  const res = await call(method, urlPath, token, body);
  if (expected ? res.status !== expected : res.status >= 300) {
    fail(`${method} ${urlPath} answered ${res.status}: ${JSON.stringify(res.data).slice(0, 300)}`);
  }
  return res.data;
}

// A receiver on 127.0.0.1 that answers every POST with `status`.
function receiver(status, body) {
  const received = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(status, { 'content-type': 'application/json', 'x-receiver': 'console-check' });
      res.end(body);
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, received, url: `http://127.0.0.1:${server.address().port}/hook` });
  }));
}

// A page on another origin (http://localhost:<port>) that embeds a portal
// link in an <iframe>: /embed?src=<url>.
function embedder() {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://localhost');
    if (url.pathname !== '/embed') {
      res.writeHead(204);
      res.end();
      return;
    }
    const src = url.searchParams.get('src').replace(/[&"<>]/g, (c) => `&#${c.charCodeAt(0)};`);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Customer app</title></head><body><h1>Customer app</h1>
<iframe id="portal" src="${src}" width="1200" height="1100" title="Webhooks portal"></iframe></body></html>`);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => {
    resolve({ server, origin: `http://localhost:${server.address().port}` });
  }));
}

// The endpoint list fetches each row's stats after drawing the rows: wait
// for them (leaving earlier would abort those requests).
function statsShown(target) {
  return until('the endpoint list\'s 24 h stats', async () => (await target.locator('table.cards td .muted', { hasText: '…' }).count()) === 0);
}

// ---------- the run ----------

async function main() {
  fs.mkdirSync(outDir, { recursive: true });
  const stamp = Date.now().toString(36);

  // Needs the API's /me (the console's contract); say so clearly if absent.
  const me = await call('GET', '/me', adminKey);
  assert(me.status === 200, `GET /api/v1/me with the admin key answered ${me.status}: this API predates the console`);
  assert(me.data.kind === 'admin', `GET /me with the admin key says kind ${JSON.stringify(me.data.kind)}, not "admin"`);

  // Tenants and keys, through the API.
  const tenantA = await must('POST', '/tenants', adminKey, { name: `Console check A ${stamp}` });
  const keyA = (await must('POST', `/tenants/${tenantA.id}/api-keys`, adminKey, { name: 'console-check' })).key;
  const tenantB = await must('POST', '/tenants', adminKey, { name: `Console check B ${stamp}` });
  const keyB = (await must('POST', `/tenants/${tenantB.id}/api-keys`, adminKey, { name: 'console-check' })).key;
  const good = await receiver(200, '{"received":true}');
  const bad = await receiver(500, '{"error":"receiver is down"}');
  const embed = await embedder();
  // Tenant B's endpoint and a delivery, for the portal isolation check.
  const epB = await must('POST', '/webhooks', keyB, { url: good.url, events: ['match.found'] });
  const evB = await must('POST', '/events', keyB, { event_type: 'match.found', data: { n: 1 } });
  const dlvB = (await must('GET', `/events/${evB.id}`, keyB)).deliveries[0].id;
  const shortLink = await must('POST', '/portal-links', keyA, { expires_in: 60, allowed_origins: [embed.origin] }, 201);
  ok(`set up tenants ${tenantA.id} and ${tenantB.id}, receivers ${good.url} (200) and ${bad.url} (500)`);

  const browser = await launch({ width: 1280, height: 1000 });
  const context = browser.context;

  // Everything that goes wrong in the browser, unless provoked on purpose
  // (see `problems` at the top).
  const provoked = []; // [{method, pathPart, status}]
  const isProvoked = (method, url, status) => provoked.some((p) => (!p.method || p.method === method)
    && url.includes(p.pathPart) && (!status || p.status === status));
  context.on('page', watch);
  function watch(page) {
    page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const where = (msg.location() && msg.location().url) || '';
      // The browser logs every >= 400 answer as an error; those are judged below.
      if (/^Failed to load resource: the server responded with a status of/.test(msg.text())) return;
      problems.push(`console error: ${msg.text()} ${where}`);
    });
    page.on('requestfailed', (req) => {
      const url = req.url();
      if (foreign.includes(url)) return;
      problems.push(`request failed: ${req.method()} ${url} (${req.failure() && req.failure().errorText}) in ${req.frame().url()}`);
    });
    page.on('response', (res) => {
      const req = res.request();
      if (res.status() >= 400 && !isProvoked(req.method(), res.url(), res.status())) {
        problems.push(`HTTP ${res.status()} for ${req.method()} ${res.url()}`);
      }
    });
  }
  const foreign = [];
  const checkProblems = (step) => {
    if (problems.length) fail(`${step}: ${problems.join('; ')}`);
    if (foreign.length) fail(`${step}: the console requested outside its origin: ${foreign.join(', ')}`);
  };

  try {
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith(embed.origin) || url.startsWith('data:') || url.startsWith('blob:')) {
        return route.continue();
      }
      foreign.push(url);
      return route.abort();
    });
    const page = context.pages()[0] || (await context.newPage());
    watch(page);
    page.setDefaultTimeout(20000);
    const noOverflow = async (what) => {
      const [scroll, client] = await page.evaluate(() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]);
      assert(scroll <= client, `${what} overflows horizontally at ${client} px (${scroll} px wide)`);
    };
    const shot = (name, target = page) => target.screenshot({ path: path.join(outDir, `console-${name}.png`), fullPage: true });

    // ----- sign in with the tenant key -----
    await page.goto(`${base}/console`);
    await page.getByLabel('API key or admin key').waitFor();
    await shot('signin');
    await page.getByLabel('API key or admin key').fill(keyA);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
    assert(!page.url().includes(keyA), 'the key shows in the URL');
    const stored = await page.evaluate(() => [sessionStorage.getItem('hookfleet.credential'), document.cookie]);
    assert(stored[0] === keyA && !stored[1].includes(keyA), 'the key is not (only) in sessionStorage');
    ok('signed in with a tenant key (kept in sessionStorage, not in the URL or a cookie)');

    // ----- create an endpoint; the secret is shown once -----
    await page.getByRole('link', { name: 'New endpoint' }).click();
    await page.getByLabel('URL').fill(good.url);
    await page.getByLabel('Description').fill('console check: answers 200');
    const eventsInput = page.getByLabel('Event types', { exact: true });
    await eventsInput.fill('user.created');
    await eventsInput.press('Enter');
    await page.getByRole('button', { name: 'Add header' }).click();
    await page.getByLabel('Header name').fill('X-Console-Check');
    await page.getByLabel('Header value').fill(stamp);
    await page.getByRole('button', { name: 'Create endpoint' }).click();
    await page.getByRole('heading', { name: 'Endpoint created' }).waitFor();
    const secret1 = (await page.locator('.secret-value').innerText()).trim();
    assert(/^whsec_/.test(secret1), `the new endpoint's secret shown is ${JSON.stringify(secret1)}`);
    await page.getByRole('link', { name: 'Go to the endpoint' }).click();
    await page.locator('.endpoint-head h1').waitFor();
    const goodId = page.url().match(/#\/endpoints\/(ep_[\w-]+)/)[1];
    assert(!(await page.content()).includes(secret1), 'the signing secret is still shown on the endpoint page');
    ok(`created endpoint ${goodId} in the console; its secret was shown once`);

    // A second endpoint, answering 500, made through the API.
    const badEp = await must('POST', '/webhooks', keyA, { url: bad.url, events: ['job.failed'], description: 'console check: answers 500' });

    await page.goto(`${base}/console#/endpoints`);
    await page.locator('table.cards a', { hasText: good.url }).waitFor();
    await page.locator('table.cards a', { hasText: bad.url }).waitFor();
    await statsShown(page);
    await shot('endpoints');
    await noOverflow('the endpoint list');
    ok('the endpoint list shows both endpoints with their 24 h stats');

    // Keyboard only: Tab to the first endpoint's link (focus visible), Enter.
    await page.locator('body').focus();
    let focused = null;
    for (let i = 0; i < 30 && !focused; i++) {
      await page.keyboard.press('Tab');
      focused = await page.evaluate(() => {
        const el = document.activeElement;
        return el && el.matches('table.cards a') ? [el.textContent, getComputedStyle(el).outlineStyle] : null;
      });
    }
    assert(focused, 'Tab never reached an endpoint link');
    assert(focused[1] !== 'none', 'the focused link shows no focus outline');
    await page.keyboard.press('Enter');
    await page.locator('.endpoint-head h1', { hasText: focused[0] }).waitFor();
    await page.goBack();
    await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
    await statsShown(page);
    ok('keyboard: Tab reaches an endpoint link, with a visible focus ring; Enter opens it');

    // ----- a published event shows up delivered in the log -----
    const ev1 = await must('POST', '/events', keyA, { event_type: 'user.created', data: { user_id: `u_${stamp}` } }, 202);
    await page.goto(`${base}/console#/endpoints/${goodId}`);
    const log = page.locator('section.delivery-log');
    const refreshLog = async () => {
      await log.getByRole('button', { name: 'Refresh' }).click();
      await log.locator('.list .loading').waitFor({ state: 'detached' });
    };
    await until('the event delivered in the endpoint\'s log', async () => {
      await refreshLog();
      return (await log.locator('tr.status-delivered').count()) > 0;
    });
    // Stats again (1h window), now that the attempt is counted.
    await page.locator('.segmented').getByRole('button', { name: '1h' }).click();
    await page.locator('.panel .facts', { hasText: '1 (1 ok, 0 failed)' }).waitFor();
    await until('the charts\' lines', async () => (await page.locator('figure.chart svg path.line').count()) >= 6);
    await shot('endpoint');
    await noOverflow('the endpoint page');
    ok(`event ${ev1.id} shows delivered in the endpoint's delivery log; the charts are drawn`);

    // The log's filters: only failed deliveries -> none here.
    await log.getByLabel('Status').selectOption('failed');
    await log.getByRole('button', { name: 'Apply' }).click();
    await log.locator('.list .empty').waitFor();
    await log.getByLabel('Status').selectOption('');
    await log.getByRole('button', { name: 'Apply' }).click();
    await log.locator('tr.status-delivered').first().waitFor();
    ok('the delivery log filters by status');

    // ----- a receiver answering 500: retries with their responses -----
    await must('POST', '/events', keyA, { event_type: 'job.failed', data: { job_id: `j_${stamp}` } }, 202);
    await page.goto(`${base}/console#/endpoints/${badEp.id}`);
    await until('the failing delivery to end failed', async () => {
      await refreshLog();
      return (await log.locator('tr.status-failed').count()) > 0;
    }, 60000);
    await log.locator('tr.status-failed a').first().click();
    await page.getByRole('heading', { name: `Attempts (${RETRY_ATTEMPTS})` }).waitFor();
    const attempts = page.locator('li.attempt');
    assert((await attempts.count()) === RETRY_ATTEMPTS, 'wrong number of attempts shown');
    assert((await page.locator('li.attempt .status-code', { hasText: 'HTTP 500' }).count()) === RETRY_ATTEMPTS, 'not every attempt shows HTTP 500');
    await page.locator('li.attempt pre', { hasText: 'receiver is down' }).first().waitFor();
    await attempts.first().getByText('Request headers').click();
    await attempts.first().locator('table.kv th', { hasText: 'webhook-signature' }).waitFor();
    await shot('delivery');
    await noOverflow('the delivery page');
    ok(`the delivery page shows ${RETRY_ATTEMPTS} attempts, each HTTP 500 with the response body and the request headers`);

    await page.getByRole('button', { name: 'Retry' }).click();
    await page.getByRole('heading', { name: `Attempts (${RETRY_ATTEMPTS + 1})` }).waitFor({ timeout: 60000 });
    const deliveryUrl = page.url();
    ok('Retry added one more attempt');

    // ----- replay a window with live progress -----
    await page.goto(`${base}/console#/endpoints/${badEp.id}`);
    await page.locator('#replay summary').click();
    await page.getByRole('button', { name: 'Start replay' }).click();
    await page.locator('.replay-progress .badge', { hasText: 'done' }).waitFor({ timeout: 60000 });
    const progress = await page.locator('.replay-progress').innerText();
    assert(/queued [1-9]/.test(progress), `the replay queued nothing: ${progress}`);
    ok(`replay reached done: ${progress.replace(/\s+/g, ' ').trim()}`);

    // ----- test send with custom JSON data -----
    await page.goto(`${base}/console#/endpoints/${goodId}`);
    await page.locator('#test-send summary').click();
    await page.locator('#test-send select option[value="user.created"]').waitFor({ state: 'attached' });
    await page.locator('#test-send select').selectOption('user.created');
    const dataBox = page.getByLabel('Data (JSON object)');
    await dataBox.fill('{"check": ');
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.locator('.test-result .error', { hasText: 'not valid JSON' }).waitFor();
    await dataBox.fill(JSON.stringify({ check: stamp, nested: { n: 42 } }));
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.locator('.test-result .badge', { hasText: 'delivered' }).waitFor({ timeout: 40000 });
    await page.locator('.test-result', { hasText: 'HTTP 200' }).waitFor();
    const sent = good.received.find((r) => r.body.includes(stamp) && r.body.includes('"nested"'));
    assert(sent, 'the receiver did not get the test event with the custom data');
    assert(JSON.parse(sent.body).type === 'user.created', 'the test event does not have the chosen type');
    assert(sent.headers['x-console-check'] === stamp, 'the custom header was not sent');
    await page.locator('#test-send').scrollIntoViewIfNeeded();
    await shot('test-send');
    ok('test send: invalid JSON is refused before sending; custom data delivered, result (HTTP 200) shown inline');

    // ----- rotate the secret: the new one is shown once -----
    await page.locator('#rotate summary').click();
    await page.getByRole('button', { name: 'Rotate secret' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Rotate' }).click();
    await page.locator('#rotate .secret-value').waitFor();
    const secret2 = (await page.locator('#rotate .secret-value').innerText()).trim();
    assert(/^whsec_/.test(secret2) && secret2 !== secret1, 'the rotated secret is not a new whsec_ secret');
    await page.reload();
    await page.locator('.endpoint-head h1').waitFor();
    assert(!(await page.content()).includes(secret2), 'the rotated secret is shown again after a reload');
    ok('rotated the secret; the new one was shown once');

    // ----- edit: a family of event types from the picker, a rate limit -----
    await page.locator('.endpoint-head').getByRole('link', { name: 'Edit' }).click();
    await page.getByLabel('Event types', { exact: true }).fill('match.*');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.getByLabel('Rate limit (deliveries/s)').fill('50');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('.endpoint-head .facts', { hasText: '50/s' }).waitFor();
    const edited = await must('GET', `/webhooks/${goodId}`, keyA);
    assert(edited.rate_limit === 50 && edited.events.includes('match.*') && edited.events.includes('user.created')
      && edited.headers['x-console-check'] === stamp, `the edit did not save as asked: ${JSON.stringify(edited)}`);
    ok('edited the endpoint: added match.* and a rate limit, kept its events and headers');

    // ----- delivery semantics from the form: FIFO order, a filter, a retry schedule -----
    await page.locator('.endpoint-head').getByRole('link', { name: 'Edit' }).click();
    await page.getByLabel('Delivery order').selectOption('fifo');
    await page.getByLabel('Filter (CEL)').fill('data.check ==');
    provoked.push({ method: 'PATCH', pathPart: `/api/v1/webhooks/${goodId}`, status: 422 });
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('.endpoint-form .error', { hasText: 'filter: line 1, column' }).waitFor();
    provoked.pop(); // later 422s count again
    const filterText = `data.check == "${stamp}"`;
    await page.getByLabel('Filter (CEL)').fill(filterText);
    await page.getByLabel('Retry schedule').fill('0s, 30s, 5m');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('.endpoint-head .facts', { hasText: 'FIFO' }).waitFor();
    await page.locator('.endpoint-head .facts', { hasText: '0s, 30s, 5m' }).waitFor();
    await page.locator('.endpoint-head .facts', { hasText: 'nothing waiting' }).waitFor();
    const ordered = await must('GET', `/webhooks/${goodId}`, keyA);
    assert(ordered.ordering === 'fifo' && ordered.filter === filterText
      && JSON.stringify(ordered.retry_schedule) === '["0s","30s","5m"]',
    `the semantics did not save as asked: ${JSON.stringify(ordered)}`);
    await page.locator('#test-send summary').click();
    await page.locator('#test-send select option[value="user.created"]').waitFor({ state: 'attached' });
    await page.locator('#test-send select').selectOption('user.created');
    await page.getByLabel('Data (JSON object)').fill(JSON.stringify({ check: 'not this one' }));
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.locator('.test-result .filter-miss').waitFor({ timeout: 40000 });
    await page.locator('.test-result .badge', { hasText: 'delivered' }).waitFor();
    await page.getByLabel('Data (JSON object)').fill(JSON.stringify({ check: stamp }));
    await page.getByRole('button', { name: 'Send test event' }).click();
    await page.locator('.test-result .filter-pass').waitFor({ timeout: 40000 });
    await shot('semantics');
    // Back to the defaults for the steps below.
    await must('PATCH', `/webhooks/${goodId}`, keyA, { ordering: 'none', filter: null, retry_schedule: null });
    ok('set FIFO order, a CEL filter (a bad one refused with its position) and a retry schedule in the form; a test send says whether the filter would have passed');

    // ----- pause and resume -----
    await page.locator('.endpoint-head').getByRole('button', { name: 'Pause' }).click();
    await page.locator('.endpoint-head .badge', { hasText: 'paused' }).waitFor();
    assert((await must('GET', `/webhooks/${goodId}`, keyA)).paused === true, 'the API does not say paused');
    await page.locator('.endpoint-head').getByRole('button', { name: 'Resume' }).click();
    await page.locator('.endpoint-head .badge', { hasText: 'enabled' }).waitFor();
    assert((await must('GET', `/webhooks/${goodId}`, keyA)).paused === false, 'the API does not say resumed');
    ok('paused and resumed the endpoint');

    // ----- a long log pages; an endpoint is deleted after a confirmation -----
    const held = await must('POST', '/webhooks', keyA, { url: `${good.url}?held`, events: ['match.found'], paused: true, description: 'console check: paging' });
    await must('POST', '/events/batch', keyA, { events: Array.from({ length: 60 }, (_, i) => ({ event_type: 'match.found', data: { i } })) }, 202);
    await page.goto(`${base}/console#/endpoints/${held.id}`);
    await until('50 rows on the first page of the log', async () => (await log.locator('tbody tr').count()) === 50);
    await log.getByRole('button', { name: 'Next →' }).click();
    await until('10 rows on the second page of the log', async () => (await log.locator('tbody tr').count()) === 10);
    await log.getByRole('button', { name: '← Previous' }).click();
    await until('the first page again', async () => (await log.locator('tbody tr').count()) === 50);
    await page.locator('section.panel').getByRole('button', { name: '7d' }).click();
    await page.locator('.panel .facts').first().waitFor();
    await page.locator('figure.chart figcaption', { hasText: 'Latency' }).waitFor();
    await page.locator('.endpoint-head').getByRole('button', { name: 'Delete' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Cancel' }).click();
    assert((await call('GET', `/webhooks/${held.id}`, keyA)).status === 200, 'Cancel deleted the endpoint');
    await page.locator('.endpoint-head').getByRole('button', { name: 'Delete' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete' }).click();
    await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
    await statsShown(page);
    assert((await page.locator('table.cards a', { hasText: `${good.url}?held` }).count()) === 0, 'the deleted endpoint is still listed');
    assert((await call('GET', `/webhooks/${held.id}`, keyA)).status === 404, 'the endpoint was not deleted');
    ok('a 60-delivery log pages 50 + 10 and back; the 7d window draws; Delete asks first, Cancel keeps, Delete removes');

    // ----- event types: the tenant's own, created and deleted -----
    const typeName = `check.t${stamp}`;
    await page.getByRole('link', { name: 'Event types' }).click();
    await page.getByLabel('Name', { exact: true }).fill(typeName);
    await page.getByLabel('Description', { exact: true }).fill('made by console-check');
    await page.getByLabel('Example data (JSON object, optional)').fill('{"n": 1}');
    await page.getByRole('button', { name: 'Create event type' }).click();
    const typeRow = page.locator('table.cards tr', { has: page.locator('code', { hasText: typeName }) });
    await typeRow.waitFor();
    await page.locator('table.cards tr', { has: page.locator('code', { hasText: 'user.created' }) }).getByText('Example data').waitFor();
    await typeRow.getByRole('button', { name: `Delete ${typeName}` }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete' }).click();
    await typeRow.waitFor({ state: 'detached' });
    ok(`event types: the catalog with examples; created and deleted ${typeName}`);

    // ----- the events list: newest first, filtered; then one by id -----
    await page.getByRole('link', { name: 'Events', exact: true }).click();
    await page.locator('.event-list tr.event-row a').first().waitFor();
    const listed = await page.locator('.event-list tr.event-row a').allInnerTexts();
    // (Operational events may be published meanwhile: the API's longer
    // page, read after, holds every listed one.)
    const expected = (await must('GET', '/events?limit=250', keyA)).data.map((e) => e.id);
    assert(listed.length > 0 && listed.every((id, i) => i === 0 || listed[i - 1] > id),
      `the list is not newest first: ${listed}`);
    assert(listed.every((id) => expected.includes(id)), `the list shows events the API does not: ${listed}`);
    await page.getByLabel('Only with a failed delivery').check();
    await page.locator('.event-list').getByRole('button', { name: 'Apply' }).click();
    await page.locator('.event-list tr.event-row').first().waitFor();
    const failedListed = await page.locator('.event-list tr.event-row').allInnerTexts();
    assert(failedListed.every((row) => row.includes('job.failed')), `the failed filter listed ${failedListed}`);
    await shot('events');
    ok(`events: ${listed.length} listed newest first; ${failedListed.length} with a failed delivery (job.failed)`);
    await page.getByLabel('Event id').fill(ev1.id);
    await page.getByRole('button', { name: 'Show' }).click();
    await page.locator('h1', { hasText: ev1.id }).waitFor();
    await page.locator('pre.body', { hasText: `u_${stamp}` }).waitFor();
    await page.locator('tr.status-delivered').first().waitFor();
    ok(`found event ${ev1.id}: its data and its delivery`);
    checkProblems('tenant console');

    // ----- a phone-sized screen: nothing overflows sideways -----
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${base}/console#/endpoints`);
    await page.locator('table.cards a', { hasText: good.url }).waitFor();
    await statsShown(page);
    await noOverflow('the endpoint list');
    await shot('phone-endpoints');
    await page.goto(deliveryUrl);
    await page.locator('li.attempt').first().waitFor();
    await noOverflow('the delivery page');
    await shot('phone-delivery');
    await page.setViewportSize({ width: 1280, height: 1000 });
    ok('at 390 px the endpoint list and the delivery page fit the width');

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API key or admin key').waitFor();
    assert(await page.evaluate(() => sessionStorage.getItem('hookfleet.credential')) === null, 'Sign out left the key in sessionStorage');
    ok('Sign out forgets the key');

    await portalChecks();
    async function portalChecks() {
    // ----- portal: a link embedded on another origin -----
    const link = await must('POST', '/portal-links', keyA, {
      expires_in: 600,
      read_only: false,
      allowed_origins: [embed.origin],
      branding: { name: `Acme Webhooks ${stamp}`, accent_color: '#aa3366' },
    }, 201);
    const token = link.url.split('#')[1];
    assert(token && link.url.includes('/console/portal/'), `portal link url looks wrong: ${link.url}`);
    // The session the portal got for the link's token (read off the wire:
    // a cross-site iframe may be denied sessionStorage).
    const openPortal = async (url) => {
      const [res] = await Promise.all([
        page.waitForResponse((r) => r.url() === `${origin}/api/v1/portal-sessions` && r.request().method() === 'POST'),
        page.goto(`${embed.origin}/embed?src=${encodeURIComponent(url)}`),
      ]);
      return res.status() === 201 ? (await res.json()).session : null;
    };
    // Open it on BASE_URL (which may be a proxy in front of the API).
    const linkUrl = (l) => `${origin}${l.path || new URL(l.url).pathname + new URL(l.url).hash}`;
    const portalSession = await openPortal(linkUrl(link));
    const frame = page.frameLocator('#portal');
    await frame.locator('.brand-name', { hasText: `Acme Webhooks ${stamp}` }).waitFor();
    await frame.locator('table.cards a', { hasText: good.url }).waitFor();
    await frame.getByRole('link', { name: 'New endpoint' }).waitFor();
    assert((await frame.getByRole('button', { name: 'Sign out' }).count()) === 0, 'the portal offers to sign out');
    assert((await frame.getByRole('link', { name: 'Operator' }).count()) === 0, 'the portal shows the operator view');
    const portalFrame = page.frames().find((f) => f.url().includes('/console/portal/'));
    assert(portalFrame && !portalFrame.url().includes(token), 'the portal token stays in the frame\'s URL');
    const accent = await portalFrame.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue('--accent').trim());
    assert(accent.toLowerCase() === '#aa3366', `the accent colour is ${accent}`);
    assert(/^hfs_/.test(portalSession || ''), 'the portal did not get a session for the link');
    await statsShown(frame);
    await shot('portal-iframe');
    // A portal session may never create or delete event types.
    await frame.getByRole('link', { name: 'Event types' }).click();
    await frame.locator('table.cards code', { hasText: 'user.created' }).waitFor();
    assert((await frame.getByRole('button', { name: /Create event type|^Delete/ }).count()) === 0, 'the portal offers to create or delete event types');
    ok(`portal link ${link.id} works inside an iframe on ${embed.origin}: branding, no sign-out, no event-type editing, token removed from the URL`);

    // A reload (no token in the URL any more) keeps the session where the
    // browser lets the frame use sessionStorage (Chromium denies storage
    // to cross-site frames: then the page must say why it stopped).
    const frameStorage = await portalFrame.evaluate(() => {
      try {
        return Boolean(window.sessionStorage);
      } catch {
        return false;
      }
    });
    await portalFrame.evaluate(() => location.reload());
    if (frameStorage) {
      await frame.locator('table.cards code', { hasText: 'user.created' }).waitFor();
      ok('a reload of the portal keeps its session (sessionStorage)');
    } else {
      await frame.getByRole('heading', { name: 'This page was reloaded and its session could not be kept' }).waitFor();
      ok('the browser denies the embedded portal storage: a reload says the session could not be kept');
    }

    // Tenant A's portal session cannot see tenant B's things.
    for (const [what, p] of [['endpoint', `/webhooks/${epB.id}`], ['delivery', `/deliveries/${dlvB}`]]) {
      const res = await call('GET', p, portalSession);
      assert(res.status === 404, `tenant A's portal session got ${res.status} for tenant B's ${what}, not 404`);
    }
    ok('tenant A\'s portal session gets 404 for tenant B\'s endpoint and delivery');

    // A read-only link limited to one endpoint.
    const roLink = await must('POST', '/portal-links', keyA, {
      expires_in: 600, read_only: true, endpoint_ids: [goodId], allowed_origins: [embed.origin],
    }, 201);
    const roSession = await openPortal(linkUrl(roLink));
    await frame.locator('.banner', { hasText: 'Read-only' }).waitFor();
    await frame.locator('table.cards a', { hasText: good.url }).waitFor();
    assert((await frame.locator('table.cards a', { hasText: bad.url }).count()) === 0, 'the limited portal lists another endpoint');
    assert((await frame.getByRole('link', { name: 'New endpoint' }).count()) === 0, 'read-only portal shows "New endpoint"');
    await frame.locator('table.cards a', { hasText: good.url }).click();
    await frame.locator('.endpoint-head h1').waitFor();
    await frame.locator('section.delivery-log tr').nth(1).waitFor();
    const writeControls = frame.locator('button, a.button').filter({ hasText: /^(Edit|Pause|Resume|Delete|Retry|Rotate secret|Send test event|Start replay|New endpoint|Create.*)$/ });
    assert((await writeControls.count()) === 0, 'the read-only portal shows write controls on the endpoint page');
    await shot('portal-readonly');
    await frame.locator('section.delivery-log tr a').first().click();
    await frame.locator('li.attempt').first().waitFor();
    assert((await writeControls.count()) === 0, 'the read-only portal shows a Retry button');
    const write = await call('PATCH', `/webhooks/${goodId}`, roSession, { paused: true });
    assert(write.status === 403, `a write with the read-only portal session answered ${write.status}, not 403`);
    ok('a read-only portal link shows a banner and no write controls; its session gets 403 on a write');

    // A revoked link shows the refusal page.
    const gone = await must('POST', '/portal-links', keyA, { expires_in: 600, allowed_origins: [embed.origin] }, 201);
    await must('DELETE', `/portal-links/${gone.id}`, keyA, undefined, 204);
    provoked.push({ method: 'POST', pathPart: '/api/v1/portal-sessions', status: 401 });
    // Opened on its own: the API no longer lets a dead link be framed
    // (frame-ancestors 'none'), so an embedded one shows the browser's
    // own refusal instead.
    await page.goto(linkUrl(gone));
    await page.getByRole('heading', { name: 'This link has expired or was revoked' }).waitFor();
    ok('a revoked portal link shows "This link has expired or was revoked"');

    // A portal opened on its own (not embedded) keeps its session in
    // sessionStorage across a reload; /console then asks for a key again.
    const direct = await must('POST', '/portal-links', keyA, { expires_in: 600 }, 201);
    await page.goto(linkUrl(direct));
    await page.locator('table.cards a', { hasText: good.url }).waitFor();
    assert(!page.url().includes(direct.url.split('#')[1]), 'the portal token stays in the address bar');
    await statsShown(page);
    await page.reload();
    await page.locator('table.cards a', { hasText: good.url }).waitFor();
    await statsShown(page);
    assert(/^hfs_/.test(await page.evaluate(() => sessionStorage.getItem('hookfleet.credential'))), 'no portal session in sessionStorage');
    ok('a portal opened on its own survives a reload (session in sessionStorage, token gone from the URL)');

    // An expired link (made at the start with the shortest life, 60 s).
    await until('the 60 s portal link to expire', async () => Date.now() > Date.parse(shortLink.expires_at) + 1000, 120000);
    await page.goto(linkUrl(shortLink));
    await page.getByRole('heading', { name: 'This link has expired or was revoked' }).waitFor();
    await shot('portal-expired');
    ok('an expired portal link shows "This link has expired or was revoked"');
    checkProblems('portal');
    }

    // ----- operator view with the admin key -----
    await page.goto(`${base}/console`);
    await page.getByLabel('API key or admin key').fill(adminKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Operator' }).waitFor();
    await page.locator('#workers-title + div table.cards tbody tr').first().waitFor();
    await page.locator('#queues-title + div table.cards tbody tr').first().waitFor();
    const newTenant = `Console check C ${stamp}`;
    await page.getByLabel('New tenant name').fill(newTenant);
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.locator('p.ok', { hasText: newTenant }).waitFor();
    // Page through the tenants to ours.
    const tenantsPanel = page.locator('section', { has: page.locator('#tenants-title') });
    await until(`tenant ${tenantA.name} in the tenant list`, async () => {
      await tenantsPanel.locator('.list .loading').waitFor({ state: 'detached' });
      if (await tenantsPanel.getByRole('link', { name: tenantA.name }).count()) return true;
      await tenantsPanel.getByRole('button', { name: 'Next →' }).click({ timeout: 2000 });
      return false;
    }, 60000);
    await shot('operator');
    await noOverflow('the operator view');
    await tenantsPanel.getByRole('link', { name: tenantA.name }).click();
    await page.getByRole('heading', { name: tenantA.name }).waitFor();
    await page.getByLabel('Key name').fill(`scoped-${stamp}`);
    await page.getByLabel('publish').uncheck();
    await page.getByRole('button', { name: 'Create key' }).click();
    await page.locator('.secret-box .secret-value').waitFor();
    const scopedKey = (await page.locator('.secret-box .secret-value').innerText()).trim();
    assert(/^hf_/.test(scopedKey), 'the new key shown is not an hf_ key');
    const scopedMe = await must('GET', '/me', scopedKey);
    assert(JSON.stringify([...scopedMe.scopes].sort()) === '["manage","read"]', `the new key's scopes are ${JSON.stringify(scopedMe.scopes)}`);
    const keyRow = page.locator('tr.key-row', { hasText: `scoped-${stamp}` });
    await keyRow.waitFor();
    await shot('operator-tenant');
    await keyRow.getByRole('button', { name: 'Revoke' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Revoke' }).click();
    await keyRow.waitFor({ state: 'detached' });
    const revoked = await call('GET', '/webhooks', scopedKey);
    assert(revoked.status === 401, `the revoked key still answers ${revoked.status}`);
    ok('operator view: lists the tenant, workers and queues; created a tenant; created a manage+read key (shown once) and revoked it');
    checkProblems('operator view');

    // ----- renaming and deleting a tenant -----
    const tenantsNow = await must('GET', '/tenants?limit=250', adminKey);
    const tenantC = tenantsNow.data.find((t) => t.name === newTenant);
    assert(tenantC, `${newTenant} is not listed`);
    const keyC = await must('POST', `/tenants/${tenantC.id}/api-keys`, adminKey, {}, 201);
    await page.goto(`${base}/console#/operator/tenants/${tenantC.id}`);
    await page.getByRole('heading', { name: newTenant }).waitFor();
    const renamed = `${newTenant} renamed`;
    await page.getByLabel('Tenant name').fill(renamed);
    await page.getByRole('button', { name: 'Rename' }).click();
    await page.getByRole('heading', { name: renamed }).waitFor();
    assert((await must('GET', `/tenants/${tenantC.id}`, adminKey)).name === renamed, 'the rename was not stored');
    await page.getByLabel('Retention').fill('7d');
    await page.getByLabel('Most retained events').fill('1000');
    await page.getByRole('button', { name: 'Save limits' }).click();
    await page.getByText('of at most 1000').waitFor();
    const limited = await must('GET', `/tenants/${tenantC.id}`, adminKey);
    assert(limited.retention === '7d' && limited.max_retained_events === 1000, `the limits were not stored: ${JSON.stringify(limited)}`);
    await shot('operator-tenant-limits');
    await page.getByRole('button', { name: 'Delete tenant' }).click();
    await page.locator('dialog[open]').getByRole('button', { name: 'Delete tenant' }).click();
    await page.getByText('its keys and portal links no longer work').waitFor();
    await shot('operator-tenant-deleted');
    const afterDelete = await call('GET', '/webhooks', keyC.key);
    assert(afterDelete.status === 401, `the deleted tenant's key still answers ${afterDelete.status}`);
    assert((await call('GET', `/tenants/${tenantC.id}`, adminKey)).status === 404, 'the deleted tenant still answers');
    await until('the deletion to end', async () => !(await must('GET', '/admin/tenant-deletions', adminKey)).some((d) => d.tenant_id === tenantC.id), 60000);
    await page.goto(`${base}/console#/operator`);
    await page.locator('#deletions-title').waitFor();
    await page.locator('section', { has: page.locator('#deletions-title') }).getByText('None.').waitFor();
    ok('operator view: renamed a tenant; gave it a retention and a cap; deleted it (its key stopped at once, it answered 404, its deletion ended and left the list)');
    checkProblems('tenant rename and delete');

    console.log(`console-check: PASSED (${passed} checks)`);
  } catch (err) {
    const page = context.pages()[0];
    if (page) await page.screenshot({ path: path.join(outDir, 'console-failure.png'), fullPage: true }).catch(() => {});
    throw err;
  } finally {
    await browser.close();
    for (const s of [good.server, bad.server, embed.server]) s.close();
  }
}

main().catch((err) => {
  console.error(`FAILED: ${err instanceof CheckFailed ? err.message : err && err.stack ? err.stack : err}`);
  for (const problem of problems) console.error(`  also seen in the browser: ${problem}`);
  console.error(`screenshots: ${outDir}`);
  process.exit(1);
});
