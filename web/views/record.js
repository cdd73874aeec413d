// Record widgets shared by the patient's and the clinicians' views:
// measurement series and charts, the record tree and a segment viewer,
// measurement forms, orders and messages.
import {
  api, patientUrl, errorWords, downloadAttachment, ApiError,
} from '../api.js';
import {
  h, replace, announce, fmtDateTime, timeEl, field, validateForm, formError, showFormError,
  busy, loading, errorBox, notice, pool, localDateTimeValue, labelOf, humanBytes,
} from '../dom.js';
import { lineChart, responsive } from '../charts.js';
import { state, knownNames } from '../state.js';

// --- measurements (schemas as vocab::kMeasurements, GET /api/v1/segment-types) --

export const MEASURES = {
  bp: {
    path: 'physical-signs/blood-pressure', title: 'Blood pressure',
    fields: [
      { name: 'systolic', label: 'Systolic (upper)', min: 40, max: 300, step: 1 },
      { name: 'diastolic', label: 'Diastolic (lower)', min: 20, max: 200, step: 1 },
    ],
    units: ['mmHg'],
    check: (v) => (v.systolic <= v.diastolic ? ['diastolic', 'Diastolic pressure must be lower than systolic pressure.'] : null),
    show: (d) => `${d.systolic}/${d.diastolic} ${d.unit || 'mmHg'}`,
  },
  hr: {
    path: 'physical-signs/heart-rate', title: 'Heart rate',
    fields: [{ name: 'bpm', label: 'Heart rate', min: 20, max: 300, step: 1 }],
    units: ['/min'], unitWords: { '/min': 'beats per minute' },
    show: (d) => `${d.bpm} beats per minute`,
  },
  glucose: {
    path: 'physical-signs/blood-glucose', title: 'Blood glucose',
    fields: [{ name: 'value', label: 'Glucose', min: 0.5, max: 1000, step: 0.1 }],
    units: ['mmol/L', 'mg/dL'],
    show: (d) => `${d.value} ${d.unit}`,
  },
  weight: {
    path: 'body-measures/weight', title: 'Weight',
    fields: [{ name: 'value', label: 'Weight', min: 0.2, max: 700, step: 0.1 }],
    units: ['kg', 'lb'],
    show: (d) => `${d.value} ${d.unit}`,
  },
  height: {
    path: 'body-measures/height', title: 'Height',
    fields: [{ name: 'value', label: 'Height', min: 20, max: 280, step: 0.1 }],
    units: ['cm', 'in'],
    show: (d) => `${d.value} ${d.unit}`,
  },
};

function readingTime(r) {
  const t = r.data && typeof r.data.time === 'string' ? Date.parse(r.data.time) : NaN;
  return new Date(Number.isNaN(t) ? Date.parse(r.created_at) : t);
}

// Every version of a JSON segment with its content, oldest first by the
// reading's own time. At most `max` latest versions. Throws ApiError (a 404
// when nothing was recorded yet is turned into an empty list).
export async function loadSeries(patientId, path, { max = 100, onProgress } = {}) {
  let versions;
  try {
    const { data } = await api('GET', patientUrl(patientId, `/versions/${path}`));
    versions = data.versions || [];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return [];
    throw err;
  }
  const recent = versions.slice(-max);
  const results = await pool(recent, 6,
    (v) => api('GET', patientUrl(patientId, `/segments/${path}?version=${v.version}`)).then((r) => r.data),
    onProgress);
  const firstError = results.find((r) => !r.ok);
  if (firstError && results.every((r) => !r.ok)) throw firstError.error;
  return results.filter((r) => r.ok).map((r) => r.value)
    .map((r) => ({ ...r, when: readingTime(r) }))
    .sort((a, b) => a.when - b.when);
}

// --- charts ------------------------------------------------------------------------

const KG_PER_LB = 0.45359237;
const MGDL_PER_MMOL = 18.016;

// The blood-pressure targets drawn on every blood-pressure chart: shaded
// bands below 130 systolic and 80 diastolic, with dashed lines at both.
// `testid` prefixes the bands' test ids (the overview's chart only).
export function bpTargets(testid) {
  return {
    bands: [
      { from: undefined, to: 130, cls: 'band-systolic', label: 'Systolic target (below 130)', testid: testid && `${testid}-band-systolic` },
      { from: undefined, to: 80, cls: 'band-diastolic', label: 'Diastolic target (below 80)', testid: testid && `${testid}-band-diastolic` },
    ],
    lines: [{ v: 130, cls: 'ref-systolic', label: 'systolic 130' }, { v: 80, cls: 'ref-diastolic', label: 'diastolic 80' }],
    yMin: 60,
    yMax: 150,
  };
}

function bpChart(readings, width) {
  const ok = readings.filter((r) => r.data && Number.isFinite(r.data.systolic) && Number.isFinite(r.data.diastolic));
  const table = readingsTable('Blood pressure readings', ['Time', 'Systolic (mmHg)', 'Diastolic (mmHg)'],
    ok.map((r) => [fmtDateTime(r.when), r.data.systolic, r.data.diastolic]));
  return lineChart({
    title: 'Blood pressure (mmHg)',
    description: `${ok.length} readings. Shaded: target systolic below 130 and diastolic below 80 mmHg.`,
    unit: 'mmHg', testid: 'chart-bp', width,
    series: [
      { name: 'Systolic', cls: 's-systolic', points: ok.map((r) => ({ t: r.when, v: r.data.systolic, label: `${r.data.systolic}/${r.data.diastolic} mmHg`, flag: r.data.systolic >= 130 })) },
      { name: 'Diastolic', cls: 's-diastolic', points: ok.map((r) => ({ t: r.when, v: r.data.diastolic, label: `${r.data.systolic}/${r.data.diastolic} mmHg`, flag: r.data.diastolic >= 80 })) },
    ],
    ...bpTargets('chart-bp'),
    table,
  });
}

function glucoseChart(readings, width) {
  const ok = readings.filter((r) => r.data && Number.isFinite(r.data.value));
  const allMg = ok.length > 0 && ok.every((r) => r.data.unit === 'mg/dL');
  const unit = allMg ? 'mg/dL' : 'mmol/L';
  const conv = (d) => (allMg || d.unit !== 'mg/dL' ? d.value : Math.round((d.value / MGDL_PER_MMOL) * 10) / 10);
  return lineChart({
    title: `Blood glucose (${unit})`, description: `${ok.length} readings.`, unit, testid: 'chart-glucose', width,
    series: [{ name: 'Glucose', cls: 's-glucose', points: ok.map((r) => ({ t: r.when, v: conv(r.data), label: `${r.data.value} ${r.data.unit}` })) }],
    table: readingsTable('Glucose readings', ['Time', 'Glucose'], ok.map((r) => [fmtDateTime(r.when), `${r.data.value} ${r.data.unit}`])),
  });
}

function weightChart(readings, width) {
  const ok = readings.filter((r) => r.data && Number.isFinite(r.data.value));
  const allLb = ok.length > 0 && ok.every((r) => r.data.unit === 'lb');
  const unit = allLb ? 'lb' : 'kg';
  const conv = (d) => (allLb || d.unit !== 'lb' ? d.value : Math.round(d.value * KG_PER_LB * 10) / 10);
  return lineChart({
    title: `Weight (${unit})`, description: `${ok.length} readings.`, unit, testid: 'chart-weight', width,
    series: [{ name: 'Weight', cls: 's-weight', points: ok.map((r) => ({ t: r.when, v: conv(r.data), label: `${r.data.value} ${r.data.unit}` })) }],
    table: readingsTable('Weight readings', ['Time', 'Weight'], ok.map((r) => [fmtDateTime(r.when), `${r.data.value} ${r.data.unit}`])),
  });
}

function readingsTable(caption, head, rows) {
  if (!rows.length) return null;
  return h('details', { class: 'chart-table' },
    h('summary', null, `Show the ${rows.length} readings as a table`),
    h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, head.map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', null, [...rows].reverse().map((r) => h('tr', null, r.map((c) => h('td', null, String(c))))))));
}

const CHARTS = [
  { key: 'bp', render: bpChart },
  { key: 'glucose', render: glucoseChart },
  { key: 'weight', render: weightChart },
];

function latestCard(key, readings) {
  const m = MEASURES[key];
  const last = readings.length ? readings[readings.length - 1] : null;
  let flag = null;
  if (last && key === 'bp' && last.data && (last.data.systolic >= 130 || last.data.diastolic >= 80)) {
    flag = h('span', { class: 'badge badge-warn' }, 'above target');
  }
  return h('div', { class: 'card latest', 'data-testid': `latest-${key}` },
    h('h3', null, m.title),
    last && last.data
      ? [h('p', { class: 'latest-value', 'data-testid': `latest-${key}-value` }, m.show(last.data), ' ', flag),
        h('p', { class: 'muted' }, 'Measured ', timeEl(last.when.toISOString()))]
      : h('p', { class: 'muted' }, 'No reading yet.'));
}

// The latest readings and the three charts for a patient. Each chart shows
// its own refusal (e.g. a consent denial) instead of failing the page.
export function measurementsPanel(patientId, { withLatest = true } = {}) {
  const latest = h('div', { class: 'cards', 'data-testid': 'latest-measurements' });
  const charts = h('div', { class: 'charts' });
  const section = h('section', { class: 'panel', 'aria-labelledby': 'measurements-h' },
    h('h2', { id: 'measurements-h' }, 'Measurements over time'),
    withLatest ? latest : null, charts);
  const loaded = {};
  for (const c of CHARTS) {
    const slot = h('div', { class: 'chart-slot', 'data-testid': `chart-slot-${c.key}` },
      loading(`Loading ${MEASURES[c.key].title.toLowerCase()} readings…`));
    charts.appendChild(slot);
    loadSeries(patientId, MEASURES[c.key].path, {
      onProgress: (done, total) => {
        const p = slot.querySelector('.loading');
        if (p) p.lastChild.textContent = `Loading ${MEASURES[c.key].title.toLowerCase()} readings: ${done} of ${total}`;
      },
    }).then((readings) => {
      loaded[c.key] = readings;
      responsive(slot, (w) => c.render(readings, w));
      if (withLatest) {
        const cards = CHARTS.filter((x) => loaded[x.key]).map((x) => latestCard(x.key, loaded[x.key]));
        replace(latest, cards);
      }
    }).catch((err) => {
      if (err.sessionLost) return;
      replace(slot, h('div', { class: 'chart' },
        h('h3', null, MEASURES[c.key].title),
        errorBox(`Cannot show these readings. ${errorWords(err)}`, `chart-${c.key}-error`)));
    });
  }
  return section;
}

// --- measurement forms -------------------------------------------------------------

function toIso(localValue) {
  const d = new Date(localValue);
  return Number.isNaN(d.getTime()) ? '' : d.toISOString();
}

// A form that writes one reading of `key` (bp, hr, glucose, weight, height).
export function measurementForm(patientId, key, { onSaved } = {}) {
  const m = MEASURES[key];
  const now = localDateTimeValue();
  const inputs = m.fields.map((f) => field({
    label: f.label, name: f.name, type: 'number', required: true, min: f.min, max: f.max, step: f.step,
    unit: m.units.length === 1 ? (m.unitWords ? m.unitWords[m.units[0]] : m.units[0]) : undefined,
    inputmode: f.step < 1 ? 'decimal' : 'numeric', testid: `${key}-${f.name}`,
    hint: `Between ${f.min} and ${f.max}${m.units.length === 1 ? ` ${m.units[0]}` : ''}.`,
  }));
  const unit = m.units.length > 1
    ? field({ label: 'Unit', name: 'unit', type: 'select', required: true, options: m.units.map((u) => [u, u]), testid: `${key}-unit` })
    : null;
  const time = field({ label: 'Time of the reading', name: 'time', type: 'datetime-local', required: true, value: now, testid: `${key}-time` });
  const note = field({ label: 'Note', name: 'note', type: 'text', maxlength: 500, testid: `${key}-note` });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': `${key}-submit` }, `Save ${m.title.toLowerCase()}`);
  const form = h('form', { class: 'form measure-form', novalidate: true, 'data-testid': `${key}-form`, 'aria-label': m.title },
    h('div', { class: 'field-row' }, inputs, unit), time, note, formError(`${key}-form-error`),
    h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const values = {};
    for (const f of m.fields) values[f.name] = Number(form.elements[f.name].value);
    const ok = validateForm(form, () => {
      const out = [];
      const t = new Date(form.elements.time.value);
      if (form.elements.time.value && t.getTime() > Date.now() + 5 * 60 * 1000) out.push([form.elements.time, 'The time of the reading cannot be in the future.']);
      if (m.check && m.fields.every((f) => form.elements[f.name].value !== '')) {
        const bad = m.check(values);
        if (bad) out.push([form.elements[bad[0]], bad[1]]);
      }
      return out;
    });
    if (!ok) return;
    const data = { ...values, unit: unit ? form.elements.unit.value : m.units[0], time: toIso(form.elements.time.value) };
    const noteText = form.elements.note.value.trim();
    if (noteText) data.note = noteText;
    await busy(submit, 'Saving…', async () => {
      try {
        const { data: meta } = await api('PUT', patientUrl(patientId, `/segments/${m.path}`), { body: { data } });
        announce(`${m.title} saved (version ${meta.version}).`, 'success');
        for (const f of m.fields) form.elements[f.name].value = '';
        form.elements.note.value = '';
        form.elements.time.value = localDateTimeValue();
        if (onSaved) onSaved(meta);
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

// --- the record tree and a segment viewer --------------------------------------

function topOf(path) {
  return path.split('/')[0];
}

function sensitivityWords(s) {
  return ['public', 'low', 'normal', 'high', 'very high'][s] || String(s);
}

// Renders JSON content as a list of "key: value", text as paragraphs.
export function contentView(seg) {
  if (seg.kind === 'binary' || seg.attachment_url) {
    const name = seg.path.split('/').pop();
    const btn = h('button', { type: 'button', 'data-testid': 'attachment-download' }, `Download ${name}`);
    btn.addEventListener('click', () => busy(btn, 'Downloading…', async () => {
      try {
        await downloadAttachment(seg.attachment_url, name);
      } catch (err) {
        if (!err.sessionLost) announce(errorWords(err), 'error');
      }
    }));
    return h('div', null, h('p', null, `A file (${seg.media_type}, ${humanBytes(seg.size || 0)}).`), btn);
  }
  if (seg.kind === 'text' || typeof seg.text === 'string') {
    return h('div', { class: 'text-content' }, (seg.text || '').split(/\n{2,}/).map((p) => h('p', null, p)));
  }
  if (typeof seg.data === 'string') return h('p', null, seg.data === '[masked]' ? 'Hidden (masked).' : seg.data);
  const rows = [];
  const walk = (obj, prefix) => {
    for (const [k, v] of Object.entries(obj || {})) {
      const key = prefix ? `${prefix} › ${labelOf(k)}` : labelOf(k);
      if (v && typeof v === 'object' && !Array.isArray(v)) walk(v, key);
      else {
        let text = Array.isArray(v) ? v.map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x))).join(', ') : String(v);
        if (v === '[masked]') text = 'hidden (masked)';
        else if (k === 'time' && typeof v === 'string' && !Number.isNaN(Date.parse(v))) text = fmtDateTime(v);
        rows.push(h('div', { class: 'kv' }, h('dt', null, key), h('dd', null, text)));
      }
    }
  };
  walk(seg.data, '');
  return h('dl', { class: 'kv-list' }, rows);
}

async function showSegment(viewer, patientId, path, version) {
  replace(viewer, loading(`Opening ${path}…`));
  try {
    const q = version ? `?version=${version}` : '';
    const { data: seg } = await api('GET', patientUrl(patientId, `/segments/${path}${q}`));
    const versionsBox = h('div', { class: 'versions' });
    const showVersions = h('button', { type: 'button', class: 'link-button', 'data-testid': 'segment-versions' }, 'Show every version');
    showVersions.addEventListener('click', async () => {
      replace(versionsBox, loading('Loading versions…'));
      try {
        const { data } = await api('GET', patientUrl(patientId, `/versions/${path}`));
        replace(versionsBox, h('ol', { class: 'version-list' }, [...data.versions].reverse().map((v) => h('li', null,
          h('button', {
            type: 'button', class: 'link-button',
            onclick: () => showSegment(viewer, patientId, path, v.version),
          }, `Version ${v.version}`), ' — ', timeEl(v.created_at), v.author ? ` (by ${authorName(v.author)})` : ''))));
      } catch (err) {
        if (!err.sessionLost) replace(versionsBox, errorBox(errorWords(err)));
      }
    });
    replace(viewer,
      h('h3', { tabindex: '-1', 'data-testid': 'segment-title' }, path),
      h('p', { class: 'muted' }, `Version ${seg.version}, saved `, timeEl(seg.created_at),
        seg.author ? ` by ${authorName(seg.author)}` : '', `. Sensitivity: ${sensitivityWords(seg.sensitivity)}.`),
      seg.access_expires_at ? notice(`Your access to this ends ${fmtDateTime(seg.access_expires_at)}.`, 'warn') : null,
      h('div', { 'data-testid': 'segment-content' }, contentView(seg)),
      showVersions, versionsBox);
    viewer.querySelector('h3').focus();
  } catch (err) {
    if (!err.sessionLost) replace(viewer, errorBox(`Cannot open ${path}. ${errorWords(err)}`, 'segment-error'));
  }
}

function authorName(id) {
  if (state.me && id === state.me.account_id) return 'you';
  if (id === 'demo-seed') return 'the demo data';
  return knownNames.get(id) || `account ${id.slice(0, 8)}`;
}


// The patient's record as a tree grouped by top-level segment; a viewer
// below opens any segment and its versions.
// `listing` (optional): a promise of GET .../segments already under way.
export function recordTree(patientId, listing) {
  const list = h('div', { 'data-testid': 'record-tree' }, loading('Loading the record…'));
  const viewer = h('div', { class: 'viewer', 'aria-live': 'polite', 'data-testid': 'segment-viewer' });
  const section = h('section', { class: 'panel', 'aria-labelledby': 'tree-h' },
    h('h2', { id: 'tree-h' }, 'Record'), list, viewer);
  (listing || api('GET', patientUrl(patientId, '/segments'))).then(({ data }) => {
    const segs = data.segments || [];
    if (!segs.length) {
      replace(list, h('p', { class: 'muted' }, 'Nothing you may see is recorded yet.'));
      return;
    }
    const groups = new Map();
    for (const s of segs) {
      const top = topOf(s.path);
      if (!groups.has(top)) groups.set(top, []);
      groups.get(top).push(s);
    }
    replace(list, [...groups.entries()].map(([top, items]) => h('details', { class: 'tree-group', open: true },
      h('summary', null, labelOf(top), h('span', { class: 'count' }, ` (${items.length})`)),
      h('ul', { class: 'tree' }, items.map((s) => h('li', { 'data-testid': 'record-item', 'data-path': s.path },
        h('button', {
          type: 'button', class: 'link-button', 'data-testid': 'record-open',
          onclick: () => showSegment(viewer, patientId, s.path),
        }, s.path.split('/').slice(1).join(' / ') || s.path),
        h('span', { class: 'muted' }, ` — ${s.kind === 'binary' ? 'file' : s.kind}, ${s.version_count} version${s.version_count === 1 ? '' : 's'}, updated `, timeEl(s.updated_at))))))));
  }).catch((err) => {
    if (!err.sessionLost) {
      replace(list, errorBox(`You cannot see this record. ${errorWords(err)}`, 'record-tree-error'));
    }
  });
  return section;
}

// For clinicians: asks, section by section, whether it is open and, if not,
// why. On demand only: every probe is an access decision in the patient's
// history.
export function sectionAccessPanel(patientId, types) {
  const out = h('div', { 'data-testid': 'section-access' });
  const btn = h('button', { type: 'button', 'data-testid': 'section-access-check' }, 'Check which sections are closed to me, and why');
  const progress = h('progress', { max: types.length, value: 0, hidden: true, 'aria-label': 'Checking sections' });
  btn.addEventListener('click', () => busy(btn, 'Checking…', async () => {
    progress.hidden = false;
    const results = await pool(types, 4,
      (t) => api('GET', patientUrl(patientId, `/segments?prefix=${encodeURIComponent(t.name)}`)).then((r) => r.data.segments.length),
      (done) => { progress.value = done; });
    progress.hidden = true;
    if (results.some((r) => !r.ok && r.error.sessionLost)) return;
    const rows = types.map((t, i) => {
      const r = results[i];
      const open = r.ok;
      return h('tr', { 'data-testid': 'section-access-row', 'data-section': t.name, 'data-open': open ? 'true' : 'false', 'data-reason': open ? '' : r.error.reason },
        h('th', { scope: 'row' }, labelOf(t.name)),
        h('td', null, open ? h('span', { class: 'badge badge-ok' }, 'open') : h('span', { class: 'badge badge-deny' }, 'closed')),
        h('td', null, open ? `${r.value} item${r.value === 1 ? '' : 's'} you may see` : errorWords(r.error)));
    });
    replace(out, h('div', { class: 'table-scroll' }, h('table', { class: 'table' },
      h('caption', null, 'Your access, section by section'),
      h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'Section'), h('th', { scope: 'col' }, 'Access'), h('th', { scope: 'col' }, 'Details'))),
      h('tbody', null, rows))));
    announce('Section access checked.', 'info');
  }));
  return h('section', { class: 'panel', 'aria-labelledby': 'sections-h' },
    h('h2', { id: 'sections-h' }, 'Closed sections'),
    h('p', { class: 'hint' }, 'The record above lists only what you may see. This check asks for each section; every check is recorded in the patient’s access history.'),
    btn, progress, out);
}

// --- orders and messages -----------------------------------------------------------

export const ORDERS_PATH = 'doctor-description/orders';
export const MESSAGES_PATH = 'patient-narrative/messages';

function entryText(seg) {
  if (seg.data && typeof seg.data.text === 'string') return seg.data.text;
  if (typeof seg.text === 'string') return seg.text;
  return '';
}

// Orders (doctors) and messages (patient) as one thread, newest first.
// mode 'patient': reply form; mode 'clinician': order form (if allowed).
export function threadPanel(patientId, { mode, canOrder = false }) {
  const list = h('ol', { class: 'thread', 'data-testid': 'messages-list', 'aria-live': 'polite' });
  const status = h('div', null, loading('Loading orders and messages…'));
  let replyTo = null;

  async function reload() {
    const [orders, messages] = await Promise.allSettled([
      loadSeries(patientId, ORDERS_PATH, { max: 50 }),
      loadSeries(patientId, MESSAGES_PATH, { max: 50 }),
    ]);
    const problems = [];
    const items = [];
    if (orders.status === 'fulfilled') for (const o of orders.value) items.push({ kind: 'order', seg: o });
    else if (!orders.reason.sessionLost) problems.push(`Orders: ${errorWords(orders.reason)}`);
    if (messages.status === 'fulfilled') for (const m of messages.value) items.push({ kind: 'message', seg: m });
    else if (!messages.reason.sessionLost) problems.push(`Messages: ${errorWords(messages.reason)}`);
    items.sort((a, b) => b.seg.when - a.seg.when);
    replace(status, problems.map((p) => errorBox(p, 'messages-error')));
    replace(list, items.length ? items.map((it) => threadItem(it))
      : (problems.length ? null : h('li', { class: 'muted' }, 'No orders or messages yet.')));
  }

  function threadItem({ kind, seg }) {
    const d = seg.data || {};
    const ref = `${kind === 'order' ? ORDERS_PATH : MESSAGES_PATH}@${seg.version}`;
    const who = kind === 'order'
      ? `Order from ${d.author_name || authorName(seg.author)}`
      : `Message from ${seg.author === (state.me && state.me.account_id) ? 'you' : (mode === 'patient' ? authorName(seg.author) : 'the patient')}`;
    const li = h('li', { class: `thread-item thread-${kind}`, 'data-testid': kind === 'order' ? 'order-item' : 'message-item', 'data-ref': ref },
      h('p', { class: 'thread-head' }, h('strong', null, who), ' · ', timeEl(seg.when.toISOString())),
      d.in_reply_to ? h('p', { class: 'muted' }, `In reply to ${d.in_reply_to.startsWith(ORDERS_PATH) ? 'order' : 'message'} ${d.in_reply_to.split('@')[1] || ''}`) : null,
      h('p', { class: 'thread-text', 'data-testid': 'thread-text' }, entryText(seg)));
    if (mode === 'patient' && kind === 'order') {
      li.appendChild(h('button', {
        type: 'button', class: 'link-button', 'data-testid': 'order-reply',
        onclick: () => {
          replyTo = ref;
          replyNote.textContent = `Replying to the order of ${fmtDateTime(seg.when)}.`;
          cancelReply.hidden = false;
          form.elements.text.focus();
        },
      }, 'Reply to this order'));
    }
    return li;
  }

  // --- the form: a message (patient) or an order (clinician) -----------------------
  const isOrder = mode === 'clinician';
  const text = field({
    label: isOrder ? 'Order' : 'Your message', name: 'text', type: 'textarea', required: true, maxlength: 5000, rows: 4,
    testid: isOrder ? 'order-text' : 'message-text',
    hint: isOrder ? 'Written to the patient’s record under “doctor description / orders”; the patient sees it.' : 'Your care team sees your messages.',
  });
  const replyNote = h('p', { class: 'muted', 'aria-live': 'polite' });
  const cancelReply = h('button', { type: 'button', class: 'link-button', hidden: true }, 'Not a reply');
  cancelReply.addEventListener('click', () => {
    replyTo = null;
    replyNote.textContent = '';
    cancelReply.hidden = true;
  });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': isOrder ? 'order-submit' : 'message-submit' }, isOrder ? 'Save the order' : 'Send the message');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': isOrder ? 'order-form' : 'message-form' },
    h('h3', null, isOrder ? 'Write an order' : 'Write to your care team'),
    replyNote, cancelReply, text, formError(isOrder ? 'order-form-error' : 'message-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    const value = form.elements.text.value.trim();
    if (!validateForm(form, () => (form.elements.text.value && !value ? [[form.elements.text, 'Write something first.']] : []))) return;
    const data = { text: value, time: new Date().toISOString() };
    if (isOrder && state.me) data.author_name = state.me.display_name;
    if (!isOrder && replyTo) data.in_reply_to = replyTo;
    await busy(submit, 'Saving…', async () => {
      try {
        await api('PUT', patientUrl(patientId, `/segments/${isOrder ? ORDERS_PATH : MESSAGES_PATH}`), { body: { data } });
        form.elements.text.value = '';
        cancelReply.click();
        announce(isOrder ? 'Order saved.' : 'Message sent.', 'success');
        await reload();
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });

  reload().catch((err) => {
    if (!err.sessionLost) replace(status, errorBox(errorWords(err)));
  });
  return h('section', { class: 'panel', 'aria-labelledby': `thread-h-${mode}` },
    h('h2', { id: `thread-h-${mode}` }, mode === 'patient' ? 'Orders and messages' : 'Orders and the patient’s messages'),
    (mode === 'patient' || canOrder) ? form : null, status, list);
}

// A clinician's note: doctor-description/notes/<topic>, JSON {text, author_name, time}.
export function noteForm(patientId, { onSaved } = {}) {
  const topic = field({
    label: 'Topic', name: 'topic', required: true, value: 'consultation', maxlength: 64,
    pattern: '[a-z0-9](?:[a-z0-9\\-]*[a-z0-9])?', patternMessage: 'Use lower-case letters, digits and dashes (for example “follow-up”).',
    hint: 'Saved under doctor description / notes / <topic>; each save is a new version.', testid: 'note-topic',
  });
  const text = field({ label: 'Note', name: 'text', type: 'textarea', required: true, maxlength: 20000, rows: 5, testid: 'note-text' });
  const submit = h('button', { type: 'submit', class: 'primary', 'data-testid': 'note-submit' }, 'Save the note');
  const form = h('form', { class: 'form', novalidate: true, 'data-testid': 'note-form' },
    h('h3', null, 'Write a clinical note'), topic, text, formError('note-form-error'), h('div', { class: 'actions' }, submit));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    showFormError(form, '');
    if (!validateForm(form)) return;
    const path = `doctor-description/notes/${form.elements.topic.value}`;
    const data = { text: form.elements.text.value.trim(), time: new Date().toISOString() };
    if (state.me) data.author_name = state.me.display_name;
    await busy(submit, 'Saving…', async () => {
      try {
        const { data: meta } = await api('PUT', patientUrl(patientId, `/segments/${path}`), { body: { data } });
        form.elements.text.value = '';
        announce(`Note saved (version ${meta.version}).`, 'success');
        if (onSaved) onSaved(meta);
      } catch (err) {
        if (!err.sessionLost) showFormError(form, errorWords(err));
      }
    });
  });
  return form;
}

