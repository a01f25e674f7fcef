// The stacked bar chart of accepted requests per scheme, and the same
// figures as a table. Plain SVG, drawn from the usage report's series.

import { $, clear, el, svg } from './dom.js';
import { fmtInt, fmtTime, pad, timeEl, zoneLabel } from './format.js';
import { state } from './state.js';

export const SCHEMES = ['session', 'bearer', 'jwt_cookie'];

// Geometry of the drawing, in SVG units.
const W = 760, H = 260, L = 56, R = 12, T = 14, B = 44;
const plotW = W - L - R, plotH = H - T - B;

// seriesPoints normalizes the report's series: each point has a start time
// and accepted requests per scheme.
export function seriesPoints(u) {
  return ((u && u.series) || []).map((p) => {
    const counts = p.schemes || p;
    const point = { start: p.start || p.time || p.at, rejected: Number(p.rejected || 0), total: 0 };
    for (const s of SCHEMES) {
      point[s] = Number(counts[s] || 0);
      point.total += point[s];
    }
    return point;
  });
}

function niceStep(max, ticks) {
  const raw = Math.max(max, 1) / ticks;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  for (const m of [1, 2, 5, 10]) if (m * mag >= raw) return Math.max(1, m * mag);
  return 10 * mag;
}

function tickLabel(d, step, n) {
  if (step === '1m') return `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (n <= 48) return hm;
  return `${d.getDate()} ${d.toLocaleString('en-US', { month: 'short' })} ${hm}`;
}

export function renderChart() {
  const box = $('chart');
  clear(box);
  const u = state.usage;
  const pts = seriesPoints(u);
  const stepName = (u && u.series_step) || '1h';
  const unit = stepName === '1m' ? 'per minute' : 'per hour';
  $('chart-title').textContent = `Accepted requests per scheme, ${unit}`;
  $('chart-caption').textContent = u
    ? `From ${fmtTime(u.from)} to ${fmtTime(u.to)}, times in your time zone (${zoneLabel()}). ` +
      'The first bucket can be partial. Rejected requests are not drawn.'
    : '';
  const totals = { session: 0, bearer: 0, jwt_cookie: 0 };
  let max = 0;
  for (const p of pts) {
    for (const s of SCHEMES) totals[s] += p[s];
    max = Math.max(max, p.total);
  }
  if (!pts.length || max === 0) {
    box.append(el('p', { class: 'empty', text: 'No accepted request in this window yet.' }));
    return;
  }
  const desc =
    `Totals over the window: session ${totals.session}, bearer ${totals.bearer}, jwt_cookie ${totals.jwt_cookie}. ` +
    `The busiest bucket has ${max} accepted requests.`;
  const root = svg('svg', {
    viewBox: `0 0 ${W} ${H}`, class: 'chart-svg', role: 'img',
    'aria-labelledby': 'chart-svg-title chart-svg-desc', preserveAspectRatio: 'xMidYMid meet',
  },
  svg('title', { id: 'chart-svg-title', text: `Accepted requests per scheme, ${unit}` }),
  svg('desc', { id: 'chart-svg-desc', text: desc }));
  const step = niceStep(max, 4);
  const top = Math.ceil(max / step) * step;
  const y = (v) => T + plotH - (v / top) * plotH;
  drawAxis(root, y, top, step);
  drawBuckets(root, y, pts, stepName);
  box.append(root);
}

function drawAxis(root, y, top, step) {
  for (let v = 0; v <= top; v += step) {
    root.append(
      svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: v === 0 ? 'axis' : 'grid' }),
      svg('text', { x: L - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end', text: fmtInt(v) }),
    );
  }
  root.append(svg('text', {
    x: 14, y: T + plotH / 2, class: 'tick', 'text-anchor': 'middle',
    transform: `rotate(-90 14 ${T + plotH / 2})`, text: 'requests',
  }));
}

// drawBuckets draws one stacked bar per point, labelling about eight of them.
function drawBuckets(root, y, pts, stepName) {
  const slot = plotW / pts.length;
  const bw = Math.max(1, Math.min(48, slot * 0.72));
  const every = Math.ceil(pts.length / 8);
  pts.forEach((p, i) => {
    const d = new Date(p.start);
    const x = L + i * slot + (slot - bw) / 2;
    const g = svg('g', {
      class: 'bucket', 'data-start': p.start,
      'data-session': p.session, 'data-bearer': p.bearer, 'data-jwt_cookie': p.jwt_cookie,
    }, svg('title', {
      text: `${fmtTime(p.start)}: session ${p.session}, bearer ${p.bearer}, jwt_cookie ${p.jwt_cookie}, rejected ${p.rejected}`,
    }));
    let base = 0;
    for (const s of SCHEMES) {
      if (p[s] > 0) {
        const y0 = y(base), y1 = y(base + p[s]);
        g.append(svg('rect', { x, y: y1, width: bw, height: Math.max(1, y0 - y1), class: 'bar scheme-' + s }));
        base += p[s];
      }
    }
    root.append(g);
    if (i % every === 0) {
      root.append(svg('text', {
        x: L + i * slot + slot / 2, y: T + plotH + 18, class: 'tick', 'text-anchor': 'middle',
        text: isNaN(d) ? '' : tickLabel(d, stepName, pts.length),
      }));
    }
  });
}

export function renderSeriesTable() {
  const body = $('series-table').tBodies[0];
  clear(body);
  for (const p of seriesPoints(state.usage)) {
    body.append(el('tr', {},
      el('th', { scope: 'row' }, timeEl(p.start)),
      SCHEMES.map((s) => el('td', { class: 'num', text: fmtInt(p[s]) })),
      el('td', { class: 'num', text: fmtInt(p.rejected) })));
  }
}
