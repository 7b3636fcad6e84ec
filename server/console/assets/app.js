// The console's entry point: the session, the header and hash routing.
//
// Routes: #/streams, #/streams/NAME, #/streams/NAME/shards,
// #/streams/NAME/data, #/streams/NAME/metrics, #/applications,
// #/applications/APP. With authentication on and no one signed in, every
// route shows the sign-in form.

import {h, replace, errorSlot} from './dom.js';
import {loadSession, currentSession, onSignedOut, logout} from './api.js';
import {renderSignIn} from './signin.js';
import {renderStreams} from './streams.js';
import {renderStream} from './stream.js';
import {renderShards} from './shards.js';
import {renderData} from './data.js';
import {renderMetrics} from './metrics.js';
import {renderApplications, renderApplication} from './applications.js';

const view = document.getElementById('view');
const nav = document.getElementById('nav');
const who = document.getElementById('who');

// A View is the lifetime of one rendered route: timers, event sources and
// requests it starts end when the route changes.
class View {
  constructor() {
    this.cleanups = [];
    this.alive = true;
  }

  onCleanup(fn) {
    this.cleanups.push(fn);
  }

  // every calls fn every ms milliseconds while the view lives and the
  // page is visible; fn's own errors are its business.
  every(ms, fn) {
    const id = setInterval(() => {
      if (this.alive && document.visibilityState === 'visible') fn();
    }, ms);
    this.onCleanup(() => clearInterval(id));
  }

  dispose() {
    this.alive = false;
    for (const fn of this.cleanups.splice(0)) {
      try {
        fn();
      } catch {
        // Cleaning up must not stop the next view.
      }
    }
  }
}

let current = null;

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart] = raw.split('?');
  const parts = pathPart.split('/').filter((p) => p !== '').map((p) => {
    try {
      return decodeURIComponent(p);
    } catch {
      return p;
    }
  });
  return parts;
}

function renderHeader(session, section) {
  const links = [h('a', {href: '#/streams', testid: 'nav-streams', class: section === 'streams' ? 'active' : ''}, 'Streams')];
  if (session && session.leases) {
    links.push(h('a', {href: '#/applications', testid: 'nav-applications', class: section === 'applications' ? 'active' : ''}, 'Applications'));
  }
  replace(nav, ...links);
  const parts = [];
  if (session) {
    parts.push(h('span', {class: 'muted', testid: 'region'}, `${session.region || ''} · ${session.account || ''}`));
    if (session.auth && session.signedIn) {
      const slot = errorSlot('signout-error');
      parts.push(h('span', {class: 'who', testid: 'signed-in-as'}, session.accessKeyId || ''));
      parts.push(h('button', {type: 'button', class: 'link', testid: 'signout', onclick: async () => {
        try {
          await logout();
          route();
        } catch (err) {
          slot.show(err);
        }
      }}, 'Sign out'));
      parts.push(slot.el);
    }
  }
  replace(who, ...parts);
}

async function route() {
  if (current) current.dispose();
  const v = new View();
  current = v;
  let session = currentSession();
  if (!session) {
    try {
      session = await loadSession();
    } catch (err) {
      if (!v.alive) return;
      const slot = errorSlot('session-error');
      slot.show(err);
      replace(view, h('section', {class: 'card'}, h('h1', null, 'The console cannot start'), slot.el,
        h('button', {type: 'button', onclick: () => route()}, 'Retry')));
      return;
    }
  }
  if (!v.alive) return;
  const parts = parseRoute();
  const section = parts[0] === 'applications' ? 'applications' : 'streams';
  renderHeader(session, section);
  document.body.dataset.route = parts.join('/') || 'streams';
  if (session.auth && !session.signedIn) {
    document.title = 'Sign in · shoal console';
    renderSignIn(v, view, () => route());
    return;
  }
  const root = h('div', {class: 'page'});
  replace(view, root);
  if (parts.length === 0) {
    history.replaceState(null, '', '#/streams');
    parts.push('streams');
  }
  if (parts[0] === 'streams' && parts.length === 1) {
    document.title = 'Streams · shoal console';
    renderStreams(v, root);
  } else if (parts[0] === 'streams' && parts.length >= 2) {
    const name = parts[1];
    const tab = parts[2] || '';
    document.title = `${name} · shoal console`;
    if (tab === 'shards') renderShards(v, root, name);
    else if (tab === 'data') renderData(v, root, name);
    else if (tab === 'metrics') renderMetrics(v, root, name);
    else renderStream(v, root, name);
  } else if (parts[0] === 'applications' && parts.length === 1) {
    document.title = 'Applications · shoal console';
    renderApplications(v, root, session);
  } else if (parts[0] === 'applications') {
    document.title = `${parts[1]} · shoal console`;
    renderApplication(v, root, parts[1]);
  } else {
    replace(root, h('section', {class: 'card'}, h('h1', null, 'Not found'),
      h('p', null, 'No such page. ', h('a', {href: '#/streams'}, 'Streams'))));
  }
}

onSignedOut(async () => {
  try {
    await loadSession();
  } catch {
    // route() shows the error.
  }
  route();
});

window.addEventListener('hashchange', () => route());
route();
