// Doctors and nurses: "My patients", finding a patient, and the patient
// view (what they may see, why the rest is closed, trends, notes, orders,
// the patient's messages) with break-glass as a deliberate two-step action.
import {
  api, patientUrl, errorWords, declarePurpose, declaredPurpose,
} from '../api.js';
import {
  h, replace, announce, fmtDateTime, field, validateForm, formError, showFormError, busy,
  loading, errorBox, notice, openDialog,
} from '../dom.js';
import { state, hasRole, segmentTypes, BREAK_GLASS_ROLES, WRITER_ROLES } from '../state.js';
import {
  measurementsPanel, measurementForm, recordTree, sectionAccessPanel, threadPanel, noteForm,
} from './record.js';
import { summaryPanel, fmtWhen, ageOn } from './summary.js';

function page(main, title, ...content) {
  replace(main, h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, title), content);
}

function patientName(p) {
  return `${p.family_name}, ${p.given_name}`;
}

// Demographics when permitted; null (with the reason) otherwise.
async function demographics(id) {
  try {
    const { data, headers } = await api('GET', patientUrl(id));
    return { ok: true, p: data, decision: headers.get('X-Access-Decision') || '' };
  } catch (err) {
    return { ok: false, err };
  }
}

function patientLink(id, info) {
  const label = info && info.ok ? patientName(info.p) : `Patient ${id}`;
  return h('a', { href: `#/patient/${id}`, 'data-testid': 'patient-link', 'data-patient-id': id }, label);
}

// --- my patients ---------------------------------------------------------------------

export async function patientsView(main) {
  const mine = h('div', { 'data-testid': 'my-patients' }, loading('Loading your patients…'));
  const found = h('div', { 'aria-live': 'polite', 'data-testid': 'search-results' });

  // Search by family name or identifier (in the body, never the URL).
  const family = field({ label: 'Family name', name: 'family_name', maxlength: 200, testid: 'search-family' });
  const ident = field({ label: 'Identifier (MRN)', name: 'identifier', maxlength: 64, testid: 'search-identifier' });
  const searchBtn = h('button', { type: 'submit', class: 'primary', 'data-testid': 'search-submit' }, 'Search');
  const search = h('form', { class: 'form', novalidate: true, 'data-testid': 'search-form', role: 'search' },
    h('div', { class: 'field-row' }, family, ident), formError('search-form-error'), h('div', { class: 'actions' }, searchBtn));
  search.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(search, '');
    const body = {};
    if (search.elements.family_name.value.trim()) body.family_name = search.elements.family_name.value.trim();
    if (search.elements.identifier.value.trim()) body.identifier = search.elements.identifier.value.trim();
    if (!Object.keys(body).length) {
      showFormError(search, 'Enter a family name or an identifier.');
      search.elements.family_name.focus();
      return;
    }
    await busy(searchBtn, 'Searching…', async () => {
      try {
        const { data } = await api('POST', '/api/v1/patients/search', { body });
        const list = data.patients || [];
        replace(found, list.length
          ? h('ul', { class: 'plain' }, list.map((p) => h('li', { 'data-testid': 'search-result' },
            patientLink(p.patient_id, { ok: true, p }), ` — born ${p.birth_date}`, p.identifier ? `, ${p.identifier}` : '')))
          : h('p', { class: 'muted' }, 'No patient you may see matches. Patients you do not treat are not shown; in an emergency, open the record by its id.'));
      } catch (err) {
        if (!err.sessionLost) showFormError(search, errorWords(err));
      }
    });
  });

  // Open any record by id (e.g. from a wristband), where break-glass is offered.
  const idField = field({
    label: 'Patient id', name: 'id', required: true, pattern: '[0-9a-f]{32}', maxlength: 32,
    patternMessage: 'A patient id has 32 characters, digits and the letters a to f.', list: 'patient-ids', testid: 'open-patient-id',
  });
  const ids = h('datalist', { id: 'patient-ids' });
  const openBtn = h('button', { type: 'submit', 'data-testid': 'open-patient-submit' }, 'Open');
  const openForm = h('form', { class: 'form', novalidate: true, 'data-testid': 'open-patient-form' },
    idField, ids, formError('open-patient-error'), h('div', { class: 'actions' }, openBtn));
  openForm.addEventListener('submit', (e) => {
    e.preventDefault();
    if (validateForm(openForm)) window.location.hash = `#/patient/${openForm.elements.id.value}`;
  });

  page(main, 'My patients',
    h('section', { class: 'panel', 'aria-labelledby': 'mine-h' }, h('h2', { id: 'mine-h' }, 'Patients I treat'), mine),
    h('section', { class: 'panel', 'aria-labelledby': 'find-h' }, h('h2', { id: 'find-h' }, 'Find a patient'), search, found),
    h('section', { class: 'panel', 'aria-labelledby': 'open-h' }, h('h2', { id: 'open-h' }, 'Open a record by id'), openForm));

  api('GET', '/api/v1/patients?limit=1000').then(({ data }) => {
    replace(ids, (data.patient_ids || []).map((id) => h('option', { value: id })));
  }).catch(() => {});

  const proxied = (state.me && state.me.proxy_for) || [];
  if (proxied.length) {
    const infos = await Promise.all(proxied.map((id) => demographics(id)));
    main.querySelector('[data-testid=my-patients]').before(h('div', { 'data-testid': 'proxy-patients' },
      h('h3', null, 'Records I help with (family proxy)'),
      h('ul', { class: 'plain patient-list' }, proxied.map((id, i) => h('li', { 'data-testid': 'proxy-patient-item' }, patientLink(id, infos[i]))))));
  }
  const treating = (state.me && state.me.treating) || [];
  if (!treating.length) {
    replace(mine, h('p', { class: 'muted', 'data-testid': 'my-patients-empty' }, 'You have no active treating relationship with any patient.'));
    return;
  }
  const infos = await Promise.all(treating.map((id) => demographics(id)));
  // Sorted by name (those whose name is not shown last); filtered as one
  // types a part of a name, a birth date or an identifier. The list is the
  // clinician's own patients, already fetched: nothing is sent anywhere.
  const rows = treating.map((id, i) => ({ id, info: infos[i] }))
    .sort((a, b) => (a.info.ok ? patientName(a.info.p) : '\uffff').localeCompare(b.info.ok ? patientName(b.info.p) : '\uffff'));
  const filter = field({ label: 'Filter by name, birth date or identifier', name: 'filter', maxlength: 200, testid: 'my-patients-filter' });
  const input = filter.querySelector('input');
  const list = h('ul', { class: 'plain patient-list' });
  const count = h('p', { class: 'muted', 'aria-live': 'polite', 'data-testid': 'my-patients-count' });
  const fold = (t) => t.normalize('NFD').replace(/[\u0300-\u036f]/g, '').toLowerCase();
  const render = () => {
    const words = fold(input.value).split(/[\s,]+/).filter(Boolean);
    const shown = rows.filter(({ info }) => {
      if (!words.length) return true;
      if (!info.ok) return false;
      const hay = fold(`${info.p.given_name} ${info.p.family_name} ${info.p.birth_date} ${info.p.identifier || ''}`);
      return words.every((w) => hay.includes(w));
    });
    replace(list, shown.map(({ id, info }) => h('li', { 'data-testid': 'my-patient-item', 'data-patient-id': id },
      patientLink(id, info),
      info.ok ? h('span', { class: 'muted' }, ` — born ${info.p.birth_date}${info.p.identifier ? `, ${info.p.identifier}` : ''}`) : null)));
    count.textContent = words.length ? `${shown.length} of ${rows.length} patients match.` : `${rows.length} patients.`;
  };
  input.addEventListener('input', render);
  render();
  replace(mine, filter, count, list);
}

// --- break-glass -----------------------------------------------------------------------

const BG_MINUTES = 60;
// A grant declared in this session (cleared at sign-out with the tokens).
const emergencyUntil = (pid) => {
  const p = declaredPurpose(pid);
  return p && p.purpose === 'emergency' && !p.estimated ? new Date(p.until).toISOString() : null;
};

function codePoints(s) {
  return [...s].length;
}

// Step 2 of break-glass: the dialog that says what will be logged and asks for the reason.
function breakGlassDialog(pid) {
  const me = state.me || {};
  return openDialog({
    title: 'Emergency access (break the glass)',
    testid: 'break-glass-dialog',
    initialFocus: '#bg-reason',
    build: (close) => {
      const reason = h('textarea', {
        id: 'bg-reason', rows: 3, maxlength: 2000, required: true, 'aria-describedby': 'bg-reason-hint bg-summary',
        'data-testid': 'break-glass-reason',
      });
      const summary = h('p', { id: 'bg-summary', class: 'bg-summary', 'data-testid': 'break-glass-summary', 'aria-live': 'polite' });
      const error = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'break-glass-error' });
      const confirm = h('button', { type: 'submit', class: 'danger', disabled: true, 'data-testid': 'break-glass-confirm' }, 'Open the record in an emergency');
      const cancel = h('button', { type: 'button', 'data-testid': 'break-glass-cancel', onclick: () => close(null) }, 'Cancel');
      const update = () => {
        const r = reason.value.trim();
        summary.textContent = `Emergency access by ${me.display_name || me.username} to patient ${pid} for ${BG_MINUTES} minutes, reason: “${r || '…'}”. The patient will be notified and a privacy officer will review.`;
        confirm.disabled = codePoints(r) < 10;
      };
      reason.addEventListener('input', update);
      update();
      const form = h('form', { class: 'form', novalidate: true },
        h('p', null, 'Use this only when the patient needs care now and you cannot reach them or their consent. You will be able to read (not change) the record for 60 minutes. Parts the patient closed to emergencies stay closed.'),
        h('div', { class: 'field' },
          h('label', { for: 'bg-reason' }, 'Reason (at least 10 characters)'),
          reason,
          h('p', { class: 'hint', id: 'bg-reason-hint' }, 'Written to the tamper-evident log, shown to the patient and to the privacy officer.')),
        h('h3', null, 'What will be logged'),
        summary, error,
        h('div', { class: 'actions' }, confirm, cancel));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        const r = reason.value.trim();
        if (codePoints(r) < 10) {
          error.textContent = 'Write a reason of at least 10 characters.';
          reason.focus();
          return;
        }
        error.textContent = '';
        await busy(confirm, 'Declaring…', async () => {
          try {
            const { data } = await api('POST', patientUrl(pid, '/break-glass'), { body: { reason: r } });
            close(data);
          } catch (err) {
            if (err.sessionLost) close(null);
            else error.textContent = errorWords(err);
          }
        });
        confirm.disabled = codePoints(reason.value.trim()) < 10;
      });
      return form;
    },
  });
}

function breakGlassPanel(pid, onGranted) {
  const until = emergencyUntil(pid);
  const active = !!until;
  const button = h('button', { type: 'button', class: 'danger', 'data-testid': 'break-glass-button' }, 'Emergency access…');
  button.addEventListener('click', async () => {
    const grant = await breakGlassDialog(pid);
    if (!grant) return;
    // What is read under the grant is read for the purpose "emergency".
    declarePurpose(pid, 'emergency', Date.parse(grant.expires_at));
    announce(`Emergency access granted until ${fmtDateTime(grant.expires_at)}. The patient has been notified; a privacy officer will review it.`, 'warn');
    onGranted();
  });
  return h('section', { class: 'panel emergency', 'aria-labelledby': 'bg-h', 'data-testid': 'break-glass-panel' },
    h('h2', { id: 'bg-h' }, 'Emergency access'),
    active
      ? notice(`Emergency access is active until ${fmtDateTime(until)}. Everything you open is logged, the patient is told and a privacy officer reviews it.`, 'warn', 'break-glass-active')
      : h('p', null, 'If this patient needs urgent care and the record is closed to you, you may open it for 60 minutes. This is logged, the patient is told, and a privacy officer reviews it.'),
    active ? null : button);
}

// --- the patient view --------------------------------------------------------------------

export async function patientView(main, pid) {
  const header = h('div', { 'data-testid': 'patient-header' }, loading('Loading…'));
  page(main, 'Patient', header);
  const info = await demographics(pid);
  if (!document.contains(header)) return;
  const h1 = main.querySelector('h1');
  if (info.ok) {
    h1.textContent = patientName(info.p);
    // Birth date and age in words; the record's id (for opening it by id,
    // e.g. from a wristband) only on request, never in the line people read.
    const age = ageOn(info.p.birth_date);
    replace(header, h('p', { class: 'muted', 'data-testid': 'patient-header-line' },
      `Born ${fmtWhen(info.p.birth_date)}${age !== null ? ` (age ${age})` : ''}, ${info.p.sex}${info.p.identifier ? `, medical record number ${info.p.identifier}` : ''}.`),
    h('details', { class: 'record-id' }, h('summary', null, 'Record id'),
      h('p', null, 'To open this record by its id: ', h('code', { 'data-testid': 'patient-record-id' }, pid))));
  } else if (info.err.sessionLost) {
    return;
  } else {
    h1.textContent = 'Patient record';
    replace(header,
      h('p', { class: 'muted' }, 'Patient id ', h('code', null, pid), '.'),
      errorBox(`You cannot see this patient’s identity. ${errorWords(info.err)}`, 'patient-denied'));
  }

  const treating = ((state.me && state.me.treating) || []).includes(pid);
  if (info.ok && /^permit break-glass/.test(info.decision) && !emergencyUntil(pid)) {
    // A grant declared earlier (another session) is still in force; one
    // declared in this tab keeps its exact end (and its "active" notice).
    declarePurpose(pid, 'emergency', Date.now() + BG_MINUTES * 60 * 1000, true);
    header.append(notice('You are reading this record under an emergency access declared earlier. Everything you open is logged, the patient is told and a privacy officer reviews it.', 'warn', 'break-glass-earlier'));
  }
  const types = await segmentTypes().catch(() => []);
  const rerender = () => patientView(main, pid);
  const parts = [];
  const bgRole = hasRole(...BREAK_GLASS_ROLES);
  if (bgRole && (!treating || emergencyUntil(pid))) parts.push(breakGlassPanel(pid, rerender));

  // The record as a whole first: closed entirely, the page says so once.
  const listing = api('GET', patientUrl(pid, '/segments'));
  const closed = await listing.then(() => null, (err) => err);
  if (!document.contains(header)) return;
  if (closed) {
    if (closed.sessionLost) return;
    // A role limited to some sections is refused the whole-record listing
    // with no-role-permission; the identity's refusal then says more.
    const why = closed.reason === 'no-role-permission' && !info.ok && info.err.reason ? info.err : closed;
    parts.push(h('section', { class: 'panel', 'aria-labelledby': 'closed-h', 'data-testid': 'record-closed' },
      h('h2', { id: 'closed-h' }, 'This record is closed to you'),
      errorBox(errorWords(why), 'record-closed-reason'),
      h('p', { class: 'hint' }, bgRole
        ? 'If the patient needs urgent care, use emergency access above. Otherwise ask the patient, or your institution, for a treating relationship.'
        : 'Ask the patient for their permission, or your institution for a treating relationship.')));
    parts.push(sectionAccessPanel(pid, types));
    main.append(...parts);
    return;
  }
  // The summary first (what a clinician reads), then the raw series and entries.
  parts.push(summaryPanel(pid, { mode: 'clinician' }));
  parts.push(measurementsPanel(pid));
  parts.push(recordTree(pid, listing));
  parts.push(sectionAccessPanel(pid, types));
  // Break-glass opens reads only: no writing forms under an emergency grant.
  const canWrite = hasRole(...WRITER_ROLES) && !(info.ok && /^permit break-glass/.test(info.decision));
  if (canWrite) {
    parts.push(h('section', { class: 'panel', 'aria-labelledby': 'write-h' },
      h('h2', { id: 'write-h' }, 'Clinical note'), noteForm(pid)));
  }
  parts.push(threadPanel(pid, { mode: 'clinician', canOrder: canWrite }));
  parts.push(h('section', { class: 'panel', 'aria-labelledby': 'reading-h' },
    h('h2', { id: 'reading-h' }, 'Record a reading'),
    h('details', null, h('summary', null, 'Blood pressure'), measurementForm(pid, 'bp')),
    h('details', null, h('summary', null, 'Blood glucose'), measurementForm(pid, 'glucose')),
    h('details', null, h('summary', null, 'Weight'), measurementForm(pid, 'weight'))));
  if (bgRole && treating && !emergencyUntil(pid)) parts.push(breakGlassPanel(pid, rerender));
  main.append(...parts);
}

