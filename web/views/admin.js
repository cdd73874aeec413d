// Administrators and privacy officers: institutions and departments,
// accounts and roles, treating relationships, the operations dashboard
// (probes, metrics, ledger checkpoint, integrity report) and the review of
// emergency accesses.
import { api, publicGet, patientUrl, errorWords } from '../api.js';
import {
  h, replace, announce, fmtDateTime, timeEl, field, checkboxGroup, checkedValues, validateForm,
  formError, showFormError, busy, loading, errorBox, notice, openDialog, confirmDialog, labelOf,
  shortId, humanBytes, stackTable,
} from '../dom.js';
import {
  state, hasRole, knownNames, ALL_ROLES,
} from '../state.js';
import { historyTable, loadHistory } from './patient.js';

function page(main, title, ...content) {
  replace(main, h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, title), content);
}

const TREATING_ROLES = ['doctor', 'department-head', 'nurse'];

// The institutions this admin manages (their own, or all for a platform admin).
async function institutions() {
  const { data } = await api('GET', '/api/v1/institutions');
  return data.institutions || [];
}

async function departments(instId) {
  const { data } = await api('GET', `/api/v1/institutions/${instId}/departments`);
  return data.departments || [];
}

async function accounts(instId) {
  const q = instId ? `?institution=${encodeURIComponent(instId)}` : '';
  const { data } = await api('GET', `/api/v1/accounts${q}`);
  return data.accounts || [];
}

function institutionPicker(list, current, onChange) {
  if (list.length <= 1) return null;
  const f = field({ label: 'Institution', name: 'institution', type: 'select', value: current, options: list.map((i) => [i.institution_id, i.name]), testid: 'institution-picker' });
  f.control.addEventListener('change', () => onChange(f.control.value));
  return f;
}

// --- accounts ---------------------------------------------------------------------------

export async function accountsView(main, instParam) {
  page(main, 'Accounts', loading('Loading…'));
  let insts;
  try {
    insts = await institutions();
  } catch (err) {
    if (!err.sessionLost) page(main, 'Accounts', errorBox(errorWords(err)));
    return;
  }
  const instId = instParam || (state.me && state.me.institution_id) || (insts[0] && insts[0].institution_id) || '';
  const tableBox = h('div', { 'data-testid': 'accounts' }, loading('Loading accounts…'));
  let deps = [];
  try {
    deps = instId ? await departments(instId) : [];
  } catch {
    deps = [];
  }
  const depName = (id) => (deps.find((d) => d.department_id === id) || {}).name || '';

  async function load() {
    try {
      const list = await accounts(instId);
      replace(tableBox, h('div', { class: 'table-scroll' }, stackTable(h('table', { class: 'table' },
        h('caption', { class: 'visually-hidden' }, 'Accounts'),
        h('thead', null, h('tr', null, ['Username', 'Name', 'Roles', 'Department', 'Second factor', 'Status', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, list.map((a) => accountRow(a)))))));
    } catch (err) {
      if (!err.sessionLost) replace(tableBox, errorBox(errorWords(err)));
    }
  }

  function accountRow(a) {
    const act = (label, testid, fn, cls) => {
      const b = h('button', { type: 'button', class: ['small', cls], 'data-testid': testid }, label);
      b.addEventListener('click', () => fn(b));
      return b;
    };
    const post = async (b, op, question, done, body = {}) => {
      if (question && !(await confirmDialog(question[0], question[1], question[2], true))) return null;
      return busy(b, '…', async () => {
        try {
          const { data } = await api('POST', `/api/v1/accounts/${a.account_id}/${op}`, { body });
          announce(done, 'success');
          await load();
          return data;
        } catch (err) {
          if (!err.sessionLost) announce(errorWords(err), 'error');
          return null;
        }
      });
    };
    return h('tr', { 'data-testid': 'account-row', 'data-username': a.username, 'data-account-id': a.account_id },
      h('td', null, a.username),
      h('td', null, a.display_name),
      h('td', null, (a.roles || []).join(', ')),
      h('td', null, depName(a.department_id)),
      h('td', null, a.totp_enabled ? 'yes' : 'no'),
      h('td', null, h('span', { class: `badge ${a.disabled ? 'badge-deny' : 'badge-ok'}` }, a.disabled ? 'disabled' : 'active')),
      h('td', { class: 'row-actions' },
        act('Roles…', 'account-roles', () => editRoles(a, load)),
        a.disabled
          ? act('Enable', 'account-enable', (b) => post(b, 'enable', null, `${a.username} enabled.`))
          : act('Disable', 'account-disable', (b) => post(b, 'disable', ['Disable this account?', `${a.username} is signed out everywhere and cannot sign in until enabled again.`, 'Disable'], `${a.username} disabled.`), 'danger'),
        act('Sign out everywhere', 'account-revoke', (b) => post(b, 'revoke-sessions', ['Sign this account out everywhere?', `Every session of ${a.username} ends at once.`, 'Sign out'], `${a.username} signed out everywhere.`)),
        // Credentials are replaced only by a recovery: one administrator
        // opens it with a reason, a second one completes it (a patient's
        // after a waiting period during which they are told and may cancel).
        act('Start recovery…', 'account-recovery-start', async (b) => {
          const reason = await askReason(a);
          if (reason) await post(b, 'recovery', null, `Recovery of ${a.username} opened; a second administrator completes it.`, { reason });
        }),
        act('Complete recovery', 'account-recovery-approve', async (b) => {
          const data = await post(b, 'recovery/approve', ['Complete the recovery?', `${a.username} is signed out everywhere and gets a temporary password${a.totp_enabled ? ' and a new second-factor key' : ''}, shown once.`, 'Complete'], 'Recovery completed.');
          if (data && data.temporary_password) showRecovered(a, data);
        })));
  }

  const picker = institutionPicker(insts, instId, (v) => { window.location.hash = `#/admin/accounts/${v}`; });
  page(main, 'Accounts', picker,
    h('section', { class: 'panel', 'aria-labelledby': 'acc-h' }, h('h2', { id: 'acc-h' }, `Accounts of ${(insts.find((i) => i.institution_id === instId) || {}).name || 'the platform'}`), tableBox),
    h('section', { class: 'panel', 'aria-labelledby': 'new-acc-h' }, h('h2', { id: 'new-acc-h' }, 'Create an account'), createAccountForm(instId, deps, load)));
  await load();
}

function askReason(a) {
  return openDialog({
    title: `Start the recovery of ${a.username}`,
    testid: 'recovery-dialog',
    initialFocus: '[data-testid=recovery-reason]',
    build: (close) => {
      const area = h('textarea', { 'data-testid': 'recovery-reason', minlength: '10', maxlength: '500', rows: '3', required: true });
      const form = h('form', null,
        h('label', null, 'Why can the person not sign in? (10 to 500 characters; the person is told)', area),
        h('div', { class: 'actions' },
          h('button', { type: 'submit', class: 'primary', 'data-testid': 'recovery-submit' }, 'Open recovery'),
          h('button', { type: 'button', onclick: () => close(null) }, 'Cancel')));
      form.addEventListener('submit', (ev) => {
        ev.preventDefault();
        const reason = area.value.trim();
        if (reason.length >= 10) close(reason);
      });
      return form;
    },
  });
}

function showRecovered(a, data) {
  return openDialog({
    title: 'New credentials (shown once)',
    testid: 'recovered-dialog',
    initialFocus: '[data-testid=recovered-close]',
    build: (close) => h('div', null,
      h('p', null, `Hand these to ${a.display_name || a.username} in person. They change the password after signing in.`),
      h('p', null, 'Temporary password: ', h('code', { 'data-testid': 'recovered-password', class: 'secret' }, data.temporary_password)),
      data.totp_secret ? h('p', null, 'Second factor key: ', h('code', { 'data-testid': 'totp-secret', class: 'secret' }, data.totp_secret)) : null,
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', 'data-testid': 'recovered-close', onclick: () => close() }, 'I have handed them over'))),
  });
}

function showSecret(data) {
  return openDialog({
    title: 'Second factor key (shown once)',
    testid: 'totp-dialog',
    initialFocus: '[data-testid=totp-close]',
    build: (close) => h('div', null,
      h('p', null, `Give this key to ${data.display_name || data.username} for their authenticator app. It is shown only now.`),
      h('p', null, 'Key: ', h('code', { 'data-testid': 'totp-secret', class: 'secret' }, data.totp_secret)),
      h('p', { class: 'muted break' }, 'Set-up link: ', h('code', null, data.otpauth_uri)),
      h('div', { class: 'actions' }, h('button', { type: 'button', class: 'primary', 'data-testid': 'totp-close', onclick: () => close() }, 'I have handed it over'))),
  });
}

function editRoles(a, reload) {
  return openDialog({
    title: `Roles of ${a.username}`,
    testid: 'roles-dialog',
    initialFocus: 'input',
    build: (close) => {
      const group = checkboxGroup('Roles', 'roles', ALL_ROLES.map((r) => [r, labelOf(r), (a.roles || []).includes(r)]), 'roles-edit');
      const err = formError('roles-error');
      const save = h('button', { type: 'submit', class: 'primary', 'data-testid': 'roles-save' }, 'Save roles');
      const form = h('form', { class: 'form', novalidate: true }, group, h('p', { class: 'hint' }, 'Effective at once.'), err,
        h('div', { class: 'actions' }, save, h('button', { type: 'button', onclick: () => close() }, 'Cancel')));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const roles = checkedValues(form, 'roles');
        if (!roles.length) {
          err.textContent = 'Choose at least one role.';
          return;
        }
        await busy(save, 'Saving…', async () => {
          try {
            await api('PUT', `/api/v1/accounts/${a.account_id}/roles`, { body: { roles } });
            announce(`Roles of ${a.username} saved.`, 'success');
            close(true);
            await reload();
          } catch (ex) {
            if (!ex.sessionLost) err.textContent = errorWords(ex);
          }
        });
      });
      return form;
    },
  });
}

function createAccountForm(instId, deps, reload) {
  const username = field({
    label: 'Username', name: 'username', required: true, minlength: 3, maxlength: 64, pattern: '[a-z0-9._@\\-]{3,64}',
    patternMessage: 'Use 3 to 64 of: a-z, 0-9, “.”, “_”, “@”, “-”.', autocomplete: 'off', testid: 'account-username',
  });
  const display = field({ label: 'Full name', name: 'display_name', required: true, maxlength: 200, testid: 'account-display-name' });
  const password = field({ label: 'Initial password', name: 'password', type: 'password', required: true, minlength: 12, maxlength: 1024, autocomplete: 'new-password', testid: 'account-password', hint: 'At least 12 characters, mixing letters, digits and symbols.' });
  const roles = checkboxGroup('Roles', 'roles', ALL_ROLES.map((r) => [r, labelOf(r), false]), 'account-roles-new');
  const dep = field({ label: 'Department', name: 'department_id', type: 'select', options: [['', 'None'], ...deps.map((d) => [d.department_id, d.name])], testid: 'account-department' });
  const patient = field({ label: 'Patient id (for a patient’s own account)', name: 'patient_id', pattern: '[0-9a-f]{32}', maxlength: 32, patternMessage: 'A patient id has 32 characters, digits and the letters a to f.', testid: 'account-patient-id' });
  const totp = h('input', { type: 'checkbox', id: 'account-enroll-totp', name: 'enroll_totp', checked: true, 'data-testid': 'account-enroll-totp' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'account-submit' }, 'Create the account');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'account-form' },
    h('div', { class: 'field-row' }, username, display), password, roles, h('div', { class: 'field-row' }, dep, patient),
    h('div', { class: 'check' }, totp, h('label', { for: 'account-enroll-totp' }, 'Enrol a second factor (required for clinical and administrative roles)')),
    formError('account-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const f = form.elements;
    const chosen = checkedValues(form, 'roles');
    const ok = validateForm(form, () => {
      const out = [];
      if (!chosen.length) out.push([form.querySelector('input[name=roles]'), 'Choose at least one role.']);
      if (chosen.includes('patient') && !f.patient_id.value) out.push([f.patient_id, 'A patient account needs the patient id.']);
      return out;
    });
    if (!ok) return;
    const body = {
      username: f.username.value.trim(), display_name: f.display_name.value.trim(), password: f.password.value,
      roles: chosen, enroll_totp: totp.checked,
    };
    if (instId && !chosen.every((r) => r === 'patient' || r === 'family-proxy')) body.institution_id = instId;
    if (f.department_id.value) body.department_id = f.department_id.value;
    if (f.patient_id.value) body.patient_id = f.patient_id.value;
    await busy(submit, 'Creating…', async () => {
      try {
        const { data } = await api('POST', '/api/v1/accounts', { body });
        announce(`Account ${data.username} created.`, 'success');
        form.reset();
        totp.checked = true;
        if (data.totp_secret) await showSecret(data);
        await reload();
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

// --- institutions and departments ----------------------------------------------------

export async function organisationView(main) {
  const box = h('div', { 'data-testid': 'institutions' }, loading('Loading institutions…'));
  const nameField = field({ label: 'Name of the new institution', name: 'name', required: true, maxlength: 200, testid: 'institution-name' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'institution-submit' }, 'Create the institution');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'institution-form' }, nameField,
    h('p', { class: 'hint' }, 'Only a platform administrator (bound to no institution) may create institutions.'),
    formError('institution-form-error'), h('div', { class: 'actions' }, submit));
  page(main, 'Institutions and departments', box,
    h('section', { class: 'panel', 'aria-labelledby': 'new-inst-h' }, h('h2', { id: 'new-inst-h' }, 'New institution'), form));

  async function load() {
    try {
      const list = await institutions();
      const sections = await Promise.all(list.map(async (inst) => {
        let deps = [];
        let problem = null;
        try {
          deps = await departments(inst.institution_id);
        } catch (err) {
          problem = errorWords(err);
        }
        const dname = field({ label: 'New department', name: 'name', required: true, maxlength: 200, testid: 'department-name' });
        const add = h('button', { type: 'submit', 'data-testid': 'department-submit' }, 'Add');
        const dform = h('form', { class: 'form inline-form', novalidate: true, 'data-testid': 'department-form' }, dname, formError('department-form-error'), h('div', { class: 'actions' }, add));
        dform.addEventListener('submit', async (e) => {
          e.preventDefault();
          showFormError(dform, '');
          if (!validateForm(dform)) return;
          await busy(add, 'Adding…', async () => {
            try {
              await api('POST', `/api/v1/institutions/${inst.institution_id}/departments`, { body: { name: dform.elements.name.value.trim() } });
              announce('Department added.', 'success');
              await load();
            } catch (err) {
              if (!err.sessionLost) showFormError(dform, errorWords(err));
            }
          });
        });
        return h('section', { class: 'panel', 'data-testid': 'institution', 'data-institution-id': inst.institution_id },
          h('h2', null, inst.name), h('p', { class: 'muted' }, 'Id ', h('code', null, inst.institution_id)),
          problem ? errorBox(problem) : h('ul', { class: 'plain', 'data-testid': 'departments' }, deps.length
            ? deps.map((d) => h('li', { 'data-testid': 'department-item' }, d.name, h('span', { class: 'muted' }, ' — id ', h('code', null, d.department_id))))
            : h('li', { class: 'muted' }, 'No department yet.')),
          dform);
      }));
      replace(box, sections.length ? sections : h('p', { class: 'muted' }, 'No institution yet.'));
    } catch (err) {
      if (!err.sessionLost) replace(box, errorBox(errorWords(err)));
    }
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    if (!validateForm(form)) return;
    await busy(submit, 'Creating…', async () => {
      try {
        await api('POST', '/api/v1/institutions', { body: { name: form.elements.name.value.trim() } });
        announce('Institution created.', 'success');
        form.reset();
        await load();
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  await load();
}

// --- treating relationships ------------------------------------------------------------

export async function relationshipsView(main, pidParam) {
  const pidField = field({
    label: 'Patient id', name: 'pid', required: true, pattern: '[0-9a-f]{32}', maxlength: 32, value: pidParam || '',
    patternMessage: 'A patient id has 32 characters, digits and the letters a to f.', list: 'rel-patient-ids', testid: 'relationships-patient',
  });
  const ids = h('datalist', { id: 'rel-patient-ids' });
  const show = h('button', { type: 'submit', class: 'primary', 'data-testid': 'relationships-show' }, 'Show');
  const pick = h('form', { class: 'form', novalidate: true, 'data-testid': 'relationships-form' }, pidField, ids, formError('relationships-form-error'), h('div', { class: 'actions' }, show));
  const box = h('div', { 'data-testid': 'relationships' });
  page(main, 'Treating relationships', h('p', { class: 'hint' }, 'A treating relationship lets a clinician of your institution see and add to a patient’s record (within the patient’s consents).'), pick, box);
  pick.addEventListener('submit', (e) => {
    e.preventDefault();
    if (validateForm(pick)) window.location.hash = `#/admin/relationships/${pick.elements.pid.value}`;
  });
  api('GET', '/api/v1/patients?limit=1000').then(({ data }) => replace(ids, (data.patient_ids || []).map((id) => h('option', { value: id })))).catch(() => {});
  if (!pidParam) return;

  let staff = [];
  try {
    staff = (await accounts(state.me && state.me.institution_id)).filter((a) => (a.roles || []).some((r) => TREATING_ROLES.includes(r)));
  } catch {
    staff = [];
  }
  const nameOf = (id) => {
    const a = staff.find((x) => x.account_id === id);
    return a ? `${a.display_name} (${a.username})` : `Account ${shortId(id)}`;
  };

  async function load() {
    replace(box, loading('Loading relationships…'));
    try {
      const { data } = await api('GET', patientUrl(pidParam, '/relationships'));
      const rels = data.relationships || [];
      const clinician = field({ label: 'Clinician', name: 'clinician', type: 'select', required: true, options: [['', 'Choose…'], ...staff.map((a) => [a.account_id, `${a.display_name} (${a.roles.join(', ')})`])], testid: 'relationship-clinician' });
      const start = h('button', { type: 'submit', class: 'primary', 'data-testid': 'relationship-start' }, 'Start the relationship');
      const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'relationship-form' }, clinician, formError('relationship-form-error'), h('div', { class: 'actions' }, start));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        showFormError(form, '');
        if (!validateForm(form)) return;
        await busy(start, 'Starting…', async () => {
          try {
            await api('POST', patientUrl(pidParam, '/relationships'), { body: { clinician_id: form.elements.clinician.value } });
            announce('Relationship started.', 'success');
            await load();
          } catch (err) {
            if (!err.sessionLost) showFormError(form, errorWords(err));
          }
        });
      });
      replace(box,
        h('section', { class: 'panel', 'aria-labelledby': 'rels-h' }, h('h2', { id: 'rels-h' }, 'Relationships'),
          rels.length ? h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
            h('thead', null, h('tr', null, ['Clinician', 'Started', 'Ended', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
            h('tbody', null, rels.map((r) => {
              const end = h('button', { type: 'button', class: 'small danger', 'data-testid': 'relationship-end' }, 'End');
              end.addEventListener('click', async () => {
                if (!(await confirmDialog('End this relationship?', `${nameOf(r.clinician_id)} loses access to this record at once.`, 'End it', true))) return;
                await busy(end, 'Ending…', async () => {
                  try {
                    await api('DELETE', patientUrl(pidParam, `/relationships/${r.relationship_id}`));
                    announce('Relationship ended.', 'success');
                    await load();
                  } catch (err) {
                    if (!err.sessionLost) announce(errorWords(err), 'error');
                  }
                });
              });
              return h('tr', { 'data-testid': 'relationship-row', 'data-active': r.active ? 'true' : 'false' },
                h('td', null, nameOf(r.clinician_id)), h('td', null, timeEl(r.started_at)), h('td', null, r.ended_at ? timeEl(r.ended_at) : '—'),
                h('td', null, h('span', { class: `badge ${r.active ? 'badge-ok' : 'badge-muted'}` }, r.active ? 'active' : 'ended')),
                h('td', null, r.active ? end : null));
            })))) : h('p', { class: 'muted' }, 'No relationship yet.')),
        h('section', { class: 'panel', 'aria-labelledby': 'rel-new-h' }, h('h2', { id: 'rel-new-h' }, 'Start a relationship'), form));
    } catch (err) {
      if (!err.sessionLost) replace(box, errorBox(errorWords(err)));
    }
  }
  await load();
}

// --- dashboard ------------------------------------------------------------------------------

// Prometheus text -> [{name, labels, value}]
export function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    // Label values may contain '}' (route templates): match quoted strings whole.
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    if (m[3]) {
      for (const part of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[part[1]] = part[2].replace(/\\(.)/g, '$1');
    }
    out.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return out;
}

// Quantile from cumulative histogram buckets [{le, count}].
function quantile(buckets, q) {
  const sorted = [...buckets].sort((a, b) => a.le - b.le);
  const total = sorted.length ? sorted[sorted.length - 1].count : 0;
  if (!total) return NaN;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const b of sorted) {
    if (b.count >= rank) {
      if (!Number.isFinite(b.le)) return prevLe;
      const inBucket = b.count - prevCount;
      return inBucket ? prevLe + ((b.le - prevLe) * (rank - prevCount)) / inBucket : b.le;
    }
    prevLe = b.le;
    prevCount = b.count;
  }
  return prevLe;
}

function ms(seconds) {
  if (!Number.isFinite(seconds)) return '—';
  const v = seconds * 1000;
  return v < 10 ? `${v.toFixed(1)} ms` : `${Math.round(v)} ms`;
}

function routeStats(metrics) {
  const routes = new Map();
  const get = (r) => {
    if (!routes.has(r)) routes.set(r, { route: r, total: 0, errors4: 0, errors5: 0, sum: 0, count: 0, buckets: [] });
    return routes.get(r);
  };
  for (const m of metrics) {
    const r = m.labels.route;
    if (!r) continue;
    if (m.name === 'medvault_http_requests_total') {
      const s = get(r);
      s.total += m.value;
      const st = Number(m.labels.status);
      if (st >= 400 && st < 500) s.errors4 += m.value;
      if (st >= 500) s.errors5 += m.value;
    } else if (m.name === 'medvault_http_request_duration_seconds_bucket') {
      get(r).buckets.push({ le: m.labels.le === '+Inf' ? Infinity : Number(m.labels.le), count: m.value });
    } else if (m.name === 'medvault_http_request_duration_seconds_sum') get(r).sum = m.value;
    else if (m.name === 'medvault_http_request_duration_seconds_count') get(r).count = m.value;
  }
  return [...routes.values()].sort((a, b) => b.total - a.total);
}

function gauge(metrics, name, labels = {}) {
  const m = metrics.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return m ? m.value : undefined;
}

function stat(label, value, testid, cls) {
  return h('div', { class: ['card', 'stat', cls], 'data-testid': testid }, h('p', { class: 'stat-label' }, label), h('p', { class: 'stat-value' }, value));
}

export async function dashboardView(main) {
  const probes = h('div', { class: 'cards', 'data-testid': 'dash-probes' }, loading());
  const ledger = h('div', { 'data-testid': 'dash-ledger' }, loading());
  const metricsBox = h('div', { 'data-testid': 'dash-metrics' }, loading());
  const integrity = h('div', { 'data-testid': 'dash-integrity' }, loading());
  const review = h('div', { 'data-testid': 'dash-break-glass' }, loading());
  const updated = h('p', { class: 'muted', 'aria-live': 'off' });
  const auto = h('input', { type: 'checkbox', id: 'dash-auto', checked: true, 'data-testid': 'dash-auto' });
  const refreshBtn = h('button', { type: 'button', 'data-testid': 'dash-refresh' }, 'Refresh now');
  page(main, 'Dashboard',
    h('div', { class: 'toolbar' }, refreshBtn, h('div', { class: 'check' }, auto, h('label', { for: 'dash-auto' }, 'Refresh every 10 seconds')), updated),
    h('section', { class: 'panel', 'aria-labelledby': 'd-health' }, h('h2', { id: 'd-health' }, 'Service health'), probes),
    h('section', { class: 'panel', 'aria-labelledby': 'd-ledger' }, h('h2', { id: 'd-ledger' }, 'Ledger'), ledger),
    h('section', { class: 'panel', 'aria-labelledby': 'd-metrics' }, h('h2', { id: 'd-metrics' }, 'Requests and storage'), metricsBox),
    h('section', { class: 'panel', 'aria-labelledby': 'd-integrity' }, h('h2', { id: 'd-integrity' }, 'Integrity'), integrity),
    h('section', { class: 'panel', 'aria-labelledby': 'd-bg' }, h('h2', { id: 'd-bg' }, 'Emergency accesses to review'), review));

  let previous = null; // {at, routes: Map route -> total}

  async function refresh() {
    const at = Date.now();
    const [health, ready, cp, metrics, report, bg] = await Promise.allSettled([
      publicGet('/healthz'), publicGet('/readyz'), publicGet('/api/v1/ledger/checkpoint'),
      api('GET', '/metrics', { text: true }), api('GET', '/api/v1/integrity/report'), api('GET', '/api/v1/break-glass'),
    ]);
    if (!document.contains(probes)) return;
    const probeCard = (label, r, testid) => {
      const ok = r.status === 'fulfilled' && r.value.ok;
      const detail = r.status === 'fulfilled' ? (r.value.data && r.value.data.status) || `HTTP ${r.value.status}` : 'unreachable';
      return stat(label, `${ok ? '✔' : '✖'} ${detail}`, testid, ok ? 'stat-ok' : 'stat-bad');
    };
    replace(probes, probeCard('Alive (/healthz)', health, 'dash-healthz'), probeCard('Ready (/readyz)', ready, 'dash-readyz'));

    if (cp.status === 'fulfilled' && cp.value.ok) {
      const lines = String(cp.value.data).split('\n');
      const hd = cp.value.headers;
      const witnessed = hd.get('X-Ledger-Witnessed') === 'true';
      const quorum = hd.get('X-Ledger-Witness-Quorum') || '';
      const noWitnesses = / of 0$/.test(quorum);
      const sigs = lines.filter((l) => l.startsWith('— ')).length;
      replace(ledger, h('div', { class: 'cards' },
        stat('Entries', hd.get('X-Ledger-Size') || lines[1], 'dash-ledger-size'),
        stat('Witnessed', witnessed ? `yes (${quorum})` : (noWitnesses ? 'no witness configured' : `not yet (needs ${quorum})`), 'dash-ledger-witnessed', witnessed ? 'stat-ok' : 'stat-warn'),
        stat('Signatures', String(sigs), 'dash-ledger-signatures')),
      h('p', { class: 'muted break' }, 'Last checkpoint: ', h('code', null, lines[0]), ', root ', h('code', { 'data-testid': 'dash-ledger-root' }, lines[2] || ''), `, fetched ${fmtDateTime(new Date(at))}.`));
    } else {
      replace(ledger, errorBox('The ledger checkpoint could not be read.'));
    }

    if (metrics.status === 'fulfilled') {
      const ms0 = parseMetrics(metrics.value.data);
      const routes = routeStats(ms0);
      const interval = previous ? (at - previous.at) / 1000 : 0;
      const rate = (r) => (previous && previous.routes.has(r.route) && interval > 0 ? `${((r.total - previous.routes.get(r.route)) / interval).toFixed(2)}/s` : '—');
      const total = routes.reduce((s, r) => s + r.total, 0);
      const totalRate = previous && interval > 0 ? `${((total - previous.total) / interval).toFixed(2)}/s` : 'measuring…';
      const storage = [
        ['Patients', gauge(ms0, 'medvault_patients'), 'dash-patients'],
        ['Segment versions', gauge(ms0, 'medvault_segment_versions'), 'dash-versions'],
        ['Ledger entries', gauge(ms0, 'medvault_ledger_entries'), 'dash-ledger-entries'],
        ['Access permitted', gauge(ms0, 'medvault_access_decisions_total', { effect: 'permit' }), 'dash-permits'],
        ['Access refused', gauge(ms0, 'medvault_access_decisions_total', { effect: 'deny' }), 'dash-denies'],
      ];
      replace(metricsBox,
        h('div', { class: 'cards' }, stat('Requests', `${total} (${totalRate})`, 'dash-requests'),
          storage.filter(([, v]) => v !== undefined).map(([l, v, t]) => stat(l, String(v), t))),
        h('div', { class: 'table-scroll' }, h('table', { class: 'table', 'data-testid': 'dash-routes' },
          h('caption', null, 'Requests by route (since the server started)'),
          h('thead', null, h('tr', null, ['Route', 'Requests', 'Rate', '4xx', '5xx', 'Mean', 'p50 (est.)', 'p95 (est.)'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, routes.map((r) => h('tr', { 'data-testid': 'dash-route-row' },
            h('th', { scope: 'row' }, h('code', null, r.route)), h('td', null, String(r.total)), h('td', null, rate(r)),
            h('td', null, String(r.errors4)), h('td', { class: r.errors5 ? 'bad' : '' }, String(r.errors5)),
            h('td', null, ms(r.count ? r.sum / r.count : NaN)), h('td', null, ms(quantile(r.buckets, 0.5))), h('td', null, ms(quantile(r.buckets, 0.95)))))))));
      previous = { at, total, routes: new Map(routes.map((r) => [r.route, r.total])) };
    } else if (!metrics.reason.sessionLost) {
      replace(metricsBox, notice(metrics.reason.status === 403
        ? 'Request rates, latencies and storage figures are for operators: your role may not read /metrics.'
        : errorWords(metrics.reason), 'info', 'dash-metrics-denied'));
    }

    if (report.status === 'fulfilled') {
      const r = report.value.data || {};
      replace(integrity,
        h('div', { class: 'cards' },
          stat('Last scrub', `${r.mode || ''} ${r.completed ? 'completed' : 'stopped'}`, 'dash-scrub'),
          stat('Finished', fmtDateTime(r.finished_at), 'dash-scrub-finished'),
          stat('Checked', `${r.versions_checked} versions, ${humanBytes(r.bytes_checked || 0)}`, 'dash-scrub-checked'),
          // Orphans are information: only damage turns the card red.
          stat('Findings', `${r.findings_count} (${r.damage_count ?? r.findings_count} damage)`, 'dash-scrub-findings',
            (r.damage_count ?? r.findings_count) ? 'stat-bad' : 'stat-ok')),
        r.error ? errorBox(`Scrub error: ${r.error}`) : null,
        (r.findings || []).length ? h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
          h('thead', null, h('tr', null, ['Kind', 'Patient', 'Path', 'Version', 'Detail'].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', null, r.findings.slice(0, 100).map((f) => h('tr', { 'data-testid': 'dash-finding' },
            h('td', null, f.kind), h('td', null, h('code', null, shortId(f.patient_id))), h('td', null, f.path), h('td', null, String(f.version)), h('td', null, f.detail)))))) : null);
    } else if (!report.reason.sessionLost) {
      const e = report.reason;
      replace(integrity, notice(e.status === 404 ? 'No integrity scrub has finished yet (the background scrub runs every hour by default).'
        : e.status === 403 ? 'The integrity report is for privacy officers and auditors.' : errorWords(e), 'info', 'dash-integrity-none'));
    }

    if (bg.status === 'fulfilled') {
      const list = bg.value.data.break_glass || [];
      replace(review, list.length
        ? h('p', null, `${list.length} emergency access${list.length === 1 ? '' : 'es'} on record. `, h('a', { href: '#/admin/review', 'data-testid': 'dash-review-link' }, 'Review them'))
        : h('p', { class: 'muted' }, 'No emergency access on record.'));
    } else if (!bg.reason.sessionLost) {
      replace(review, notice(bg.reason.status === 403 ? 'The review of emergency accesses is for privacy officers and auditors.' : errorWords(bg.reason)));
    }
    updated.textContent = `Updated ${fmtDateTime(new Date(at))}.`;
  }

  refreshBtn.addEventListener('click', () => busy(refreshBtn, 'Refreshing…', refresh));
  await refresh();
  const timer = window.setInterval(() => {
    if (!document.contains(probes)) {
      window.clearInterval(timer);
      return;
    }
    if (auto.checked && document.visibilityState === 'visible') refresh().catch(() => {});
  }, 10000);
}

// --- review of emergency accesses (privacy officer, auditor) -----------------------------

export async function reviewView(main, pidParam) {
  const listBox = h('div', { 'data-testid': 'review-list' }, loading('Loading emergency accesses…'));
  const histBox = h('div', { 'data-testid': 'review-history' });
  const since = field({ label: 'Since', name: 'since', type: 'date', testid: 'review-since' });
  const filterBtn = h('button', { type: 'submit', 'data-testid': 'review-filter' }, 'Show');
  const filter = h('form', { class: 'form inline-form', novalidate: true }, since, h('div', { class: 'actions' }, filterBtn));
  const pidField = field({
    label: 'Patient id', name: 'pid', required: true, pattern: '[0-9a-f]{32}', maxlength: 32, value: pidParam || '',
    patternMessage: 'A patient id has 32 characters, digits and the letters a to f.', testid: 'review-patient',
  });
  const histBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'review-history-show' }, 'Show the access history');
  const histForm = h('form', { class: 'form', novalidate: true, 'data-testid': 'review-history-form' }, pidField,
    h('p', { class: 'hint' }, 'Read for the purpose “audit”; your reading is itself recorded.'), formError('review-history-error'), h('div', { class: 'actions' }, histBtn));
  const canHistory = hasRole('privacy-officer');
  page(main, 'Review of emergency accesses',
    h('section', { class: 'panel', 'aria-labelledby': 'rv-h' }, h('h2', { id: 'rv-h' }, 'Emergency accesses (break-glass), newest first'), filter, listBox),
    canHistory ? h('section', { class: 'panel', 'aria-labelledby': 'rh-h' }, h('h2', { id: 'rh-h' }, 'A patient’s access history'), histForm, histBox) : null);

  async function loadList() {
    replace(listBox, loading('Loading emergency accesses…'));
    try {
      const q = since.control.value ? `?since=${encodeURIComponent(new Date(`${since.control.value}T00:00:00`).toISOString())}` : '';
      const { data } = await api('GET', `/api/v1/break-glass${q}`);
      const list = data.break_glass || [];
      replace(listBox, list.length ? h('div', { class: 'table-scroll' }, stackTable(h('table', { class: 'table' },
        h('thead', null, h('tr', null, ['Declared', 'Until', 'By (account)', 'Patient', 'Reason', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, list.map((g) => h('tr', { class: 'row-break-glass', 'data-testid': 'review-row', 'data-grant-id': g.grant_id },
          h('td', null, timeEl(g.started_at)), h('td', null, timeEl(g.expires_at)),
          h('td', null, knownNames.get(g.account_id) || '', knownNames.has(g.account_id) ? h('br') : null, h('code', null, g.account_id)),
          h('td', null, h('code', null, g.patient_id)),
          h('td', { class: 'reason' }, g.reason),
          h('td', null, canHistory ? h('a', { href: `#/admin/review/${g.patient_id}`, 'data-testid': 'review-open-history' }, 'Access history') : null)))))))
        : h('p', { class: 'muted', 'data-testid': 'review-empty' }, 'No emergency access on record.'));
    } catch (err) {
      if (!err.sessionLost) replace(listBox, errorBox(errorWords(err)));
    }
  }
  filter.addEventListener('submit', (e) => {
    e.preventDefault();
    busy(filterBtn, 'Loading…', loadList);
  });
  histForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (validateForm(histForm)) window.location.hash = `#/admin/review/${histForm.elements.pid.value}`;
  });
  if (!(pidParam && canHistory)) {
    await loadList();
    return;
  }
  replace(histBox, loading('Loading the access history…'));
  try {
    const entries = await loadHistory(pidParam, 'audit');
    replace(histBox, h('p', { class: 'muted' }, 'Patient ', h('code', null, pidParam), '.'), historyTable(entries, { testid: 'audit-history', audit: true }));
    const bgOnly = histBox.querySelector('[data-testid=audit-history-filter-break-glass]');
    const others = histBox.querySelector('[data-testid=audit-history-filter-others]');
    if (others) {
      others.checked = false;
      others.dispatchEvent(new Event('change'));
    }
    if (bgOnly && entries.some((x) => x.break_glass)) {
      bgOnly.checked = true;
      bgOnly.dispatchEvent(new Event('change'));
    }
  } catch (err) {
    if (!err.sessionLost) replace(histBox, errorBox(errorWords(err)));
  }
  // After the history: it names the accounts that broke the glass.
  await loadList();
}
