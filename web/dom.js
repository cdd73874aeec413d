// Small DOM helpers shared by every view. Everything that comes from the
// server is put into the page as text (textContent / attribute values),
// never parsed as HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected', 'required',
  'multiple', 'readOnly', 'indeterminate', 'open']);

function applyAttrs(el, attrs) {
  if (!attrs) return;
  for (const [key, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) {
      if (PROPS.has(key) && v === false) el[key] = false;
      continue;
    }
    if (key.startsWith('on') && typeof v === 'function') {
      el.addEventListener(key.slice(2).toLowerCase(), v);
    } else if (PROPS.has(key)) {
      el[key] = v;
    } else if (key === 'class' && Array.isArray(v)) {
      el.setAttribute('class', v.filter(Boolean).join(' '));
    } else {
      el.setAttribute(key, v === true ? '' : String(v));
    }
  }
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// h('p', {class: 'x', 'data-testid': 'y', onclick: fn}, 'text', child, [more])
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  applyAttrs(el, attrs);
  append(el, children);
  return el;
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

let idCounter = 0;
export function uid(prefix = 'f') {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

// --- the status region (aria-live) -----------------------------------------

let statusTimer = null;
export function announce(message, kind = 'info') {
  const region = document.getElementById('status');
  if (!region) return;
  region.className = `status status-${kind}`;
  // Clear first so that the same message twice is announced twice.
  region.textContent = '';
  window.setTimeout(() => { region.textContent = message; }, 30);
  if (statusTimer) window.clearTimeout(statusTimer);
  statusTimer = window.setTimeout(() => {
    region.textContent = '';
    region.className = 'status';
  }, kind === 'error' ? 15000 : 8000);
}

// --- formatting --------------------------------------------------------------

const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit',
});
const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });

export function fmtDateTime(iso) {
  if (!iso) return '';
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTimeFmt.format(d);
}

export function fmtDate(iso) {
  if (!iso) return '';
  const d = iso instanceof Date ? iso : new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateFmt.format(d);
}

export function timeEl(iso, withTime = true) {
  if (!iso) return h('span', null, '—');
  return h('time', { datetime: iso }, withTime ? fmtDateTime(iso) : fmtDate(iso));
}

// "2026-11-21T08:30" in local time, for datetime-local inputs.
export function localDateTimeValue(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function localDateValue(d = new Date()) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

export function shortId(id) {
  return id ? `${id.slice(0, 8)}…` : '';
}

export function humanBytes(n) {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

// "blood-pressure" -> "Blood pressure"
export function labelOf(name) {
  if (!name) return '';
  const s = String(name).replace(/[-_]/g, ' ');
  return s.charAt(0).toUpperCase() + s.slice(1);
}

// --- forms -------------------------------------------------------------------

// A labelled control: {label, name, type, required, min, max, step, value,
// options: [[value, text]], hint, unit, testid, rows, maxlength, pattern,
// patternMessage, autocomplete, placeholder, list}
export function field(spec) {
  const id = spec.id || uid(spec.name || 'f');
  const hintId = spec.hint ? `${id}-hint` : null;
  const errId = `${id}-err`;
  const describedBy = [hintId, errId].filter(Boolean).join(' ');
  let control;
  const common = {
    id, name: spec.name, required: !!spec.required, 'aria-describedby': describedBy,
    'data-testid': spec.testid, 'data-label': spec.label, autocomplete: spec.autocomplete,
    placeholder: spec.placeholder, disabled: !!spec.disabled,
  };
  if (spec.type === 'select') {
    control = h('select', common,
      (spec.options || []).map(([v, t]) => h('option', { value: v, selected: String(spec.value ?? '') === String(v) }, t)));
  } else if (spec.type === 'textarea') {
    control = h('textarea', { ...common, rows: spec.rows || 4, maxlength: spec.maxlength, minlength: spec.minlength });
    if (spec.value) control.value = spec.value;
  } else {
    control = h('input', {
      ...common, type: spec.type || 'text', min: spec.min, max: spec.max, step: spec.step,
      maxlength: spec.maxlength, minlength: spec.minlength, pattern: spec.pattern,
      inputmode: spec.inputmode, list: spec.list, size: spec.size,
      'data-pattern-message': spec.patternMessage, 'data-unit': spec.unit,
    });
    if (spec.value !== undefined && spec.value !== null) control.value = spec.value;
  }
  const label = h('label', { for: id }, spec.label, spec.required ? null : h('span', { class: 'optional' }, ' (optional)'));
  const row = h('div', { class: ['field', spec.wide && 'field-wide', spec.class] },
    label,
    spec.unit ? h('div', { class: 'with-unit' }, control, h('span', { class: 'unit', 'aria-hidden': 'true' }, spec.unit)) : control,
    spec.hint ? h('p', { class: 'hint', id: hintId }, spec.hint) : null,
    h('p', { class: 'field-error', id: errId, 'data-testid': spec.testid ? `${spec.testid}-error` : undefined }));
  row.control = control;
  return row;
}

// A group of checkboxes in a fieldset: items [[value, text, checked]].
export function checkboxGroup(legend, name, items, testid, hint) {
  const fs = h('fieldset', { class: 'checks', 'data-testid': testid },
    h('legend', null, legend),
    hint ? h('p', { class: 'hint' }, hint) : null,
    items.map(([v, t, checked]) => {
      const id = uid(name);
      return h('div', { class: 'check' },
        h('input', { type: 'checkbox', id, name, value: v, checked: !!checked, 'data-testid': testid ? `${testid}-${v || 'all'}` : undefined }),
        h('label', { for: id }, t));
    }));
  return fs;
}

export function checkedValues(root, name) {
  return [...root.querySelectorAll(`input[type=checkbox][name="${name}"]`)].filter((c) => c.checked).map((c) => c.value);
}

function fieldLabel(control) {
  return control.dataset.label || control.name || 'This field';
}

// Shows `message` under the control (or clears it).
export function setFieldError(control, message) {
  const errId = `${control.id}-err`;
  const err = document.getElementById(errId);
  if (err) err.textContent = message || '';
  if (message) control.setAttribute('aria-invalid', 'true');
  else control.removeAttribute('aria-invalid');
}

// Validates the form's controls with the constraint attributes and gives
// each invalid one a message in words. `extra` is a function returning
// [[control, message]] for rules of the form itself. Returns true when valid.
export function validateForm(form, extra) {
  const problems = [];
  for (const c of form.querySelectorAll('input, select, textarea')) {
    if (!c.id || c.type === 'checkbox' || c.type === 'radio' || c.disabled) continue;
    let msg = '';
    const v = c.validity;
    const name = fieldLabel(c);
    const unit = c.dataset.unit ? ` ${c.dataset.unit}` : '';
    if (v.valueMissing) msg = c.tagName === 'SELECT' ? `Choose ${name.toLowerCase()}.` : `Enter ${name.toLowerCase()}.`;
    else if (v.badInput) msg = `${name} must be a number.`;
    else if (v.rangeUnderflow || v.rangeOverflow) {
      if (c.type === 'number') msg = `${name} must be between ${c.min} and ${c.max}${unit}.`;
      else if (v.rangeUnderflow) msg = `${name} must not be before ${c.min}.`;
      else msg = `${name} must not be after ${c.max}.`;
    } else if (v.stepMismatch) msg = c.step === '1' ? `${name} must be a whole number.` : `${name} has too many decimals.`;
    else if (v.tooShort) msg = `${name} needs at least ${c.minLength} characters (now ${c.value.length}).`;
    else if (v.tooLong) msg = `${name} may have at most ${c.maxLength} characters.`;
    else if (v.patternMismatch) msg = c.dataset.patternMessage || `${name} is not in the expected form.`;
    else if (v.typeMismatch) msg = `${name} is not valid.`;
    setFieldError(c, msg);
    if (msg) problems.push([c, msg]);
  }
  if (extra) {
    for (const [c, msg] of extra() || []) {
      if (problems.some(([p]) => p === c)) continue;
      setFieldError(c, msg);
      problems.push([c, msg]);
    }
  }
  const summary = form.querySelector('.form-error');
  if (summary) {
    summary.textContent = problems.length
      ? (problems.length === 1 ? problems[0][1] : `Please correct ${problems.length} fields: ${problems.map(([, m]) => m).join(' ')}`)
      : '';
  }
  if (problems.length) problems[0][0].focus();
  return problems.length === 0;
}

// The error summary of a form, shown as an alert.
export function formError(testid) {
  return h('p', { class: 'form-error', role: 'alert', 'data-testid': testid });
}

export function showFormError(form, message) {
  const summary = form.querySelector('.form-error');
  if (summary) summary.textContent = message || '';
}

// Disables the submit button and shows a busy label while `work` runs.
export async function busy(button, label, work) {
  const old = button.textContent;
  button.disabled = true;
  button.setAttribute('aria-busy', 'true');
  button.textContent = label;
  try {
    return await work();
  } finally {
    button.disabled = false;
    button.removeAttribute('aria-busy');
    button.textContent = old;
  }
}

// A loading placeholder with a spinner, announced politely.
export function loading(text = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, h('span', { class: 'spinner', 'aria-hidden': 'true' }), text);
}

export function errorBox(message, testid) {
  return h('p', { class: 'error-box', role: 'alert', 'data-testid': testid }, message);
}

export function notice(message, kind = 'info', testid) {
  return h('p', { class: `notice notice-${kind}`, 'data-testid': testid }, message);
}

// Lets a table collapse into one card per row on narrow screens: each cell
// is labelled with its column's heading (CSS shows it). Call again after
// the rows change.
export function stackTable(table) {
  table.classList.add('stack');
  const heads = [...table.querySelectorAll('thead th')].map((th) => th.textContent.trim());
  for (const tr of table.querySelectorAll('tbody tr')) {
    [...tr.children].forEach((cell, i) => {
      if (heads[i]) cell.setAttribute('data-label', heads[i]);
    });
  }
  return table;
}

// A box that scrolls a wide table sideways. While its content overflows,
// keyboard users can scroll it too: it is then focusable, as a region named
// `label` (WCAG 2.1.1); otherwise it is no extra tab stop or landmark.
export function scrollBox(content, label) {
  const box = h('div', { class: 'table-scroll' }, content);
  const update = () => {
    if (box.scrollWidth > box.clientWidth + 1) {
      box.tabIndex = 0;
      box.setAttribute('role', 'region');
      box.setAttribute('aria-label', label);
    } else {
      box.removeAttribute('tabindex');
      box.removeAttribute('role');
      box.removeAttribute('aria-label');
    }
  };
  if (typeof ResizeObserver !== 'undefined') new ResizeObserver(update).observe(box);
  return box;
}

// --- dialogs -----------------------------------------------------------------

// Opens a modal <dialog> built by `build(close)`; resolves with the value
// passed to close() (undefined on Escape). Focus returns to the opener.
export function openDialog({ title, testid, build, initialFocus }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = uid('dlg-title');
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'data-testid': testid });
    let result;
    const close = (value) => {
      result = value;
      dlg.close();
    };
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && typeof opener.focus === 'function' && document.contains(opener)) opener.focus();
      resolve(result);
    });
    dlg.append(h('h2', { id: titleId }, title), build(close));
    document.body.appendChild(dlg);
    dlg.showModal();
    const first = initialFocus ? dlg.querySelector(initialFocus) : null;
    if (first) first.focus();
  });
}

export function confirmDialog(title, message, confirmLabel = 'Confirm', danger = false) {
  return openDialog({
    title,
    testid: 'confirm-dialog',
    initialFocus: '[data-testid=confirm-cancel]',
    build: (close) => h('div', null,
      h('p', null, message),
      h('div', { class: 'actions' },
        h('button', { type: 'button', class: danger ? 'danger' : 'primary', 'data-testid': 'confirm-ok', onclick: () => close(true) }, confirmLabel),
        h('button', { type: 'button', 'data-testid': 'confirm-cancel', onclick: () => close(false) }, 'Cancel'))),
  }).then((v) => v === true);
}

// Runs `fn` over items with at most `limit` in flight; `onEach(done, total)`.
export async function pool(items, limit, fn, onEach) {
  const out = new Array(items.length);
  let next = 0;
  let done = 0;
  async function worker() {
    while (next < items.length) {
      const i = next++;
      try {
        out[i] = { ok: true, value: await fn(items[i], i) };
      } catch (e) {
        out[i] = { ok: false, error: e };
      }
      done += 1;
      if (onEach) onEach(done, items.length);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
