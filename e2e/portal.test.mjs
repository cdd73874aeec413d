// The portal end to end, as the issue tells it: a patient records a blood
// pressure and shares cardiology with a doctor; the doctor sees it and its
// chart and sends an order; the patient refuses that doctor her physical
// signs, the doctor's chart says so, and the patient lifts the refusal; the
// patient reads the order and sees the doctor's access in the history; a
// second doctor is refused, uses break-glass, and the patient sees it
// flagged; a session revoked by the administrator returns to sign-in. A
// screenshot of each page goes to BUILD/e2e-artifacts.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import {
  assertAccessible, baseUrl, demoAccounts, fillSignIn, freshTotpCode, launch, openPage as openTab, screenshot,
  signIn as signInTab,
} from './lib.mjs';

const { accounts, patients } = demoAccounts();
const ada = accounts['ada'];
const heart = accounts['dr.heart'];
const sugar = accounts['dr.sugar'];
const admin = accounts['admin'];
const patientId = patients[0];  // Ada's record, treated by Dr. Heart only
const adaName = ['Ada', 'Fictive'];  // her demo demographics (src/app/demo.cc)
const heartName = 'Dr. Demo Heart (cardiology)';
const sugarName = 'Dr. Demo Sugar (endocrinology)';
const orderText = 'Please measure your blood pressure every morning for two weeks.';
const emergencyReason = 'Patient unconscious in the emergency room, no relatives reachable';
let browser;

before(async () => { browser = await launch(); });
after(async () => { await browser?.close(); });

// Tabs of this file's browser (lib.mjs records their problems).
const openPage = (viewport, allowed = []) => openTab(browser, viewport, allowed);
const signIn = (account, options) => signInTab(browser, account, options);

function assertNoHealthDataInStorage(page) {
  return page.evaluate(() => [localStorage.length, sessionStorage.length, document.cookie])
    .then(([local, session, cookie]) => {
      assert.equal(local, 0, 'nothing in localStorage');
      assert.equal(session, 0, 'nothing in sessionStorage');
      assert.equal(cookie, '', 'no cookies');
    });
}

// No URL the page asked for (nor the page's own, with its hash route) carries
// a reading or the patient's name. Ids (32 hex digits) and the paging and
// version numbers are not health data and are taken out first, as is the
// origin (its port may hold any digits).
function assertNoHealthDataInUrls(urls, values) {
  assert.ok(urls.some((u) => u.includes('/api/v1/patients/')), 'the record\'s requests were recorded');
  for (const raw of urls) {
    const u = new URL(raw);
    const rest = decodeURIComponent(u.pathname + u.search + u.hash)
      .replace(/[0-9a-f]{32}/g, '<id>')
      .replace(/([?&](?:version|limit|after)=)\d+/g, '$1<n>');
    for (const v of values) {
      assert.doesNotMatch(rest, new RegExp(`(?<![0-9])${v}(?![0-9])`), `no ${v} in ${raw}`);
    }
    for (const name of adaName) {
      assert.doesNotMatch(rest, new RegExp(`(?<![a-z])${name}(?![a-z])`, 'i'), `no ${name} in ${raw}`);
    }
  }
}

// Dr. Heart's view of Ada's record, from the "My patients" list.
async function openAdaAsClinician(page) {
  await page.getByTestId('nav-patients').click();
  await page.locator(`[data-testid="patient-link"][data-patient-id="${patientId}"]`).click();
  await page.getByTestId('patient-header').waitFor();
}

test('sign-in page, and a wrong password answered in words', async () => {
  const { context, page, problems } = await openPage({ width: 375, height: 740 }, [401]);
  await screenshot(page, 'signin-phone');
  await assertAccessible(page, 'signin-phone');
  await page.getByTestId('signin-username').fill('ada');
  await page.getByTestId('signin-password').fill('not-the-password');
  await page.getByTestId('signin-submit').click();
  const error = page.getByTestId('signin-error');
  await error.filter({ hasText: /\S/ }).waitFor();
  assert.equal((await error.innerText()).trim(), 'The username or password is wrong.');
  assert.equal(await page.getByTestId('signout').count(), 0, 'not signed in');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the patient records a blood pressure, sees it charted and shares cardiology', async () => {
  const { context, page, problems, requests } = await signIn(ada);
  await screenshot(page, 'patient-home');
  await assertAccessible(page, 'patient-home');
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
  assert.match(await latest.innerText(), /137\/82/);
  await page.getByTestId('chart-bp').waitFor();
  assert.equal(await page.getByTestId('chart-bp-band-systolic').count(), 1);
  await screenshot(page, 'patient-bp-chart');
  await assertAccessible(page, 'patient-bp-chart');

  await page.getByTestId('nav-sharing').click();
  await page.getByTestId('consent-section').selectOption('internal-medicine');
  await page.getByTestId('consent-subpath').fill('cardiology');
  await page.getByTestId('consent-grantee-kind').selectOption('account');
  await page.getByTestId('consent-grantee').fill(heart.id);
  await page.getByTestId('consent-submit').click();
  // The new permission itself: Dr. Heart (by name or id) on cardiology.
  await page.locator('[data-testid="consent-row"][data-effect="grant"]')
    .filter({ hasText: 'Internal medicine › Cardiology' })
    .filter({ hasText: heart.id.slice(0, 8) })
    .waitFor();
  await screenshot(page, 'patient-sharing');
  await assertAccessible(page, 'patient-sharing');
  await assertNoHealthDataInStorage(page);
  requests.push(page.url());
  assertNoHealthDataInUrls(requests, ['137', '82']);
  assert.deepEqual(problems, []);
  await context.close();
});

test('the treating doctor sees the reading and its chart and sends an order', async () => {
  const { context, page, problems } = await signIn(heart);
  await openAdaAsClinician(page);
  await page.getByTestId('chart-bp').waitFor();
  await screenshot(page, 'doctor-patient');
  await assertAccessible(page, 'doctor-patient');
  assert.match(await page.getByTestId('latest-bp-value').innerText(), /137\/82/, 'the new reading');
  await page.getByTestId('order-text').fill(orderText);
  await page.getByTestId('order-submit').click();
  await page.getByTestId('order-item').filter({ hasText: orderText }).waitFor();
  await screenshot(page, 'doctor-order-sent');
  await assertAccessible(page, 'doctor-order-sent');
  assert.deepEqual(problems, []);
  await context.close();
});

test('the patient refuses the doctor her physical signs, his chart says so, and she lifts the refusal', async () => {
  const patient = await signIn(ada);
  const p = patient.page;
  await p.getByTestId('nav-sharing').click();
  await p.getByTestId('consent-effect').selectOption('deny');
  await p.getByTestId('consent-section').selectOption('physical-signs');
  await p.getByTestId('consent-grantee-kind').selectOption('account');
  await p.getByTestId('consent-grantee').fill(heart.id);
  await p.getByTestId('consent-submit').click();
  const refusal = p.locator('[data-testid="consent-row"][data-effect="deny"]')
    .filter({ hasText: 'Physical signs' })
    .filter({ hasText: heart.id.slice(0, 8) });
  await refusal.waitFor();
  assert.equal(await refusal.count(), 1);
  await screenshot(p, 'patient-refuses-physical-signs');
  await assertAccessible(p, 'patient-refuses-physical-signs');

  const doctor = await signIn(heart);
  const d = doctor.page;
  await openAdaAsClinician(d);
  const bpError = d.getByTestId('chart-bp-error');
  await bpError.waitFor();
  assert.equal((await bpError.innerText()).trim(), 'Cannot show these readings. The patient has refused this access.');
  assert.equal(await d.getByTestId('chart-bp').count(), 0, 'no chart under the refusal');
  assert.equal(await d.getByTestId('latest-bp-value').count(), 0, 'no reading under the refusal');
  // The summary leaves the refused readings out, and says that something is not shown.
  await d.getByTestId('summary-withheld').waitFor();
  await screenshot(d, 'doctor-refused-physical-signs');
  await assertAccessible(d, 'doctor-refused-physical-signs');

  // Ada lifts the refusal (the tests after this one need the chart again).
  await refusal.getByTestId('consent-revoke').click();
  await p.getByTestId('confirm-dialog').waitFor();
  await p.getByTestId('confirm-ok').click();
  await refusal.waitFor({ state: 'detached' });
  await p.getByTestId('status').filter({ hasText: 'Revoked.' }).waitFor();
  assert.equal(await p.locator('[data-testid="consent-row"][data-effect="deny"]').count(), 0, 'no refusal left');
  patient.requests.push(p.url());
  assertNoHealthDataInUrls(patient.requests, ['137', '82']);
  assert.deepEqual(patient.problems, []);
  await patient.context.close();

  // The doctor's view, opened again, has the chart back.
  await openAdaAsClinician(d);
  await d.getByTestId('chart-bp').waitFor();
  assert.match(await d.getByTestId('latest-bp-value').innerText(), /137\/82/);
  assert.equal(await d.getByTestId('chart-bp-error').count(), 0);
  await d.locator('[data-testid=summary][data-loaded=true]').waitFor();
  assert.equal(await d.getByTestId('summary-withheld').count(), 0, 'nothing withheld any more');
  assert.deepEqual(doctor.problems, []);
  await doctor.context.close();
});

test('the patient reads the order and sees the doctor in the access history', async () => {
  const { context, page, problems, requests } = await signIn(ada);
  await page.getByTestId('nav-messages').click();
  await page.getByTestId('order-item').filter({ hasText: orderText }).waitFor();
  await screenshot(page, 'patient-messages');
  await assertAccessible(page, 'patient-messages');
  await page.getByTestId('nav-history').click();
  // Dr. Heart reading her blood pressure, allowed.
  await page.locator('[data-testid="history-row"][data-effect="permit"]')
    .filter({ hasText: heartName })
    .filter({ hasText: 'Physical signs › Blood pressure' })
    .first().waitFor();
  // Sections by their names, never storage paths or document keys.
  const historyText = await page.getByTestId('history').innerText();
  assert.doesNotMatch(historyText, /[a-z]+-[a-z]+\/[a-z]/, 'no storage path in the history');
  assert.doesNotMatch(historyText, /\bd[0-9a-f]{16}\b|[0-9a-f]{32}/, 'no key or id in the history');
  // Accesses that read many versions at once are one row each, with their
  // count: the rows shown account for every access counted.
  const counted = (await page.getByTestId('history-count-text').innerText()).match(/^(\d+) of (\d+) rows shown \((\d+) accesses/);
  assert.ok(counted, 'the history says how many rows and accesses it shows');
  if (counted[1] === counted[2]) {
    const counts = await page.getByTestId('history-row').evaluateAll((rows) => rows.map((r) => Number(r.dataset.count)));
    assert.equal(counts.reduce((a, b) => a + b, 0), Number(counted[3]), 'every access is in one row');
  }
  await screenshot(page, 'patient-history');
  await assertAccessible(page, 'patient-history');
  requests.push(page.url());
  assertNoHealthDataInUrls(requests, ['137', '82']);
  assert.deepEqual(problems, []);
  await context.close();
});

test('a second doctor is refused, breaks the glass, and the patient sees it flagged', async () => {
  const { context, page, problems } = await signIn(sugar, { viewport: { width: 375, height: 800 } });
  await page.getByTestId('nav-patients').click();
  await page.getByTestId('open-patient-id').fill(patientId);
  await page.getByTestId('open-patient-submit').click();
  await page.getByTestId('record-closed').waitFor();
  assert.equal((await page.getByTestId('record-closed-reason').innerText()).trim(),
    'You have no active treating relationship with this patient.', 'the refusal says why');
  assert.equal(await page.getByTestId('latest-bp-value').count(), 0, 'no reading while refused');
  await screenshot(page, 'second-doctor-refused');
  await assertAccessible(page, 'second-doctor-refused');
  await page.getByTestId('break-glass-button').click();
  const confirm = page.getByTestId('break-glass-confirm');
  await page.getByTestId('break-glass-reason').fill('short');
  assert.equal(await confirm.isDisabled(), true, 'a short reason is not enough');
  await page.getByTestId('break-glass-reason').fill(emergencyReason);
  assert.match(await page.getByTestId('break-glass-summary').innerText(), /60 minutes|notified|review/i);
  await screenshot(page, 'break-glass-dialog');
  await assertAccessible(page, 'break-glass-dialog');
  await confirm.click();
  // The record opens under the grant, and says so; the grant opens reads only.
  await page.getByTestId('break-glass-active').waitFor();
  assert.equal(await page.getByTestId('break-glass-earlier').count(), 0);
  await page.getByTestId('status')
    .filter({ hasText: /^Emergency access granted until .*\. The patient has been notified; a privacy officer will review it\.$/ })
    .waitFor();
  await page.getByTestId('chart-bp').waitFor();
  assert.match(await page.getByTestId('latest-bp-value').innerText(), /137\/82/, 'the reading refused before');
  assert.equal(await page.getByTestId('record-closed').count(), 0);
  assert.equal(await page.getByTestId('order-form').count(), 0, 'no writing under break-glass');
  assert.equal(await page.getByTestId('note-form').count(), 0, 'no writing under break-glass');
  await screenshot(page, 'break-glass-active');
  await assertAccessible(page, 'break-glass-active');
  assert.deepEqual(problems, []);
  await context.close();

  const patient = await signIn(ada);
  await patient.page.getByTestId('nav-history').click();
  const flagged = patient.page.locator('[data-testid="history-row"][data-break-glass="true"]');
  await flagged.first().waitFor();
  for (const row of await flagged.all()) {
    assert.match(await row.locator('td').nth(1).innerText(), new RegExp(`^${sugarName.replace(/[().]/g, '\\$&')}`),
      'every emergency access is Dr. Sugar’s');
  }
  await screenshot(patient.page, 'patient-sees-break-glass');
  await assertAccessible(patient.page, 'patient-sees-break-glass');
  await patient.page.getByTestId('nav-overview').click();
  const notification = patient.page.getByTestId('notification-item').filter({ hasText: sugarName });
  await notification.waitFor();
  assert.match(await notification.innerText(), new RegExp(`Reason given: “${emergencyReason}”`));
  await screenshot(patient.page, 'patient-notified-break-glass');
  await assertAccessible(patient.page, 'patient-notified-break-glass');
  patient.requests.push(patient.page.url());
  assertNoHealthDataInUrls(patient.requests, ['137', '82']);
  assert.deepEqual(patient.problems, []);
  await patient.context.close();
});

test('a session revoked by the administrator returns to sign-in, then to the same page', async () => {
  // Her calls after the revocation answer 401 (and so does the refresh).
  const { context, page, problems } = await signIn(ada, { allowed: [401] });
  await page.getByTestId('latest-bp-value').waitFor();

  // The institution's administrator revokes every session of Ada's account.
  const post = (path, body, token) => fetch(baseUrl + path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  const login = await post('/api/v1/auth/login',
    { username: admin.username, password: admin.password, totp_code: await freshTotpCode(admin.totp) });
  assert.equal(login.status, 200, 'the administrator signs in');
  const { access_token: adminToken } = await login.json();
  const revoked = await post(`/api/v1/accounts/${ada.id}/revoke-sessions`, {}, adminToken);
  assert.equal(revoked.status, 200, 'her sessions are revoked');
  await post('/api/v1/auth/logout', {}, adminToken);

  await page.getByTestId('nav-history').click();
  const message = page.getByTestId('signin-message');
  await message.waitFor();
  assert.equal((await message.innerText()).trim(), 'Your session has ended. Please sign in again.');
  assert.equal(await page.getByTestId('signout').count(), 0, 'signed out');
  assert.equal(await page.getByTestId('history').count(), 0, 'no history shown');
  await assertNoHealthDataInStorage(page);
  await screenshot(page, 'session-revoked');
  await assertAccessible(page, 'session-revoked');

  // Signing in again returns to the page she asked for.
  await fillSignIn(page, ada);
  await page.getByTestId('page-title').filter({ hasText: 'Who saw my record' }).waitFor();
  await page.getByTestId('history').waitFor();
  assert.deepEqual(problems, []);
  await context.close();
});

test('an administrator opens a recovery of the patient\'s account; she is told and stops it', async () => {
  // The administrator, in the portal: Ada's account is among those her
  // hospital registered; "Start recovery…" asks for a reason.
  const adminTab = await signIn(admin);
  const { page } = adminTab;
  await page.getByTestId('nav-accounts').click();
  const row = page.locator(`[data-testid=account-row][data-account-id="${ada.id}"]`);
  await row.waitFor();
  await row.getByTestId('account-recovery-start').click();
  const reason = 'Ada called: lost her phone and forgot her password';
  await page.getByTestId('recovery-reason').fill(reason);
  await page.getByTestId('recovery-submit').click();
  await page.getByTestId('status').filter({ hasText: 'Recovery of ada opened' }).waitFor();
  await screenshot(page, 'admin-recovery-opened');
  await assertAccessible(page, 'admin-recovery-opened');
  // Completing it needs a second administrator.
  await row.getByTestId('account-recovery-approve').click();
  await page.getByTestId('confirm-ok').click();
  await page.getByTestId('status').filter({ hasText: 'second administrator' }).waitFor();
  assert.deepEqual(adminTab.problems, []);
  await adminTab.context.close();

  // Ada sees it on her home page, with the reason, and stops it.
  const patient = await signIn(ada);
  const notice = patient.page.getByTestId('recovery-notice');
  await notice.waitFor();
  assert.match(await notice.innerText(), /Lost her phone|lost her phone/);
  await screenshot(patient.page, 'patient-recovery-notice');
  await assertAccessible(patient.page, 'patient-recovery-notice');
  await patient.page.getByTestId('recovery-cancel').click();
  await notice.getByText('Stopped. Your password and second factor stay as they are.').waitFor();
  assert.deepEqual(patient.problems, []);
  await patient.context.close();

  // Nothing is left open: her next sign-in shows no notice.
  const again = await signIn(ada);
  await again.page.getByTestId('latest-bp-value').waitFor();
  assert.equal(await again.page.getByTestId('recovery-notice').count(), 0);
  await again.context.close();
});
