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
// A full-page screenshot under BUILD/e2e-artifacts, numbered in test order.
export async function screenshot(page, name) {
  shot += 1;
  const file = path.join(artifacts, `${String(shot).padStart(2, '0')}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
