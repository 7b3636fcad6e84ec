// The shard map: the 128-bit hash key space as a horizontal axis with a bar
// per open shard over its range; every shard, closed ones included, in the
// lineage graph (parents above their children, each box over its hash
// range); split and merge of the selected shard; per-shard rates when the
// stream has enhanced monitoring on.

import {h, s, replace, errorSlot, action, field, fmtBytes, fmtNumber} from './dom.js';
import {api} from './api.js';
import {streamHeader} from './stream.js';
import {SPACE, fraction, keyAt, midpoint, clamp, share, parseKey, shortKey} from './hashkeys.js';
import {latest} from './charts.js';

const PAD = 12; // left and right margin of the key axis, in pixels

// scale maps the key space onto an SVG as wide as el, one user unit a
// pixel, so that text keeps its size whatever the width.
function scale(el) {
  const W = Math.max(Math.round(el.clientWidth) || 1000, 320);
  const aw = W - 2 * PAD;
  const x = (key) => PAD + fraction(key) * aw;
  // end is where the range [s, e] ends on the axis.
  const end = (e) => (e + 1n >= SPACE ? PAD + aw : x(e + 1n));
  return {W, aw, x, end};
}

function shortId(id) {
  const m = /^shardId-0*(\d+)$/.exec(id);
  return m ? m[1] : id;
}

// prepare parses the hash keys of the API's shards and links them.
function prepare(list) {
  const shards = list.map((sh) => ({...sh, s: BigInt(sh.startingHashKey), e: BigInt(sh.endingHashKey)}));
  const byId = new Map(shards.map((sh) => [sh.id, sh]));
  for (const sh of shards) {
    sh.parents = [sh.parent, sh.adjacentParent].filter((p) => p && byId.has(p));
    if (!Array.isArray(sh.children)) sh.children = [];
  }
  // Generation: 0 for a shard without a listed parent, else one below its
  // deepest parent. Shards whose ranges overlap are ancestor and
  // descendant, so boxes of one generation never overlap.
  const depth = new Map();
  const depthOf = (sh, seen = new Set()) => {
    if (depth.has(sh.id)) return depth.get(sh.id);
    if (seen.has(sh.id)) return 0; // a cycle cannot happen; never loop on one
    seen.add(sh.id);
    const d = sh.parents.length ? 1 + Math.max(...sh.parents.map((p) => depthOf(byId.get(p), seen))) : 0;
    depth.set(sh.id, d);
    return d;
  };
  shards.forEach((sh) => { sh.depth = depthOf(sh); });
  return {shards, byId};
}

export function renderShards(v, root, name) {
  const head = streamHeader(name, 'shards');
  const loadSlot = errorSlot('shards-error');
  const mapBox = h('div', {class: 'map-box', testid: 'shard-map-box'});
  const readout = h('div', {class: 'readout mono', testid: 'map-readout'}, 'Click a shard to select it.');
  const lineageBox = h('div', {class: 'map-box', testid: 'lineage-box'});
  const tbody = h('tbody', {testid: 'shards-body'});
  const panel = h('div', {class: 'shard-panel', testid: 'shard-panel'});
  const result = h('div', {class: 'ok', testid: 'reshard-result', role: 'status'});

  let state = {shards: [], byId: new Map()};
  let selected = null; // shard id
  let rates = null; // shard id -> {inB, inR, outB, outR} per second
  let monitoring = false;
  let lastJSON = '';

  // The split and merge forms live across re-renders, so that what the user
  // typed survives a refresh of the map.
  const splitKey = h('input', {name: 'newStartingHashKey', testid: 'split-key', class: 'mono wide', spellcheck: 'false', autocomplete: 'off'});
  const splitSlot = errorSlot('split-error');
  const midButton = h('button', {type: 'button', class: 'link', testid: 'split-midpoint'}, 'midpoint');
  const splitForm = h('form', {class: 'inline-form', testid: 'split-form'},
    field('New starting hash key', splitKey, 'the first key of the upper child; click on the selected bar to pick the key under the pointer'),
    midButton,
    h('button', {type: 'submit', class: 'primary', testid: 'split-submit'}, 'Split shard'));
  const mergeWith = h('select', {name: 'adjacentShardId', testid: 'merge-adjacent'});
  const mergeSlot = errorSlot('merge-error');
  const mergeForm = h('form', {class: 'inline-form', testid: 'merge-form'},
    field('Merge with the adjacent open shard', mergeWith),
    h('button', {type: 'submit', testid: 'merge-submit'}, 'Merge shards'));
  splitKey.addEventListener('input', () => drawMap());

  action(splitForm, splitSlot, async () => {
    const parent = selected;
    result.textContent = '';
    const res = await api.split(name, parent, splitKey.value.trim());
    if (!v.alive) return;
    show(res.shards, true);
    const sh = state.byId.get(parent);
    const kids = sh ? sh.children : [];
    selected = null;
    renderPanel();
    drawAll();
    result.textContent = `Split ${parent} into ${kids.join(' and ')}.`;
    refreshStream();
  });
  action(mergeForm, mergeSlot, async () => {
    const a = selected;
    const b = mergeWith.value;
    result.textContent = '';
    const res = await api.merge(name, a, b);
    if (!v.alive) return;
    show(res.shards, true);
    const sh = state.byId.get(a);
    const kids = sh ? sh.children : [];
    selected = null;
    renderPanel();
    drawAll();
    result.textContent = `Merged ${a} and ${b} into ${kids.join(', ')}.`;
    refreshStream();
  });
  midButton.addEventListener('click', () => {
    const sh = state.byId.get(selected);
    if (sh) splitKey.value = midpoint(sh.s, sh.e).toString();
    drawMap();
  });

  function openShards() {
    return state.shards.filter((sh) => sh.open).sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
  }

  function select(id, key) {
    const changed = selected !== id;
    selected = id;
    const sh = state.byId.get(id);
    if (sh && (changed || key !== undefined)) {
      splitKey.value = (key !== undefined ? key : midpoint(sh.s, sh.e)).toString();
    }
    if (changed) {
      splitSlot.clear();
      mergeSlot.clear();
    }
    renderPanel();
    drawAll();
  }

  function rateText(id) {
    const r = rates && rates[id];
    if (!r) return '';
    return `▲${fmtBytes(r.inB)}/s ▼${fmtBytes(r.outB)}/s`;
  }

  // The key axis with a bar per open shard.
  function drawMap() {
    const open = openShards();
    const sc = scale(mapBox);
    const {W} = sc;
    const AXIS_W = sc.aw;
    const H = 118;
    const barY = 22;
    const barH = 56;
    const svg = s('svg', {class: 'shardmap', viewBox: `0 0 ${W} ${H}`, testid: 'shard-map', role: 'img',
      'aria-label': 'hash key space with the open shards'});
    svg.appendChild(s('title', null, 'The hash key space, 0 to 2^128−1, and the open shards over it'));
    svg.appendChild(s('rect', {class: 'map-bg', x: PAD, y: barY, width: AXIS_W, height: barH}));
    for (const sh of open) {
      const x0 = sc.x(sh.s);
      const x1 = sc.end(sh.e);
      const wdt = Math.max(x1 - x0, 0.8);
      const g = s('g', {class: ['bar', sh.id === selected ? 'selected' : ''], testid: 'shard-bar', 'data-shard': sh.id});
      g.appendChild(s('title', null, `${sh.id}\n${sh.startingHashKey} –\n${sh.endingHashKey}\n${share(sh.s, sh.e)} of the key space`));
      g.appendChild(s('rect', {class: 'bar-rect', x: x0, y: barY, width: wdt, height: barH}));
      const label = wdt > 150 ? sh.id : wdt > 24 ? shortId(sh.id) : '';
      if (label) {
        g.appendChild(s('text', {class: 'bar-label', x: x0 + wdt / 2, y: barY + 22, 'text-anchor': 'middle'}, label));
      }
      if (wdt > 60) {
        g.appendChild(s('text', {class: 'bar-sub', x: x0 + wdt / 2, y: barY + 38, 'text-anchor': 'middle'}, share(sh.s, sh.e)));
      }
      const rt = rateText(sh.id);
      if (rt && wdt > 110) {
        g.appendChild(s('text', {class: 'bar-sub', x: x0 + wdt / 2, y: barY + 51, 'text-anchor': 'middle', testid: 'bar-rate'}, rt));
      }
      svg.appendChild(g);
    }
    // The split marker on the selected shard.
    const sel = state.byId.get(selected);
    const key = parseKey(splitKey.value);
    if (sel && sel.open && key !== null && key > sel.s && key <= sel.e) {
      const x = sc.x(key);
      svg.appendChild(s('line', {class: 'split-marker', x1: x, x2: x, y1: barY - 6, y2: barY + barH + 6, testid: 'split-marker'}));
    }
    // The axis: 0, 2^126, 2^127, 3·2^126, 2^128−1.
    const axisY = barY + barH + 10;
    svg.appendChild(s('line', {class: 'axis', x1: PAD, x2: PAD + AXIS_W, y1: axisY, y2: axisY}));
    [['0', 0], ['2¹²⁶', 0.25], ['2¹²⁷', 0.5], ['3·2¹²⁶', 0.75], ['2¹²⁸−1', 1]].forEach(([label, f]) => {
      const x = PAD + f * AXIS_W;
      svg.appendChild(s('line', {class: 'axis', x1: x, x2: x, y1: axisY, y2: axisY + 5}));
      svg.appendChild(s('text', {class: 'tick', x, y: axisY + 18, 'text-anchor': f === 0 ? 'start' : f === 1 ? 'end' : 'middle'}, label));
    });
    svg.appendChild(s('text', {class: 'tick', x: PAD, y: 14}, `${open.length} open shard${open.length === 1 ? '' : 's'}`));

    svg.addEventListener('pointermove', (ev) => {
      const f = pointerFraction(svg, ev, AXIS_W);
      if (f === null) return;
      const k = keyAt(f);
      readout.textContent = `key under the pointer: ${k.toString()} (${(f * 100).toFixed(2)}%)`;
    });
    svg.addEventListener('click', (ev) => {
      const bar = ev.target.closest('[data-testid="shard-bar"]');
      if (!bar) return;
      const id = bar.getAttribute('data-shard');
      const sh = state.byId.get(id);
      if (!sh) return;
      if (id !== selected) {
        select(id);
        return;
      }
      const f = pointerFraction(svg, ev, AXIS_W);
      if (f === null) return;
      // The key under the pointer, kept inside the shard's splittable range.
      select(id, clamp(keyAt(f), sh.s + 1n, sh.e));
    });
    replace(mapBox, svg);
  }

  // pointerFraction is where the pointer is along the key axis, 0 to 1.
  function pointerFraction(svg, ev, AXIS_W) {
    const ctm = svg.getScreenCTM();
    if (!ctm) return null;
    const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(ctm.inverse());
    return Math.min(1, Math.max(0, (p.x - PAD) / AXIS_W));
  }

  // The lineage: a row per generation, each shard a box over its hash
  // range, an edge from each parent to each child.
  function drawLineage() {
    const {shards} = state;
    if (!shards.length) {
      replace(lineageBox, h('p', {class: 'muted'}, 'No shards.'));
      return;
    }
    const maxDepth = Math.max(...shards.map((sh) => sh.depth));
    const rowH = 54;
    const boxH = 28;
    const H = (maxDepth + 1) * rowH + 8;
    const sc = scale(lineageBox);
    const {W} = sc;
    const svg = s('svg', {class: 'lineage', viewBox: `0 0 ${W} ${H}`, testid: 'lineage', role: 'img',
      'aria-label': 'shard lineage, parents above their children'});
    const box = new Map();
    for (const sh of shards) {
      const x0 = sc.x(sh.s);
      const x1 = sc.end(sh.e);
      const wdt = Math.max(x1 - x0 - 2, 4);
      box.set(sh.id, {x: x0 + 1, y: 4 + sh.depth * rowH, w: wdt});
    }
    const edges = s('g', {class: 'edges'});
    for (const sh of shards) {
      const c = box.get(sh.id);
      for (const p of sh.parents) {
        const b = box.get(p);
        const x1 = b.x + b.w / 2;
        const y1 = b.y + boxH;
        const x2 = c.x + c.w / 2;
        const y2 = c.y;
        const my = (y1 + y2) / 2;
        edges.appendChild(s('path', {class: 'edge', d: `M${x1.toFixed(1)},${y1} C${x1.toFixed(1)},${my} ${x2.toFixed(1)},${my} ${x2.toFixed(1)},${y2}`,
          testid: 'lineage-edge', 'data-from': p, 'data-to': sh.id}));
      }
    }
    svg.appendChild(edges);
    for (const sh of shards) {
      const b = box.get(sh.id);
      const g = s('g', {class: ['node', sh.open ? 'open' : 'closed', sh.id === selected ? 'selected' : ''], testid: 'lineage-node',
        'data-shard': sh.id, 'data-open': String(sh.open), 'data-depth': String(sh.depth)});
      const kids = sh.children.length ? `\nchildren: ${sh.children.join(', ')}` : '';
      const parents = sh.parents.length ? `\nparents: ${sh.parents.join(', ')}` : '';
      g.appendChild(s('title', null, `${sh.id} (${sh.open ? 'open' : 'closed'})\n${sh.startingHashKey} –\n${sh.endingHashKey}${parents}${kids}`));
      g.appendChild(s('rect', {x: b.x, y: b.y, width: b.w, height: boxH, rx: 3}));
      const label = b.w > 150 ? sh.id : b.w > 22 ? shortId(sh.id) : '';
      if (label) g.appendChild(s('text', {x: b.x + b.w / 2, y: b.y + 18, 'text-anchor': 'middle'}, label));
      g.addEventListener('click', () => select(sh.id));
      svg.appendChild(g);
    }
    replace(lineageBox, svg);
  }

  function drawTable() {
    const rows = state.shards.map((sh) => {
      const r = rates && rates[sh.id];
      const parents = [sh.parent, sh.adjacentParent].filter(Boolean);
      const tr = h('tr', {testid: 'shard-row', 'data-shard': sh.id, 'data-open': String(sh.open),
        class: [sh.open ? '' : 'closed', sh.id === selected ? 'selected' : '']},
      h('td', {class: 'mono nowrap'}, sh.id),
      h('td', null, h('span', {class: ['badge', sh.open ? 'status-active' : 'status-closed']}, sh.open ? 'open' : 'closed')),
      h('td', {class: 'mono small'}, h('div', {testid: 'shard-start'}, sh.startingHashKey), h('div', {testid: 'shard-end'}, sh.endingHashKey)),
      h('td', {class: 'num'}, share(sh.s, sh.e)),
      h('td', {class: 'mono small'}, h('div', null, sh.startingSequenceNumber), h('div', null, sh.endingSequenceNumber || '')),
      h('td', {class: 'mono small nowrap', testid: 'shard-parents'}, parents.map((p) => h('div', null, p))),
      h('td', {class: 'mono small nowrap', testid: 'shard-children'}, sh.children.map((c) => h('div', null, c))),
      monitoring ? h('td', {class: 'num small', testid: 'shard-rates'}, r
        ? `in ${fmtNumber(r.inR)} rec/s ${fmtBytes(r.inB)}/s · out ${fmtNumber(r.outR)} rec/s ${fmtBytes(r.outB)}/s`
        : '–') : null);
      tr.addEventListener('click', () => select(sh.id));
      return tr;
    });
    replace(tbody, ...rows);
    const headRow = table.querySelector('thead tr');
    const cols = ['Shard', 'State', 'Hash key range', 'Share', 'Sequence numbers', 'Parents', 'Children'];
    if (monitoring) cols.push('Rates (enhanced monitoring)');
    replace(headRow, ...cols.map((c) => h('th', null, c)));
  }

  function renderPanel() {
    const sh = state.byId.get(selected);
    if (!sh) {
      replace(panel, h('p', {class: 'muted'}, 'Select a shard on the map, in the lineage or in the table.'));
      return;
    }
    const facts = h('dl', {class: 'facts compact'},
      h('dt', null, 'Shard'), h('dd', {class: 'mono', testid: 'selected-shard'}, sh.id),
      h('dt', null, 'State'), h('dd', null, sh.open ? 'open' : 'closed'),
      h('dt', null, 'Starting hash key'), h('dd', {class: 'mono', testid: 'selected-start'}, sh.startingHashKey),
      h('dt', null, 'Ending hash key'), h('dd', {class: 'mono', testid: 'selected-end'}, sh.endingHashKey),
      h('dt', null, 'Share'), h('dd', null, share(sh.s, sh.e)),
      h('dt', null, 'Parents'), h('dd', {class: 'mono'}, sh.parents.join(', ') || '–'),
      h('dt', null, 'Children'), h('dd', {class: 'mono'}, sh.children.join(', ') || '–'));
    if (!sh.open) {
      replace(panel, h('h3', null, 'Selected shard'), facts, h('p', {class: 'muted'}, 'A closed shard: it can be read, not split or merged.'));
      return;
    }
    const open = openShards();
    const adjacent = open.filter((o) => o.id !== sh.id && (o.e + 1n === sh.s || sh.e + 1n === o.s));
    replace(mergeWith, ...adjacent.map((o) => h('option', {value: o.id}, `${o.id} (${o.s < sh.s ? 'below' : 'above'}, ${shortKey(o.s)}–${shortKey(o.e)})`)));
    const mergeButton = mergeForm.querySelector('button[type=submit]');
    mergeButton.disabled = adjacent.length === 0;
    replace(panel, h('h3', null, 'Selected shard'), facts,
      h('h3', null, 'Split'), splitForm, splitSlot.el,
      h('h3', null, 'Merge'), adjacent.length ? mergeForm : h('p', {class: 'muted'}, 'No adjacent open shard.'), mergeSlot.el);
  }

  function drawAll() {
    drawMap();
    drawLineage();
    drawTable();
  }

  // show takes a new list of shards; force redraws even when it is unchanged.
  function show(list, force) {
    const json = JSON.stringify(list);
    if (!force && json === lastJSON) return;
    lastJSON = json;
    state = prepare(list || []);
    if (selected && !state.byId.has(selected)) selected = null;
    renderPanel();
    drawAll();
  }

  async function loadShards() {
    try {
      const res = await api.shards(name);
      if (!v.alive) return;
      loadSlot.clear();
      show(res.shards);
    } catch (err) {
      if (v.alive) loadSlot.show(err);
    }
  }

  async function refreshStream() {
    try {
      const res = await api.stream(name);
      if (!v.alive) return;
      head.update(res.stream);
      const on = (res.stream.monitoring || []).length > 0;
      if (on !== monitoring) {
        monitoring = on;
        drawTable();
      }
      if (monitoring) loadRates();
    } catch {
      // The map's own load shows errors.
    }
  }

  async function loadRates() {
    try {
      const m = await api.metrics(name, 5);
      if (!v.alive) return;
      const step = m.step || 10;
      const per = (x) => (x === null ? null : x / step);
      const next = {};
      for (const [id, ser] of Object.entries(m.shards || {})) {
        next[id] = {
          inB: per(latest(ser.IncomingBytes)), inR: per(latest(ser.IncomingRecords)),
          outB: per(latest(ser.OutgoingBytes)), outR: per(latest(ser.OutgoingRecords)),
        };
      }
      if (JSON.stringify(next) === JSON.stringify(rates)) return;
      rates = next;
      drawMap();
      drawTable();
    } catch {
      rates = null;
    }
  }

  const table = h('table', {class: 'grid compact', testid: 'shards-table'}, h('thead', null, h('tr')), tbody);
  replace(root,
    head.el,
    loadSlot.el,
    h('section', {class: 'card'}, h('h2', null, 'Hash key space'), mapBox, readout, result),
    h('div', {class: 'columns wide-left'},
      h('section', {class: 'card'}, h('h2', null, 'Lineage'), h('p', {class: 'muted small'},
        'Every shard the stream still lists, parents above their children, each over its hash key range. Closed shards are grey.'), lineageBox),
      h('section', {class: 'card'}, panel)),
    h('section', {class: 'card flush'}, table));
  renderPanel();
  loadShards();
  refreshStream();
  // Redraw at the new width when the window's size changes the boxes'.
  const widths = new Map();
  const ro = new ResizeObserver((entries) => {
    for (const e of entries) {
      const w = Math.round(e.contentRect.width);
      if (widths.get(e.target) === w) continue;
      const first = !widths.has(e.target);
      widths.set(e.target, w);
      if (first || !state.shards.length) continue;
      if (e.target === mapBox) drawMap();
      else drawLineage();
    }
  });
  ro.observe(mapBox);
  ro.observe(lineageBox);
  v.onCleanup(() => ro.disconnect());
  v.every(5000, () => {
    loadShards();
    refreshStream();
  });
}
