// The harness of the console's browser tests (../console_test.go): it
// launches Debian's Chromium through playwright-core and talks to the Go
// test over a line protocol on stdin and stdout.
//
// Lines the script prints:
//   STEP <json {name, data}>  then waits for the Go side's "GO <json>" (or "ABORT <message>")
//   SHOT <json {path}>        a screenshot was saved
//   LOG <json string>         a note for the test log
//   RESULT <json>             what the scenario saw, for the Go side to check; the script then exits 0
//   FAIL <json {message}>     the scenario failed; the script then exits 1
//
// The environment gives SHOAL_CONSOLE_URL (the console's page), SHOAL_CHROMIUM,
// SHOAL_PW_MODULES (the directory whose node_modules holds playwright-core), SHOAL_SHOTS
// (the screenshot directory), SHOAL_SCENARIO_CONFIG (JSON) and SHOAL_TIMEOUT_MS
// (how long any one wait may take: generous, a bound on a hung page rather
// than a measure of speed).
//
// Waiting is Playwright's: locators wait for what they act on, and
// waitFor/waitForFunction poll a condition. Nothing here sleeps.

import {createRequire} from 'node:module';
import path from 'node:path';
import readline from 'node:readline';

// Resolved from SHOAL_PW_MODULES as if required by a file there (ES modules ignore NODE_PATH).
const require = createRequire(path.join(process.env.SHOAL_PW_MODULES || '.', 'noop.js'));
const {chromium} = require('playwright-core');

export const timeout = Number(process.env.SHOAL_TIMEOUT_MS || 60000);
export const config = JSON.parse(process.env.SHOAL_SCENARIO_CONFIG || '{}');
const consoleURL = process.env.SHOAL_CONSOLE_URL;

function send(kind, value) {
  process.stdout.write(`${kind} ${JSON.stringify(value)}\n`);
}

export function log(text) {
  send('LOG', String(text));
}

// Lines from the Go side, in order.
const lines = [];
const waiters = [];
let stdinClosed = false;
const rl = readline.createInterface({input: process.stdin});
rl.on('line', (line) => {
  const w = waiters.shift();
  if (w) w.resolve(line);
  else lines.push(line);
});
rl.on('close', () => {
  stdinClosed = true;
  for (const w of waiters.splice(0)) w.reject(new Error('the Go side closed stdin'));
});

function nextLine() {
  if (lines.length) return Promise.resolve(lines.shift());
  if (stdinClosed) return Promise.reject(new Error('the Go side closed stdin'));
  return new Promise((resolve, reject) => waiters.push({resolve, reject}));
}

// step tells the Go side that the scenario reached name (with data) and
// waits for its GO, whose JSON it returns.
export async function step(name, data = {}) {
  send('STEP', {name, data});
  const line = await nextLine();
  if (line.startsWith('GO ')) return JSON.parse(line.slice(3));
  if (line.startsWith('ABORT')) throw new Error(`the Go side aborted at ${name}: ${line.slice(6)}`);
  throw new Error(`unexpected line from the Go side at ${name}: ${line}`);
}

export function check(cond, message) {
  if (!cond) throw new Error(message);
}

// tid is the CSS selector of a data-testid.
export function tid(id, extra = '') {
  return `[data-testid="${id}"]${extra}`;
}

// run launches the browser, opens the console and runs fn({page, shot,
// route}); what fn returns is sent as RESULT, with the page problems seen
// (console errors, uncaught exceptions, CSP violations).
export async function run(scenario, fn) {
  let browser;
  let page;
  let shots = 0;
  const problems = {consoleErrors: [], pageErrors: [], cspViolations: []};
  const shot = async (label) => {
    shots++;
    const file = path.join(process.env.SHOAL_SHOTS, `${scenario}-${String(shots).padStart(2, '0')}-${label}.png`);
    // From the top: the sticky header would otherwise sit where the page was scrolled to.
    await page.evaluate(() => window.scrollTo(0, 0));
    await page.screenshot({path: file, fullPage: true});
    send('SHOT', {path: file});
    return file;
  };
  try {
    browser = await chromium.launch({
      executablePath: process.env.SHOAL_CHROMIUM || '/usr/bin/chromium',
      headless: true,
      timeout,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    });
    // A new context is a fresh profile: no cookies, no storage.
    const context = await browser.newContext({viewport: {width: 1440, height: 900}, colorScheme: 'light'});
    page = await context.newPage();
    page.setDefaultTimeout(timeout);
    page.setDefaultNavigationTimeout(timeout);
    page.on('console', (msg) => {
      if (msg.type() !== 'error') return;
      const text = msg.text();
      // A failed API call logs its status as a console error; the
      // scenarios cause some on purpose.
      if (/Failed to load resource: the server responded with a status of (4|5)\d\d/.test(text)) return;
      problems.consoleErrors.push(text);
    });
    page.on('pageerror', (err) => problems.pageErrors.push(String(err && err.stack ? err.stack : err)));
    await page.addInitScript(() => {
      window.__cspViolations = [];
      document.addEventListener('securitypolicyviolation', (e) => {
        window.__cspViolations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sourceFile || ''}:${e.lineNumber || ''} ${e.sample || ''}`);
      });
    });
    const open = async (hash = '') => {
      await page.goto(consoleURL + hash);
    };
    const result = await fn({page, shot, open, browser, context});
    problems.cspViolations = await page.evaluate(() => window.__cspViolations || []).catch(() => ['could not read the violations']);
    send('RESULT', {...(result || {}), problems});
    await browser.close();
    rl.close();
    process.exit(0);
  } catch (err) {
    if (page) {
      try {
        await shot('failure');
      } catch {
        // The failure itself matters more than its picture.
      }
    }
    send('FAIL', {message: String(err && err.message ? err.message : err), stack: String(err && err.stack ? err.stack : ''), problems});
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
}

// Helpers shared by the scenarios.

// streamRow waits for the stream list's row of name and returns it.
export async function streamRow(page, name) {
  const row = page.locator(tid('stream-row', `[data-stream="${name}"]`));
  await row.waitFor();
  return row;
}

// errorText waits for the error slot id to show and returns {code, message}.
export async function errorOf(page, id) {
  const slot = page.locator(tid(id));
  await slot.waitFor({state: 'visible'});
  return {
    code: await page.locator(tid(id + '-code')).textContent(),
    message: await page.locator(tid(id + '-message')).textContent(),
  };
}

// visibleErrors lists the error slots showing anything, by test id.
export async function visibleErrors(page) {
  return page.evaluate(() => [...document.querySelectorAll('.error')]
    .filter((el) => !el.hidden)
    .map((el) => ({id: el.getAttribute('data-testid'), text: el.textContent})));
}

// rows returns what the data viewer's record rows show.
export async function recordRows(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid="record-row"]')].map((tr) => ({
    shardId: tr.getAttribute('data-shard'),
    sequenceNumber: tr.getAttribute('data-seq'),
    subSequenceNumber: Number(tr.getAttribute('data-subseq')),
    aggregated: tr.getAttribute('data-aggregated') === 'true',
    aggregatedBadge: Boolean(tr.querySelector('[data-testid="record-aggregated"]')),
    source: tr.getAttribute('data-source'),
    partitionKey: tr.querySelector('[data-testid="record-key"]').textContent,
    data: tr.querySelector('[data-testid="record-data"]').textContent,
  })));
}
