// The API client: the session (tokens in memory only), refresh before
// expiry, the fetch wrapper, attachment uploads with progress, and API
// errors turned into plain words.
//
// Tokens live in this module's variables and nowhere else: no
// localStorage, sessionStorage or cookies. A reload signs the user out.

const session = {
  access: null,
  refresh: null,
  accessExpiresAt: 0,
  refreshExpiresAt: 0,
  timer: null,
  refreshing: null,
};

let sessionLostHandler = () => {};

// Purposes of use declared per patient (emergency while a break-glass grant
// of this session lasts): patient id -> {purpose, until}.
const purposeByPatient = new Map();

// estimated: the end is a guess (a grant declared in another session).
export function declarePurpose(patientId, purpose, untilMs, estimated = false) {
  purposeByPatient.set(patientId, { purpose, until: untilMs, estimated });
}

export function declaredPurpose(patientId) {
  const p = purposeByPatient.get(patientId);
  return p && p.until > Date.now() ? p : null;
}

function purposeFor(path) {
  const m = /^\/api\/v1\/patients\/([0-9a-f]{32})(\/|$|\?)/.exec(path);
  const p = m ? purposeByPatient.get(m[1]) : null;
  return p && p.until > Date.now() ? p.purpose : '';
}

// Called with a message in words when the session ends unexpectedly
// (401, refresh refused).
export function onSessionLost(fn) {
  sessionLostHandler = fn;
}

export function isSignedIn() {
  return session.access !== null;
}

export function accessExpiresAt() {
  return session.accessExpiresAt;
}

export class ApiError extends Error {
  constructor({ status, code, message, requestId, retryAfter, network = false }) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || '';
    this.apiMessage = message || '';
    this.requestId = requestId || '';
    this.retryAfter = retryAfter || '';
    this.network = network;
    // "reason-code: sentence" for decision-point denials.
    const m = /^([a-z][a-z-]+): /.exec(this.apiMessage);
    this.reason = status === 403 && m ? m[1] : '';
    this.sessionLost = false;
  }
}

// --- reasons and errors in words -----------------------------------------

export const REASON_WORDS = {
  'default-deny': 'Nothing in the access rules or the patient’s consents allows this.',
  unauthenticated: 'You are not signed in.',
  'no-health-data-role': 'Your role never has access to health data.',
  'mfa-required': 'This needs a session signed in with a one-time code.',
  'proxy-out-of-scope': 'This goes beyond what the patient allowed you as their family proxy.',
  'never-break-glass': 'The patient has closed this part of the record to emergency access.',
  'break-glass-reason-missing': 'Emergency access needs a written reason of at least 10 characters.',
  'consent-denied': 'The patient has refused this access.',
  'consent-expired': 'The patient’s permission for this access has expired.',
  'no-role-permission': 'Your role does not allow this.',
  'insufficient-clearance': 'This part of the record is more sensitive than your role may see without the patient’s personal permission.',
  'outside-time-window': 'This access is allowed only at other hours of the day.',
  'purpose-not-allowed': 'This access is not allowed for the stated purpose.',
  'zone-not-allowed': 'This access is not allowed from the network you are on.',
  'delegation-not-allowed': 'The patient has not allowed their care to be delegated.',
  'no-relationship': 'You have no active treating relationship with this patient.',
  'relationship-ended': 'Your treating relationship with this patient has ended.',
  'other-institution': 'You may act only within your own institution.',
  // Permits, as they appear in the access history.
  'patient-self': 'The patient on their own record.',
  'proxy-within-scope': 'A family proxy within what the patient allowed.',
  'break-glass': 'Emergency access (break-glass).',
  'consent-granted': 'The patient’s permission.',
  'role-permission': 'The role’s permission.',
  'treating-relationship': 'A treating relationship.',
  'delegated-relationship': 'Care delegated by a treating clinician.',
};

export function reasonWords(code) {
  return REASON_WORDS[code] || (code ? code.replace(/-/g, ' ') : '');
}

const FIELD_WORDS = {
  systolic: 'systolic pressure', diastolic: 'diastolic pressure', bpm: 'heart rate',
  value: 'value', unit: 'unit', time: 'time',
};

function invalidArgumentWords(msg) {
  let m = /'([a-z-]+)' reading field '(\w+)' is outside the plausible range/.exec(msg);
  if (m) return `The ${FIELD_WORDS[m[2]] || m[2]} is outside the plausible range for ${m[1].replace(/-/g, ' ')}.`;
  m = /'([a-z-]+)' reading has an unsupported unit; allowed: (.*)$/.exec(msg);
  if (m) return `Choose one of these units: ${m[2]}.`;
  if (/requires 'time' as an RFC 3339 date-time/.test(msg)) return 'Enter a valid date and time.';
  m = /'([a-z-]+)' reading requires field '(\w+)'/.exec(msg);
  if (m) return `Enter the ${FIELD_WORDS[m[2]] || m[2]}.`;
  m = /field '(\w+)' must be a UTC time/.exec(msg);
  if (m) return `The ${m[1].replace(/_/g, ' ')} is not a valid date.`;
  if (/segment path/.test(msg)) return 'That name is not allowed: use lower-case letters, digits and dashes (for example “knee-x-ray”).';
  if (/Content-Type/.test(msg)) return 'The file type was not accepted.';
  if (/password/i.test(msg)) return `The password was not accepted: ${msg}.`;
  return `The server could not accept this: ${msg}.`;
}

// An error (ApiError or other) in plain words, for the person using the portal.
export function errorWords(err) {
  if (!(err instanceof ApiError)) {
    return `Something went wrong in the page: ${err && err.message ? err.message : err}.`;
  }
  const ref = err.requestId ? ` (reference ${err.requestId})` : '';
  if (err.network) return 'The server cannot be reached. Check your connection and try again.';
  switch (err.status) {
    case 400:
      return invalidArgumentWords(err.apiMessage);
    case 401:
      if (/one-time code is required/.test(err.apiMessage)) return 'Enter the one-time code from your authenticator app.';
      if (/invalid one-time code/.test(err.apiMessage)) return 'That one-time code is wrong or was already used. Wait for the next code and try again.';
      if (/invalid username or password/.test(err.apiMessage)) return 'The username or password is wrong.';
      return 'Your session has ended. Please sign in again.';
    case 403:
      if (err.reason) return REASON_WORDS[err.reason] || err.apiMessage.replace(/^[a-z-]+: /, '');
      if (/disabled/i.test(err.apiMessage)) return 'This account is disabled. Contact your administrator.';
      return `This is not allowed: ${err.apiMessage}.`;
    case 404:
      if (/erased/.test(err.apiMessage)) return 'This patient’s record was erased.';
      return `Not found: ${err.apiMessage || 'nothing is stored here'}.`;
    case 409:
      return `This conflicts with what is already there: ${err.apiMessage}.`;
    case 410:
      return 'This patient’s record was erased.';
    case 413:
      return 'This is too large for the server (attachments: at most 64 MiB).';
    case 429:
      return `Too many failed attempts. Wait ${err.retryAfter || 'a minute'} seconds, then try again.`;
    case 503:
      return `The service is briefly unavailable. Try again in a moment${ref}.`;
    default:
      if (err.code === 'DATA_LOSS') return `Stored data failed an integrity check. This was logged; contact support${ref}.`;
      if (err.status >= 500) return `The server had a problem and nothing was changed. Try again later${ref}.`;
      return `${err.apiMessage || `Error ${err.status}`}${ref}.`;
  }
}

// --- sign-in, refresh, sign-out ---------------------------------------------

function storeTokens(t) {
  session.access = t.access_token;
  session.refresh = t.refresh_token;
  session.accessExpiresAt = Date.parse(t.access_expires_at) || Date.now() + 10 * 60 * 1000;
  session.refreshExpiresAt = Date.parse(t.refresh_expires_at) || 0;
  scheduleRefresh();
}

function clearTokens() {
  purposeByPatient.clear();
  session.access = null;
  session.refresh = null;
  session.accessExpiresAt = 0;
  session.refreshExpiresAt = 0;
  if (session.timer) window.clearTimeout(session.timer);
  session.timer = null;
}

function scheduleRefresh() {
  if (session.timer) window.clearTimeout(session.timer);
  // One minute before the access token ends (at least 5 s from now).
  const delay = Math.max(5000, session.accessExpiresAt - Date.now() - 60 * 1000);
  session.timer = window.setTimeout(() => {
    refreshNow().catch(() => {});
  }, delay);
}

async function parseError(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const e = body && body.error ? body.error : {};
  return new ApiError({
    status: res.status,
    code: e.code,
    message: e.message,
    requestId: e.request_id || res.headers.get('X-Request-Id'),
    retryAfter: res.headers.get('Retry-After'),
  });
}

async function postJsonPublic(path, body) {
  let res;
  try {
    res = await fetch(path, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch {
    throw new ApiError({ status: 0, network: true });
  }
  if (!res.ok) throw await parseError(res);
  return res.json();
}

export async function login(username, password, totpCode) {
  const body = { username, password };
  if (totpCode) body.totp_code = totpCode;
  const t = await postJsonPublic('/api/v1/auth/login', body);
  storeTokens(t);
  return t;
}

// Exchanges the refresh token for a new pair (one at a time: the old
// refresh token is spent, presenting it twice would end the session).
export function refreshNow() {
  if (session.refreshing) return session.refreshing;
  if (!session.refresh) return Promise.reject(new ApiError({ status: 401, code: 'UNAUTHENTICATED' }));
  const token = session.refresh;
  session.refreshing = postJsonPublic('/api/v1/auth/refresh', { refresh_token: token })
    .then((t) => {
      if (session.refresh === token) storeTokens(t);
      return t;
    })
    .catch((err) => {
      if (err.status === 401 || err.status === 400) {
        loseSession('Your session has ended. Please sign in again.');
      }
      throw err;
    })
    .finally(() => {
      session.refreshing = null;
    });
  return session.refreshing;
}

function loseSession(message) {
  const was = session.access !== null;
  clearTokens();
  if (was) sessionLostHandler(message);
}

export async function logout() {
  const token = session.access;
  clearTokens();
  if (!token) return;
  try {
    await fetch('/api/v1/auth/logout', {
      method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
      body: '{}',
      credentials: 'omit',
    });
  } catch {
    // The token is forgotten either way; it dies on the server within 15 minutes.
  }
}

// A token valid for at least the next 30 seconds (refreshing first if needed).
async function freshToken() {
  if (!session.access) {
    throw Object.assign(new ApiError({ status: 401, code: 'UNAUTHENTICATED' }), { sessionLost: true });
  }
  if (session.accessExpiresAt - Date.now() < 30 * 1000 && session.refresh) {
    try {
      await refreshNow();
    } catch (err) {
      if (err.network) throw err;
      throw Object.assign(err, { sessionLost: true });
    }
  }
  return session.access;
}

// Timers may not run while a laptop sleeps: check when the page is shown again.
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && session.access) {
    if (session.accessExpiresAt - Date.now() < 90 * 1000) refreshNow().catch(() => {});
    else scheduleRefresh();
  }
});

// --- requests ------------------------------------------------------------------

// api('GET', '/api/v1/me') -> {status, data, headers}. Options: body (JSON),
// text (raw text answer wanted), purpose (X-Purpose-Of-Use).
export async function api(method, path, opts = {}) {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    const token = await freshToken();
    const headers = { Authorization: `Bearer ${token}` };
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    const purpose = opts.purpose || purposeFor(path);
    if (purpose) headers['X-Purpose-Of-Use'] = purpose;
    let res;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: opts.body !== undefined ? JSON.stringify(opts.body) : undefined,
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError({ status: 0, network: true });
    }
    if (res.status === 401) {
      // Perhaps the token just ended: one refresh and one retry.
      if (attempt === 0 && session.refresh) {
        try {
          await refreshNow();
          continue;
        } catch {
          // falls through to the lost session
        }
      }
      const err = await parseError(res);
      err.sessionLost = true;
      loseSession('Your session has ended. Please sign in again.');
      throw err;
    }
    if (!res.ok) throw await parseError(res);
    let data = null;
    const type = res.headers.get('Content-Type') || '';
    if (opts.text || !type.includes('json')) data = await res.text();
    else data = await res.json();
    return { status: res.status, data, headers: res.headers };
  }
  throw new ApiError({ status: 401, code: 'UNAUTHENTICATED' });
}

// Public endpoints (probes, ledger checkpoint): no token.
export async function publicGet(path) {
  let res;
  try {
    res = await fetch(path, { credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError({ status: 0, network: true });
  }
  const type = res.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await res.json().catch(() => null) : await res.text();
  return { status: res.status, ok: res.ok, data, headers: res.headers };
}

// Downloads an attachment with the bearer token and hands it to the browser
// as a file.
export async function downloadAttachment(url, filename) {
  const token = await freshToken();
  let res;
  try {
    res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, credentials: 'omit', cache: 'no-store' });
  } catch {
    throw new ApiError({ status: 0, network: true });
  }
  if (!res.ok) throw await parseError(res);
  const blob = await res.blob();
  const href = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = href;
  a.download = filename;
  document.body.appendChild(a);
  a.click();
  a.remove();
  window.setTimeout(() => URL.revokeObjectURL(href), 10000);
}

// PUT an attachment with upload progress (XMLHttpRequest: fetch has no
// upload progress). onProgress(loaded, total). Resolves with the version
// metadata.
export async function uploadAttachment(patientId, path, file, onProgress) {
  const token = await freshToken();
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', `/api/v1/patients/${encodeURIComponent(patientId)}/attachments/${path}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload.addEventListener('progress', (e) => {
      if (onProgress) onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status >= 200 && xhr.status < 300) {
        resolve(body);
        return;
      }
      const e = body && body.error ? body.error : {};
      const err = new ApiError({
        status: xhr.status, code: e.code, message: e.message, requestId: e.request_id,
      });
      if (xhr.status === 401) {
        err.sessionLost = true;
        loseSession('Your session has ended. Please sign in again.');
      }
      reject(err);
    });
    xhr.addEventListener('error', () => reject(new ApiError({ status: 0, network: true })));
    xhr.addEventListener('abort', () => reject(new ApiError({ status: 0, code: 'ABORTED', message: 'upload cancelled' })));
    xhr.send(file);
  });
}

// --- paths -------------------------------------------------------------------

export function patientUrl(patientId, rest = '') {
  return `/api/v1/patients/${encodeURIComponent(patientId)}${rest}`;
}
