// The metrics page: line charts of the stream's metrics from the server's
// own recent history (10 s steps), each with its axes and latest value,
// and the shard-level series when enhanced monitoring is on.

import {h, replace, errorSlot, select, fmtBytes, fmtNumber, fmtAgo} from './dom.js';
import {api, currentSession} from './api.js';
import {streamHeader} from './stream.js';
import {lineChart, sparkline, latest} from './charts.js';

// How each series is shown: rates are per second (the history's values are
// sums per step), iterator age is the step's maximum, throttles and
// failures are counts per step.
const SERIES = [
  ['IncomingBytes', 'Incoming bytes /s', 'rate-bytes'],
  ['IncomingRecords', 'Incoming records /s', 'rate'],
  ['OutgoingBytes', 'Outgoing bytes /s', 'rate-bytes'],
  ['OutgoingRecords', 'Outgoing records /s', 'rate'],
  ['IteratorAgeMilliseconds', 'Iterator age (max)', 'age'],
  ['WriteProvisionedThroughputExceeded', 'Write throttles per step', 'count'],
  ['ReadProvisionedThroughputExceeded', 'Read throttles per step', 'count'],
  ['PutRecords.FailedRecords', 'PutRecords failed records per step', 'count'],
];

function transform(kind, values, step) {
  if (kind === 'rate' || kind === 'rate-bytes') return values.map((x) => (typeof x === 'number' ? x / step : x));
  return values;
}

// axisFormatter formats axis ticks: the unit is in the chart's title.
function axisFormatter(kind) {
  switch (kind) {
    case 'rate-bytes':
      return (x) => fmtBytes(x);
    case 'age':
      return (x) => fmtAgo(x);
    default:
      return (x) => fmtNumber(x);
  }
}

function formatter(kind, step) {
  switch (kind) {
    case 'rate-bytes':
      return (x) => `${fmtBytes(x)}/s`;
    case 'rate':
      return (x) => `${fmtNumber(x)}/s`;
    case 'age':
      return (x) => fmtAgo(x);
    default:
      return (x) => `${fmtNumber(x)} per ${step} s`;
  }
}

export function renderMetrics(v, root, name) {
  const head = streamHeader(name, 'metrics');
  const slot = errorSlot('metrics-error');
  const minutes = select({name: 'minutes', testid: 'metrics-minutes'}, [['5', '5 min'], ['15', '15 min'], ['30', '30 min'], ['60', '1 h']], '15');
  const status = h('span', {class: 'muted', testid: 'metrics-status'});
  const grid = h('div', {class: 'charts', testid: 'charts'});
  const shardBox = h('div', {testid: 'shard-metrics'});
  const session = currentSession();

  async function load() {
    let m;
    try {
      m = await api.metrics(name, Number(minutes.value));
    } catch (err) {
      if (v.alive) slot.show(err);
      return;
    }
    if (!v.alive) return;
    slot.clear();
    const step = m.step || 10;
    const series = m.series || {};
    const points = Math.max(0, ...Object.values(series).map((x) => (Array.isArray(x) ? x.length : 0)));
    replace(grid, ...SERIES.map(([key, label, kind]) => {
      const values = transform(kind, series[key] || [], step);
      const fmt = formatter(kind, step);
      const last = latest(values);
      return h('section', {class: 'card chart-card', testid: 'metric-card', 'data-metric': key},
        h('div', {class: 'chart-head'}, h('h3', null, label), h('span', {class: 'latest', testid: 'metric-latest'}, last === null ? '–' : fmt(last))),
        lineChart({values, points, start: m.start, step, fmt, axisFmt: axisFormatter(kind), testid: 'chart-' + key,
          label: `${label}, last ${minutes.value} minutes`}));
    }));
    const shards = Object.entries(m.shards || {}).sort(([a], [b]) => a.localeCompare(b));
    if (!shards.length) {
      replace(shardBox, h('p', {class: 'muted'}, 'No shard-level metrics: enable enhanced monitoring on the stream\'s overview to see them.'));
    } else {
      const keys = SERIES.filter(([key]) => shards.some(([, ser]) => ser[key]));
      replace(shardBox, h('table', {class: 'grid compact', testid: 'shard-metrics-table'},
        h('thead', null, h('tr', null, h('th', null, 'Shard'), keys.map(([, label]) => h('th', null, label)))),
        h('tbody', null, shards.map(([id, ser]) => h('tr', {testid: 'shard-metrics-row', 'data-shard': id},
          h('td', {class: 'mono small'}, id),
          keys.map(([key, , kind]) => {
            const values = transform(kind, ser[key] || [], step);
            const last = latest(values);
            return h('td', {class: 'nowrap'}, sparkline([{values, cls: 'in'}], {width: 90, height: 22}),
              h('span', {class: 'small'}, ' ' + (last === null ? '–' : formatter(kind, step)(last))));
          }))))));
    }
    status.textContent = `${step} s steps · updated ${new Date().toLocaleTimeString()}`;
  }

  async function loadHead() {
    try {
      const res = await api.stream(name);
      if (v.alive) head.update(res.stream);
    } catch {
      // The charts' own load shows errors.
    }
  }

  minutes.addEventListener('change', () => load());
  replace(root,
    head.el,
    h('div', {class: 'toolbar'}, h('label', {class: 'field inline'}, h('span', {class: 'field-label'}, 'Window'), minutes), status),
    session && session.history === false ? h('p', {class: 'muted'}, 'The server keeps no metrics history.') : null,
    slot.el,
    grid,
    h('section', {class: 'card'}, h('h2', null, 'Per shard (enhanced monitoring)'), shardBox));
  load();
  loadHead();
  v.every(10000, () => {
    load();
    loadHead();
  });
}
