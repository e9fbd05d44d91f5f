// Swagger UI in a real browser, as a person would use it: open /docs,
// click Authorize, paste a tenant API key, expand GET /api/v1/webhooks,
// "Try it out", "Execute", and see the 200 answer in the page. Also checks
// that the page loads nothing from anywhere but the API itself (Swagger
// UI's assets are served inline by the API).
//
//   node scripts/swagger-ui-check.js BASE_URL API_KEY SCREENSHOT.png
//
// Needs playwright-core (NODE_PATH) and Debian's chromium at
// /usr/bin/chromium (or HOOKFLEET_CHROMIUM).
'use strict';

const fs = require('fs');
const path = require('path');
const { launch } = require('./chromium');

const [base, apiKey, screenshot] = process.argv.slice(2);
if (!base || !apiKey || !screenshot) {
  console.error('usage: swagger-ui-check.js BASE_URL API_KEY SCREENSHOT.png');
  process.exit(2);
}

async function main() {
  const browser = await launch({ width: 1280, height: 1600 });
  const context = browser.context;
  const origin = new URL(base).origin;
  const foreign = [];
  try {
    // Anything not for the API is refused and remembered: the check fails
    // on it below, so the docs page cannot come to depend on a CDN.
    await context.route('**/*', (route) => {
      const url = route.request().url();
      if (url.startsWith(origin) || url.startsWith('data:') || url.startsWith('blob:')) {
        return route.continue();
      }
      foreign.push(url);
      return route.abort();
    });
    const page = context.pages()[0] || (await context.newPage());
    page.setDefaultTimeout(20000);
    const errors = [];
    page.on('pageerror', (err) => errors.push(String(err)));

    await page.goto(`${base}/docs`);
    await page.locator('.swagger-ui .information-container .title').waitFor();

    // Authorize with the tenant key (security scheme `ApiKey`).
    await page.locator('.swagger-ui .auth-wrapper .authorize').click();
    const scheme = page.locator('.auth-container').filter({
      has: page.locator('h4', { hasText: /^ApiKey/ }),
    });
    await scheme.locator('input').fill(apiKey);
    await scheme.locator('button.authorize').click();
    await scheme.locator('button', { hasText: 'Logout' }).waitFor();
    await page.locator('.dialog-ux button.close-modal').click();

    // GET /api/v1/webhooks: Try it out, Execute.
    const operation = page.locator('#operations-Webhooks-list_webhooks');
    await operation.locator('.opblock-summary').first().click();
    await operation.locator('button.try-out__btn').click();
    await operation.locator('button.execute').click();
    const status = operation.locator('.live-responses-table .response .response-col_status');
    await status.first().waitFor();
    const code = (await status.first().innerText()).trim();
    await operation.scrollIntoViewIfNeeded();
    fs.mkdirSync(path.dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: false });
    const body = (
      await operation.locator('.live-responses-table .response-col_description pre').first().innerText()
    ).trim();

    const problems = [];
    if (!code.startsWith('200')) {
      problems.push(`GET /api/v1/webhooks showed response code ${code}, not 200`);
    }
    let listed = null;
    try {
      listed = JSON.parse(body);
    } catch (err) {
      listed = null;
    }
    if (!listed || !Array.isArray(listed.data)) {
      problems.push(`the response body shown is not a page of webhooks ({"data": [...]}): ${body.slice(0, 200)}`);
    }
    if (foreign.length > 0) {
      problems.push(`the page requested outside the API: ${foreign.join(', ')}`);
    }
    if (errors.length > 0) {
      problems.push(`the page raised errors: ${errors.join('; ')}`);
    }
    if (problems.length > 0) {
      for (const problem of problems) console.error(`FAILED: ${problem}`);
      console.error(`screenshot: ${screenshot}`);
      process.exitCode = 1;
      return;
    }
    console.log(`Swagger UI: authorized, executed GET /api/v1/webhooks, page shows ${code}`);
    console.log(`screenshot: ${screenshot}`);
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(`FAILED: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
