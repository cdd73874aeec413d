// Hand-written SVG time-series charts, built with DOM APIs. Colours and
// strokes come from classes in styles.css (no style attributes: CSP).
import { h, svg, fmtDateTime } from './dom.js';

function niceStep(range, ticks) {
  const raw = range / Math.max(1, ticks);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10;
  return step * mag;
}

const HOUR = 60 * 60 * 1000;
const DAY = 24 * HOUR;
const dayLabel = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const monthLabel = new Intl.DateTimeFormat(undefined, { month: 'short', year: 'numeric' });
const yearLabel = new Intl.DateTimeFormat(undefined, { year: 'numeric' });
const hourLabel = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

const YEAR = 365.25 * DAY;

// Ticks on round local times (hours, days, weeks, months, years) that fit
// the width (results imported from documents may span decades).
function timeTicks(tMin, tMax, width) {
  const steps = [HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY,
    YEAR, 2 * YEAR, 5 * YEAR, 10 * YEAR, 20 * YEAR, 50 * YEAR];
  const span = tMax - tMin;
  // Labels of whole years ("2016") are narrower than "Nov 14" or "Jan 2016".
  const maxTicks = (s) => Math.max(2, Math.floor(width / (s >= YEAR ? 50 : 80)));
  const step = steps.find((s) => span / s <= maxTicks(s)) || 50 * YEAR;
  const out = [];
  const d = new Date(tMin);
  if (step < DAY) {
    const hours = step / HOUR;
    d.setMinutes(0, 0, 0);
    d.setHours(Math.ceil(d.getHours() / hours) * hours);
    if (d.getTime() < tMin) d.setHours(d.getHours() + hours);
    for (; d.getTime() <= tMax; d.setHours(d.getHours() + hours)) {
      const midnight = d.getHours() === 0;
      out.push({ at: d.getTime(), label: midnight ? dayLabel.format(d) : hourLabel.format(d) });
    }
  } else if (step < 30 * DAY) {
    const days = step / DAY;
    d.setHours(0, 0, 0, 0);
    if (d.getTime() < tMin) d.setDate(d.getDate() + 1);
    for (; d.getTime() <= tMax; d.setDate(d.getDate() + days)) out.push({ at: d.getTime(), label: dayLabel.format(d) });
  } else if (step < YEAR) {
    const months = Math.round(step / (30 * DAY));
    d.setHours(0, 0, 0, 0);
    d.setDate(1);
    if (d.getTime() < tMin) d.setMonth(d.getMonth() + 1);
    d.setMonth(Math.ceil(d.getMonth() / months) * months);
    for (; d.getTime() <= tMax; d.setMonth(d.getMonth() + months)) out.push({ at: d.getTime(), label: monthLabel.format(d) });
  } else {
    // Whole years, on multiples of the step (2010, 2015, 2020).
    const years = Math.round(step / YEAR);
    d.setHours(0, 0, 0, 0);
    d.setMonth(0, 1);
    if (d.getTime() < tMin) d.setFullYear(d.getFullYear() + 1);
    d.setFullYear(Math.ceil(d.getFullYear() / years) * years);
    for (; d.getTime() <= tMax; d.setFullYear(d.getFullYear() + years)) out.push({ at: d.getTime(), label: yearLabel.format(d) });
  }
  return out;
}

function decimals(step) {
  return step >= 1 ? 0 : Math.min(3, Math.ceil(-Math.log10(step)));
}

// lineChart({
//   title, description, unit, testid, width,
//   series: [{name, cls, points: [{t: Date, v: number, label}]}],
//   bands: [{from, to, cls, label}], lines: [{v, cls, label}],
//   yMin, yMax   (always included in the y range)
// }) -> <figure>
export function lineChart(opts) {
  const width = Math.max(300, Math.min(900, Math.round(opts.width || 640)));
  const narrow = width < 480;
  const height = narrow ? 220 : 260;
  const m = { l: 44, r: 16, t: 24, b: 34 };
  const all = opts.series.flatMap((s) => s.points);
  const fig = h('figure', { class: 'chart', 'data-testid': opts.testid });
  const titleId = `${opts.testid || 'chart'}-title`;
  fig.appendChild(h('figcaption', { id: titleId }, opts.title));

  if (all.length === 0) {
    fig.appendChild(h('p', { class: 'chart-empty', 'data-testid': opts.testid ? `${opts.testid}-empty` : undefined },
      opts.emptyText || 'No readings yet.'));
    return fig;
  }

  // --- scales ---------------------------------------------------------------
  let tMin = Math.min(...all.map((p) => p.t.getTime()));
  let tMax = Math.max(...all.map((p) => p.t.getTime()));
  if (tMax - tMin < 60 * 60 * 1000) {
    tMin -= 12 * 60 * 60 * 1000;
    tMax += 12 * 60 * 60 * 1000;
  } else {
    const pad = (tMax - tMin) * 0.04;
    tMin -= pad;
    tMax += pad;
  }
  const values = all.map((p) => p.v);
  for (const b of opts.bands || []) values.push(b.to);
  for (const l of opts.lines || []) values.push(l.v);
  if (opts.yMin !== undefined) values.push(opts.yMin);
  if (opts.yMax !== undefined) values.push(opts.yMax);
  let vMin = Math.min(...values);
  let vMax = Math.max(...values);
  if (vMax - vMin < 1e-9) {
    vMin -= 1;
    vMax += 1;
  }
  const step = niceStep(vMax - vMin, narrow ? 4 : 6);
  vMin = Math.floor(vMin / step) * step;
  vMax = Math.ceil(vMax / step) * step;
  const pw = width - m.l - m.r;
  const ph = height - m.t - m.b;
  const x = (t) => m.l + ((t - tMin) / (tMax - tMin)) * pw;
  const y = (v) => m.t + (1 - (v - vMin) / (vMax - vMin)) * ph;
  const r1 = (n) => Math.round(n * 10) / 10;

  const root = svg('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', 'aria-labelledby': titleId,
    class: 'chart-svg', focusable: 'false',
  });
  root.appendChild(svg('desc', null, opts.description || ''));

  // --- target bands and reference lines ------------------------------------------
  for (const b of opts.bands || []) {
    const from = Math.max(vMin, b.from ?? vMin);
    const to = Math.min(vMax, b.to);
    if (to <= from) continue;
    root.appendChild(svg('rect', {
      x: m.l, y: r1(y(to)), width: pw, height: r1(y(from) - y(to)), class: `band ${b.cls || ''}`,
      'data-testid': b.testid,
    }, svg('title', null, b.label || '')));
  }

  // --- grid and axes -------------------------------------------------------------
  const grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
  const dec = decimals(step);
  for (let v = vMin; v <= vMax + step / 2; v += step) {
    grid.appendChild(svg('line', { x1: m.l, x2: m.l + pw, y1: r1(y(v)), y2: r1(y(v)) }));
    grid.appendChild(svg('text', { x: m.l - 6, y: r1(y(v)) + 4, class: 'tick tick-y' }, v.toFixed(dec)));
  }
  for (const t of timeTicks(tMin, tMax, pw)) {
    const xt = r1(x(t.at));
    grid.appendChild(svg('line', { x1: xt, x2: xt, y1: m.t, y2: m.t + ph, class: 'vgrid' }));
    grid.appendChild(svg('line', { x1: xt, x2: xt, y1: m.t + ph, y2: m.t + ph + 4, class: 'tick-mark' }));
    grid.appendChild(svg('text', { x: xt, y: m.t + ph + 18, class: 'tick tick-x anchor-middle' }, t.label));
  }
  grid.appendChild(svg('line', { x1: m.l, x2: m.l + pw, y1: m.t + ph, y2: m.t + ph, class: 'axis' }));
  grid.appendChild(svg('line', { x1: m.l, x2: m.l, y1: m.t, y2: m.t + ph, class: 'axis' }));
  if (opts.unit) grid.appendChild(svg('text', { x: 4, y: 12, class: 'tick unit-label' }, opts.unit));
  root.appendChild(grid);

  for (const l of opts.lines || []) {
    if (l.v < vMin || l.v > vMax) continue;
    root.appendChild(svg('line', { x1: m.l, x2: m.l + pw, y1: r1(y(l.v)), y2: r1(y(l.v)), class: `ref-line ${l.cls || ''}` },
      svg('title', null, l.label || '')));
  }

  // --- series ----------------------------------------------------------------------
  for (const s of opts.series) {
    const pts = [...s.points].sort((a, b) => a.t - b.t);
    if (pts.length > 1) {
      root.appendChild(svg('polyline', {
        points: pts.map((p) => `${r1(x(p.t.getTime()))},${r1(y(p.v))}`).join(' '),
        class: `series-line ${s.cls}`,
      }));
    }
    const g = svg('g', { class: `series-points ${s.cls}` });
    for (const p of pts) {
      g.appendChild(svg('circle', {
        cx: r1(x(p.t.getTime())), cy: r1(y(p.v)), r: narrow ? 3 : 3.5, class: p.flag ? 'point out-of-target' : 'point',
      }, svg('title', null, `${fmtDateTime(p.t)}: ${p.label || `${p.v} ${opts.unit || ''}`}`)));
    }
    root.appendChild(g);
  }

  fig.appendChild(h('div', { class: 'chart-scroll' }, root));

  // --- legend and the same data as a table -----------------------------------
  const legend = h('ul', { class: 'legend' },
    opts.series.map((s) => h('li', null, h('span', { class: `swatch ${s.cls}`, 'aria-hidden': 'true' }), s.name)),
    (opts.bands || []).map((b) => h('li', null, h('span', { class: `swatch band ${b.cls || ''}`, 'aria-hidden': 'true' }), b.label)));
  fig.appendChild(legend);
  if (opts.table) fig.appendChild(opts.table);
  return fig;
}

// Re-renders `render(width)` into `container` when its width changes.
export function responsive(container, render) {
  let lastWidth = 0;
  const draw = () => {
    const w = container.clientWidth || 640;
    if (Math.abs(w - lastWidth) < 8) return;
    lastWidth = w;
    const node = render(w);
    container.replaceChildren(node);
  };
  if (typeof ResizeObserver !== 'undefined') {
    const ro = new ResizeObserver(() => draw());
    ro.observe(container);
  }
  window.requestAnimationFrame(draw);
  draw();
}
