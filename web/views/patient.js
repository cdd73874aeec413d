// The patient's portal: overview with latest readings and charts, forms to
// record data, the record tree, orders and messages, sharing (consents and
// settings) and the access history.
import {
  api, patientUrl, errorWords, reasonWords, uploadAttachment,
} from '../api.js';
import {
  h, replace, announce, timeEl, fmtDateTime, field, checkboxGroup, checkedValues, validateForm,
  formError, showFormError, busy, loading, errorBox, localDateTimeValue, localDateValue,
  labelOf, confirmDialog, humanBytes, shortId, stackTable,
} from '../dom.js';
import {
  state, segmentTypes, knownNames, ALL_ROLES, PURPOSES,
} from '../state.js';
import {
  MEASURES, measurementsPanel, measurementForm, recordTree, threadPanel,
} from './record.js';
import { summaryPanel } from './summary.js';

function page(main, title, ...content) {
  replace(main, h('h1', { tabindex: '-1', 'data-testid': 'page-title' }, title), content);
}

// --- overview --------------------------------------------------------------------

export function overviewView(main, pid) {
  const alerts = h('div', { 'data-testid': 'notifications' });
  page(main, 'My health',
    alerts,
    h('p', null, h('a', { href: '#/me/add/bp', class: 'button primary', 'data-testid': 'link-record-bp' }, 'Record a blood pressure'), ' ',
      h('a', { href: '#/me/add', class: 'button' }, 'Record something else'), ' ',
      h('a', { href: '#/me/summary', class: 'button', 'data-testid': 'link-summary' }, 'Read my health summary')),
    measurementsPanel(pid));
  api('GET', '/api/v1/me/notifications').then(async ({ data }) => {
    const all = data.notifications || [];
    const recoveries = all.filter((n) => n.kind === 'account-recovery');
    const list = all.filter((n) => n.kind === 'break-glass');
    if (!list.length && !recoveries.length) return;
    await learnNames(pid).catch(() => {});
    const panels = [];
    // Someone asked for new credentials for this account: the person sees
    // it at once and stops it if they did not ask.
    for (const n of recoveries) {
      const status = h('p', { role: 'status' });
      const stop = h('button', { type: 'button', class: 'danger', 'data-testid': 'recovery-cancel' }, 'I did not ask for this: stop it');
      stop.addEventListener('click', async () => {
        stop.disabled = true;
        try {
          await api('DELETE', '/api/v1/me/recovery');
          status.textContent = 'Stopped. Your password and second factor stay as they are.';
        } catch (err) {
          stop.disabled = false;
          status.textContent = errorWords(err);
        }
      });
      panels.push(h('section', { class: 'panel alert-panel', 'aria-labelledby': 'recovery-h', 'data-testid': 'recovery-notice' },
        h('h2', { id: 'recovery-h' }, 'Someone asked to reset your sign-in'),
        h('p', null, `An administrator opened a recovery of your account on `, timeEl(n.at),
          `. Reason given: “${n.reason}”. A second administrator can complete it from ${fmtDateTime(n.until)}; your sessions then end and you get a temporary password.`),
        stop, status));
    }
    if (list.length) {
      panels.push(h('section', { class: 'panel alert-panel', 'aria-labelledby': 'notif-h' },
        h('h2', { id: 'notif-h' }, 'Emergency access to your record'),
        h('p', null, 'These people opened your record in an emergency. A privacy officer reviews every one.'),
        h('ul', null, list.map((n) => h('li', { 'data-testid': 'notification-item' },
          h('strong', null, knownNames.get(n.account_id) || `Account ${shortId(n.account_id)}`), ' on ', timeEl(n.at),
          ` (until ${fmtDateTime(n.until)}). Reason given: “${n.reason}”.`)))));
    }
    replace(alerts, ...panels);
  }).catch(() => {});
}

// --- recording data ----------------------------------------------------------------

const nowIso = () => new Date().toISOString();
const timeField = (key) => field({ label: 'When', name: 'time', type: 'datetime-local', required: true, value: localDateTimeValue(), testid: `${key}-time` });
const scoreField = (key, label) => field({
  label, name: 'score', type: 'number', required: true, min: 0, max: 10, step: 1, inputmode: 'numeric',
  hint: '0 means none, 10 the worst you can imagine.', testid: `${key}-score`, unit: 'of 10',
});

// Forms for things that are not measurements (free JSON, or text).
const DIARY = {
  diet: {
    title: 'Diet', intro: 'What you ate or drank.',
    fields: () => [
      field({ label: 'Meal', name: 'meal', type: 'select', required: true, options: [['breakfast', 'Breakfast'], ['lunch', 'Lunch'], ['dinner', 'Dinner'], ['snack', 'Snack'], ['drink', 'Drink']], testid: 'diet-meal' }),
      field({ label: 'What you had', name: 'description', type: 'textarea', required: true, maxlength: 2000, rows: 3, testid: 'diet-description' }),
      timeField('diet'),
    ],
    path: () => 'life-record/diet',
    body: (f) => ({ data: { meal: f.meal.value, description: f.description.value.trim(), time: new Date(f.time.value).toISOString() } }),
  },
  activity: {
    title: 'Physical activity', intro: 'A walk, a swim, a workout.',
    fields: () => [
      field({ label: 'Activity', name: 'activity', required: true, maxlength: 200, placeholder: 'walking', testid: 'activity-activity' }),
      field({ label: 'Duration', name: 'minutes', type: 'number', required: true, min: 1, max: 1440, step: 1, unit: 'minutes', testid: 'activity-minutes' }),
      field({ label: 'Intensity', name: 'intensity', type: 'select', required: true, options: [['light', 'Light'], ['moderate', 'Moderate'], ['vigorous', 'Vigorous']], testid: 'activity-intensity' }),
      timeField('activity'),
    ],
    path: () => 'life-record/physical-activity',
    body: (f) => ({ data: { activity: f.activity.value.trim(), minutes: Number(f.minutes.value), intensity: f.intensity.value, time: new Date(f.time.value).toISOString() } }),
  },
  mood: {
    title: 'Mood', intro: 'How you feel today.',
    fields: () => [scoreField('mood', 'Low mood'), field({ label: 'Note', name: 'note', maxlength: 1000, testid: 'mood-note' }), timeField('mood')],
    path: () => 'patient-narrative/mood',
    body: (f) => ({ data: withNote({ score: Number(f.score.value), scale: '0-10', time: new Date(f.time.value).toISOString() }, f.note.value) }),
  },
  pain: {
    title: 'Pain', intro: 'How much pain you have, and where.',
    fields: () => [scoreField('pain', 'Pain'), field({ label: 'Where', name: 'location', maxlength: 200, testid: 'pain-location' }),
      field({ label: 'Note', name: 'note', maxlength: 1000, testid: 'pain-note' }), timeField('pain')],
    path: () => 'patient-narrative/pain',
    body: (f) => {
      const d = withNote({ score: Number(f.score.value), scale: '0-10', time: new Date(f.time.value).toISOString() }, f.note.value);
      if (f.location.value.trim()) d.location = f.location.value.trim();
      return { data: d };
    },
  },
  family: {
    title: 'Family history', intro: 'Illnesses of your relatives.',
    fields: () => [
      field({ label: 'Relative', name: 'relative', type: 'select', required: true, options: [['mother', 'Mother'], ['father', 'Father'], ['sibling', 'Brother or sister'], ['child', 'Child'], ['grandparent', 'Grandparent'], ['other-relative', 'Other relative']], testid: 'family-relative' }),
      field({ label: 'Condition', name: 'condition', required: true, maxlength: 200, placeholder: 'type 2 diabetes', testid: 'family-condition' }),
      field({ label: 'Age when it started', name: 'age', type: 'number', min: 0, max: 130, step: 1, unit: 'years', testid: 'family-age' }),
      field({ label: 'Note', name: 'note', maxlength: 1000, testid: 'family-note' }),
    ],
    path: (f) => `family-history/${f.relative.value}`,
    body: (f) => {
      const d = withNote({ relative: f.relative.value, condition: f.condition.value.trim(), recorded_at: nowIso() }, f.note.value);
      if (f.age.value !== '') d.age_at_onset = Number(f.age.value);
      return { data: d };
    },
  },
  notes: {
    title: 'Free notes', intro: 'Anything else, in your own words.',
    fields: () => [field({ label: 'Note', name: 'text', type: 'textarea', required: true, maxlength: 20000, rows: 6, testid: 'notes-text' })],
    path: () => 'patient-narrative/notes',
    body: (f) => ({ text: f.text.value.trim() }),
  },
};

function withNote(d, note) {
  if (note && note.trim()) d.note = note.trim();
  return d;
}

function diaryForm(pid, key) {
  const spec = DIARY[key];
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': `${key}-submit` }, `Save ${spec.title.toLowerCase()}`);
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': `${key}-form`, 'aria-label': spec.title },
    h('p', { class: 'hint' }, spec.intro), spec.fields(), formError(`${key}-form-error`), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const f = form.elements;
    const ok = validateForm(form, () => {
      const out = [];
      for (const c of form.querySelectorAll('textarea[required], input[required]:not([type=number]):not([type=datetime-local])')) {
        if (c.value && !c.value.trim()) out.push([c, 'Write something first.']);
      }
      if (f.time && f.time.value && new Date(f.time.value).getTime() > Date.now() + 5 * 60 * 1000) out.push([f.time, 'The time cannot be in the future.']);
      return out;
    });
    if (!ok) return;
    await busy(submit, 'Saving…', async () => {
      try {
        const { data: meta } = await api('PUT', patientUrl(pid, `/segments/${spec.path(f)}`), { body: spec.body(f) });
        announce(`${spec.title} saved (version ${meta.version}).`, 'success');
        form.reset();
        if (f.time) f.time.value = localDateTimeValue();
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

const SLUG_RE = '[a-z0-9](?:[a-z0-9\\-]*[a-z0-9])?';
const MAX_ATTACHMENT = 64 * 1024 * 1024;

function slugify(name) {
  const base = name.replace(/\.[^.]*$/, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  return (base || 'file').slice(0, 64).replace(/-+$/, '');
}

async function attachmentForm(pid) {
  const types = await segmentTypes();
  const file = field({ label: 'File', name: 'file', type: 'file', required: true, testid: 'attachment-file', hint: 'An image, a PDF, a scan… at most 64 MiB.' });
  const section = field({
    label: 'Section', name: 'section', type: 'select', required: true, value: 'other',
    options: types.map((t) => [t.name, `${labelOf(t.name)} — ${t.description}`]), testid: 'attachment-section',
  });
  const name = field({
    label: 'Name', name: 'name', required: true, maxlength: 64, pattern: SLUG_RE,
    patternMessage: 'Use lower-case letters, digits and dashes (for example “knee-x-ray”).',
    hint: 'Saving again under the same name keeps the older file as a previous version.', testid: 'attachment-name',
  });
  file.control.addEventListener('change', () => {
    const fl = file.control.files[0];
    if (fl && !name.control.value) name.control.value = slugify(fl.name);
  });
  const progress = h('progress', { max: 100, value: 0, 'data-testid': 'attachment-progress', 'aria-label': 'Upload progress' });
  const progressText = h('span', { 'aria-live': 'polite', 'data-testid': 'attachment-progress-text' });
  const progressBox = h('div', { class: 'progress', hidden: true }, progress, ' ', progressText);
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'attachment-submit' }, 'Upload');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'attachment-form', 'aria-label': 'Upload a file' },
    h('p', { class: 'hint' }, 'The file is encrypted as it is stored.'), file, section, name, progressBox,
    formError('attachment-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const fl = file.control.files[0];
    const ok = validateForm(form, () => (fl && fl.size > MAX_ATTACHMENT
      ? [[file.control, `This file is ${humanBytes(fl.size)}; the limit is 64 MiB.`]]
      : (fl && fl.size === 0 ? [[file.control, 'This file is empty.']] : [])));
    if (!ok) return;
    const path = `${section.control.value}/${name.control.value}`;
    progressBox.hidden = false;
    progress.value = 0;
    progressText.textContent = 'Starting…';
    await busy(submit, 'Uploading…', async () => {
      try {
        const meta = await uploadAttachment(pid, path, fl, (loaded, total) => {
          const pct = total ? Math.round((loaded / total) * 100) : 0;
          progress.value = pct;
          progressText.textContent = `${pct}% (${humanBytes(loaded)} of ${humanBytes(total)})`;
        });
        progress.value = 100;
        progressText.textContent = 'Done.';
        announce(`File uploaded as ${path} (version ${meta.version}).`, 'success');
        form.reset();
      } catch (err) {
        progressText.textContent = 'Not uploaded.';
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

const ADD_ITEMS = [
  ['bp', 'Blood pressure'], ['glucose', 'Blood glucose'], ['weight', 'Weight'], ['height', 'Height'],
  ['hr', 'Heart rate'], ['diet', 'Diet'], ['activity', 'Physical activity'], ['mood', 'Mood'], ['pain', 'Pain'],
  ['family', 'Family history'], ['notes', 'Free notes'], ['file', 'A file (attachment)'],
];

export async function addView(main, pid, kind) {
  const nav = h('nav', { 'aria-label': 'What to record', class: 'subnav' },
    h('ul', null, ADD_ITEMS.map(([k, t]) => h('li', null,
      h('a', { href: `#/me/add/${k}`, 'aria-current': k === kind ? 'page' : undefined, 'data-testid': `add-${k}` }, t)))));
  const item = ADD_ITEMS.find(([k]) => k === kind);
  if (!item) {
    page(main, 'Record your health data', h('p', null, 'Choose what to record:'), nav);
    return;
  }
  let form;
  if (MEASURES[kind]) form = measurementForm(pid, kind);
  else if (DIARY[kind]) form = diaryForm(pid, kind);
  else form = await attachmentForm(pid);
  page(main, `Record: ${item[1].toLowerCase()}`, nav, h('section', { class: 'panel' }, form));
}

// --- record, messages ---------------------------------------------------------------

// The summary first: the record in words, built from the imported
// documents and the readings (the stored entries are one link away).
export function summaryView(main, pid) {
  page(main, 'My health summary', summaryPanel(pid, { mode: 'patient' }));
}

export function recordView(main, pid) {
  page(main, 'Stored entries', h('p', { class: 'hint' }, 'Everything stored in your record, section by section, as it is kept: every change is a version. ',
    h('a', { href: '#/me/summary', class: 'plain-link' }, 'Your health summary'), ' reads more easily.'), recordTree(pid));
}

export function messagesView(main, pid) {
  page(main, 'Orders and messages', threadPanel(pid, { mode: 'patient' }));
}

// --- sharing --------------------------------------------------------------------------

const GRANTEE_WORDS = { account: 'Person', department: 'Department', institution: 'Institution', role: 'Everyone with the role' };
const ACTION_WORDS = {
  read: 'read', list: 'see the list', write: 'add to', export: 'export',
  'search-patients': 'find you', 'read-demographics': 'see who you are', 'read-access-history': 'see who looked',
};

function consentStatus(c) {
  const now = Date.now();
  if (c.expires_at && Date.parse(c.expires_at) <= now) return ['expired', 'badge-muted'];
  if (c.not_before && Date.parse(c.not_before) > now) return ['not yet', 'badge-muted'];
  return ['in force', c.effect === 'deny' ? 'badge-deny' : 'badge-ok'];
}

function granteeText(c) {
  if (c.grantee_kind === 'role') return `${GRANTEE_WORDS.role} “${c.grantee}”`;
  const name = knownNames.get(c.grantee);
  return `${GRANTEE_WORDS[c.grantee_kind] || c.grantee_kind} ${name ? `${name} (${shortId(c.grantee)})` : c.grantee}`;
}

export async function sharingView(main, pid) {
  const consentsBox = h('div', { 'data-testid': 'consents' }, loading('Loading your consents…'));
  const settingsBox = h('div', null, loading('Loading your settings…'));
  const relBox = h('div', null, loading('Loading your care team…'));
  page(main, 'Sharing',
    h('p', { class: 'hint' }, 'You decide who may see which part of your record. A refusal always wins over a permission.'),
    h('section', { class: 'panel', 'aria-labelledby': 'consents-h' }, h('h2', { id: 'consents-h' }, 'Your permissions and refusals'), consentsBox),
    h('section', { class: 'panel', 'aria-labelledby': 'new-consent-h' }, h('h2', { id: 'new-consent-h' }, 'Allow or refuse access'), await consentForm(pid, () => loadConsents())),
    h('section', { class: 'panel', 'aria-labelledby': 'settings-h' }, h('h2', { id: 'settings-h' }, 'Emergencies and delegation'), settingsBox),
    h('section', { class: 'panel', 'aria-labelledby': 'team-h' }, h('h2', { id: 'team-h' }, 'Who treats you'), relBox));

  async function loadConsents() {
    try {
      const { data } = await api('GET', patientUrl(pid, '/consents'));
      const list = data.consents || [];
      if (!list.length) {
        replace(consentsBox, h('p', { class: 'muted', 'data-testid': 'consents-empty' }, 'You have not given or refused any access yet. Your treating clinicians see your record; nobody else does.'));
        return;
      }
      replace(consentsBox, h('div', { class: 'table-scroll' }, stackTable(h('table', { class: 'table' },
        h('caption', { class: 'visually-hidden' }, 'Your permissions and refusals'),
        h('thead', null, h('tr', null, ['', 'Part of the record', 'Who', 'May', 'Purposes', 'From', 'Until', 'Status', ''].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', null, list.map((c) => {
          const [st, cls] = consentStatus(c);
          const revoke = h('button', { type: 'button', class: 'danger small', 'data-testid': 'consent-revoke' }, 'Revoke');
          revoke.addEventListener('click', async () => {
            const yes = await confirmDialog('Revoke this?', `${c.effect === 'deny' ? 'Refusal' : 'Permission'} for ${granteeText(c)} on ${c.path_prefix || 'your whole record'} ends at once.`, 'Revoke', true);
            if (!yes) return;
            await busy(revoke, 'Revoking…', async () => {
              try {
                await api('DELETE', patientUrl(pid, `/consents/${c.consent_id}`));
                announce('Revoked.', 'success');
                await loadConsents();
              } catch (err) {
                if (!err.sessionLost) announce(errorWords(err), 'error');
              }
            });
          });
          return h('tr', { 'data-testid': 'consent-row', 'data-consent-id': c.consent_id, 'data-effect': c.effect },
            h('td', null, h('span', { class: `badge ${c.effect === 'deny' ? 'badge-deny' : 'badge-ok'}` }, c.effect === 'deny' ? 'Refused' : 'Allowed')),
            h('td', null, c.path_prefix ? c.path_prefix.split('/').map(labelOf).join(' › ') : 'Whole record'),
            h('td', null, granteeText(c)),
            h('td', null, (c.actions || []).map((a) => ACTION_WORDS[a] || a).join(', ')),
            h('td', null, (c.purposes || []).length ? c.purposes.map(labelOf).join(', ') : 'any'),
            h('td', null, c.not_before ? timeEl(c.not_before, false) : 'now'),
            h('td', null, c.expires_at ? timeEl(c.expires_at, false) : 'no end'),
            h('td', null, h('span', { class: `badge ${cls}` }, st)),
            h('td', null, revoke));
        }))))));
    } catch (err) {
      if (!err.sessionLost) replace(consentsBox, errorBox(errorWords(err)));
    }
  }

  async function loadSettings() {
    try {
      const [{ data: s }, types] = await Promise.all([api('GET', patientUrl(pid, '/settings')), segmentTypes()]);
      replace(settingsBox, settingsForm(pid, s, types));
    } catch (err) {
      if (!err.sessionLost) replace(settingsBox, errorBox(errorWords(err)));
    }
  }

  async function loadRelationships() {
    try {
      const { data } = await api('GET', patientUrl(pid, '/relationships'));
      const active = (data.relationships || []).filter((r) => r.active);
      if (!active.length) {
        replace(relBox, h('p', { class: 'muted' }, 'No clinician has an active treating relationship with you.'));
        return;
      }
      replace(relBox, h('ul', { class: 'plain', 'data-testid': 'care-team' }, active.map((r) => {
        const end = h('button', { type: 'button', class: 'small', 'data-testid': 'relationship-end' }, 'End');
        end.addEventListener('click', async () => {
          const yes = await confirmDialog('End this treating relationship?', 'This clinician loses access to your record at once (unless you allowed them otherwise).', 'End it', true);
          if (!yes) return;
          await busy(end, 'Ending…', async () => {
            try {
              await api('DELETE', patientUrl(pid, `/relationships/${r.relationship_id}`));
              announce('The relationship has ended.', 'success');
              await loadRelationships();
            } catch (err) {
              if (!err.sessionLost) announce(errorWords(err), 'error');
            }
          });
        });
        return h('li', { 'data-testid': 'care-team-item' },
          h('strong', null, knownNames.get(r.clinician_id) || 'Clinician'), ` (id ${r.clinician_id}), since `, timeEl(r.started_at, false), ' ', end);
      })));
      // The ids are what a consent names: offer them.
      const dl = document.getElementById('grantee-suggestions');
      if (dl) {
        replace(dl, active.map((r) => h('option', { value: r.clinician_id }, knownNames.get(r.clinician_id) || 'your clinician')));
      }
    } catch (err) {
      if (!err.sessionLost) replace(relBox, errorBox(errorWords(err)));
    }
  }

  await learnNames(pid).catch(() => {});
  await Promise.all([loadConsents(), loadSettings(), loadRelationships()]);
}

async function consentForm(pid, onSaved) {
  const types = await segmentTypes();
  const effect = field({ label: 'Do you want to allow or refuse?', name: 'effect', type: 'select', required: true, options: [['grant', 'Allow access'], ['deny', 'Refuse access']], testid: 'consent-effect' });
  const section = field({
    label: 'Part of the record', name: 'section', type: 'select', value: '',
    options: [['', 'The whole record'], ...types.map((t) => [t.name, `${labelOf(t.name)} — ${t.description}`])], testid: 'consent-section', required: true,
  });
  const sub = field({
    label: 'Only this sub-section', name: 'sub', maxlength: 200, pattern: `${SLUG_RE}(/${SLUG_RE})*`,
    patternMessage: 'Use lower-case names separated by “/” (for example “cardiology”).',
    hint: 'For example “cardiology” under internal medicine. Leave empty for the whole section.', testid: 'consent-subpath',
  });
  const kind = field({ label: 'Who', name: 'grantee_kind', type: 'select', required: true, options: [['account', 'A person (account id)'], ['department', 'A department (id)'], ['institution', 'An institution (id)'], ['role', 'Everyone with a role']], testid: 'consent-grantee-kind' });
  const grantee = field({
    label: 'Their id or role', name: 'grantee', required: true, maxlength: 64, list: 'grantee-suggestions', testid: 'consent-grantee',
    hint: 'A 32-character id your clinic gives you, or a role such as “pharmacist”.',
  });
  const datalist = h('datalist', { id: 'grantee-suggestions' });
  const roleList = h('datalist', { id: 'role-suggestions' }, ALL_ROLES.filter((r) => r !== 'patient').map((r) => h('option', { value: r })));
  kind.control.addEventListener('change', () => {
    grantee.control.setAttribute('list', kind.control.value === 'role' ? 'role-suggestions' : 'grantee-suggestions');
  });
  const actions = checkboxGroup('What they may do', 'actions', [['read', 'Read', true], ['list', 'See what is there', true], ['write', 'Add to it', false], ['export', 'Export it', false]], 'consent-actions');
  const purposes = checkboxGroup('For which purposes', 'purposes', PURPOSES.map((p) => [p, labelOf(p), false]), 'consent-purposes', 'None ticked means any purpose.');
  const from = field({ label: 'Starting on', name: 'from', type: 'date', min: localDateValue(), testid: 'consent-from' });
  const until = field({ label: 'Ending after', name: 'until', type: 'date', min: localDateValue(), testid: 'consent-until', hint: 'Leave empty for no end.' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'consent-submit' }, 'Save');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'consent-form' },
    effect, h('div', { class: 'field-row' }, section, sub), h('div', { class: 'field-row' }, kind, grantee), datalist, roleList,
    actions, purposes, h('div', { class: 'field-row' }, from, until), formError('consent-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const f = form.elements;
    const ok = validateForm(form, () => {
      const out = [];
      const g = f.grantee.value.trim();
      if (g && f.grantee_kind.value === 'role' && !ALL_ROLES.includes(g)) out.push([f.grantee, `Choose a role: ${ALL_ROLES.filter((r) => r !== 'patient').join(', ')}.`]);
      if (g && f.grantee_kind.value !== 'role' && !/^[0-9a-f]{32}$/.test(g)) out.push([f.grantee, 'An id has 32 characters, digits and the letters a to f.']);
      if (f.sub.value && !f.section.value) out.push([f.sub, 'Choose a part of the record first.']);
      if (f.from.value && f.until.value && f.until.value < f.from.value) out.push([f.until, 'The end must be after the start.']);
      if (f.until.value && f.until.value < localDateValue()) out.push([f.until, 'The end must be today or later.']);
      if (!checkedValues(form, 'actions').length) out.push([form.querySelector('input[name=actions]'), 'Tick at least one thing they may do.']);
      return out;
    });
    if (!ok) return;
    const body = {
      effect: f.effect.value,
      grantee_kind: f.grantee_kind.value,
      grantee: f.grantee.value.trim(),
      actions: checkedValues(form, 'actions'),
    };
    const prefix = [f.section.value, f.sub.value.trim()].filter(Boolean).join('/');
    if (prefix) body.path_prefix = prefix;
    const purposesList = checkedValues(form, 'purposes');
    if (purposesList.length) body.purposes = purposesList;
    // Dates in local time: from the start of the first day to the end of the last.
    if (f.from.value) body.not_before = new Date(`${f.from.value}T00:00:00`).toISOString();
    if (f.until.value) body.expires_at = new Date(`${f.until.value}T23:59:59`).toISOString();
    await busy(submit, 'Saving…', async () => {
      try {
        await api('POST', patientUrl(pid, '/consents'), { body });
        announce(body.effect === 'deny' ? 'Refusal saved. It applies at once.' : 'Permission saved. It applies at once.', 'success');
        f.grantee.value = '';
        f.sub.value = '';
        await onSaved();
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

function settingsForm(pid, s, types) {
  const closed = new Set(s.never_break_glass || []);
  const topNames = new Set(types.map((t) => t.name));
  const extra = [...closed].filter((p) => !topNames.has(p));
  const allow = h('input', { type: 'checkbox', id: 'settings-allow-delegation', name: 'allow_delegation', checked: !!s.allow_delegation, 'data-testid': 'settings-allow-delegation' });
  const never = checkboxGroup('Never open these parts in an emergency (“break the glass”)', 'never',
    [...types.map((t) => [t.name, labelOf(t.name), closed.has(t.name)]), ...extra.map((p) => [p, p, true])],
    'settings-never-break-glass',
    'In an emergency a clinician may open your record for 60 minutes; you are told, and a privacy officer reviews it. Ticked parts stay closed even then.');
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'settings-submit' }, 'Save settings');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'settings-form' },
    h('div', { class: 'check' }, allow, h('label', { for: 'settings-allow-delegation' }, 'Let my treating doctors pass my care on to a colleague (delegation)')),
    never, formError('settings-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const body = { allow_delegation: allow.checked, never_break_glass: checkedValues(form, 'never') };
    await busy(submit, 'Saving…', async () => {
      try {
        await api('PUT', patientUrl(pid, '/settings'), { body });
        announce('Settings saved.', 'success');
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

// --- access history -------------------------------------------------------------------

const VERBS = {
  read: 'Read', list: 'Listed', write: 'Write', export: 'Export', 'read-demographics': 'Read your name and birth date',
  'manage-consent': 'Manage your sharing', 'read-access-history': 'Read your access history',
  'manage-relationship': 'Manage treating relationships', delegate: 'Delegate your care', 'break-glass': 'Declare an emergency',
  'erase-patient': 'Erase your record',
};
const LEDGER_ACTIONS = {
  'segment.write': 'Saved a new version', 'segment.read': 'Read', 'consent.grant': 'Changed your consents',
  'consent.revoke': 'Revoked a consent', 'relationship.start': 'Started a treating relationship',
  'key.patient-root-created': 'Created your record', 'key.patient-root-destroyed': 'Erased your record',
};

// A segment path as the sections of the record people know ("Physical signs
// › Blood pressure"): an imported document's key or any other id is named
// for what it is, never shown.
export function pathWords(path) {
  return String(path).split('/').map((c) => {
    if (/^d[0-9a-f]{16}(-p\d+)?$/.test(c)) return 'an imported document';
    if (/^[0-9a-f]{32}$/.test(c)) return 'an entry';
    return labelOf(c);
  }).join(' › ');
}

export function whatWords(e) {
  let verb;
  if (e.action === 'decision') verb = VERBS[e.what] || labelOf(e.what);
  else if (e.action === 'break-glass') verb = 'Declared an emergency (break-glass)';
  else verb = LEDGER_ACTIONS[e.action] || labelOf(e.action.replace(/\./g, ' '));
  if (e.path) return `${verb}: ${pathWords(e.path)}`;
  return e.action === 'decision' && (e.what === 'list' || e.what === 'export') ? `${verb} the whole record` : verb;
}

export function whoWords(e, audit = false) {
  if (!audit && state.me && e.actor === state.me.account_id) return 'You';
  if (e.actor === 'demo-seed') return 'Demo data';
  if (e.actor === 'cli' || e.actor === 'anonymous') return labelOf(e.actor);
  return e.actor_name || `Account ${shortId(e.actor)}`;
}

const EFFECT_WORDS = { permit: 'Allowed', deny: 'Refused', done: 'Done' };

// Reasons as the patient reads them about someone else's access.
const HISTORY_REASONS = {
  'default-deny': 'Nothing allowed it.',
  unauthenticated: 'They were not signed in.',
  'no-health-data-role': 'Their role never sees health data.',
  'mfa-required': 'They had not signed in with a second factor.',
  'patient-self': 'Your own access.',
  'proxy-within-scope': 'Your family proxy, within what you allowed.',
  'proxy-out-of-scope': 'Beyond what you allowed your family proxy.',
  'break-glass': 'Emergency access.',
  'never-break-glass': 'You closed this part to emergencies.',
  'break-glass-reason-missing': 'No valid emergency reason was given.',
  'consent-denied': 'You refused this access.',
  'consent-granted': 'Your permission.',
  'consent-expired': 'Your permission had expired.',
  'role-permission': 'Their role allows it.',
  'no-role-permission': 'Their role does not allow it.',
  'insufficient-clearance': 'Too sensitive for their role.',
  'outside-time-window': 'Outside the hours allowed.',
  'purpose-not-allowed': 'Not allowed for that purpose.',
  'zone-not-allowed': 'Not allowed from their network.',
  'treating-relationship': 'They treat you.',
  'delegated-relationship': 'Your doctor delegated your care to them.',
  'delegation-not-allowed': 'You do not allow delegation.',
  'no-relationship': 'They do not treat you.',
  'relationship-ended': 'They no longer treat you.',
  'other-institution': 'Another institution.',
};

function historyReason(code, audit) {
  const w = HISTORY_REASONS[code] || reasonWords(code);
  if (!audit) return w;
  return w.replace(/^Your own access/, 'The patient’s own access').replace(/^Your /, 'The patient’s ').replace(/^You /, 'The patient ')
    .replace(/ you /g, ' the patient ').replace(/ you\./g, ' the patient.').replace(/your /g, 'the patient’s ').replace(/ you$/, ' the patient');
}

// Every history entry of a patient, oldest first (pages of 1000, at most 20).
export async function loadHistory(pid, purpose) {
  const all = [];
  let after;
  for (let i = 0; i < 20; i += 1) {
    const q = after === undefined ? '?limit=1000' : `?limit=1000&after=${after}`;
    const { data } = await api('GET', patientUrl(pid, `/access-history${q}`), { purpose });
    const items = data.history || [];
    all.push(...items);
    if (items.length < 1000) break;
    after = items[items.length - 1].seq;
  }
  for (const e of all) if (e.actor_name) knownNames.set(e.actor, e.actor_name);
  return all;
}

async function learnNames(pid) {
  if (knownNames.size) return;
  await loadHistory(pid);
}

// One access that reads many versions (a chart loads every reading) is many
// ledger entries: adjacent entries (newest first) of the same person, action,
// result, section, purpose and reasons within a minute of each other are one
// row with their count.
const GROUP_WINDOW_MS = 60 * 1000;
export function groupAccesses(newestFirst) {
  const key = (e) => [e.actor, e.action, e.effect, e.what, e.path, e.purpose, (e.reasons || []).join(' '), e.break_glass].join('\u001f');
  const groups = [];
  for (const e of newestFirst) {
    const last = groups[groups.length - 1];
    if (last && last.key === key(e) && Date.parse(last.oldest.time) - Date.parse(e.time) <= GROUP_WINDOW_MS) {
      last.count += 1;
      last.oldest = e;
    } else {
      groups.push({ key: key(e), e, oldest: e, count: 1 });
    }
  }
  return groups;
}

export function historyTable(entries, { testid = 'history', audit = false } = {}) {
  const onlyEmergency = h('input', { type: 'checkbox', id: `${testid}-only-bg`, 'data-testid': `${testid}-filter-break-glass` });
  const onlyOthers = h('input', { type: 'checkbox', id: `${testid}-only-others`, checked: true, 'data-testid': `${testid}-filter-others` });
  const onlyRefused = h('input', { type: 'checkbox', id: `${testid}-only-refused`, 'data-testid': `${testid}-filter-refused` });
  const body = h('tbody');
  const more = h('button', { type: 'button', hidden: true, 'data-testid': `${testid}-more` }, 'Show older entries');
  const countText = h('p', { class: 'muted', 'aria-live': 'polite', 'data-testid': `${testid}-count-text` });
  let shown = 100;
  const newestFirst = [...entries].reverse();
  const render = () => {
    const rows = newestFirst.filter((e) => (!onlyEmergency.checked || e.break_glass)
      && (!onlyOthers.checked || (e.actor !== (state.me && state.me.account_id) && e.actor !== 'demo-seed'))
      && (!onlyRefused.checked || e.effect === 'deny'));
    const groups = groupAccesses(rows);
    replace(body, groups.slice(0, shown).map(({ e, count, oldest }) => h('tr', {
      class: [e.break_glass && 'row-break-glass', e.effect === 'deny' && 'row-deny'],
      'data-testid': `${testid}-row`, 'data-break-glass': e.break_glass ? 'true' : 'false', 'data-effect': e.effect, 'data-seq': e.seq,
      'data-count': count,
    },
    h('td', null, timeEl(e.time), count > 1 && oldest.time !== e.time ? h('span', { class: 'muted' }, ' (from ', timeEl(oldest.time), ')') : null),
    h('td', null, whoWords(e, audit), e.actor_roles && e.actor_roles.length ? h('span', { class: 'muted' }, ` (${e.actor_roles.join(', ')})`) : null),
    h('td', null, e.break_glass ? h('span', { class: 'badge badge-emergency' }, 'Emergency') : null, ' ', whatWords(e),
      count > 1 ? h('span', { class: 'muted', 'data-testid': `${testid}-count` }, ` (${count} times, e.g. every version of a series)`) : null),
    h('td', null, (e.reasons || []).map((r) => historyReason(r, audit)).join(' '), e.purpose ? h('span', { class: 'muted' }, ` Purpose: ${e.purpose}.`) : null),
    h('td', null, h('span', { class: `badge ${e.effect === 'deny' ? 'badge-deny' : e.effect === 'permit' ? 'badge-ok' : 'badge-muted'}` }, EFFECT_WORDS[e.effect] || e.effect)))));
    stackTable(table);
    more.hidden = groups.length <= shown;
    countText.textContent = `${Math.min(shown, groups.length)} of ${groups.length} rows shown (${rows.length} accesses${rows.length !== newestFirst.length ? `, ${newestFirst.length} in all` : ''}).`;
  };
  const table = h('table', { class: 'table history' },
    h('caption', { class: 'visually-hidden' }, 'Access history, newest first'),
    h('thead', null, h('tr', null, ['When', 'Who', 'What', 'Why', 'Result'].map((c) => h('th', { scope: 'col' }, c)))),
    body);
  for (const c of [onlyEmergency, onlyOthers, onlyRefused]) c.addEventListener('change', () => { shown = 100; render(); });
  more.addEventListener('click', () => { shown += 100; render(); });
  render();
  return h('div', { 'data-testid': testid },
    h('fieldset', { class: 'filters' }, h('legend', null, 'Show'),
      h('div', { class: 'check' }, onlyOthers, h('label', { for: onlyOthers.id }, 'Only other people')),
      h('div', { class: 'check' }, onlyEmergency, h('label', { for: onlyEmergency.id }, 'Only emergency accesses')),
      h('div', { class: 'check' }, onlyRefused, h('label', { for: onlyRefused.id }, 'Only refused'))),
    countText,
    h('div', { class: 'table-scroll' }, table),
    more);
}

export async function historyView(main, pid) {
  const box = h('div', null, loading('Loading your access history…'));
  page(main, 'Who saw my record', h('p', { class: 'hint' }, 'Every access to your record, allowed or refused, is written to a tamper-evident log. Emergency accesses are highlighted.'), box);
  try {
    const entries = await loadHistory(pid);
    replace(box, historyTable(entries));
  } catch (err) {
    if (!err.sessionLost) replace(box, errorBox(errorWords(err)));
  }
}

