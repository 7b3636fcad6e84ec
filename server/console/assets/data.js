// The data viewer: read a shard or the whole stream from a position, page
// forward with the cursor without limit, tail it live (an EventSource on the
// tail endpoint: the server pushes records as they arrive), filter by
// partition key, show payloads as text, pretty JSON, hex or base64, and put
// a test record. KPL aggregates arrive as their user records, marked
// aggregated with their sub-sequence numbers. Record data is only ever set
// as textContent, so data holding HTML shows as text.

import {h, replace, errorSlot, action, field, select, fmtTime, fmtBytes, clear} from './dom.js';
import {api, tailError} from './api.js';
import {streamHeader} from './stream.js';

const MAX_ROWS = 5000; // rows kept on the page; older ones are dropped
const MAX_SHOWN = 64 * 1024; // payload bytes shown as text or base64
const MAX_HEX = 4096; // payload bytes shown as hex
const AUTO_FOLLOW = 5; // empty pages followed automatically when not caught up

const FORMATS = [['text', 'Text'], ['json', 'JSON'], ['hex', 'Hex'], ['base64', 'Base64']];

function bytesOf(b64) {
  const bin = atob(b64 || '');
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function base64Of(bytes) {
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

const utf8 = new TextDecoder('utf-8');

function hexDump(bytes) {
  const lines = [];
  const n = Math.min(bytes.length, MAX_HEX);
  for (let off = 0; off < n; off += 16) {
    const chunk = bytes.subarray(off, Math.min(off + 16, n));
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, '0'));
    const left = hex.slice(0, 8).join(' ');
    const right = hex.slice(8).join(' ');
    const ascii = [...chunk].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${off.toString(16).padStart(6, '0')}  ${left.padEnd(23)}  ${right.padEnd(23)}  |${ascii}|`);
  }
  return lines.join('\n');
}

// payload renders bytes in format as a <pre> (textContent only).
function payload(bytes, format, b64) {
  const more = (limit) => (bytes.length > limit ? h('div', {class: 'muted small'}, `… ${fmtBytes(bytes.length - limit)} more not shown`) : null);
  if (format === 'hex') {
    return [h('pre', {class: 'payload hex', testid: 'record-data'}, hexDump(bytes)), more(MAX_HEX)];
  }
  if (format === 'base64') {
    const text = b64.length > MAX_SHOWN ? b64.slice(0, MAX_SHOWN) : b64;
    return [h('pre', {class: 'payload', testid: 'record-data'}, text), b64.length > MAX_SHOWN ? h('div', {class: 'muted small'}, '… truncated') : null];
  }
  const text = utf8.decode(bytes.length > MAX_SHOWN ? bytes.subarray(0, MAX_SHOWN) : bytes);
  if (format === 'json') {
    try {
      const pretty = JSON.stringify(JSON.parse(text), null, 2);
      return [h('pre', {class: 'payload json', testid: 'record-data'}, pretty)];
    } catch {
      return [h('span', {class: 'badge warn', testid: 'record-not-json'}, 'not JSON'), h('pre', {class: 'payload', testid: 'record-data'}, text), more(MAX_SHOWN)];
    }
  }
  return [h('pre', {class: 'payload', testid: 'record-data'}, text), more(MAX_SHOWN)];
}

export function renderData(v, root, name) {
  const head = streamHeader(name, 'data');
  let format = 'text';
  let cursor = '';
  let records = []; // {rec, bytes, row}
  let dropped = 0;
  let source = null; // the EventSource of the live tail

  // The read form.
  const shardSel = h('select', {name: 'shard', testid: 'data-shard'}, h('option', {value: ''}, 'whole stream'));
  const from = select({name: 'from', testid: 'data-from'}, [
    ['TRIM_HORIZON', 'oldest (TRIM_HORIZON)'], ['LATEST', 'newest (LATEST)'], ['AT_TIMESTAMP', 'at a time'],
    ['AT_SEQUENCE_NUMBER', 'at a sequence number'], ['AFTER_SEQUENCE_NUMBER', 'after a sequence number']], 'TRIM_HORIZON');
  const at = h('input', {name: 'at', testid: 'data-at', class: 'mono', spellcheck: 'false',
    value: new Date(Date.now() - 15 * 60 * 1000).toISOString(), placeholder: 'RFC 3339, e.g. 2025-01-01T12:00:00.000Z'});
  const seq = h('input', {name: 'seq', testid: 'data-seq', class: 'mono wide', spellcheck: 'false', placeholder: 'sequence number'});
  const key = h('input', {name: 'key', testid: 'data-key', spellcheck: 'false', placeholder: 'any (exact match)'});
  const limit = h('input', {name: 'limit', type: 'number', testid: 'data-limit', value: '100', step: '1', class: 'short'});
  const atField = field('Time', at);
  const seqField = field('Sequence number', seq);
  const syncFrom = () => {
    atField.hidden = from.value !== 'AT_TIMESTAMP';
    seqField.hidden = !from.value.endsWith('_SEQUENCE_NUMBER');
  };
  from.addEventListener('change', syncFrom);
  syncFrom();
  const readSlot = errorSlot('data-error');
  const readForm = h('form', {class: 'inline-form wrap', testid: 'read-form'},
    field('Shard', shardSel), field('From', from), atField, seqField,
    field('Partition key', key), field('Page size', limit),
    h('button', {type: 'submit', class: 'primary', testid: 'data-read'}, 'Read'));

  // Paging.
  const status = h('span', {class: 'muted', testid: 'data-status', 'data-loading': 'false'}, 'Choose where to start and read.');
  const nextSlot = errorSlot('next-error');
  const nextButton = h('button', {type: 'button', testid: 'data-next', disabled: true}, 'Next page');
  const nextForm = h('div', {class: 'inline-form', testid: 'next-form'}, nextButton, status);
  const clearButton = h('button', {type: 'button', class: 'link', testid: 'data-clear'}, 'Clear');

  // The payload format switch.
  const formatButtons = FORMATS.map(([f, label]) => {
    const b = h('button', {type: 'button', class: ['seg', f === format ? 'active' : ''], testid: 'format-' + f,
      'aria-pressed': String(f === format)}, label);
    b.addEventListener('click', () => {
      format = f;
      formatButtons.forEach((x) => {
        const on = x === b;
        x.classList.toggle('active', on);
        x.setAttribute('aria-pressed', String(on));
      });
      for (const r of records) replace(r.cell, ...payload(r.bytes, format, r.rec.data || ''));
      tbody.dataset.format = format;
    });
    return b;
  });

  // The live tail.
  const tailButton = h('button', {type: 'button', testid: 'tail-toggle', 'aria-pressed': 'false'}, 'Start live tail');
  const tailStatus = h('span', {class: 'muted', testid: 'tail-status', 'data-state': 'off'}, 'off');
  const tailSlot = errorSlot('tail-error');

  // The records.
  const tbody = h('tbody', {testid: 'records-body', 'data-format': format});
  const note = h('div', {class: 'muted small', testid: 'records-note'});
  const scroller = h('div', {class: 'scroller'},
    h('table', {class: 'grid records', testid: 'records-table'},
      h('thead', null, h('tr', null, ['Shard', 'Sequence number', 'Partition key', 'Arrival', 'Size', 'Data'].map((c) => h('th', null, c)))),
      tbody));

  function setStatus(text, loading) {
    status.textContent = text;
    status.dataset.loading = String(Boolean(loading));
  }

  function addRecords(list, how) {
    const nearBottom = scroller.scrollTop + scroller.clientHeight >= scroller.scrollHeight - 40;
    const frag = document.createDocumentFragment();
    for (const rec of list) {
      let bytes;
      try {
        bytes = bytesOf(rec.data);
      } catch {
        bytes = new Uint8Array(0);
      }
      const cell = h('td', {class: 'data-cell'}, payload(bytes, format, rec.data || ''));
      const seqCell = h('td', {class: 'mono small'}, h('div', {testid: 'record-seq'}, rec.sequenceNumber));
      if (rec.aggregated) {
        seqCell.appendChild(h('div', null, h('span', {class: 'badge kpl', testid: 'record-aggregated', title: 'a user record of a KPL aggregate'}, 'KPL'),
          ' ', h('span', {testid: 'record-subseq'}, `user record ${rec.subSequenceNumber}`)));
      }
      const pk = h('td', {class: 'mono small'}, h('div', {testid: 'record-key'}, rec.partitionKey),
        rec.explicitHashKey ? h('div', {class: 'muted', title: 'explicit hash key'}, 'EHK ' + rec.explicitHashKey) : null);
      const row = h('tr', {testid: 'record-row', class: how === 'tail' ? 'tail-row' : '', 'data-shard': rec.shardId,
        'data-seq': rec.sequenceNumber, 'data-subseq': String(rec.subSequenceNumber ?? 0), 'data-aggregated': String(Boolean(rec.aggregated)),
        'data-source': how},
      h('td', {class: 'mono small nowrap'}, rec.shardId),
      seqCell, pk,
      h('td', {class: 'nowrap small'}, fmtTime(rec.arrival)),
      h('td', {class: 'num small'}, fmtBytes(bytes.length)),
      cell);
      frag.appendChild(row);
      records.push({rec, bytes, row, cell});
    }
    tbody.appendChild(frag);
    if (records.length > MAX_ROWS) {
      const extra = records.splice(0, records.length - MAX_ROWS);
      extra.forEach((r) => r.row.remove());
      dropped += extra.length;
    }
    note.textContent = dropped ? `${dropped} older records were dropped from the page (it keeps the last ${MAX_ROWS}).` : '';
    if (nearBottom || how === 'tail') scroller.scrollTop = scroller.scrollHeight;
  }

  function resetRecords() {
    records = [];
    dropped = 0;
    clear(tbody);
    note.textContent = '';
  }

  async function page(params, slot) {
    let got = 0;
    let res;
    for (let tries = 0; ; tries++) {
      setStatus('Reading…', true);
      try {
        res = await api.records(name, params);
      } catch (err) {
        setStatus(records.length ? `${records.length} records shown.` : '', false);
        slot.show(err);
        return;
      }
      if (!v.alive) return;
      cursor = res.cursor || '';
      addRecords(res.records || [], 'read');
      got += (res.records || []).length;
      if (got > 0 || res.caughtUp || !cursor || tries >= AUTO_FOLLOW) break;
      params = pageParams();
    }
    nextButton.disabled = !cursor;
    const behind = res.caughtUp ? 'caught up with the newest record' : `${Math.round((res.millisBehindLatest || 0) / 1000)} s behind the newest record`;
    setStatus(`${got} record${got === 1 ? '' : 's'} in this page, ${records.length} shown · ${behind}`, false);
    status.dataset.caughtUp = String(Boolean(res.caughtUp));
  }

  function pageParams() {
    const p = {cursor, limit: limit.value.trim()};
    if (key.value !== '') p.key = key.value;
    return p;
  }

  action(readForm, readSlot, async () => {
    nextSlot.clear();
    resetRecords();
    cursor = '';
    nextButton.disabled = true;
    const p = {from: from.value, limit: limit.value.trim()};
    if (shardSel.value) p.shard = shardSel.value;
    if (key.value !== '') p.key = key.value;
    if (from.value === 'AT_TIMESTAMP') {
      // Sent as RFC 3339 in UTC when the browser can read it; as typed otherwise, for the server to judge.
      const d = new Date(at.value.trim());
      p.at = Number.isNaN(d.getTime()) ? at.value.trim() : d.toISOString();
    }
    if (from.value.endsWith('_SEQUENCE_NUMBER')) p.seq = seq.value.trim();
    await page(p, readSlot);
  });
  nextButton.addEventListener('click', async () => {
    if (!cursor || status.dataset.loading === 'true') return;
    nextSlot.clear();
    nextButton.disabled = true;
    await page(pageParams(), nextSlot);
    nextButton.disabled = !cursor;
  });
  clearButton.addEventListener('click', () => {
    resetRecords();
    setStatus('Cleared.', false);
  });

  function setTail(state, text) {
    tailStatus.dataset.state = state;
    tailStatus.textContent = text;
    const on = state === 'connecting' || state === 'live' || state === 'reconnecting';
    tailButton.textContent = on ? 'Stop live tail' : 'Start live tail';
    tailButton.setAttribute('aria-pressed', String(on));
    tailButton.classList.toggle('active', on);
  }

  function stopTail(state, text) {
    if (source) source.close();
    source = null;
    setTail(state || 'off', text || 'off');
  }

  function startTail() {
    tailSlot.clear();
    const params = {};
    if (shardSel.value) params.shard = shardSel.value;
    if (key.value !== '') params.key = key.value;
    const url = api.tailURL(name, params);
    const es = new EventSource(url);
    source = es;
    let opened = false;
    let count = 0;
    const scope = shardSel.value ? shardSel.value : 'every open shard';
    setTail('connecting', 'connecting…');
    es.addEventListener('open', () => {
      if (source !== es) return;
      const again = opened;
      opened = true;
      setTail('live', again
        ? `live again from the newest record of ${scope} (records put while disconnected are not shown) · ${count} received`
        : `live from the newest record of ${scope} · ${count} received`);
    });
    es.addEventListener('record', (ev) => {
      if (source !== es) return;
      let rec;
      try {
        rec = JSON.parse(ev.data);
      } catch {
        return;
      }
      count++;
      addRecords([rec], 'tail');
      tailStatus.textContent = `live from the newest record of ${scope} · ${count} received`;
    });
    es.addEventListener('error', async (ev) => {
      if (source !== es) return;
      if (ev instanceof MessageEvent && ev.data) {
        // The server's own error event: the tail has ended.
        let err;
        try {
          err = JSON.parse(ev.data);
        } catch {
          err = {code: 'TailError', message: String(ev.data)};
        }
        stopTail('ended', 'ended');
        tailSlot.show(err);
        return;
      }
      if (es.readyState === EventSource.CLOSED) {
        stopTail('ended', 'ended');
        if (!opened) {
          const err = await tailError(url);
          if (err) tailSlot.show(err);
        }
        return;
      }
      setTail('reconnecting', 'connection lost, reconnecting…');
    });
  }

  tailButton.addEventListener('click', () => {
    if (source) stopTail();
    else startTail();
  });
  v.onCleanup(() => {
    if (source) source.close();
    source = null;
  });

  // Put a test record.
  const putKey = h('input', {name: 'partitionKey', testid: 'put-key', value: 'console', spellcheck: 'false'});
  const putData = h('textarea', {name: 'data', testid: 'put-data', rows: 2, spellcheck: 'false', placeholder: '{"hello": "world"}'});
  const putEnc = select({name: 'encoding', testid: 'put-encoding'}, [['text', 'UTF-8 text'], ['base64', 'base64']], 'text');
  const putEhk = h('input', {name: 'explicitHashKey', testid: 'put-ehk', class: 'mono wide', spellcheck: 'false', placeholder: 'optional'});
  const putSlot = errorSlot('put-error');
  const putResult = h('span', {class: 'ok mono small', testid: 'put-result', role: 'status'});
  const putForm = h('form', {class: 'inline-form wrap', testid: 'put-form'},
    field('Partition key', putKey), field('Data', putData), field('As', putEnc), field('Explicit hash key', putEhk),
    h('button', {type: 'submit', testid: 'put-submit'}, 'Put record'), putResult);
  action(putForm, putSlot, async () => {
    putResult.textContent = '';
    const data = putEnc.value === 'base64' ? putData.value.trim() : base64Of(new TextEncoder().encode(putData.value));
    const body = {partitionKey: putKey.value, data};
    if (putEhk.value.trim()) body.explicitHashKey = putEhk.value.trim();
    const res = await api.putRecord(name, body);
    putResult.textContent = `put in ${res.shardId} at ${res.sequenceNumber}`;
  });

  let shardsJSON = '';
  async function loadShards() {
    try {
      const res = await api.shards(name);
      if (!v.alive) return;
      const json = JSON.stringify((res.shards || []).map((sh) => [sh.id, sh.open]));
      if (json === shardsJSON) return;
      shardsJSON = json;
      const cur = shardSel.value;
      replace(shardSel, h('option', {value: ''}, 'whole stream'),
        ...(res.shards || []).map((sh) => h('option', {value: sh.id}, `${sh.id}${sh.open ? '' : ' (closed)'}`)));
      shardSel.value = [...shardSel.options].some((o) => o.value === cur) ? cur : '';
    } catch {
      // Reading shows the stream's errors where the user acts.
    }
  }

  async function loadHead() {
    try {
      const res = await api.stream(name);
      if (v.alive) head.update(res.stream);
    } catch {
      // As above.
    }
  }

  replace(root,
    head.el,
    h('section', {class: 'card'}, readForm, readSlot.el,
      h('div', {class: 'toolbar'},
        nextForm,
        h('span', {class: 'grow'}),
        h('div', {class: 'segmented', role: 'group', 'aria-label': 'payload format'}, formatButtons),
        clearButton),
      nextSlot.el,
      h('div', {class: 'toolbar'}, tailButton, tailStatus),
      tailSlot.el),
    h('section', {class: 'card flush'}, scroller, note),
    h('section', {class: 'card'}, h('h2', null, 'Put a test record'), putForm, putSlot.el));
  loadShards();
  loadHead();
  v.every(10000, () => {
    loadShards();
    loadHead();
  });
}
