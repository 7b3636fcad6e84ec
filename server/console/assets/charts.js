// SVG charts: sparklines for the stream list and line charts with axes for
// the metrics page. Drawn with SVG attributes only (no inline styles).

import {s, fmtClock} from './dom.js';

function finite(v) {
  return typeof v === 'number' && Number.isFinite(v);
}

// segments splits values into runs without gaps (null or missing values),
// each run a list of [index, value].
function segments(values) {
  const runs = [];
  let run = [];
  values.forEach((v, i) => {
    if (finite(v)) {
      run.push([i, v]);
    } else if (run.length) {
      runs.push(run);
      run = [];
    }
  });
  if (run.length) runs.push(run);
  return runs;
}

// niceMax rounds max up to 1, 2 or 5 times a power of ten.
export function niceMax(max) {
  if (!(max > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(max)));
  for (const m of [1, 2, 5, 10]) {
    if (max <= m * p) return m * p;
  }
  return 10 * p;
}

// sparkline draws several series in one small box with a common scale.
// series: [{values, cls, label}].
export function sparkline(series, {width = 120, height = 28, testid, title} = {}) {
  const n = Math.max(2, ...series.map((x) => x.values.length));
  const max = Math.max(0, ...series.flatMap((x) => x.values.filter(finite)));
  const scale = max > 0 ? max : 1;
  const x = (i) => (i / (n - 1)) * (width - 2) + 1;
  const y = (v) => height - 2 - (v / scale) * (height - 4);
  const svg = s('svg', {class: 'sparkline', viewBox: `0 0 ${width} ${height}`, width, height, testid,
    role: 'img', 'aria-label': title || 'rate'});
  if (title) svg.appendChild(s('title', null, title));
  svg.appendChild(s('line', {class: 'spark-base', x1: 0, x2: width, y1: height - 1.5, y2: height - 1.5}));
  for (const ser of series) {
    for (const run of segments(ser.values)) {
      const pts = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
      if (run.length === 1) {
        const [i, v] = run[0];
        svg.appendChild(s('circle', {class: ser.cls, cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: 1.2}));
      } else {
        svg.appendChild(s('polyline', {class: ['spark-line', ser.cls], points: pts}));
      }
    }
  }
  return svg;
}

// lineChart draws values (one per step seconds from start) with a y axis
// from 0 to a round maximum, time labels on the x axis and the latest value.
// fmt formats a value for the axis and the latest-value label.
// points is how many steps the window holds (values may be shorter, or
// empty, when the server has no history for a series); axisFmt formats the
// y axis's ticks (default fmt).
export function lineChart({values, points, start, step, fmt, axisFmt, testid, label}) {
  const tickFmt = axisFmt || fmt;
  const W = 560;
  const H = 170;
  const left = 62;
  const right = 14;
  const top = 12;
  const bottom = 26;
  const pw = W - left - right;
  const ph = H - top - bottom;
  const n = Math.max(values.length, points || 0, 2);
  const max = niceMax(Math.max(0, ...values.filter(finite)));
  const x = (i) => left + (i / (n - 1)) * pw;
  const y = (v) => top + ph - (v / max) * ph;
  const svg = s('svg', {class: 'chart', viewBox: `0 0 ${W} ${H}`, testid, role: 'img', 'aria-label': label});
  svg.appendChild(s('title', null, label));

  // Grid and y axis: 0, max/2, max.
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    const yy = y(v);
    svg.appendChild(s('line', {class: frac === 0 ? 'axis' : 'grid', x1: left, x2: W - right, y1: yy, y2: yy}));
    svg.appendChild(s('text', {class: 'tick', x: left - 6, y: yy + 4, 'text-anchor': 'end'}, tickFmt(v)));
  }
  svg.appendChild(s('line', {class: 'axis', x1: left, x2: left, y1: top, y2: top + ph}));

  // x axis: the start, the middle and the end of the window.
  const t0 = start ? new Date(start).getTime() : Date.now() - (n - 1) * step * 1000;
  for (const frac of [0, 0.5, 1]) {
    const i = Math.round(frac * (n - 1));
    const xx = x(i);
    svg.appendChild(s('line', {class: 'axis', x1: xx, x2: xx, y1: top + ph, y2: top + ph + 4}));
    const anchor = frac === 0 ? 'start' : frac === 1 ? 'end' : 'middle';
    svg.appendChild(s('text', {class: 'tick', x: xx, y: H - 8, 'text-anchor': anchor}, fmtClock(new Date(t0 + i * step * 1000))));
  }

  for (const run of segments(values)) {
    if (run.length === 1) {
      const [i, v] = run[0];
      svg.appendChild(s('circle', {class: 'chart-dot', cx: x(i), cy: y(v), r: 2}));
      continue;
    }
    const pts = run.map(([i, v]) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    svg.appendChild(s('polygon', {class: 'chart-area',
      points: `${x(run[0][0]).toFixed(1)},${y(0)} ${pts.join(' ')} ${x(run[run.length - 1][0]).toFixed(1)},${y(0)}`}));
    svg.appendChild(s('polyline', {class: 'chart-line', points: pts.join(' ')}));
  }

  // The latest value: a dot and its label.
  let last = -1;
  for (let i = values.length - 1; i >= 0; i--) {
    if (finite(values[i])) {
      last = i;
      break;
    }
  }
  if (last >= 0) {
    const v = values[last];
    svg.appendChild(s('circle', {class: 'chart-last', cx: x(last), cy: y(v), r: 3}));
    svg.appendChild(s('text', {class: 'chart-last-label', x: Math.min(x(last), W - right) - 4, y: Math.max(y(v) - 6, top + 10),
      'text-anchor': 'end'}, fmt(v)));
  }
  return svg;
}

// latest returns the last finite value of values, or null.
export function latest(values) {
  for (let i = (values || []).length - 1; i >= 0; i--) {
    if (finite(values[i])) return values[i];
  }
  return null;
}
