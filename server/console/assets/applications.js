// Consumer applications: when the server has the lease database
// (--lease-database-url), each application's lease table: shard, owner,
// checkpoint, lag and last renewal.

import {h, replace, errorSlot, fmtAgo, fmtTime} from './dom.js';
import {api} from './api.js';

function appHref(app, stream) {
  return '#/applications/' + encodeURIComponent(app) + (stream ? '?stream=' + encodeURIComponent(stream) : '');
}

export function renderApplications(v, root, session) {
  const slot = errorSlot('applications-error');
  const list = h('ul', {class: 'plain big', testid: 'applications-list'});
  replace(root, h('div', {class: 'page-head'}, h('h1', null, 'Applications')),
    session && !session.leases
      ? h('p', {class: 'muted', testid: 'applications-off'}, 'The server has no lease database: start it with --lease-database-url to see the lease tables of consumer applications.')
      : null,
    slot.el, h('section', {class: 'card'}, list));
  async function load() {
    try {
      const res = await api.applications();
      if (!v.alive) return;
      slot.clear();
      const apps = (res.applications || []).slice().sort();
      replace(list, ...(apps.length
        ? apps.map((app) => h('li', {testid: 'application'}, h('a', {href: appHref(app)}, app)))
        : [h('li', {class: 'muted'}, 'No application has leases yet.')]));
    } catch (err) {
      if (v.alive) slot.show(err);
    }
  }
  load();
  v.every(10000, load);
}

export function renderApplication(v, root, app) {
  const q = new URLSearchParams(location.hash.split('?')[1] || '');
  const streamSel = h('select', {name: 'stream', testid: 'application-stream'}, h('option', {value: ''}, '(no lag)'));
  const slot = errorSlot('leases-error');
  const tbody = h('tbody', {testid: 'leases-body'});
  const status = h('span', {class: 'muted', testid: 'leases-status'});
  streamSel.addEventListener('change', () => {
    history.replaceState(null, '', appHref(app, streamSel.value));
    load();
  });

  async function loadStreams() {
    try {
      const res = await api.streams();
      if (!v.alive) return;
      const want = q.get('stream') || streamSel.value;
      replace(streamSel, h('option', {value: ''}, '(no lag)'),
        ...(res.streams || []).map((st) => h('option', {value: st.name}, st.name)));
      streamSel.value = [...streamSel.options].some((o) => o.value === want) ? want : '';
    } catch {
      // Lag needs a stream; the lease table still shows without one.
    }
  }

  async function load() {
    try {
      const res = await api.application(app, streamSel.value);
      if (!v.alive) return;
      slot.clear();
      const leases = (res.leases || []).slice().sort((a, b) => a.shardId.localeCompare(b.shardId));
      replace(tbody, ...(leases.length ? leases.map((l) => h('tr', {testid: 'lease-row', 'data-shard': l.shardId, class: l.expired ? 'expired' : ''},
        h('td', {class: 'mono small'}, l.shardId),
        h('td', null, h('span', {testid: 'lease-owner'}, l.owner || ''), l.owner ? null : h('span', {class: 'muted'}, 'unowned'),
          l.expired ? [' ', h('span', {class: 'badge warn', testid: 'lease-expired'}, 'expired')] : null),
        h('td', {class: 'num'}, String(l.counter ?? '')),
        h('td', {class: 'mono small'}, l.checkpoint || '', l.subSequenceNumber ? ` · ${l.subSequenceNumber}` : ''),
        h('td', {class: 'num', testid: 'lease-lag'}, l.millisBehindLatest === null || l.millisBehindLatest === undefined ? '–' : fmtAgo(l.millisBehindLatest)),
        h('td', {class: 'nowrap', title: fmtTime(l.updatedAt)}, l.lastRenewalAgoMs === undefined ? '' : fmtAgo(l.lastRenewalAgoMs) + ' ago'),
        h('td', {class: 'nowrap small'}, fmtTime(l.expiresAt)),
        h('td', {class: 'mono small'}, (l.parents || []).join(', '))))
        : [h('tr', null, h('td', {colspan: 8, class: 'empty'}, 'No leases.'))]));
      status.textContent = `updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      if (v.alive) slot.show(err);
    }
  }

  replace(root,
    h('div', {class: 'crumbs'}, h('a', {href: '#/applications'}, 'Applications'), ' / '),
    h('div', {class: 'page-head'}, h('h1', {testid: 'application-name'}, app), status),
    h('div', {class: 'toolbar'}, h('label', {class: 'field inline'}, h('span', {class: 'field-label'}, 'Lag against stream'), streamSel)),
    slot.el,
    h('section', {class: 'card flush'}, h('table', {class: 'grid', testid: 'leases-table'},
      h('thead', null, h('tr', null, ['Shard', 'Owner', 'Counter', 'Checkpoint', 'Lag', 'Last renewal', 'Expires', 'Parents'].map((c) => h('th', null, c)))),
      tbody)));
  loadStreams().then(load);
  v.every(5000, load);
}
