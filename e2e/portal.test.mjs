// The portal end to end, as the issue tells it: a patient records a blood
// pressure and shares cardiology with a doctor; the doctor sees it and its
// chart and sends an order; the patient reads the order and sees the
// doctor's access in the history; a second doctor is refused, uses
// break-glass, and the patient sees it flagged. A screenshot of each page
// goes to BUILD/e2e-artifacts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { baseUrl, demoAccounts, launch, screenshot, totpCode } from './lib.mjs';

const { accounts, patients } = demoAccounts();
const ada = accounts['ada'];
const heart = accounts['dr.heart'];
const sugar = accounts['dr.sugar'];
const patientId = patients[0];  // Ada's record, treated by Dr. Heart only
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

async function signIn(account, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  const problems = [];
  // Script errors and CSP violations count; a 404 the page asked for (a
  // series with no reading yet) is an answer, not a problem.
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(String(e)));
  await page.goto(baseUrl + '/');
  await page.getByTestId('signin-username').fill(account.username);
  await page.getByTestId('signin-password').fill(account.password);
  if (account.totp) await page.getByTestId('signin-totp').fill(totpCode(account.totp));
  await page.getByTestId('signin-submit').click();
  await page.getByTestId('signout').waitFor();
  return { context, page, problems };
}

function assertNoHealthDataInStorage(page) {
  return page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie])
    .then(([local, session, cookie]) => {
      assert.equal(local, 0, 'nothing in localStorage');
      assert.equal(session, 0, 'nothing in sessionStorage');
      assert.equal(cookie, '', 'no cookies');
    });
}

test('sign-in page, and a wrong password answered in words', async () => {
  const context = await browser.newContext({ viewport: { width: 375, height: 740 } });
  const page = await context.newPage();
  await page.goto(baseUrl + '/');
  await screenshot(page, 'signin-phone');
  await page.getByTestId('signin-username').fill('ada');
  await page.getByTestId('signin-password').fill('not-the-password');
  await page.getByTestId('signin-submit').click();
  const error = page.getByTestId('signin-error');
  await error.waitFor();
  assert.match(await error.innerText(), /\w+/);
  assert.doesNotMatch(await error.innerText(), /UNAUTHENTICATED|\{/, 'no raw API error');
  await context.close();
});

test('the patient records a blood pressure, sees it charted and shares cardiology', async () => {
  const { context, page, problems } = await signIn(ada);
  await screenshot(page, 'patient-home');
  await page.getByTestId('nav-record-data').click();
  await page.getByTestId('add-bp').click();
  await page.getByTestId('bp-systolic').fill('400');  // out of range: refused in words
  await page.getByTestId('bp-diastolic').fill('82');
  await page.getByTestId('bp-submit').click();
  await page.getByTestId('bp-systolic-error').waitFor();
  await page.getByTestId('bp-systolic').fill('137');
  await page.getByTestId('bp-submit').click();
  await page.getByTestId('status').filter({ hasText: /saved/i }).waitFor();
  await page.getByTestId('nav-overview').click();
  const latest = page.getByTestId('latest-bp-value');
  await latest.waitFor();
  assert.match(await latest.innerText(), /137/);
  await page.getByTestId('chart-bp').waitFor();
  assert.equal(await page.getByTestId('chart-bp-band-systolic').count(), 1);
  await screenshot(page, 'patient-bp-chart');

  await page.getByTestId('nav-sharing').click();
  await page.getByTestId('consent-section').selectOption('internal-medicine');
  await page.getByTestId('consent-subpath').fill('cardiology');
  await page.getByTestId('consent-grantee-kind').selectOption('account');
  await page.getByTestId('consent-grantee').fill(heart.id);
  await page.getByTestId('consent-submit').click();
  await page.getByTestId('consent-row').first().waitFor();
  await screenshot(page, 'patient-sharing');
  await assertNoHealthDataInStorage(page);
  assert.ok(!page.url().includes('137'), 'no health data in the URL');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the treating doctor sees the reading and its chart and sends an order', async () => {
  const { context, page, problems } = await signIn(heart);
  await page.getByTestId('nav-patients').click();
  await page.locator(`[data-testid="patient-link"][data-patient-id="${patientId}"]`).click();
  await page.getByTestId('patient-header').waitFor();
  await page.getByTestId('chart-bp').waitFor();
  await screenshot(page, 'doctor-patient');
  assert.match(await page.getByTestId('latest-bp-value').innerText(), /137/, 'the new reading');
  await page.getByTestId('order-text').fill('Please measure your blood pressure every morning for two weeks.');
  await page.getByTestId('order-submit').click();
  await page.getByTestId('order-item').first().waitFor();
  await screenshot(page, 'doctor-order-sent');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the patient reads the order and sees the doctor in the access history', async () => {
  const { context, page } = await signIn(ada);
  await page.getByTestId('nav-messages').click();
  const order = page.getByTestId('order-item').filter({ hasText: 'every morning' });
  await order.first().waitFor();
  await screenshot(page, 'patient-messages');
  await page.getByTestId('nav-history').click();
  const rows = page.getByTestId('history-row');
  await rows.first().waitFor();
  const text = await page.getByTestId('history').innerText();
  assert.match(text, /Heart/i, 'the doctor appears in the history');
  await screenshot(page, 'patient-history');
  await context.close();
});

test('a second doctor is refused, breaks the glass, and the patient sees it flagged', async () => {
  const { context, page } = await signIn(sugar, { width: 375, height: 800 });
  await page.getByTestId('nav-patients').click();
  await page.getByTestId('open-patient-id').fill(patientId);
  await page.getByTestId('open-patient-submit').click();
  const closed = page.getByTestId('record-closed');
  await closed.waitFor();
  assert.match(await closed.innerText(), /relationship|treat/i, 'the refusal says why');
  await screenshot(page, 'second-doctor-refused');
  await page.getByTestId('break-glass-button').click();
  const confirm = page.getByTestId('break-glass-confirm');
  await page.getByTestId('break-glass-reason').fill('short');
  assert.equal(await confirm.isDisabled(), true, 'a short reason is not enough');
  await page.getByTestId('break-glass-reason').fill('Patient unconscious in the emergency room, no relatives reachable');
  assert.match(await page.getByTestId('break-glass-summary').innerText(), /60 minutes|notified|review/i);
  await screenshot(page, 'break-glass-dialog');
  await confirm.click();
  // The record opens under the grant, and says so.
  await page.getByTestId('chart-bp').waitFor();
  assert.match(await page.getByTestId('latest-bp-value').innerText(), /137/);
  assert.match(await page.locator('main').innerText(), /emergency access/i);
  await screenshot(page, 'break-glass-active');
  await context.close();

  const patient = await signIn(ada);
  await patient.page.getByTestId('nav-history').click();
  const flagged = patient.page.locator('[data-testid="history-row"][data-break-glass="true"]');
  await flagged.first().waitFor();
  assert.ok(await flagged.count() > 0);
  await screenshot(patient.page, 'patient-sees-break-glass');
  await patient.context.close();
});
