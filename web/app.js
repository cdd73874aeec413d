// The portal shell: sign-in and sign-out, the role-aware navigation and the
// hash router (#/...). Routes carry ids only, never names or values.
import {
  api, login, logout, isSignedIn, onSessionLost, errorWords, ApiError,
} from './api.js';
import {
  h, replace, announce, field, validateForm, formError, showFormError, busy, errorBox, loading, fmtDateTime,
} from './dom.js';
import { state, hasRole, resetState, CLINICAL_ROLES } from './state.js';
import * as patient from './views/patient.js';
import * as clinician from './views/clinician.js';
import * as admin from './views/admin.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const userBox = document.getElementById('user');

let pendingRoute = null; // where to go after signing in
let signinMessage = '';

// --- sign-in -----------------------------------------------------------------------------

function signinView(view) {
  const username = field({ label: 'Username', name: 'username', required: true, maxlength: 64, autocomplete: 'username', testid: 'signin-username' });
  const password = field({ label: 'Password', name: 'password', type: 'password', required: true, maxlength: 1024, autocomplete: 'current-password', testid: 'signin-password' });
  const totp = field({
    label: 'One-time code', name: 'totp_code', maxlength: 10, autocomplete: 'one-time-code', inputmode: 'numeric',
    pattern: '[0-9]{6,8}', patternMessage: 'The one-time code is 6 digits from your authenticator app.', testid: 'signin-totp',
    hint: 'Staff (doctors, nurses, administrators) always need the 6-digit code from their authenticator app. Patients without one leave this empty.',
  });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'signin-submit' }, 'Sign in');
  const form = h('form', { class: 'form signin', novalidate: true, 'data-testid': 'signin-form' },
    username, password, totp, formError('signin-error'), h('div', { class: 'actions' }, submit));
  replace(view,
    h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, 'Sign in to medvault'),
    signinMessage ? h('p', { class: 'notice notice-warn', role: 'alert', 'data-testid': 'signin-message' }, signinMessage) : null,
    h('section', { class: 'panel narrow' }, form,
      h('p', { class: 'hint' }, 'Your session is kept in this tab only: reloading the page or closing it signs you out.')));
  signinMessage = '';
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    if (!validateForm(form)) return;
    const f = form.elements;
    await busy(submit, 'Signing in…', async () => {
      try {
        await login(f.username.value.trim(), f.password.value, f.totp_code.value.trim());
        f.password.value = '';
        await loadMe();
        announce(`Signed in as ${state.me.display_name}.`, 'success');
        const target = pendingRoute && pendingRoute !== '#/signin' ? pendingRoute : '#/';
        pendingRoute = null;
        if (window.location.hash === target) route();
        else window.location.hash = target;
      } catch (err) {
        const words = errorWords(err);
        showFormError(form, words);
        if (err instanceof ApiError && err.status === 401 && /one-time code/.test(err.apiMessage)) {
          f.totp_code.value = '';
          f.totp_code.setAttribute('aria-invalid', 'true');
          document.getElementById(`${f.totp_code.id}-err`).textContent = words;
          f.totp_code.focus();
        } else if (err instanceof ApiError && err.status === 401) {
          f.password.value = '';
          f.password.focus();
        }
      }
    });
  });
  username.control.focus();
}

async function loadMe() {
  const { data } = await api('GET', '/api/v1/me');
  state.me = data;
  renderChrome();
}

async function signOut() {
  await logout();
  resetState();
  renderChrome();
  replace(main, h('div'));
  announce('You are signed out.', 'info');
  window.location.hash = '#/signin';
}

onSessionLost((message) => {
  resetState();
  renderChrome();
  signinMessage = message;
  const current = window.location.hash;
  if (current && current !== '#/signin') pendingRoute = current;
  replace(main, h('div'));
  if (current === '#/signin') route();
  else window.location.hash = '#/signin';
});

// --- navigation ----------------------------------------------------------------------------

function navItems() {
  const items = [];
  if (hasRole('patient') && state.me.patient_id) {
    items.push(['#/me', 'My health', 'nav-overview'], ['#/me/summary', 'Summary', 'nav-summary'],
      ['#/me/add', 'Record', 'nav-record-data'], ['#/me/record', 'Stored entries', 'nav-record'], ['#/me/messages', 'Messages', 'nav-messages'],
      ['#/me/sharing', 'Sharing', 'nav-sharing'], ['#/me/history', 'Who saw my record', 'nav-history']);
  }
  if (hasRole(...CLINICAL_ROLES, 'family-proxy')) items.push(['#/patients', 'My patients', 'nav-patients']);
  if (hasRole('institution-admin')) {
    items.push(['#/admin/accounts', 'Accounts', 'nav-accounts'], ['#/admin/organisation', 'Institutions', 'nav-organisation'],
      ['#/admin/relationships', 'Relationships', 'nav-relationships']);
  }
  if (hasRole('privacy-officer', 'auditor')) items.push(['#/admin/review', 'Emergency reviews', 'nav-review']);
  if (hasRole('institution-admin', 'privacy-officer', 'auditor', 'operator')) items.push(['#/admin/dashboard', 'Dashboard', 'nav-dashboard']);
  items.push(['#/account', 'My account', 'nav-account']);
  return items;
}

function renderChrome() {
  if (!state.me) {
    replace(nav);
    nav.hidden = true;
    replace(userBox);
    return;
  }
  nav.hidden = false;
  const current = window.location.hash || '#/';
  replace(nav, h('ul', null, navItems().map(([href, text, testid]) => {
    const active = current === href || (href !== '#/me' && current.startsWith(`${href}/`)) || (href === '#/patients' && current.startsWith('#/patient/'));
    return h('li', null, h('a', { href, 'data-testid': testid, 'aria-current': active ? 'page' : undefined }, text));
  })));
  const out = h('button', { type: 'button', class: 'link-button signout', 'data-testid': 'signout' }, 'Sign out');
  out.addEventListener('click', () => busy(out, 'Signing out…', signOut));
  replace(userBox, h('span', { class: 'who', 'data-testid': 'user-name' }, state.me.display_name,
    h('span', { class: 'muted' }, ` (${(state.me.roles || []).join(', ')})`)), out);
}

function home() {
  if (hasRole('patient') && state.me.patient_id) return '#/me';
  if (hasRole(...CLINICAL_ROLES, 'family-proxy')) return '#/patients';
  if (hasRole('institution-admin')) return '#/admin/accounts';
  if (hasRole('privacy-officer', 'auditor')) return '#/admin/review';
  if (hasRole('operator')) return '#/admin/dashboard';
  return '#/account';
}

// --- my account ----------------------------------------------------------------------------

function accountView(view) {
  const me = state.me;
  const oldPw = field({ label: 'Current password', name: 'old_password', type: 'password', required: true, autocomplete: 'current-password', testid: 'password-old' });
  const newPw = field({ label: 'New password', name: 'new_password', type: 'password', required: true, minlength: 12, maxlength: 1024, autocomplete: 'new-password', testid: 'password-new', hint: 'At least 12 characters, mixing letters, digits and symbols.' });
  const again = field({ label: 'New password again', name: 'again', type: 'password', required: true, autocomplete: 'new-password', testid: 'password-again' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'password-submit' }, 'Change password');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'password-form' }, oldPw, newPw, again, formError('password-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const f = form.elements;
    if (!validateForm(form, () => (f.again.value && f.again.value !== f.new_password.value ? [[f.again, 'The two new passwords differ.']] : []))) return;
    await busy(submit, 'Changing…', async () => {
      try {
        await api('POST', '/api/v1/me/password', { body: { old_password: f.old_password.value, new_password: f.new_password.value } });
        form.reset();
        announce('Password changed. Other sessions may have to sign in again.', 'success');
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  replace(view,
    h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, 'My account'),
    h('section', { class: 'panel' }, h('dl', { class: 'kv-list' },
      h('div', { class: 'kv' }, h('dt', null, 'Name'), h('dd', null, me.display_name)),
      h('div', { class: 'kv' }, h('dt', null, 'Username'), h('dd', null, me.username)),
      h('div', { class: 'kv' }, h('dt', null, 'Roles'), h('dd', null, (me.roles || []).join(', '))),
      h('div', { class: 'kv' }, h('dt', null, 'Second factor'), h('dd', null, me.totp_enabled ? (me.mfa_verified ? 'enrolled, used for this session' : 'enrolled') : 'not enrolled')),
      h('div', { class: 'kv' }, h('dt', null, 'Account id'), h('dd', null, h('code', { 'data-testid': 'account-id' }, me.account_id))),
      me.patient_id ? h('div', { class: 'kv' }, h('dt', null, 'Patient id'), h('dd', null, h('code', null, me.patient_id))) : null,
      h('div', { class: 'kv' }, h('dt', null, 'Session ends'), h('dd', null, `${fmtDateTime(me.session_expires_at)} (renewed while you use the portal)`)))),
    h('section', { class: 'panel', 'aria-labelledby': 'pw-h' }, h('h2', { id: 'pw-h' }, 'Change your password'), form));
}

function notFound(view) {
  replace(view, h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, 'Page not found'),
    h('p', null, 'There is nothing at this address. ', h('a', { href: '#/' }, 'Go to your home page.')));
}

function forbidden(view) {
  replace(view, h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, 'Not available'),
    errorBox('This page is not available to your role.', 'page-forbidden'),
    h('p', null, h('a', { href: '#/' }, 'Go to your home page.')));
}

// --- the router ------------------------------------------------------------------------------

const ID = '([0-9a-f]{32})';
const pid = () => state.me.patient_id;
const isPatient = () => hasRole('patient') && !!state.me.patient_id;

const ROUTES = [
  [/^#\/me$/, isPatient, (v) => patient.overviewView(v, pid())],
  [/^#\/me\/add$/, isPatient, (v) => patient.addView(v, pid(), null)],
  [/^#\/me\/add\/([a-z]+)$/, isPatient, (v, m) => patient.addView(v, pid(), m[1])],
  [/^#\/me\/summary$/, isPatient, (v) => patient.summaryView(v, pid())],
  [/^#\/me\/record$/, isPatient, (v) => patient.recordView(v, pid())],
  [/^#\/me\/messages$/, isPatient, (v) => patient.messagesView(v, pid())],
  [/^#\/me\/sharing$/, isPatient, (v) => patient.sharingView(v, pid())],
  [/^#\/me\/history$/, isPatient, (v) => patient.historyView(v, pid())],
  [/^#\/patients$/, () => hasRole(...CLINICAL_ROLES, 'family-proxy'), (v) => clinician.patientsView(v)],
  [new RegExp(`^#/patient/${ID}$`), () => hasRole(...CLINICAL_ROLES, 'family-proxy'), (v, m) => clinician.patientView(v, m[1])],
  [/^#\/admin\/accounts$/, () => hasRole('institution-admin'), (v) => admin.accountsView(v, null)],
  [new RegExp(`^#/admin/accounts/${ID}$`), () => hasRole('institution-admin'), (v, m) => admin.accountsView(v, m[1])],
  [/^#\/admin\/organisation$/, () => hasRole('institution-admin'), (v) => admin.organisationView(v)],
  [/^#\/admin\/relationships$/, () => hasRole('institution-admin'), (v) => admin.relationshipsView(v, null)],
  [new RegExp(`^#/admin/relationships/${ID}$`), () => hasRole('institution-admin'), (v, m) => admin.relationshipsView(v, m[1])],
  [/^#\/admin\/dashboard$/, () => hasRole('institution-admin', 'privacy-officer', 'auditor', 'operator'), (v) => admin.dashboardView(v)],
  [/^#\/admin\/review$/, () => hasRole('privacy-officer', 'auditor'), (v) => admin.reviewView(v, null)],
  [new RegExp(`^#/admin/review/${ID}$`), () => hasRole('privacy-officer'), (v, m) => admin.reviewView(v, m[1])],
  [/^#\/account$/, () => true, (v) => accountView(v)],
];

async function route() {
  const hash = window.location.hash || '#/';
  if (!hash.startsWith('#/') && hash !== '#') return; // an in-page anchor, not a route
  // A fresh container per navigation: a slow view that finishes after the
  // user moved on writes into a detached element.
  const view = h('div', { class: 'view' });
  if (!isSignedIn()) {
    if (hash !== '#/signin') {
      pendingRoute = hash === '#/' ? null : hash;
      window.location.hash = '#/signin';
      return;
    }
    replace(main, view);
    document.title = 'Sign in — medvault';
    signinView(view);
    return;
  }
  if (hash === '#/' || hash === '#/signin' || hash === '#') {
    window.location.hash = home();
    return;
  }
  renderChrome();
  replace(main, view);
  const found = ROUTES.find(([re]) => re.test(hash));
  try {
    if (!found) notFound(view);
    else if (!found[1]()) forbidden(view);
    else {
      view.append(loading());
      const work = found[2](view, hash.match(found[0]));
      focusHeading(view);
      await work;
    }
  } catch (err) {
    if (!err.sessionLost) replace(view, h('h1', { tabindex: '-1' }, 'Something went wrong'), errorBox(errorWords(err), 'page-error'));
  }
  focusHeading(view);
}

// Moves focus to the page's heading once (for keyboard and screen-reader users).
function focusHeading(view) {
  const h1 = view.querySelector('h1');
  if (!h1 || view.dataset.focused) return;
  view.dataset.focused = 'true';
  document.title = `${h1.textContent} — medvault`;
  if (document.contains(h1)) h1.focus({ preventScroll: false });
}

window.addEventListener('hashchange', route);
// The skip link moves focus without touching the route.
document.querySelector('.skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
renderChrome();
route();
