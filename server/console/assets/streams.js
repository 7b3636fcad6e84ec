// The stream list: every stream of the account with its status, mode, open
// shards, retention, encryption and an incoming/outgoing rate sparkline,
// and the form that creates a stream.

import {h, replace, errorSlot, action, field, select, fmtHours, fmtBytes, fmtTime} from './dom.js';
import {api} from './api.js';
import {sparkline, latest} from './charts.js';
import {streamHref} from './nav.js';

const REFRESH_MS = 5000;
const SPARK_MINUTES = 15;
const MAX_SPARKLINES = 50;
const SPARK_EVERY_MS = 10000;

export function renderStreams(v, root) {
  const listSlot = errorSlot('streams-error');
  const status = h('span', {class: 'muted', testid: 'streams-status'});
  const tbody = h('tbody', {testid: 'streams-body'});
  const table = h('table', {class: 'grid', testid: 'streams-table'},
    h('thead', null, h('tr', null,
      ['Name', 'Status', 'Mode', 'Open shards', 'Retention', 'Encryption', 'Consumers', 'Created', 'In / out (15 min)']
        .map((c) => h('th', null, c)))),
    tbody);
  const sparks = new Map(); // stream name -> the cell holding its sparkline
  const sparkLoaded = new Map(); // stream name -> when its sparkline was last asked for
  let lastJSON = '';

  async function refresh() {
    let streams;
    try {
      ({streams} = await api.streams());
    } catch (err) {
      if (v.alive) listSlot.show(err);
      return;
    }
    if (!v.alive) return;
    listSlot.clear();
    streams = (streams || []).slice().sort((a, b) => a.name.localeCompare(b.name));
    status.textContent = `${streams.length} stream${streams.length === 1 ? '' : 's'} · refreshed ${new Date().toLocaleTimeString()}`;
    // Rows are rebuilt only when something changed, so that a refresh never
    // replaces the link under a pointer about to click it.
    const json = JSON.stringify(streams);
    if (json !== lastJSON) {
      lastJSON = json;
      const rows = streams.map((st) => row(st));
      if (rows.length === 0) {
        rows.push(h('tr', null, h('td', {colspan: 9, class: 'empty'}, 'No streams yet: create one above.')));
      }
      replace(tbody, ...rows);
    }
    const now = Date.now();
    streams.filter((st) => !st.error).slice(0, MAX_SPARKLINES).forEach((st) => {
      // The history moves in 10 s steps: no need to ask more often.
      if (now - (sparkLoaded.get(st.name) || 0) >= SPARK_EVERY_MS) {
        sparkLoaded.set(st.name, now);
        loadSpark(st.name);
      }
    });
  }

  function row(st) {
    const link = h('a', {href: streamHref(st.name), testid: 'stream-link'}, st.name);
    if (st.error) {
      const slot = errorSlot('stream-row-error');
      slot.show(st.error);
      return h('tr', {testid: 'stream-row', 'data-stream': st.name},
        h('td', null, link), h('td', {colspan: 8}, slot.el));
    }
    let cell = sparks.get(st.name);
    if (!cell) {
      cell = h('td', {class: 'spark-cell', testid: 'stream-spark'});
      sparks.set(st.name, cell);
    }
    const enc = st.encryption === 'KMS' ? `KMS ${st.keyId || ''}`.trim() : (st.encryption || 'NONE');
    return h('tr', {testid: 'stream-row', 'data-stream': st.name},
      h('td', null, link),
      h('td', null, h('span', {class: ['badge', 'status-' + String(st.status || '').toLowerCase()], testid: 'stream-status'}, st.status)),
      h('td', {testid: 'stream-mode'}, st.mode),
      h('td', {class: 'num', testid: 'stream-open-shards'}, String(st.openShards ?? '')),
      h('td', {class: 'num', testid: 'stream-retention'}, fmtHours(st.retentionHours)),
      h('td', {testid: 'stream-encryption'}, enc),
      h('td', {class: 'num'}, String(st.consumers ?? '')),
      h('td', {class: 'nowrap'}, fmtTime(st.created)),
      cell);
  }

  async function loadSpark(name) {
    const cell = sparks.get(name);
    try {
      const m = await api.metrics(name, SPARK_MINUTES);
      if (!v.alive) return;
      const inB = (m.series && m.series.IncomingBytes) || [];
      const outB = (m.series && m.series.OutgoingBytes) || [];
      const step = m.step || 10;
      const li = latest(inB);
      const lo = latest(outB);
      const title = `in ${fmtBytes(li === null ? null : li / step)}/s, out ${fmtBytes(lo === null ? null : lo / step)}/s (latest ${step} s step)`;
      replace(cell, sparkline([{values: inB, cls: 'in'}, {values: outB, cls: 'out'}], {title}),
        h('span', {class: 'spark-legend'}, h('span', {class: 'in'}, '▲ ' + fmtBytes(li === null ? null : li / step) + '/s'), ' ',
          h('span', {class: 'out'}, '▼ ' + fmtBytes(lo === null ? null : lo / step) + '/s')));
    } catch (err) {
      if (!v.alive) return;
      replace(cell, h('span', {class: 'muted', title: `${err.code}: ${err.message}`}, '–'));
    }
  }

  // The create form.
  const name = h('input', {name: 'name', testid: 'create-name', required: true, placeholder: 'stream name', spellcheck: 'false'});
  const mode = select({name: 'mode', testid: 'create-mode'}, ['PROVISIONED', 'ON_DEMAND'], 'PROVISIONED');
  const count = h('input', {name: 'shardCount', type: 'number', testid: 'create-shard-count', value: '1', step: '1'});
  const countField = field('Shards', count);
  mode.addEventListener('change', () => {
    countField.hidden = mode.value === 'ON_DEMAND';
  });
  const createSlot = errorSlot('create-error');
  const created = h('span', {class: 'ok', testid: 'create-result', role: 'status'});
  const form = h('form', {class: 'inline-form', testid: 'create-form'},
    field('Name', name), field('Capacity mode', mode), countField,
    h('button', {type: 'submit', class: 'primary', testid: 'create-submit'}, 'Create stream'),
    created);
  action(form, createSlot, async () => {
    created.textContent = '';
    const body = {name: name.value.trim(), mode: mode.value};
    if (mode.value === 'PROVISIONED') {
      // Sent as typed: the server judges the count, and its error shows here.
      const n = count.value.trim();
      body.shardCount = n === '' ? undefined : Number(n);
    }
    const st = await api.createStream(body);
    if (!v.alive) return;
    created.textContent = `Created ${st.name || body.name} (${st.status || 'CREATING'})`;
    name.value = '';
    sparkLoaded.delete(body.name);
    await refresh();
  });

  replace(root,
    h('div', {class: 'page-head'}, h('h1', null, 'Streams'), status,
      h('button', {type: 'button', class: 'link', testid: 'streams-refresh', onclick: () => refresh()}, 'Refresh')),
    h('section', {class: 'card'}, h('h2', null, 'Create a stream'), form, createSlot.el),
    listSlot.el,
    h('section', {class: 'card flush'}, table));
  refresh();
  v.every(REFRESH_MS, refresh);
}
