// The demo page: plain DOM, no build step. All state comes from the server (GET /state); the page
// re-reads it whenever an event arrives on the thread's or the memories' Server-Sent Events
// stream, so other tabs, workers and the consolidator show up live without polling.
// With API keys on (AGENTMEM_AUTH=keys) it asks for a key, keeps it in this tab's sessionStorage
// (gone when the tab closes, never shared with other tabs) and sends it on every request.
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
let threadId = params.get('thread') || null;
let lastState = null;
let threadEvents = null;
let memoryEvents = null;
const KEY_STORAGE = 'agentmem.apiKey';
let apiKey = sessionStorage.getItem(KEY_STORAGE);

/** The server refused the key (or there was none): 401. */
class KeyRefused extends Error {}

function scope() {
  return { user: $('user').value.trim() || 'default', namespace: $('namespace').value.trim() || 'default' };
}

function ttl(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return '∞';
  const d = Math.floor(seconds / 86400), h = Math.floor((seconds % 86400) / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${s}s`;
}

/** Builds a table row from cell values; text only (textContent), so nothing a user typed becomes markup. */
function row(cells, classes = []) {
  const tr = document.createElement('tr');
  cells.forEach((value, i) => {
    const td = document.createElement('td');
    if (value instanceof Node) td.append(value); else td.textContent = String(value);
    if (classes[i]) td.className = classes[i];
    tr.append(td);
  });
  return tr;
}

function setUrlThread(id) {
  const url = new URL(location.href);
  url.searchParams.set('thread', id);
  history.replaceState(null, '', url);
}

async function api(path, options = {}) {
  const headers = { ...options.headers, ...(apiKey ? { authorization: `Bearer ${apiKey}` } : {}) };
  const res = await fetch(path, { ...options, headers });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401) throw new KeyRefused(body.error?.message || 'missing or invalid API key');
  if (!res.ok) throw new Error(body.error?.message || `${res.status}`);
  return body;
}

/** EventSource cannot send headers: the key goes in the URL, as the API accepts on event streams. */
function withKey(url) {
  if (!apiKey) return url;
  const u = new URL(url, location.href);
  u.searchParams.set('access_token', apiKey);
  return u.pathname + u.search;
}

/**
 * The key's scope, or null when the server runs without keys. A server without /v1/whoami (404)
 * has no keys either.
 */
async function whoami() {
  try {
    const who = await api('/v1/whoami');
    return who.auth === 'keys' ? who : null;
  } catch (err) {
    if (err instanceof KeyRefused) throw err;
    if (/not found/.test(err.message)) return null;
    throw err;
  }
}

function describeScope(who) {
  const list = (values) => (values.includes('*') ? 'all' : values.join(', '));
  const expires = who.expires_ts ? `, expires ${new Date(who.expires_ts * 1000).toLocaleString()}` : '';
  return `${who.name || `key ${who.key_id}`}: ${who.role}, users ${list(who.users)}, namespaces ${list(who.namespaces)}${expires}`;
}

/** A key bound to some users or namespaces makes the first of them the page's scope; one alone cannot be changed. */
function applyScope(who) {
  for (const [field, values] of [['user', who.users], ['namespace', who.namespaces]]) {
    const input = $(field);
    const bound = !values.includes('*');
    if (bound && !values.includes(input.value.trim())) input.value = values[0];
    input.readOnly = bound && values.length === 1;
  }
  $('key-scope-text').textContent = describeScope(who);
  $('key-scope').hidden = false;
}

function askForKey(message) {
  threadEvents?.close();
  memoryEvents?.close();
  threadEvents = memoryEvents = null;
  if (apiKey) sessionStorage.removeItem(KEY_STORAGE);
  apiKey = null;
  $('key-scope').hidden = true;
  $('app').hidden = true;
  $('key-form').hidden = false;
  $('key-error').textContent = message;
  $('status').textContent = 'API key needed';
  $('api-key').focus();
}

function form(fields) {
  return { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields) };
}

async function refresh() {
  const { user, namespace } = scope();
  const q = new URLSearchParams({ user, namespace, ...(threadId ? { thread_id: threadId } : {}) });
  const state = await api(`/state?${q}`);
  if (!threadId) {
    threadId = state.thread_id;
    setUrlThread(threadId);
    subscribeThread();
  }
  lastState = state;
  render(state);
}

function render(state) {
  const s = state.session;
  $('wm-thread').textContent = threadId;
  $('wm-user').textContent = s ? s.user : scope().user;
  $('wm-goal').textContent = s?.goal || '—';
  $('wm-scratchpad').textContent = s?.scratchpad || '—';
  $('wm-turns').textContent = s ? String(s.turn_count) : '0';
  $('wm-ttl').textContent = s ? ttl(s.ttl_seconds) : '—';
  $('wm-recent').replaceChildren(...(s?.recent_turns ?? []).map((t) => {
    const li = document.createElement('li');
    li.textContent = `${t.role}: ${t.content}`;
    return li;
  }));
  $('events').replaceChildren(...state.events.map((e) => {
    const li = document.createElement('li');
    li.textContent = `${new Date(e.ts * 1000).toLocaleTimeString()}  ${e.action}  ${e.detail}`;
    return li;
  }));
  const ix = state.index;
  $('ix-docs').textContent = String(ix.num_docs);
  $('ix-failures').textContent = String(ix.indexing_failures);
  $('ix-model').textContent = ix.model;
  $('ix-thresholds').textContent = `dedup ≤ ${ix.dedup_threshold}, recall ≤ ${ix.default_recall_threshold}`;
  $('memories').replaceChildren(...state.memories.map((m) => {
    const drop = document.createElement('button');
    drop.textContent = 'Drop';
    drop.dataset.memoryId = m.id;
    drop.addEventListener('click', () => api('/drop_memory', form({ memory_id: m.id })).then(refresh, showError));
    const tr = row([m.id, m.kind, m.text, m.hit_count, ttl(m.ttl_seconds), drop], ['num', '', '', 'num', 'num', '']);
    tr.dataset.memoryId = m.id;
    return tr;
  }));
}

function renderRecall(turn) {
  $('recalled').replaceChildren(...turn.recalled.map((m) => row([m.distance.toFixed(3), m.kind, ttl(m.ttl_seconds), m.id, m.text], ['num', '', 'num', 'num', ''])));
  $('last-write').textContent = turn.write_skipped ? 'nothing written (recall only)'
    : turn.deduped ? `deduped onto ${turn.memory_id} (distance ${Number(turn.existing_distance).toFixed(3)})`
    : `wrote ${turn.memory_id} as ${turn.kind}`;
  $('recall-panel').classList.remove('flash');
  void $('recall-panel').offsetWidth;
  $('recall-panel').classList.add('flash');
}

function showError(err) {
  if (err instanceof KeyRefused) askForKey(apiKey ? 'The server refused this key (unknown, revoked or expired): enter another.' : 'This server needs an API key.');
  else $('status').textContent = `error: ${err.message}`;
}

function subscribe(url, onEvent) {
  const source = new EventSource(withKey(url));
  source.onopen = () => ($('status').textContent = 'live');
  source.onerror = () => {
    $('status').textContent = 'reconnecting…';
    // EventSource gives up for good on an answer that is not a stream (a 401 among them): ask
    // whoami why, which shows the key form if the key was the reason.
    if (source.readyState === EventSource.CLOSED) whoami().catch(showError);
  };
  source.onmessage = onEvent;
  return source;
}

function subscribeThread() {
  threadEvents?.close();
  threadEvents = subscribe(`/v1/threads/${encodeURIComponent(threadId)}/events`, () => refresh().catch(showError));
}

async function send(action) {
  const text = $('text').value.trim();
  if (!text) return;
  const { user, namespace } = scope();
  $('send').disabled = true;
  try {
    const turn = await api('/turn', form({ text, user, namespace, role: $('role').value, kind: $('kind').value, threshold: $('threshold').value, action, ...(threadId ? { thread_id: threadId } : {}) }));
    if (action === 'turn') renderRecall(turn);
    $('text').value = '';
    await refresh();
  } catch (err) {
    showError(err);
  } finally {
    $('send').disabled = false;
  }
}

$('turn-form').addEventListener('submit', (e) => { e.preventDefault(); send('turn'); });
$('goal').addEventListener('click', () => send('goal'));
$('new-thread').addEventListener('click', async () => {
  try {
    const { user, namespace } = scope();
    const { thread_id } = await api('/v1/threads', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user, namespace }) });
    threadId = thread_id;
    setUrlThread(threadId);
    subscribeThread();
    $('recalled').replaceChildren();
    $('last-write').textContent = '';
    await refresh();
  } catch (err) {
    showError(err);
  }
});
$('reset').addEventListener('click', () => api('/reset', form(scope())).then(refresh, showError));
for (const id of ['user', 'namespace']) $(id).addEventListener('change', () => refresh().catch(showError));
$('threshold').addEventListener('input', () => ($('threshold-value').textContent = Number($('threshold').value).toFixed(2)));
// TTLs count down between events.
setInterval(() => {
  if (!lastState?.session) return;
  lastState.session.ttl_seconds = Math.max(0, lastState.session.ttl_seconds - 1);
  $('wm-ttl').textContent = ttl(lastState.session.ttl_seconds);
}, 1000);

$('key-form').addEventListener('submit', (e) => {
  e.preventDefault();
  apiKey = $('api-key').value.trim();
  sessionStorage.setItem(KEY_STORAGE, apiKey);
  $('api-key').value = '';
  start().catch(showError);
});
$('forget-key').addEventListener('click', () => askForKey(''));

async function start() {
  const who = await whoami();
  if (who) applyScope(who);
  else if (apiKey) {
    // The server runs without keys: a key kept from an earlier run would only travel for nothing.
    sessionStorage.removeItem(KEY_STORAGE);
    apiKey = null;
  }
  $('key-form').hidden = true;
  $('key-error').textContent = '';
  $('app').hidden = false;
  const initial = await api(`/state?${new URLSearchParams({ ...scope(), ...(threadId ? { thread_id: threadId } : {}) })}`);
  $('threshold').value = String(initial.index.default_recall_threshold);
  $('threshold-value').textContent = Number(initial.index.default_recall_threshold).toFixed(2);
  memoryEvents?.close();
  memoryEvents = subscribe('/v1/memories/events', () => refresh().catch(showError));
  if (threadId) subscribeThread();
  await refresh();
}

await start().catch(showError);
