// Shared helpers of the portal's end-to-end tests (run by scripts/e2e.sh).
import { execFileSync } from 'node:child_process';
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
// A full-page screenshot under BUILD/e2e-artifacts, numbered in test order.
export async function screenshot(page, name) {
  shot += 1;
  const file = path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
