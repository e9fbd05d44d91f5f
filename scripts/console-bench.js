// Measures the web console in headless Chromium and prints one JSON object:
//
//   signin_page:   a cold load of /console (empty cache): bytes over the
//                  network (CDP encodedDataLength: headers + bodies as
//                  transferred), requests, and the time from navigation
//                  to the sign-in field being usable (plus the browser's
//                  own navigation timings);
//   endpoint_page: signing in with the form, then opening the endpoint's
//                  page (#/endpoints/ID) as a click would: bytes and time
//                  until the first page of its delivery log is rendered;
//   endpoint_cold: a cold load of /console#/endpoints/ID in a new browser
//                  context already holding the key: bytes, time to
//                  interactive and time to the delivery log rendered;
//   delivery_log:  opening the endpoint page again RUNS more times (warm):
//                  time from the hash change to the first page of the log
//                  rendered, each run and the median.
//
//   node scripts/console-bench.js BASE_URL TENANT_KEY ENDPOINT_ID [RUNS]
//
// Needs playwright-core (NODE_PATH) and Debian's chromium at
// /usr/bin/chromium (or HOOKFLEET_CHROMIUM).
'use strict';

const { launch: launchChromium } = require('./chromium');

const [base, tenantKey, endpointId, runsArg] = process.argv.slice(2);
if (!base || !tenantKey || !endpointId) {
  console.error('usage: console-bench.js BASE_URL TENANT_KEY ENDPOINT_ID [RUNS]');
  process.exit(2);
}
const RUNS = Number(runsArg || 5);
const LOG_ROW = 'section.delivery-log table.cards tbody tr';

// Bytes and requests seen on the network, through the DevTools protocol.
async function networkMeter(page) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.setCacheDisabled', { cacheDisabled: false });
  let bytes = 0;
  let requests = 0;
  const urls = new Map();
  cdp.on('Network.requestWillBeSent', (e) => urls.set(e.requestId, e.request.url));
  cdp.on('Network.loadingFinished', (e) => {
    bytes += e.encodedDataLength;
    requests += 1;
  });
  return {
    reset() {
      bytes = 0;
      requests = 0;
    },
    read: () => ({ bytes, requests }),
    // Wait until the network has been quiet for `ms` (late stats calls).
    async settle(ms = 500) {
      let last = -1;
      while (last !== bytes + requests) {
        last = bytes + requests;
        await new Promise((r) => setTimeout(r, ms));
      }
    },
  };
}

const launch = () => launchChromium({ width: 1280, height: 1000 });

const navTiming = (page) => page.evaluate(() => {
  const [n] = performance.getEntriesByType('navigation');
  return n ? {
    dom_interactive_ms: Math.round(n.domInteractive),
    dom_content_loaded_ms: Math.round(n.domContentLoadedEventEnd),
    load_event_ms: Math.round(n.loadEventEnd),
  } : {};
});

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const result = { base, endpoint_id: endpointId };

  // 1. Cold sign-in page, then sign in and open the endpoint's page.
  let browser = await launch();
  try {
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    page.setDefaultTimeout(60000);
    const meter = await networkMeter(page);
    const field = page.getByLabel('API key or admin key');
    let t0 = Date.now();
    await page.goto(`${base}/console`);
    await field.waitFor();
    const interactive = Date.now() - t0;
    await meter.settle();
    result.signin_page = { ...meter.read(), interactive_ms: interactive, ...(await navTiming(page)) };

    meter.reset();
    await field.fill(tenantKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Endpoints' }).waitFor();
    await meter.settle();
    const signedIn = meter.read();
    meter.reset();
    t0 = Date.now();
    await page.evaluate((id) => { location.hash = `#/endpoints/${id}`; }, endpointId);
    await page.locator('.endpoint-head h1').waitFor();
    const head = Date.now() - t0;
    await page.locator(LOG_ROW).first().waitFor();
    const log = Date.now() - t0;
    await meter.settle();
    result.endpoint_page = {
      sign_in: signedIn,
      ...meter.read(),
      endpoint_shown_ms: head,
      delivery_log_rendered_ms: log,
      log_rows: await page.locator(LOG_ROW).count(),
    };

    // 3. Warm: leave and come back RUNS times.
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      await page.evaluate(() => { location.hash = '#/event-types'; });
      await page.getByRole('heading', { name: 'Event types' }).waitFor();
      await meter.settle(200);
      t0 = Date.now();
      await page.evaluate((id) => { location.hash = `#/endpoints/${id}`; }, endpointId);
      await page.locator(LOG_ROW).first().waitFor();
      runs.push(Date.now() - t0);
    }
    result.delivery_log = { runs_ms: runs, median_ms: median(runs) };
  } finally {
    await browser.close();
  }

  // 2. Cold load straight onto the endpoint page, key already in the tab.
  browser = await launch();
  try {
    await browser.context.addInitScript((key) => {
      if (location.pathname.startsWith('/console')) sessionStorage.setItem('hookfleet.credential', key);
    }, tenantKey);
    const page = browser.context.pages()[0] || (await browser.context.newPage());
    page.setDefaultTimeout(60000);
    const meter = await networkMeter(page);
    const t0 = Date.now();
    await page.goto(`${base}/console#/endpoints/${endpointId}`);
    await page.locator('.endpoint-head h1').waitFor();
    const head = Date.now() - t0;
    await page.locator(LOG_ROW).first().waitFor();
    const log = Date.now() - t0;
    await meter.settle();
    result.endpoint_cold = {
      ...meter.read(),
      endpoint_shown_ms: head,
      delivery_log_rendered_ms: log,
      ...(await navTiming(page)),
    };
  } finally {
    await browser.close();
  }

  console.log(JSON.stringify(result));
}

main().catch((err) => {
  console.error(`console-bench: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
