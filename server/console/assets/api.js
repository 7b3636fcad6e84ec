// The console's JSON API (API.md). Every state-changing request is a POST
// with a JSON body and the session's CSRF token in X-Shoal-CSRF. Errors are
// thrown as ApiError carrying the server's code and message verbatim.

const BASE = '/console/api';

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let session = null;
const listeners = new Set();

// onSignedOut registers fn, called when an answer says the session is
// signed out (401 ConsoleSignedOut).
export function onSignedOut(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function currentSession() {
  return session;
}

export function setSession(s) {
  session = s;
  return s;
}

// path builds an API path from segments, path-escaping each.
export function path(...segments) {
  return BASE + '/' + segments.map((p) => encodeURIComponent(p)).join('/');
}

// query appends the defined, non-empty parameters of params to p.
export function query(p, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? `${p}?${qs}` : p;
}

async function errorOf(resp) {
  let text = '';
  try {
    text = await resp.text();
  } catch {
    // The body could not be read; the status says enough.
  }
  try {
    const body = JSON.parse(text);
    if (body && typeof body.code === 'string') {
      return new ApiError(resp.status, body.code, typeof body.message === 'string' ? body.message : '');
    }
  } catch {
    // Not JSON: fall through.
  }
  return new ApiError(resp.status, `HTTP ${resp.status}`, text.trim().slice(0, 500) || resp.statusText);
}

async function send(method, p, body, signal) {
  const init = {method, headers: {Accept: 'application/json'}, credentials: 'same-origin', cache: 'no-store', signal};
  if (method === 'POST') {
    init.headers['Content-Type'] = 'application/json';
    init.headers['X-Shoal-CSRF'] = session ? session.csrf : '';
    init.body = JSON.stringify(body || {});
  }
  let resp;
  try {
    resp = await fetch(p, init);
  } catch (err) {
    if (err && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NetworkError', `The console could not reach the server: ${err.message || err}`);
  }
  if (resp.ok) {
    const text = await resp.text();
    return text ? JSON.parse(text) : {};
  }
  const err = await errorOf(resp);
  if (resp.status === 401 && err.code === 'ConsoleSignedOut') {
    for (const fn of listeners) fn(err);
  }
  throw err;
}

export function get(p, params, signal) {
  return send('GET', query(p, params), undefined, signal);
}

// post sends a state-changing request. A CSRF refusal caused by a stale
// token (the session expired and a new one began) is retried once with the
// new session's token; any other refusal is the caller's to show.
export async function post(p, body) {
  try {
    return await send('POST', p, body);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 'ConsoleCSRF') throw err;
    const before = session && session.csrf;
    const fresh = await loadSession();
    if (!fresh.csrf || fresh.csrf === before || (fresh.auth && !fresh.signedIn)) throw err;
    return send('POST', p, body);
  }
}

export async function loadSession() {
  return setSession(await send('GET', BASE + '/session'));
}

export async function login(accessKeyId, secretAccessKey, sessionToken) {
  const body = {accessKeyId, secretAccessKey};
  if (sessionToken) body.sessionToken = sessionToken;
  const s = await send('POST', BASE + '/login', body);
  // The answer is the session object; keep the previous token if it has none.
  return setSession({...session, ...s, csrf: s.csrf || (session && session.csrf)});
}

export async function logout() {
  const s = await send('POST', BASE + '/logout', {});
  setSession({...session, ...s, signedIn: false, accessKeyId: '', csrf: s.csrf || (session && session.csrf)});
  return loadSession();
}

// Typed helpers, one per endpoint of API.md.
export const api = {
  streams: () => get(path('streams')),
  createStream: (body) => post(path('streams'), body),
  stream: (name) => get(path('streams', name)),
  deleteStream: (name, enforceConsumerDeletion) => post(path('streams', name, 'delete'), {enforceConsumerDeletion}),
  retention: (name, hours) => post(path('streams', name, 'retention'), {hours}),
  mode: (name, mode) => post(path('streams', name, 'mode'), {mode}),
  shardCount: (name, count) => post(path('streams', name, 'shard-count'), {count}),
  tags: (name, add, remove) => post(path('streams', name, 'tags'), {add, remove}),
  encryption: (name, keyId) => post(path('streams', name, 'encryption'), {keyId}),
  monitoring: (name, metrics) => post(path('streams', name, 'monitoring'), {metrics}),
  shards: (name) => get(path('streams', name, 'shards')),
  split: (name, shardId, newStartingHashKey) => post(path('streams', name, 'split'), {shardId, newStartingHashKey}),
  merge: (name, shardId, adjacentShardId) => post(path('streams', name, 'merge'), {shardId, adjacentShardId}),
  records: (name, params, signal) => get(path('streams', name, 'records'), params, signal),
  tailURL: (name, params) => query(path('streams', name, 'tail'), params),
  putRecord: (name, body) => post(path('streams', name, 'records'), body),
  consumers: (name) => get(path('streams', name, 'consumers')),
  registerConsumer: (name, consumer) => post(path('streams', name, 'consumers'), {name: consumer}),
  deregisterConsumer: (name, consumer) => post(path('streams', name, 'consumers', consumer, 'delete'), {}),
  applications: () => get(path('applications')),
  application: (app, stream) => get(path('applications', app), {stream}),
  metrics: (name, minutes) => get(path('streams', name, 'metrics'), {minutes}),
};

// errorOfTail reads the error a failed tail request answers with, for an
// EventSource that closed before it opened (EventSource itself hides the
// status and body). A tail that would have succeeded is aborted at once.
export async function tailError(url) {
  const ctl = new AbortController();
  try {
    const resp = await fetch(url, {credentials: 'same-origin', cache: 'no-store', signal: ctl.signal, headers: {Accept: 'text/event-stream'}});
    if (resp.ok) {
      ctl.abort();
      return null;
    }
    return await errorOf(resp);
  } catch (err) {
    if (err && err.name === 'AbortError') return null;
    return new ApiError(0, 'NetworkError', `The console could not reach the server: ${err.message || err}`);
  }
}
