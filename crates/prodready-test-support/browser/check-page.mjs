// Loads one page in Debian's headless Chromium (driven by playwright-core) and reports what a person opening
// it would have run into. `browser::check_page` in prodready-test-support runs this; by hand:
//
//   NODE_PATH=~/.cache/prodready/peers/node/node_modules node check-page.mjs URL SCREENSHOT.png
//
// Prints one JSON object on stdout:
//   {"title", "status", "console_errors", "external_requests", "failed_requests", "text"}
// - console_errors: console messages of type error, and uncaught exceptions ("uncaught: ..."); not the
//   "Failed to load resource" Chromium logs for a request this script blocked
// - external_requests: "METHOD URL" of each request (or "WEBSOCKET URL") to another origin than the page's;
//   HTTP ones are blocked, so a check does not leave the machine or wait on the network
// - failed_requests: "METHOD URL: reason" of each other request that failed or answered 400 or more
// - text: document.body.innerText once the page is loaded and the network idle
// and writes a full-page PNG screenshot. Exits non-zero with a message on stderr when the page cannot be
// loaded, or after 30 s overall.

import { createRequire } from 'node:module';

// ES module imports ignore NODE_PATH; require honours it.
const require = createRequire(import.meta.url);

const CHROMIUM = '/usr/bin/chromium';
const OVERALL_MS = 30_000;
const STEP_MS = 20_000;

// What Chromium logs for a request aborted with 'blockedbyclient' (only interception produces it).
const BLOCKED = 'Failed to load resource: net::ERR_BLOCKED_BY_CLIENT.Inspector';

let browser;

async function fail(message) {
  // Playwright's call logs carry terminal colours even into a pipe.
  process.stderr.write(`check-page: ${message.replace(/\x1b\[[0-9;]*m/g, '')}\n`);
  process.exitCode = 1;
  // Playwright also kills the browser when this process exits; closing first is just tidier.
  await Promise.race([browser?.close(), new Promise((r) => setTimeout(r, 2_000))]).catch(() => {});
  process.exit(1);
}

function sameOrigin(target, origin) {
  // A WebSocket back to the page's server is same-origin for this purpose.
  const http = target.replace(/^ws(s?):/, 'http$1:');
  try {
    return new URL(http).origin === origin;
  } catch {
    return false;
  }
}

// data:, blob: and about: URLs are the page's own content, not requests to anywhere.
function isLocalScheme(target) {
  return /^(data|blob|about):/.test(target);
}

async function check(url, screenshot) {
  const origin = new URL(url).origin;
  const consoleErrors = [];
  const externalRequests = [];
  const failed = new Map();

  let playwright;
  try {
    playwright = require('playwright-core');
  } catch (e) {
    return fail(`cannot load playwright-core (set NODE_PATH to the node_modules holding it): ${e.message}`);
  }
  browser = await playwright.chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // Root (as in CI containers) cannot use Chromium's sandbox.
    args: ['--no-sandbox'],
    timeout: STEP_MS,
  });
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();

  page.on('console', (msg) => {
    if (msg.type() === 'error' && msg.text() !== BLOCKED) consoleErrors.push(msg.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
  page.on('websocket', (ws) => {
    if (!sameOrigin(ws.url(), origin)) externalRequests.push(`WEBSOCKET ${ws.url()}`);
  });
  await context.route('**/*', (route) => {
    const request = route.request();
    if (isLocalScheme(request.url()) || sameOrigin(request.url(), origin)) return route.continue();
    externalRequests.push(`${request.method()} ${request.url()}`);
    return route.abort('blockedbyclient');
  });
  // One entry per request: Chromium also aborts a stylesheet or script that answered 404, say.
  page.on('response', (response) => {
    const request = response.request();
    if (response.status() >= 400) {
      failed.set(request, `${request.method()} ${request.url()}: HTTP ${response.status()}`);
    }
  });
  page.on('requestfailed', (request) => {
    // Requests to other origins were blocked above and are reported as external.
    if (!sameOrigin(request.url(), origin) || failed.has(request)) return;
    failed.set(request, `${request.method()} ${request.url()}: ${request.failure()?.errorText ?? 'failed'}`);
  });

  const response = await page.goto(url, { waitUntil: 'load', timeout: STEP_MS });
  await page.waitForLoadState('networkidle', { timeout: STEP_MS });
  await page.screenshot({ path: screenshot, fullPage: true, type: 'png', timeout: STEP_MS });
  const title = await page.title();
  const text = await page.evaluate(() => document.body?.innerText ?? '');
  await browser.close();

  return {
    title,
    status: response?.status() ?? null,
    console_errors: consoleErrors,
    external_requests: externalRequests,
    failed_requests: [...failed.values()],
    text,
  };
}

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot || process.argv.length !== 4) {
  await fail('usage: node check-page.mjs URL SCREENSHOT.png');
}
const timer = setTimeout(() => fail(`${url} was not checked within ${OVERALL_MS / 1000} s`), OVERALL_MS);
try {
  const report = await check(url, screenshot);
  clearTimeout(timer);
  process.stdout.write(`${JSON.stringify(report)}\n`);
} catch (e) {
  await fail(`${url}: ${e.message}`);
}
