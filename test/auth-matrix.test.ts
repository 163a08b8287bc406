import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../src/auth/key-store.js';
import type { Embedder } from '../src/embedder/embedder.js';
import { testEmbedder } from './support/embedder.js';
import { until } from './support/fleet.js';
import { startTestService, type TestService } from './support/service.js';
import { openSse } from './support/sse.js';

/**
 * The tenancy matrix: eight credentials against every route and both event streams, with targets
 * inside and outside each key's scope, against a real API (auth=keys) on real Redis. Every
 * refused case must answer with its refusal and carry nothing of the other tenant; every allowed
 * one must work.
 */

const ALICE_TEXT = 'alice-secret: the spare key is under the blue flower pot';
const BOB_TEXT = 'bob-secret: the safe code is 4711';
const BOB_TURN = 'bob-turn-secret: meeting with the lawyer on friday';

type Who = 'aliceW' | 'aliceR' | 'bobW' | 'admin' | 'revoked' | 'expired' | 'none' | 'malformed';
const KEYED: readonly Who[] = ['aliceW', 'aliceR', 'bobW', 'admin'];
const REFUSED: readonly Who[] = ['revoked', 'expired', 'none', 'malformed'];
const ALL_WHO: readonly Who[] = [...KEYED, ...REFUSED];

let s: TestService;
let embedder: Embedder;
let store: ApiKeyStore;
const tokens = {} as Record<Who, string | undefined>;
let aliceThread: string;
let bobThread: string;
let aliceTurn: string;
let bobTurn: string;
let bobMemory: string;
let revocable: string;

interface Req {
  method: string;
  path: string;
  json?: unknown;
  form?: Record<string, string>;
}

interface Answer {
  status: number;
  text: string;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(who: Who, r: Req): Promise<Answer> {
  const headers: Record<string, string> = {};
  const token = tokens[who];
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (r.json !== undefined) {
    headers['content-type'] = 'application/json';
    body = JSON.stringify(r.json);
  } else if (r.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(r.form).toString();
  }
  const res = await fetch(s.service.url + r.path, { method: r.method, headers, body });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // metrics, the page
  }
  return { status: res.status, text, body: parsed, headers: res.headers };
}

async function remember(user: string, namespace: string, text: string): Promise<string> {
  const r = await s.longTerm.remember({ text, embedding: await embedder.embedOne(text), user, namespace, kind: 'semantic', sourceThread: 'seed', dedupThreshold: 0 });
  return r.id;
}

beforeAll(async () => {
  embedder = await testEmbedder();
  s = await startTestService({
    auth: 'keys', keyRatePerSecond: 1_000_000, keyRateBurst: 1_000_000, authFailuresPerMinute: 1_000_000, authFailureBurst: 1_000_000,
  });
  store = new ApiKeyStore(s.redis, s.keys);
  tokens.aliceW = (await store.create({ users: ['alice'], namespaces: ['default'], role: 'write', name: 'alice write' })).token;
  tokens.aliceR = (await store.create({ users: ['alice'], namespaces: ['default'], role: 'read' })).token;
  tokens.bobW = (await store.create({ users: ['bob'], namespaces: ['work'], role: 'write' })).token;
  tokens.admin = (await store.create({ users: ['*'], namespaces: ['*'], role: 'admin' })).token;
  const revoked = await store.create({ users: ['alice'], namespaces: ['default'], role: 'write' });
  await store.revoke(revoked.key.key_id);
  tokens.revoked = revoked.token;
  const expired = await store.create({ users: ['alice'], namespaces: ['default'], role: 'write', expiresInSeconds: 1 });
  tokens.expired = expired.token;
  tokens.none = undefined;
  // The right shape with an unknown id; the id of a real key with a wrong secret is a case of its own below.
  tokens.malformed = 'am_not-a-key';
  revocable = (await store.create({ users: ['carol'], namespaces: ['*'], role: 'read' })).key.key_id;

  await remember('alice', 'default', ALICE_TEXT);
  bobMemory = await remember('bob', 'work', BOB_TEXT);
  aliceThread = ((await call('aliceW', { method: 'POST', path: '/v1/threads', json: {} })).body.thread_id) as string;
  bobThread = ((await call('bobW', { method: 'POST', path: '/v1/threads', json: {} })).body.thread_id) as string;
  aliceTurn = (await call('aliceW', { method: 'POST', path: `/v1/threads/${aliceThread}/turns`, json: { content: 'alice turn', remember: 'skip' } })).body.turn_id as string;
  bobTurn = (await call('bobW', { method: 'POST', path: `/v1/threads/${bobThread}/turns`, json: { content: BOB_TURN, remember: 'skip' } })).body.turn_id as string;
  // The expired key is past its expiry now, its record still there (listed as expired).
  await until('the 1 s key to expire', async () => (await store.verify(expired.token)) === null, 10_000);
  expect((await store.list()).some((k) => k.key_id === expired.key.key_id)).toBe(true);
});

afterAll(async () => {
  await s?.stop();
});

/** What a case must answer: a status, and optionally more checks on the answer. */
type Expect = number | [number, (a: Answer) => void | Promise<void>];

interface Row {
  name: string;
  /** Built per case: destructive rows make a fresh target each time. */
  request: (who: Who) => Req | Promise<Req>;
  expect: Partial<Record<Who, Expect>>;
  /** Open routes: what the credentials that are refused elsewhere get. */
  open?: number;
  /** Runs after each case (a target must still exist after a refused delete, ...). */
  after?: (who: Who, a: Answer) => void | Promise<void>;
}

const ok = (check?: (a: Answer) => void | Promise<void>): Expect => (check ? [200, check] : 200);
const texts = (a: Answer): string[] => ((a.body.memories ?? a.body.recall ?? []) as { text: string }[]).map((m) => m.text);
const freshMemory: Record<string, string> = {};

const ROWS: Row[] = [
  { name: 'GET /v1/whoami', request: () => ({ method: 'GET', path: '/v1/whoami' }), expect: {
    aliceW: ok((a) => expect(a.body).toMatchObject({ auth: 'keys', role: 'write', users: ['alice'], namespaces: ['default'], name: 'alice write', expires_ts: null })),
    aliceR: ok((a) => expect(a.body).toMatchObject({ role: 'read', users: ['alice'] })),
    bobW: ok((a) => expect(a.body).toMatchObject({ role: 'write', users: ['bob'], namespaces: ['work'] })),
    admin: ok((a) => expect(a.body).toMatchObject({ role: 'admin', users: ['*'], namespaces: ['*'] })),
  } },
  { name: 'GET /v1/memories (the key\'s own scope by default)', request: () => ({ method: 'GET', path: '/v1/memories' }), expect: {
    aliceW: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), aliceR: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])),
    bobW: ok((a) => expect(texts(a)).toContain(BOB_TEXT)), admin: ok((a) => expect(texts(a)).not.toContain(BOB_TEXT)),
  } },
  { name: 'GET /v1/memories?user=bob&namespace=work', request: () => ({ method: 'GET', path: '/v1/memories?user=bob&namespace=work' }), expect: {
    aliceW: 403, aliceR: 403, bobW: ok((a) => expect(texts(a)).toContain(BOB_TEXT)), admin: ok((a) => expect(texts(a)).toContain(BOB_TEXT)),
  } },
  { name: 'GET /v1/memories?user=ALICE (case variant of the key\'s user)', request: () => ({ method: 'GET', path: '/v1/memories?user=ALICE' }), expect: {
    aliceW: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), aliceR: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), bobW: 403, admin: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])),
  } },
  { name: 'GET /v1/memories?user=alice&namespace=work (namespace outside the key)', request: () => ({ method: 'GET', path: '/v1/memories?user=alice&namespace=work' }), expect: {
    aliceW: 403, aliceR: 403, bobW: 403, admin: ok((a) => expect(texts(a)).toEqual([])),
  } },
  ...['alice} | @user:{bob', 'alice|bob', 'al*', '*', 'bob', 'alice\\'].map((user): Row => ({
    name: `GET /v1/memories with TAG syntax as user: ${JSON.stringify(user)}`,
    request: () => ({ method: 'GET', path: `/v1/memories?user=${encodeURIComponent(user)}&namespace=default` }),
    expect: { aliceW: 403, aliceR: 403, bobW: 403, admin: ok((a) => expect(texts(a)).toEqual([])) },
  })),
  { name: 'POST /v1/recall (own scope by default)', request: () => ({ method: 'POST', path: '/v1/recall', json: { text: 'where is the spare key or the safe code', threshold: 2, k: 20 } }), expect: {
    aliceW: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), aliceR: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])),
    bobW: ok((a) => expect(texts(a)).toContain(BOB_TEXT)), admin: ok((a) => expect(texts(a)).not.toContain(BOB_TEXT)),
  } },
  { name: 'POST /v1/recall in bob/work', request: () => ({ method: 'POST', path: '/v1/recall', json: { text: 'safe code', user: 'bob', namespace: 'work', threshold: 2 } }), expect: {
    aliceW: 403, aliceR: 403, bobW: ok((a) => expect(texts(a)).toContain(BOB_TEXT)), admin: ok((a) => expect(texts(a)).toContain(BOB_TEXT)),
  } },
  { name: 'POST /v1/recall as "Alice" (case variant)', request: () => ({ method: 'POST', path: '/v1/recall', json: { text: 'spare key', user: 'Alice', namespace: 'default', threshold: 2 } }), expect: {
    aliceW: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), aliceR: ok((a) => expect(texts(a)).toEqual([ALICE_TEXT])), bobW: 403, admin: 200,
  } },
  { name: 'POST /v1/recall as "alice}" (TAG syntax)', request: () => ({ method: 'POST', path: '/v1/recall', json: { text: 'spare key', user: 'alice}', threshold: 2 } }), expect: {
    aliceW: 403, aliceR: 403, bobW: 403, admin: ok((a) => expect(texts(a)).toEqual([])),
  } },
  { name: "DELETE /v1/memories/{bob's memory}", request: async (who) => ({ method: 'DELETE', path: `/v1/memories/${(freshMemory[who] = await remember('bob', 'work', `${BOB_TEXT} (${who})`))}` }), expect: {
    aliceW: 404, aliceR: 403, bobW: 200, admin: 200,
  }, after: async (who, a) => expect(await s.redis.exists(s.keys.memory(freshMemory[who] as string))).toBe(a.status === 200 ? 0 : 1) },
  { name: "DELETE /v1/memories/{alice's memory}", request: async (who) => ({ method: 'DELETE', path: `/v1/memories/${(freshMemory[who] = await remember('alice', 'default', `alice drop target (${who})`))}` }), expect: {
    aliceW: 200, aliceR: 403, bobW: 404, admin: 200,
  }, after: async (who, a) => expect(await s.redis.exists(s.keys.memory(freshMemory[who] as string))).toBe(a.status === 200 ? 0 : 1) },
  { name: "GET /v1/threads/{alice's}", request: () => ({ method: 'GET', path: `/v1/threads/${aliceThread}` }), expect: { aliceW: 200, aliceR: 200, bobW: 404, admin: 200 } },
  { name: "GET /v1/threads/{bob's}", request: () => ({ method: 'GET', path: `/v1/threads/${bobThread}` }), expect: {
    aliceW: 404, aliceR: 404, bobW: ok((a) => expect(a.text).toContain(BOB_TURN)), admin: 200,
  } },
  { name: 'GET /v1/threads/{missing}', request: () => ({ method: 'GET', path: '/v1/threads/ffffffffffff' }), expect: { aliceW: 404, aliceR: 404, bobW: 404, admin: 404 } },
  { name: "PUT /v1/threads/{bob's} (goal)", request: (who) => ({ method: 'PUT', path: `/v1/threads/${bobThread}`, json: { goal: `goal by ${who}` } }), expect: {
    aliceW: 404, aliceR: 403, bobW: 200, admin: 200,
  }, after: async (who, a) => {
    if (a.status !== 200) expect(await s.redis.hget(s.keys.session(bobThread), 'goal')).not.toBe(`goal by ${who}`);
  } },
  { name: "PUT /v1/threads/{alice's} (scratchpad)", request: () => ({ method: 'PUT', path: `/v1/threads/${aliceThread}`, json: { scratchpad: 'notes' } }), expect: { aliceW: 200, aliceR: 403, bobW: 404, admin: 200 } },
  { name: "POST /v1/threads/{alice's}/turns", request: () => ({ method: 'POST', path: `/v1/threads/${aliceThread}/turns`, json: { content: 'hello', remember: 'skip' } }), expect: { aliceW: 202, aliceR: 403, bobW: 404, admin: 202 } },
  { name: "POST /v1/threads/{bob's}/turns", request: () => ({ method: 'POST', path: `/v1/threads/${bobThread}/turns`, json: { content: 'hello', remember: 'skip', user: 'bob', namespace: 'work' } }), expect: {
    aliceW: 403, aliceR: 403, bobW: 202, admin: 202,
  } },
  { name: "POST /v1/threads/{bob's}/turns naming alice (the key's user)", request: () => ({ method: 'POST', path: `/v1/threads/${bobThread}/turns`, json: { content: 'sneak in', remember: 'skip' } }), expect: {
    aliceW: 404, aliceR: 403, bobW: 202, admin: 202,
  } },
  { name: 'POST /v1/threads/{new id}/turns as bob', request: (who) => ({ method: 'POST', path: `/v1/threads/new-${who}/turns`, json: { content: 'x', remember: 'skip', user: 'bob', namespace: 'work' } }), expect: {
    aliceW: 403, aliceR: 403, bobW: 202, admin: 202,
  } },
  { name: 'POST /v1/threads', request: () => ({ method: 'POST', path: '/v1/threads', json: {} }), expect: { aliceW: 201, aliceR: 403, bobW: 201, admin: 201 } },
  { name: 'POST /v1/threads as bob', request: () => ({ method: 'POST', path: '/v1/threads', json: { user: 'bob', namespace: 'work' } }), expect: { aliceW: 403, aliceR: 403, bobW: 201, admin: 201 } },
  { name: "GET /v1/turns/{alice's}", request: () => ({ method: 'GET', path: `/v1/turns/${aliceTurn}` }), expect: { aliceW: 200, aliceR: 200, bobW: 404, admin: 200 } },
  { name: "GET /v1/turns/{bob's}", request: () => ({ method: 'GET', path: `/v1/turns/${bobTurn}` }), expect: { aliceW: 404, aliceR: 404, bobW: 200, admin: 200 } },
  { name: 'GET /v1/deadletter', request: () => ({ method: 'GET', path: '/v1/deadletter' }), expect: { aliceW: 403, aliceR: 403, bobW: 403, admin: 200 } },
  { name: 'GET /v1/keys', request: () => ({ method: 'GET', path: '/v1/keys' }), expect: {
    aliceW: 403, aliceR: 403, bobW: 403,
    admin: ok((a) => {
      expect((a.body.keys as unknown[]).length).toBeGreaterThanOrEqual(7);
      for (const who of ['aliceW', 'aliceR', 'bobW', 'admin', 'revoked', 'expired'] as const) expect(a.text).not.toContain((tokens[who] as string).slice(16));
      expect(a.text).not.toMatch(/secret_sha256/);
    }),
  } },
  { name: 'POST /v1/keys', request: () => ({ method: 'POST', path: '/v1/keys', json: { users: ['dave'], namespaces: ['default'], role: 'read', expires: '1h' } }), expect: {
    aliceW: 403, aliceR: 403, bobW: 403, admin: [201, (a) => expect(a.body).toMatchObject({ key: expect.stringMatching(/^am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/), role: 'read', users: ['dave'] })],
  } },
  { name: 'DELETE /v1/keys/{id}', request: () => ({ method: 'DELETE', path: `/v1/keys/${revocable}` }), expect: { aliceW: 403, aliceR: 403, bobW: 403, admin: 200 } },
  { name: 'GET /metrics', request: () => ({ method: 'GET', path: '/metrics' }), expect: { aliceW: 403, aliceR: 403, bobW: 403, admin: 200 } },
  { name: 'GET /healthz (open)', request: () => ({ method: 'GET', path: '/healthz' }), expect: { aliceW: 200, aliceR: 200, bobW: 200, admin: 200 }, open: 200 },
  { name: 'GET /readyz (open)', request: () => ({ method: 'GET', path: '/readyz' }), expect: { aliceW: 200, aliceR: 200, bobW: 200, admin: 200 }, open: 200 },
  { name: 'GET / (the page, open)', request: () => ({ method: 'GET', path: '/' }), expect: { aliceW: 200, aliceR: 200, bobW: 200, admin: 200 }, open: 200 },
  { name: 'GET /v1/nonexistent', request: () => ({ method: 'GET', path: '/v1/nonexistent' }), expect: { aliceW: 404, aliceR: 404, bobW: 404, admin: 404 } },
  // The reference routes.
  { name: 'GET /state (own scope, own default thread)', request: () => ({ method: 'GET', path: '/state' }), expect: {
    aliceW: ok((a) => expect(texts(a)).toContain(ALICE_TEXT)), aliceR: ok((a) => expect(texts(a)).toContain(ALICE_TEXT)), bobW: ok((a) => expect(texts(a)).toContain(BOB_TEXT)), admin: 200,
  } },
  { name: 'GET /state?user=bob&namespace=work', request: () => ({ method: 'GET', path: '/state?user=bob&namespace=work' }), expect: { aliceW: 403, aliceR: 403, bobW: 200, admin: 200 } },
  { name: "GET /state?thread_id={bob's}", request: () => ({ method: 'GET', path: `/state?thread_id=${bobThread}` }), expect: {
    aliceW: ok((a) => expect(a.body).toMatchObject({ session: null, events: [] })), aliceR: ok((a) => expect(a.body).toMatchObject({ session: null, events: [] })),
    bobW: ok((a) => expect(a.text).toContain(BOB_TURN)), admin: ok((a) => expect(a.text).toContain(BOB_TURN)),
  } },
  { name: "POST /turn on bob's thread", request: () => ({ method: 'POST', path: '/turn', form: { thread_id: bobThread, text: 'sneak in', kind: 'skip' } }), expect: {
    aliceW: 404, aliceR: 403, bobW: 200, admin: 200,
  } },
  { name: "POST /turn (goal) on bob's thread", request: (who) => ({ method: 'POST', path: '/turn', form: { thread_id: bobThread, text: `legacy goal by ${who}`, action: 'goal' } }), expect: {
    aliceW: 404, aliceR: 403, bobW: 200, admin: 200,
  }, after: async (who, a) => {
    if (a.status !== 200) expect(await s.redis.hget(s.keys.session(bobThread), 'goal')).not.toBe(`legacy goal by ${who}`);
  } },
  { name: 'POST /turn as bob', request: () => ({ method: 'POST', path: '/turn', form: { text: 'hi', user: 'bob', namespace: 'work', action: 'goal' } }), expect: { aliceW: 403, aliceR: 403, bobW: 200, admin: 200 } },
  { name: "POST /drop_memory {bob's memory}", request: async (who) => ({ method: 'POST', path: '/drop_memory', form: { memory_id: (freshMemory[who] = await remember('bob', 'work', `${BOB_TEXT} drop (${who})`)) } }), expect: {
    aliceW: ok((a) => expect(a.body.deleted).toBe(false)), aliceR: 403, bobW: ok((a) => expect(a.body.deleted).toBe(true)), admin: ok((a) => expect(a.body.deleted).toBe(true)),
  }, after: async (who, a) => expect(await s.redis.exists(s.keys.memory(freshMemory[who] as string))).toBe(a.body.deleted === true ? 0 : 1) },
  { name: 'POST /new_thread', request: () => ({ method: 'POST', path: '/new_thread', form: {} }), expect: { aliceW: 200, aliceR: 403, bobW: 200, admin: 200 } },
  { name: 'POST /reset user=bob namespace=work', request: () => ({ method: 'POST', path: '/reset', form: { user: 'bob', namespace: 'work' } }), expect: {
    aliceW: 403, aliceR: 403, bobW: 200, admin: 200,
  }, after: async (who) => {
    // Bob's memory survives alice's attempts (the row for bob runs after alice's).
    if (who === 'aliceW' || who === 'aliceR') expect(await s.redis.exists(s.keys.memory(bobMemory))).toBe(1);
  } },
];

/** The other tenant's secrets, which no refused answer (and no answer to alice) may carry. */
function assertNothingOfBob(who: Who, a: Answer): void {
  if (who === 'bobW' || who === 'admin') return;
  expect(a.text).not.toContain('bob-secret');
  expect(a.text).not.toContain(BOB_TURN);
}

describe('tenancy matrix (8 credentials × every route)', () => {
  for (const row of ROWS) {
    it(row.name, async () => {
      for (const who of ALL_WHO) {
        const a = await call(who, await row.request(who));
        const expected = REFUSED.includes(who) ? (row.open ?? 401) : row.expect[who];
        if (expected === undefined) throw new Error(`row ${row.name} has no expectation for ${who}`);
        const [status, check] = typeof expected === 'number' ? [expected, undefined] : expected;
        expect({ who, status: a.status, body: a.status === status ? '' : a.text }).toEqual({ who, status, body: '' });
        if (status === 401) {
          expect(a.body).toEqual({ error: { message: 'missing or invalid API key' } });
          expect(a.headers.get('www-authenticate')).toBe('Bearer');
        }
        await check?.(a);
        assertNothingOfBob(who, a);
        await row.after?.(who, a);
      }
    });
  }
});

describe('event streams', () => {
  const sse = (path: string, who: Who, via: 'header' | 'query' = 'header') => {
    const token = tokens[who];
    const url = s.service.url + path + (via === 'query' && token !== undefined ? `${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}` : '');
    return openSse(url, undefined, via === 'header' && token !== undefined ? { authorization: `Bearer ${token}` } : {});
  };
  const status = async (path: string, who: Who, via: 'header' | 'query'): Promise<number> => {
    const token = tokens[who];
    const url = s.service.url + path + (via === 'query' && token !== undefined ? `?access_token=${encodeURIComponent(token)}` : '');
    const controller = new AbortController();
    const res = await fetch(url, { signal: controller.signal, headers: via === 'header' && token !== undefined ? { authorization: `Bearer ${token}` } : {} });
    controller.abort();
    return res.status;
  };

  it("a thread's stream: its owner's keys and admin (header or ?access_token), 404 for another user, 401 without a valid key", async () => {
    for (const via of ['header', 'query'] as const) {
      for (const who of ALL_WHO) {
        const expected = REFUSED.includes(who) ? 401 : who === 'bobW' ? 404 : 200;
        expect({ who, via, status: await status(`/v1/threads/${aliceThread}/events`, who, via) }).toEqual({ who, via, status: expected });
      }
      for (const who of ALL_WHO) {
        const expected = REFUSED.includes(who) ? 401 : who === 'bobW' || who === 'admin' ? 200 : 404;
        expect({ who, via, status: await status(`/v1/threads/${bobThread}/events`, who, via) }).toEqual({ who, via, status: expected });
      }
      // A thread that does not exist yet: following it would show whoever creates it.
      for (const who of ['aliceW', 'aliceR', 'bobW'] as const) expect(await status('/v1/threads/not-yet-made/events', who, via)).toBe(404);
      for (const who of ALL_WHO) {
        expect({ who, via, status: await status('/v1/memories/events', who, via) }).toEqual({ who, via, status: REFUSED.includes(who) ? 401 : 200 });
      }
    }
  });

  it("an Idempotency-Key does not answer for another user's thread", async () => {
    const post = (who: Who) => fetch(`${s.service.url}/v1/threads/${aliceThread}/turns`, {
      method: 'POST', headers: { authorization: `Bearer ${tokens[who]}`, 'content-type': 'application/json', 'Idempotency-Key': 'same-key' },
      body: JSON.stringify({ content: `idempotent turn by ${who}`, remember: 'skip' }),
    });
    const first = await post('aliceW');
    expect(first.status).toBe(202);
    const replay = await post('bobW');
    expect(replay.status).toBe(404);
    expect(await replay.text()).not.toContain(((await first.json()) as { turn_id: string }).turn_id);
  });

  it('the memory log: each key sees only changes inside its scope; admin sees all', async () => {
    const [alice, aliceRead, bob, admin, aliceQuery] = await Promise.all([
      sse('/v1/memories/events', 'aliceW'), sse('/v1/memories/events', 'aliceR'), sse('/v1/memories/events', 'bobW'), sse('/v1/memories/events', 'admin'),
      sse('/v1/memories/events', 'aliceW', 'query'),
    ]);
    try {
      const bobVictim = await remember('bob', 'work', 'bob victim for the log');
      const aliceVictim = await remember('alice', 'default', 'alice victim for the log');
      const aliceOther = await remember('alice', 'work', 'alice in another namespace');
      for (const id of [bobVictim, aliceOther, aliceVictim]) expect((await call('admin', { method: 'DELETE', path: `/v1/memories/${id}` })).status).toBe(200);
      const dropped = (events: { action: string; detail: string }[]) => events.filter((e) => e.action === 'memory_dropped').map((e) => (JSON.parse(e.detail) as { memory_id: string }).memory_id);
      await admin.until((e) => dropped(e).length === 3);
      for (const client of [alice, aliceRead, aliceQuery]) {
        await client.until((e) => dropped(e).includes(aliceVictim));
        expect(dropped(client.events)).toEqual([aliceVictim]);
      }
      await bob.until((e) => dropped(e).includes(bobVictim));
      expect(dropped(bob.events)).toEqual([bobVictim]);
      expect(dropped(admin.events)).toEqual([bobVictim, aliceOther, aliceVictim]);
      // Provenance: the key that deleted is named in the entry.
      const adminId = ((await call('admin', { method: 'GET', path: '/v1/whoami' })).body.key_id) as string;
      expect(JSON.parse(admin.events.find((e) => e.action === 'memory_dropped')?.detail ?? '{}')).toMatchObject({ key_id: adminId, user: 'bob', namespace: 'work' });
    } finally {
      for (const c of [alice, aliceRead, bob, admin, aliceQuery]) c.close();
    }
  });

  it('memory events of written turns carry the key id, as do the thread events', async () => {
    const log = await sse('/v1/memories/events', 'aliceW');
    try {
      const res = await call('aliceW', { method: 'POST', path: `/v1/threads/${aliceThread}/turns?wait=20000`, json: { content: 'alice likes green tea in the morning', remember: 'semantic' } });
      expect(res.status).toBe(200);
      const keyId = ((await call('aliceW', { method: 'GET', path: '/v1/whoami' })).body.key_id) as string;
      await log.until((e) => e.some((x) => x.action === 'memory_written'));
      expect(JSON.parse(log.events.find((x) => x.action === 'memory_written')?.detail ?? '{}')).toMatchObject({ key_id: keyId, user: 'alice' });
      const accepted = (await s.events.recent(aliceThread, 50)).find((e) => e.action === 'turn_accepted');
      expect(JSON.parse(accepted?.detail ?? '{}')).toMatchObject({ key_id: keyId });
      expect(await s.redis.hget(s.keys.turn(res.body.turn_id as string), 'key_id')).toBe(keyId);
    } finally {
      log.close();
    }
  });
});

describe('credentials', () => {
  it('a real key id with a wrong secret, a bare token and other schemes get the same 401', async () => {
    const aliceId = (tokens.aliceW as string).slice(3, 15);
    for (const authorization of [`Bearer am_${aliceId}_${'A'.repeat(43)}`, `Bearer am_${'0'.repeat(12)}_${'A'.repeat(43)}`, 'Bearer', `Basic ${tokens.aliceW}`, tokens.aliceW as string, `Bearer ${tokens.aliceW} extra`]) {
      const res = await fetch(`${s.service.url}/v1/whoami`, { headers: { authorization } });
      expect({ authorization, status: res.status, body: await res.json() }).toEqual({ authorization, status: 401, body: { error: { message: 'missing or invalid API key' } } });
    }
  });

  it('?access_token is taken on event streams only', async () => {
    const res = await fetch(`${s.service.url}/v1/whoami?access_token=${tokens.aliceW}`);
    expect(res.status).toBe(401);
  });

  it('a revoked key is refused at once; its id answers 404 once gone from the API, and it is never listed with a secret', async () => {
    const { token, key } = await store.create({ users: ['erin'], namespaces: ['*'], role: 'read' });
    expect((await fetch(`${s.service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
    expect((await call('admin', { method: 'DELETE', path: `/v1/keys/${key.key_id}` })).status).toBe(200);
    expect((await fetch(`${s.service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(401);
    expect((await call('admin', { method: 'DELETE', path: '/v1/keys/0123456789ab' })).status).toBe(404);
    const listed = await call('admin', { method: 'GET', path: '/v1/keys' });
    expect(listed.body.keys).toContainEqual(expect.objectContaining({ key_id: key.key_id, revoked: true }));
    expect(listed.text).not.toContain(token.slice(16));
  });

  it('refuses keys the store must not hold: admin bound to some users, * for a non-admin, * among names', async () => {
    for (const json of [{ users: ['alice'], role: 'admin' }, { users: ['*'], role: 'write' }, { users: ['*', 'alice'] }, { users: ['al*ce'] }, { users: [] }, { users: ['alice', 'ALICE'] }, { users: ['alice'], expires: '10 days' }]) {
      const a = await call('admin', { method: 'POST', path: '/v1/keys', json });
      expect({ json, status: a.status }).toEqual({ json, status: 400 });
    }
  });
});
