// Debian's headless Chromium, as every browser check and measurement here
// launches it (scripts/swagger-ui-check.js, scripts/console-check.js,
// scripts/console-bench.js): a fresh profile in a temp dir, the flags a
// container needs, and nothing that phones home.
//
//   const { launch } = require('./chromium');
//   const browser = await launch({ width: 1280, height: 1000 });
//   ... browser.context ...
//   await browser.close();  // closes it and removes the profile
//
// Needs playwright-core (NODE_PATH) and /usr/bin/chromium (or
// HOOKFLEET_CHROMIUM).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { chromium } = require('playwright-core');

async function launch(viewport) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hookfleet-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.HOOKFLEET_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
    viewport,
  });
  return {
    context,
    close: async () => {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

module.exports = { launch };
