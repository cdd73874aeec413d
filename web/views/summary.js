// The clinical summary of a record (GET /api/v1/patients/{id}/summary): the
// first thing a patient or a clinician reads of a record. Problems,
// allergies, medications, ... as lists in words, results and vital signs
// as tables and charts, the imported documents by title. Everything comes
// from the summary's names and texts: never a document key, an account id,
// a code system URI or a storage path (the end-to-end test checks).
import { api, patientUrl, errorWords, downloadAttachment } from '../api.js';
import {
  h, replace, announce, busy, loading, errorBox, notice, fmtDateTime, stackTable, scrollBox,
} from '../dom.js';
import { lineChart, responsive } from '../charts.js';
import { state } from '../state.js';
import { bpTargets } from './record.js';

// --- words ------------------------------------------------------------------------------

const FORMAT_WORDS = { ccda: 'C-CDA document', fhir: 'FHIR bundle' };

const STATUS_WORDS = {
  active: 'Active', inactive: 'Inactive', resolved: 'Resolved', remission: 'In remission',
  recurrence: 'Came back', completed: 'Completed', 'not-done': 'Not done', aborted: 'Stopped before the end',
  stopped: 'Stopped', finished: 'Finished', cancelled: 'Cancelled', 'entered-in-error': 'Entered in error',
  'on-hold': 'On hold', 'in-progress': 'In progress', planned: 'Planned', intended: 'Intended',
  final: 'Final', preliminary: 'Preliminary', amended: 'Amended', corrected: 'Corrected',
  suspended: 'Suspended', refuted: 'Ruled out', unconfirmed: 'Not confirmed', confirmed: 'Confirmed',
};

function statusWords(s) {
  if (!s) return '';
  return STATUS_WORDS[s] || capitalise(s.replace(/[-_]/g, ' '));
}

function capitalise(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : '';
}

const MEDIA_WORDS = {
  'application/pdf': 'PDF document', 'text/plain': 'text', 'text/html': 'web page',
  'image/jpeg': 'picture', 'image/png': 'picture', 'application/xml': 'XML document',
};

// UCUM units as people write them, where the summary left them as codes:
// "{score}" -> "score", "10*6/uL" -> "×10⁶/µL", "mm[Hg]" -> "mmHg".
const SUPERSCRIPT = { 0: '⁰', 1: '¹', 2: '²', 3: '³', 4: '⁴', 5: '⁵', 6: '⁶', 7: '⁷', 8: '⁸', 9: '⁹' };
function unitWords(u) {
  if (!u) return '';
  return String(u)
    .replace(/\{([^}]*)\}/g, '$1')
    .replace(/^10\*(\d+)/, (_, n) => `×10${[...n].map((c) => SUPERSCRIPT[c]).join('')}`)
    .replace(/\bu(L|g|mol|IU)\b/g, 'µ$1')
    .replace(/\[Hg\]/, 'Hg')
    .replace(/^Cel$/, '°C')
    .replace(/\/m2$/, '/m²');
}

// --- dates --------------------------------------------------------------------------------

const monthYear = new Intl.DateTimeFormat(undefined, { month: 'long', year: 'numeric' });
const dayFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

// A source's date as a Date: "1967", "1999-11" and "2012-09-10" are local
// calendar dates (not UTC midnights that would show as the day before).
export function toDate(s) {
  if (!s) return null;
  let m = /^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$/.exec(s);
  if (m) return new Date(Number(m[1]), m[2] ? Number(m[2]) - 1 : 0, m[3] ? Number(m[3]) : 1);
  m = Date.parse(s);
  return Number.isNaN(m) ? null : new Date(m);
}

// A date for people, as precise as the source: "1967", "November 1999",
// "Sep 10, 2012", with the time when the source has one and `withTime`.
export function fmtWhen(s, withTime = false) {
  if (!s) return '';
  if (/^\d{4}$/.test(s)) return s;
  const d = toDate(s);
  if (!d) return s;
  if (/^\d{4}-\d{2}$/.test(s)) return monthYear.format(d);
  if (withTime && /T\d{2}:\d{2}/.test(s)) return fmtDateTime(d);
  return dayFmt.format(d);
}

function whenEl(s, withTime = false) {
  if (!s) return null;
  return h('time', { datetime: s }, fmtWhen(s, withTime));
}

export function ageOn(birth, now = new Date()) {
  const b = toDate(birth);
  if (!b || !/^\d{4}-\d{2}-\d{2}$/.test(birth)) return null;
  let age = now.getFullYear() - b.getFullYear();
  if (now.getMonth() < b.getMonth() || (now.getMonth() === b.getMonth() && now.getDate() < b.getDate())) age -= 1;
  return age >= 0 ? age : null;
}

// "Since Apr 17, 2007" (a current item), "May 2012 to Sep 2019",
// "Started Feb 3, 2011" (an item over, end not recorded), "On ..." (`on`).
function period(item, { since = 'Since', on = 'Started' } = {}) {
  const { start, end } = item;
  if (start && end && start.slice(0, 10) !== end.slice(0, 10)) return [whenEl(start), ' to ', whenEl(end)];
  if (start && (end || !item.active || !since)) return [on, on ? ' ' : '', whenEl(start)];
  if (start) return [`${since} `, whenEl(start)];
  if (end) return ['Until ', whenEl(end)];
  return null;
}

// --- numbers --------------------------------------------------------------------------------

// Values keep the source's digits; a computed one with many decimals
// (e.g. "184.34043378700804") reads rounded to four significant digits
// (never fewer than its whole part). The exact value stays in <data value>.
function readable(v) {
  if (typeof v !== 'string' || !/^-?\d+\.\d{5,}$/.test(v)) return v;
  const whole = v.replace(/^-/, '').split('.')[0].replace(/^0+/, '').length;
  return String(Number(Number(v).toPrecision(Math.max(4, whole))));
}

function isNumeric(v) {
  return typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v);
}

const SYSTOLIC = /systolic/i;
const DIASTOLIC = /diastolic/i;

function component(p, re, code) {
  return (p.components || []).find((c) => (c.code && c.code.code === code) || re.test(c.name || ''));
}

// A point's value for people: "35.4 %", "128/79 mmHg", "Never smoker".
function pointText(p) {
  const sys = component(p, SYSTOLIC, '8480-6');
  const dia = component(p, DIASTOLIC, '8462-4');
  if (sys && dia && isNumeric(sys.value) && isNumeric(dia.value)) {
    return `${readable(sys.value)}/${readable(dia.value)} ${unitWords(textUnit(sys) || 'mmHg')}`;
  }
  if (p.components && p.components.length && !p.value) {
    return p.components.map((c) => `${c.name}: ${valueText(c)}`).join('; ');
  }
  return valueText(p) || '—';
}

// The unit for people that the summary put after the value in `text`.
function textUnit(x) {
  if (x.text && x.value && x.text.startsWith(x.value)) return x.text.slice(x.value.length).trim();
  return unitWords(x.unit);
}

function valueText(x) {
  if (isNumeric(x.value)) {
    const unit = unitWords(textUnit(x));
    return `${readable(x.value)}${unit ? ` ${unit}` : ''}`;
  }
  return unitWords(x.text || x.value || '');
}

function valueEl(p) {
  const text = pointText(p);
  return isNumeric(p.value) && readable(p.value) !== p.value ? h('data', { value: p.value }, text) : text;
}

// --- sources ------------------------------------------------------------------------------

export function documentTitle(doc) {
  return doc.title || (doc.type && doc.type.display) || `Untitled ${FORMAT_WORDS[doc.format] || 'document'}`;
}

// Where an item or a reading comes from, in words: the documents' titles,
// or who recorded the reading.
function sourceWords(x, ctx) {
  const docs = (x.documents || []).map((k) => ctx.docs.get(k)).filter(Boolean);
  if (docs.length) return docs.map(documentTitle).join('; ');
  if (x.recorded_by && state.me && x.recorded_by === state.me.account_id) return 'Recorded by you';
  if (x.recorded_by_name) return `Recorded by ${x.recorded_by_name}`;
  if (x.recorded_by === 'demo-seed') return 'Demo data';
  if (x.recorded_by) return 'Recorded in medvault';
  return '';
}

// Code details, small, for clinicians only: "SNOMED CT 44054006 · ICD-10-CM E11.9".
// Codes whose system has no name are left out (never a URI).
function codeDetails(code, ctx) {
  if (!ctx.clinician || !code) return null;
  const parts = [code, ...(code.translations || [])]
    .filter((c) => c && c.system_name && c.code)
    .map((c) => `${c.system_name} ${c.code}`);
  return parts.length ? h('span', { class: 'code-detail', 'data-testid': 'summary-code' }, parts.join(' · ')) : null;
}

// --- items (problems, allergies, ...) ---------------------------------------------------

function join(parts) {
  const out = [];
  for (const p of parts.filter((x) => x && (!Array.isArray(x) || x.length))) {
    if (out.length) out.push(' · ');
    out.push(p);
  }
  return out;
}

// One item of a section: its name, a line of details, its text (or
// `body`), where it comes from and, for clinicians, its codes.
// Where, how and why, for any item that has them.
function qualifiers(item) {
  return [
    item.body_site ? `Site: ${item.body_site}` : null,
    item.method ? `Method: ${item.method}` : null,
    (item.reasons || []).length ? `Reason${item.reasons.length > 1 ? 's' : ''}: ${item.reasons.join(', ')}` : null,
  ];
}

function itemEl(item, ctx, details, body) {
  const source = sourceWords(item, ctx);
  const codes = codeDetails(item.code, ctx);
  const meta = join([...details, ...qualifiers(item)]);
  return h('li', { class: 'summary-item', 'data-testid': 'summary-item', 'data-active': item.active ? 'true' : 'false' },
    h('p', { class: 'item-name' }, h('strong', { 'data-testid': 'summary-item-name' }, firstLine(item.name))),
    meta.length ? h('p', { class: 'item-meta' }, meta) : null,
    (item.components || []).length
      ? h('ul', { class: 'item-components' }, item.components.map((c) => h('li', null, `${c.name}: ${valueText(c)}`)))
      : null,
    body || (item.text && item.text !== item.name ? h('p', { class: 'item-text' }, item.text) : null),
    source || codes ? h('p', { class: 'item-source' }, source ? `From: ${source}` : null, source && codes ? ' · ' : null, codes) : null);
}

function firstLine(s) {
  return String(s || '').split('\n')[0];
}

function notWhenActive(item) {
  return item.status && item.status !== 'active' ? statusWords(item.status) : null;
}

// What a medication or plan entry states, in words (the API's `mood`).
const MOOD_WORDS = {
  event: 'Reported as taken', goal: 'Goal', 'care-plan': 'Care plan', order: 'Ordered',
  proposal: 'Proposed', plan: 'Planned', promise: 'Promised', appointment: 'Appointment',
  'appointment-request': 'Appointment requested',
};

// Per section: what a line of details says.
const DETAILS = {
  problems: (it) => [period(it), notWhenActive(it)],
  allergies: (it) => [
    it.reactions && it.reactions.length
      ? h('span', { 'data-testid': 'summary-reactions' }, `Reaction${it.reactions.length > 1 ? 's' : ''}: ${it.reactions.join(', ')}`)
      : 'Reaction not recorded',
    it.severity ? h('span', { 'data-testid': 'summary-severity' }, `Severity: ${it.severity}`) : null,
    it.value && it.value !== it.name ? it.value : null,
    period(it), notWhenActive(it)],
  medications: (it) => [MOOD_WORDS[it.mood], it.value ? `Dose: ${it.value}` : null, it.route, period(it), notWhenActive(it)],
  immunizations: (it) => [period(it, { on: 'On', since: '' }), it.route, it.value ? `Dose: ${it.value}` : null,
    it.status && it.status !== 'completed' ? statusWords(it.status) : null],
  procedures: (it) => [period(it, { on: 'On', since: '' }), it.status && it.status !== 'completed' ? statusWords(it.status) : null],
  encounters: (it) => [period(it, { on: 'On', since: '' }),
    it.status && !['finished', 'completed', 'active'].includes(it.status) ? statusWords(it.status) : null],
  plans: (it) => [MOOD_WORDS[it.mood] || null, it.start ? [it.mood === 'goal' ? 'From ' : 'Planned for ', whenEl(it.start)] : null,
    it.mood === 'goal' && it.end ? ['Due ', whenEl(it.end)] : null, notWhenActive(it)],
  social_history: (it) => [it.value ? h('span', { class: 'item-value' }, it.value) : null, period(it, { on: 'Recorded', since: 'Since' })],
  family_history: (it) => [it.relation ? capitalise(it.relation) : 'A relative', it.start ? ['Onset ', whenEl(it.start)] : null],
  document_references: (it) => [MEDIA_WORDS[it.media_type] || (it.media_type ? 'a file' : null), period(it, { on: 'Dated', since: '' })],
  panels: (it) => [`${it.member_count} result${it.member_count === 1 ? '' : 's'}`, period(it, { on: 'On', since: '' })],
  other_sections: (it) => [it.value ? h('span', { class: 'item-value' }, it.value) : null, it.severity ? `Severity: ${it.severity}` : null,
    period(it, { on: 'On', since: 'Since' }), it.status && !['completed', 'active'].includes(it.status) ? statusWords(it.status) : null],
};

// Statements of the sections without a section of their own here, under
// the name of the section they came from (functional status, goals, ...).
function groupedLists(key, items, ctx) {
  const bySection = new Map();
  for (const it of items) {
    const name = it.section || 'Other';
    if (!bySection.has(name)) bySection.set(name, []);
    bySection.get(name).push(it);
  }
  return [...bySection.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([name, list]) =>
    h('div', { class: 'summary-group', 'data-testid': 'summary-other-group' }, h('h3', null, name), itemList(key, list, ctx)));
}

function itemList(key, items, ctx) {
  const details = DETAILS[key] || ((it) => [period(it), notWhenActive(it)]);
  return h('ul', { class: 'summary-list', 'data-section': key },
    items.map((it) => (key === 'notes' ? noteEl(it, ctx) : itemEl(it, ctx, details(it), attachmentEl(it)))));
}

// An embedded plain-text document (a clinical note sent as an attachment),
// folded; other attachments are named by their kind in the details.
function attachmentEl(it) {
  if (!it.attachment_text) return null;
  return h('details', { class: 'attachment-text', 'data-testid': 'summary-attachment' },
    h('summary', null, 'Read the document'), h('div', { class: 'note-text' }, it.attachment_text));
}

// A note from a document: its title, then its text (long ones folded).
function noteEl(it, ctx) {
  const title = firstLine(it.name);
  let text = it.text || '';
  if (text.split('\n')[0].trim().toLowerCase() === title.trim().toLowerCase()) text = text.split('\n').slice(1).join('\n');
  const body = h('div', { class: 'note-text' }, text);
  return itemEl({ ...it, name: title }, ctx, [period(it, { on: 'Dated', since: '' })],
    text.length > 400 ? h('details', null, h('summary', null, 'Read the note'), body) : body);
}

// --- sections -------------------------------------------------------------------------------

// key: the section's key in the answer; id: its test id and anchor;
// always: shown even when empty (with `empty` said in words).
const SECTIONS = [
  { key: 'problems', id: 'problems', title: 'Problems', empty: 'No problems recorded.', always: true, split: 'Resolved problems' },
  { key: 'allergies', id: 'allergies', title: 'Allergies', empty: 'No allergies recorded.', always: true },
  { key: 'medications', id: 'medications', title: 'Medications', empty: 'No medications recorded.', always: true, split: 'Past medications', current: 'Current medications' },
  { key: 'immunizations', id: 'immunizations', title: 'Immunizations', empty: 'No immunizations recorded.', always: true },
  { obs: 'result', id: 'results', title: 'Results', empty: 'No test results recorded.', always: true },
  { obs: 'vital-sign', id: 'vitals', title: 'Vital signs', empty: 'No vital signs recorded.', always: true },
  { key: 'procedures', id: 'procedures', title: 'Procedures', empty: 'No procedures recorded.' },
  { key: 'encounters', id: 'encounters', title: 'Encounters', empty: 'No visits recorded.' },
  { key: 'plans', id: 'plans', title: 'Care plans', empty: 'No care plans recorded.' },
  { key: 'social_history', id: 'social-history', title: 'Social history', empty: 'No social history recorded.' },
  { key: 'family_history', id: 'family-history', title: 'Family history', empty: 'No family history recorded.' },
  { key: 'panels', id: 'panels', title: 'Test panels', empty: 'No test panels recorded.' },
  { key: 'other_sections', id: 'other-sections', title: 'More from the documents', empty: 'Nothing more recorded.', grouped: true },
  { key: 'notes', id: 'notes', title: 'Notes', empty: 'No notes recorded.' },
  { key: 'document_references', id: 'attachments', title: 'Attached documents', empty: 'No attached documents.' },
  { docs: true, id: 'documents', title: 'Documents', empty: 'No documents imported yet.', always: true },
];

function sectionPanel(spec, count, ...content) {
  const headingId = `summary-${spec.id}-h`;
  return h('section', {
    class: 'panel summary-section', id: `summary-${spec.id}`, 'aria-labelledby': headingId,
    'data-testid': `summary-${spec.id}`, 'data-count': count,
  }, h('h2', { id: headingId, tabindex: '-1' }, spec.title, count ? h('span', { class: 'count' }, ` (${count})`) : null), content);
}

function itemsSection(spec, items, ctx) {
  if (!items.length) return sectionPanel(spec, 0, emptyLine(spec, ctx));
  if (spec.grouped) return sectionPanel(spec, items.length, groupedLists(spec.key, items, ctx));
  if (!spec.split) return sectionPanel(spec, items.length, itemList(spec.key, items, ctx));
  const current = items.filter((it) => it.active);
  const past = items.filter((it) => !it.active);
  return sectionPanel(spec, items.length,
    spec.current ? h('h3', null, spec.current) : null,
    current.length ? itemList(spec.key, current, ctx) : h('p', { class: 'muted' }, `None current.`),
    past.length ? h('details', { class: 'summary-past', 'data-testid': `summary-${spec.id}-past` },
      h('summary', null, `${spec.split} (${past.length})`), itemList(spec.key, past, ctx)) : null);
}

// An empty section says so; when parts of the record are withheld, that
// "nothing" is only about what the reader may see.
function emptyLine(spec, ctx) {
  return h('p', { class: 'summary-empty', 'data-testid': `summary-${spec.id}-empty` },
    spec.empty, ctx.withheld ? ' (Only in the parts of the record shown to you.)' : '');
}

// --- observations: tables and charts -----------------------------------------------------------

function flagBadge(p) {
  if (!p.flag_text && !p.abnormal) return null;
  const words = capitalise(p.flag_text || 'Abnormal');
  return h('span', {
    class: ['badge', p.abnormal ? 'badge-flag' : 'badge-muted'], 'data-testid': 'summary-flag',
    'data-abnormal': p.abnormal ? 'true' : 'false',
  }, p.abnormal && !/abnormal|high|low|critical|threshold/i.test(words) ? `${words} (abnormal)` : words);
}

// The range column appears only when some point of the group has one (the
// lab's normal range for that result).
function pointsTable(group, ctx, caption) {
  const ranged = group.points.some((p) => p.reference_range);
  const table = h('table', { class: 'table summary-table' },
    h('caption', { class: 'visually-hidden' }, caption),
    h('thead', null, h('tr', null,
      h('th', { scope: 'col' }, 'Date'), h('th', { scope: 'col' }, 'Value'),
      ranged ? h('th', { scope: 'col' }, 'Normal range') : null,
      h('th', { scope: 'col' }, 'Flag'), h('th', { scope: 'col' }, 'Source'))),
    h('tbody', null, group.points.map((p) => h('tr', { class: p.abnormal ? 'row-abnormal' : undefined },
      h('th', { scope: 'row' }, p.time ? whenEl(p.time, true) : 'Date not recorded'),
      h('td', null, valueEl(p)),
      ranged ? h('td', { 'data-testid': 'summary-range' }, p.reference_range || '—') : null,
      h('td', null, flagBadge(p) || h('span', { class: 'muted' }, '—')),
      h('td', null, sourceWords(p, ctx) || '—')))));
  return scrollBox(stackTable(table), caption);
}

// The points of a group a chart can draw: numeric values in the group's
// most common unit (a point in another unit is not drawn on the same axis).
function chartSeries(group) {
  const bp = group.points.some((p) => component(p, SYSTOLIC, '8480-6') && component(p, DIASTOLIC, '8462-4'));
  if (bp) {
    const pts = group.points.map((p) => ({ p, t: toDate(p.time), s: component(p, SYSTOLIC, '8480-6'), d: component(p, DIASTOLIC, '8462-4') }))
      .filter((x) => x.t && x.s && x.d && isNumeric(x.s.value) && isNumeric(x.d.value));
    return {
      bp: true, unit: 'mmHg', skipped: group.points.length - pts.length,
      series: [
        { name: 'Systolic', cls: 's-systolic', points: pts.map((x) => ({ t: x.t, v: Number(x.s.value), label: pointText(x.p), flag: Number(x.s.value) >= 130 })) },
        { name: 'Diastolic', cls: 's-diastolic', points: pts.map((x) => ({ t: x.t, v: Number(x.d.value), label: pointText(x.p), flag: Number(x.d.value) >= 80 })) },
      ],
    };
  }
  const units = new Map();
  for (const p of group.points) if (isNumeric(p.value)) units.set(p.unit || '', (units.get(p.unit || '') || 0) + 1);
  const main = [...units.entries()].sort((a, b) => b[1] - a[1])[0];
  if (!main) return null;
  const pts = group.points.filter((p) => isNumeric(p.value) && (p.unit || '') === main[0] && toDate(p.time));
  const unit = unitWords(pts.length ? textUnit(pts[0]) : group.unit);
  return {
    bp: false, unit, skipped: group.points.length - pts.length,
    series: [{ name: group.kind === 'vital-sign' ? 'Reading' : 'Result', cls: 's-result', points: pts.map((p) => ({ t: toDate(p.time), v: Number(p.value), label: pointText(p), flag: p.abnormal })) }],
  };
}

function chartFor(group, index, data, width) {
  const n = data.series[0].points.length;
  const times = data.series[0].points.map((p) => p.t.getTime());
  const from = new Date(Math.min(...times));
  const to = new Date(Math.max(...times));
  const latest = data.series[0].points.reduce((a, b) => (b.t > a.t ? b : a));
  const words = [
    `${n} ${n === 1 ? 'value' : 'values'} from ${fmtWhen(from.toISOString())} to ${fmtWhen(to.toISOString())}; the latest ${latest.label}.`,
    data.bp ? 'Shaded: target systolic below 130 and diastolic below 80 mmHg.' : 'Filled points are outside the normal range.',
    data.skipped ? `${data.skipped} ${data.skipped === 1 ? 'value is' : 'values are'} not drawn (no number, or another unit).` : '',
  ].filter(Boolean).join(' ');
  // The caption names the chart for screen readers (the h3 above says it on screen).
  return lineChart({
    title: `${firstLine(group.name)} over time${data.unit ? ` (${data.unit})` : ''}`,
    description: words, unit: data.unit, testid: `summary-chart-${index}`, width,
    series: data.series,
    ...(data.bp ? bpTargets() : {}),
  });
}

function groupEl(group, index, ctx) {
  const latest = group.points[0];
  const data = group.numeric ? chartSeries(group) : null;
  const chartable = data && data.series[0].points.length >= 2;
  const noun = group.kind === 'result' ? ['result', 'results'] : ['reading', 'readings'];
  const more = group.count > group.points.length ? ` (the newest ${group.points.length} shown)` : '';
  const abnormal = group.abnormal_count > 0
    ? h('span', { class: 'badge badge-flag', 'data-testid': 'summary-abnormal-count' },
      `${group.abnormal_count} of ${group.count} abnormal`)
    : null;
  const table = pointsTable(group, ctx, `${firstLine(group.name)}: every ${noun[0]}, newest first`);
  const chartSlot = chartable ? h('div', { class: 'chart-slot' }) : null;
  const el = h('article', {
    class: 'obs-group', 'data-testid': 'summary-group', 'data-group-index': index, 'data-kind': group.kind,
    'data-abnormal-count': group.abnormal_count || 0, 'aria-labelledby': `summary-group-${index}-h`,
  },
  h('h3', { id: `summary-group-${index}-h` }, firstLine(group.name)),
  h('p', { class: 'obs-meta' },
    latest ? ['Latest: ', h('strong', null, valueEl(latest)), ' ', flagBadge(latest), latest.time ? [' on ', whenEl(latest.time)] : null] : null,
    h('span', { class: 'obs-count' }, ` · ${group.count} ${group.count === 1 ? noun[0] : noun[1]}${more}`),
    abnormal ? [' ', abnormal] : null,
    ctx.clinician && codeDetails(group.code, ctx) ? [' · ', codeDetails(group.code, ctx)] : null),
  chartSlot,
  chartable
    ? h('details', { class: 'chart-table' }, h('summary', null, `Show the ${group.points.length} ${group.points.length === 1 ? noun[0] : noun[1]} as a table`), table)
    : table);
  if (chartSlot) responsive(chartSlot, (w) => chartFor(group, index, data, w));
  return el;
}

// A group with nothing to show (a lab panel's heading, no value at all).
function isEmptyGroup(g) {
  return g.points.every((p) => !p.value && !p.text && !(p.components || []).length);
}

function obsSection(spec, all, ctx) {
  const groups = all.map((g, i) => ({ g, i })).filter(({ g }) => (spec.obs === 'vital-sign' ? g.kind === 'vital-sign' : g.kind !== 'vital-sign'));
  const shown = groups.filter(({ g }) => !isEmptyGroup(g));
  const bare = groups.filter(({ g }) => isEmptyGroup(g));
  if (!groups.length) return sectionPanel(spec, 0, emptyLine(spec, ctx));
  const rounded = shown.some(({ g }) => g.points.some((p) => isNumeric(p.value) && readable(p.value) !== p.value));
  return sectionPanel(spec, shown.length,
    rounded ? h('p', { class: 'hint' }, 'Values with many decimals are rounded here; the downloaded record keeps them as they were written.') : null,
    h('div', { class: 'obs-groups' }, shown.map(({ g, i }) => groupEl(g, i, ctx))),
    bare.length ? h('p', { class: 'hint' }, 'Also recorded, without a value of their own: ',
      bare.map(({ g }) => `${firstLine(g.name)} (${fmtWhen(g.points[0] && g.points[0].time)})`).join('; '), '.') : null);
}

function documentsSection(spec, docs) {
  if (!docs.length) return sectionPanel(spec, 0, h('p', { class: 'summary-empty', 'data-testid': 'summary-documents-empty' }, spec.empty));
  return sectionPanel(spec, docs.length,
    h('p', { class: 'hint' }, 'The documents your record was built from.'),
    h('ul', { class: 'summary-list' }, docs.map((d) => h('li', { class: 'summary-item', 'data-testid': 'summary-document' },
      h('p', { class: 'item-name' }, h('strong', { 'data-testid': 'summary-document-title' }, documentTitle(d))),
      h('p', { class: 'item-meta' }, join([
        FORMAT_WORDS[d.format] || 'Document',
        d.time ? whenEl(d.time) : 'date not recorded',
        d.authors && d.authors.length ? `by ${d.authors.join(', ')}` : null,
        d.custodian ? `kept by ${d.custodian}` : null,
        typeof d.entry_count === 'number' ? `${d.entry_count} ${d.entry_count === 1 ? 'entry' : 'entries'}` : null,
      ]))))));
}

// --- header, notices, contents ---------------------------------------------------------------

function headerEl(patient, counts) {
  if (!patient || !patient.name) {
    return h('section', { class: 'panel summary-header', 'data-testid': 'summary-header', 'aria-label': 'Patient' },
      h('p', { class: 'muted' }, 'The name and birth date are not shown to you.'));
  }
  const age = ageOn(patient.birth_date);
  const mrns = (patient.medical_record_numbers || []).filter((m) => typeof m === 'string');
  const row = (label, value, testid) => (value ? h('div', { class: 'kv' }, h('dt', null, label), h('dd', { 'data-testid': testid }, value)) : null);
  return h('section', { class: 'panel summary-header', 'data-testid': 'summary-header', 'aria-label': 'Patient' },
    h('p', { class: 'summary-name', 'data-testid': 'summary-name' }, patient.name || 'Name not recorded'),
    h('dl', { class: 'summary-facts' },
      row('Born', patient.birth_date ? [whenEl(patient.birth_date), age !== null ? ` (age ${age})` : ''] : null, 'summary-birth'),
      row('Sex', patient.gender ? capitalise(patient.gender) : null, 'summary-sex'),
      row(mrns.length > 1 ? 'Medical record numbers' : 'Medical record number', mrns.join(', '), 'summary-mrn')),
    counts ? h('p', { class: 'hint' }, `Built from ${counts.documents || 0} imported ${counts.documents === 1 ? 'document' : 'documents'} and the readings recorded here.`) : null);
}

function noticesEl(counts) {
  const withheld = (counts.segments_withheld || 0) + (counts.segments_withheld_masked || 0);
  return [
    withheld > 0 ? notice('Some parts of this record are not shown to you. The summary is made of the parts you may see.', 'info', 'summary-withheld') : null,
    counts.segments_unreadable > 0
      ? notice(`${counts.segments_unreadable === 1 ? 'One part' : `${counts.segments_unreadable} parts`} of this record could not be read and ${counts.segments_unreadable === 1 ? 'is' : 'are'} left out of the summary. This is logged for the record’s keepers to check.`, 'warn', 'summary-unreadable')
      : null,
  ];
}

// In-page contents. The links move focus without touching the hash (the
// hash is the route, as for the skip link). Folded on phones, where the
// list of sections would fill the first screen.
function contentsEl(panels) {
  const narrow = typeof window.matchMedia === 'function' && window.matchMedia('(max-width: 700px)').matches;
  return h('nav', { class: 'summary-toc', 'aria-label': 'Summary sections', 'data-testid': 'summary-toc' },
    h('details', { open: !narrow }, h('summary', null, 'Sections of this summary'), h('ul', null, panels.map((p) => {
      const heading = p.querySelector('h2');
      return h('li', null, h('a', {
        href: `#${p.id}`,
        onclick: (e) => {
          e.preventDefault();
          heading.focus();
          heading.scrollIntoView({ block: 'start' });
        },
      }, heading.textContent));
    }))));
}

// --- downloads and printing (the patient) --------------------------------------------------------

function downloadButton(pid, format, label, filename) {
  const btn = h('button', { type: 'button', 'data-testid': `summary-download-${format}` }, label);
  btn.addEventListener('click', () => busy(btn, 'Preparing…', async () => {
    try {
      await downloadAttachment(patientUrl(pid, `/export?format=${format}`), filename);
      announce(`Your record was downloaded as ${filename}.`, 'success');
    } catch (err) {
      if (!err.sessionLost) announce(`Cannot download your record. ${errorWords(err)}`, 'error');
    }
  }));
  return btn;
}

function downloadsEl(pid) {
  const print = h('button', { type: 'button', 'data-testid': 'summary-print', onclick: () => window.print() }, 'Print summary');
  return h('section', { class: 'panel summary-actions', 'aria-labelledby': 'summary-download-h', 'data-testid': 'summary-downloads' },
    h('h2', { id: 'summary-download-h' }, 'Download my record'),
    h('p', { class: 'hint' }, 'Your whole record as a file to keep or to give another doctor or app. FHIR is read by most health apps; C-CDA by most hospital systems.'),
    h('div', { class: 'actions' },
      downloadButton(pid, 'fhir', 'Download FHIR file (JSON)', 'health-record-fhir.json'),
      downloadButton(pid, 'ccda', 'Download C-CDA file (XML)', 'health-record-ccda.xml'),
      print),
    h('p', { class: 'hint' }, h('a', { href: '#/me/record', class: 'plain-link' }, 'Every stored entry of your record, with its versions')));
}

// Printing shows folded parts (resolved problems, tables); they fold
// back afterwards.
let reopened = [];
window.addEventListener('beforeprint', () => {
  reopened = [...document.querySelectorAll('.summary details:not([open])')];
  for (const d of reopened) d.open = true;
});
window.addEventListener('afterprint', () => {
  for (const d of reopened) d.open = false;
  reopened = [];
});

// --- the summary ---------------------------------------------------------------------------

// The summary of `pid`'s record as panels. mode 'patient' (their own:
// the header with their identity, downloads and printing) or 'clinician'
// (the page header already names the patient; code details shown).
export function summaryPanel(pid, { mode = 'patient' } = {}) {
  const root = h('div', { class: 'summary', 'data-testid': 'summary', 'aria-busy': 'true' }, loading('Loading the summary…'));
  // The newest 100 points of each series: enough for a chart and its table
  // on a phone (the API's default is 500; the downloads carry everything).
  api('GET', patientUrl(pid, '/summary?points=100')).then(({ data }) => {
    root.removeAttribute('aria-busy');
    replace(root, render(pid, data, mode));
    root.dataset.loaded = 'true';
  }).catch((err) => {
    if (err.sessionLost) return;
    root.removeAttribute('aria-busy');
    replace(root, errorBox(`Cannot show the summary. ${errorWords(err)}`, 'summary-error'));
  });
  return root;
}

function render(pid, s, mode) {
  const counts = s.counts || {};
  const ctx = {
    clinician: mode === 'clinician',
    docs: new Map((s.documents || []).map((d) => [d.key, d])),
    withheld: (counts.segments_withheld || 0) + (counts.segments_withheld_masked || 0) > 0,
  };
  const sections = s.sections || {};
  const observations = s.observations || [];
  const panels = [];
  for (const spec of SECTIONS) {
    let panel;
    if (spec.obs) panel = obsSection(spec, observations, ctx);
    else if (spec.docs) panel = documentsSection(spec, s.documents || []);
    else {
      const items = sections[spec.key] || [];
      if (!items.length && !spec.always) continue;
      panel = itemsSection(spec, items, ctx);
    }
    panels.push(panel);
  }
  return [
    mode === 'patient' ? headerEl(s.patient, counts)
      : h('p', { class: 'hint' }, 'The record in words, built from its imported documents and readings. The readings over time, the stored entries, notes and orders follow below.'),
    noticesEl(counts),
    mode === 'patient' ? downloadsEl(pid) : null,
    contentsEl(panels),
    panels,
  ];
}
