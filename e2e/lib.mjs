// Shared helpers of the portal's end-to-end tests (run by scripts/e2e.sh).
import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium } from 'playwright-core';

export const baseUrl = process.env.MEDVAULT_URL;
const artifacts = process.env.MEDVAULT_ARTIFACTS;

// The demo accounts: role, username, password, TOTP secret ("-" for none), account id.
export function demoAccounts() {
  const accounts = {};
  const patients = [];
  for (const line of readFileSync(process.env.MEDVAULT_CREDENTIALS, 'utf8').split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const cols = line.split('\t');
    if (cols[0] === 'patient-record') {
      patients.push(cols[1]);
    } else {
      accounts[cols[1]] = { role: cols[0], username: cols[1], password: cols[2],
                            totp: cols[3] === '-' ? '' : cols[3], id: cols[4] };
    }
  }
  return { accounts, patients };
}

// The current TOTP code of a secret, from the medvault binary itself.
export function totpCode(secret) {
  return execFileSync(process.env.MEDVAULT_BIN, ['totp-code', secret], { encoding: 'utf8' }).trim();
}

// RFC 6238 as the server checks it (SHA-1, 6 digits, 30 s steps).
function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let acc = 0;
  const out = [];
  for (const ch of text.toUpperCase().replace(/=+$/, '')) {
    const v = alphabet.indexOf(ch);
    if (v < 0) throw new Error(`not base32: ${ch}`);
    acc = (acc << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push((acc >>> bits) & 0xff);
    }
  }
  return Buffer.from(out);
}

function codeAtStep(secret, step) {
  const msg = Buffer.alloc(8);
  msg.writeBigUInt64BE(BigInt(step));
  const mac = createHmac('sha1', base32Decode(secret)).update(msg).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  return String((mac.readUInt32BE(offset) & 0x7fffffff) % 1000000).padStart(6, '0');
}

const STEP_MS = 30 * 1000;
const usedSteps = new Map();  // secret -> the last time step signed in with

// A one-time code the server has not seen yet. The server refuses a code of
// a step already used (replay) and accepts one step either side of now, so a
// second sign-in of the same account within 30 s uses the next step's code;
// only a third one waits for the clock. The first code is checked against
// the binary's, so a change of the server's TOTP parameters shows here.
export async function freshTotpCode(secret) {
  let step = Math.floor(Date.now() / STEP_MS);
  const last = usedSteps.get(secret);
  if (last === undefined) {
    const fromBinary = totpCode(secret);
    const after = Math.floor(Date.now() / STEP_MS);
    if (![step, after].some((s) => codeAtStep(secret, s) === fromBinary)) {
      throw new Error('the TOTP computed here differs from `medvault totp-code`');
    }
    step = after;
  } else if (last >= step) {
    if (last >= step + 1) {
      await new Promise((r) => { setTimeout(r, (last * STEP_MS) - Date.now() + 50); });
    }
    step = last + 1;
  }
  usedSteps.set(secret, step);
  return codeAtStep(secret, step);
}

// Headless Debian Chromium with the flags this machine needs (no background
// networking: the network is closed).
export async function launch() {
  return chromium.launch({
    executablePath: process.env.MEDVAULT_CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

let shot = 0;
// Each test file runs in its own process: its screenshots carry its name.
const suite = path.basename(process.argv[1] || 'e2e').replace(/\.test\.mjs$/, '');
// A full-page screenshot under BUILD/e2e-artifacts, numbered in test order.
export async function screenshot(page, name) {
  shot += 1;
  const file = path.join(artifacts, `${suite}-${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

// --- browser tabs and signing in (shared by the test files) ---------------------

// A browser tab that records what would be a problem: script errors, CSP
// violations and server errors (>= 500). A 404 or 403 the page asked for (a
// series with no reading yet, a refused section) is an answer shown in words,
// not a problem; `allowed` adds statuses a test expects (a 401 at sign-in).
export async function openPage(browser, viewport, allowed = []) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  const requests = [];
  const answered = new RegExp(`^Failed to load resource: the server responded with a status of (${[403, 404, ...allowed].join('|')})\\b`);
  page.on('console', (m) => {
    if (m.type() === 'error' && !answered.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e}`));
  page.on('response', (r) => {
    if (r.status() >= 500) problems.push(`${r.status()} ${r.request().method()} ${r.url()}`);
  });
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(baseUrl + '/');
  return { context, page, problems, requests };
}

export async function fillSignIn(page, account) {
  await page.getByTestId('signin-username').fill(account.username);
  await page.getByTestId('signin-password').fill(account.password);
  if (account.totp) await page.getByTestId('signin-totp').fill(await freshTotpCode(account.totp));
  await page.getByTestId('signin-submit').click();
}

export async function signIn(browser, account, { viewport = { width: 1280, height: 900 }, allowed = [] } = {}) {
  const tab = await openPage(browser, viewport, allowed);
  await fillSignIn(tab.page, account);
  await tab.page.getByTestId('signout').waitFor();
  return tab;
}

// --- the API directly (setting up data a test then reads in the portal) ----------

// An access token for `account`. Another test file (another process) may
// have used this step's one-time code: a refused code is retried with the next.
export async function apiToken(account) {
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const body = { username: account.username, password: account.password };
    if (account.totp) body.totp_code = await freshTotpCode(account.totp);
    const res = await fetch(`${baseUrl}/api/v1/auth/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
    });
    if (res.ok) return (await res.json()).access_token;
    const text = await res.text();
    if (!(res.status === 401 && /one-time code/.test(text))) throw new Error(`sign-in of ${account.username}: ${res.status} ${text}`);
  }
  throw new Error(`sign-in of ${account.username}: one-time code refused three times`);
}

// fetch() of the API with a bearer token; `body` a string or Buffer sent as `type`.
export function apiFetch(token, method, path, { body, type } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (type) headers['Content-Type'] = type;
  return fetch(baseUrl + path, { method, headers, body });
}

// --- accessibility (axe-core) -----------------------------------------------------

const axeSource = readFileSync(new URL('./node_modules/axe-core/axe.min.js', import.meta.url), 'utf8');

// Runs axe-core on the page as it is and returns its serious and critical
// violations, one line each. axe is evaluated through the DevTools protocol
// (page.evaluate): a <script> tag (page.addScriptTag) would be refused by
// the portal's Content-Security-Policy, and turning the policy off would
// hide the CSP violations the tests look for.
export async function axeViolations(page) {
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) await page.evaluate(axeSource);
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ['violations'] }));
  return result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .flatMap((v) => v.nodes.map((n) => `${v.impact} ${v.id}: ${v.help} — ${n.target.join(' ')} — ${n.failureSummary.replace(/\s+/g, ' ')}`));
}

// Fails with every serious or critical violation of the page, printed.
export async function assertAccessible(page, label) {
  const found = await axeViolations(page);
  if (found.length) console.log(`axe, ${label}:\n  ${found.join('\n  ')}`);
  if (found.length) throw new Error(`axe found ${found.length} serious or critical problems on ${label} (printed above)`);
}
