import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTiers, type MemoryTiers } from '../src/agentmem.js';
import { ApiKeyStore } from '../src/auth/key-store.js';
import {
  AgentmemApiError, AgentmemClient, AgentmemNetworkError, AgentmemStreamError, type ClientOptions, type EventRecord, type RetryInfo,
} from '../src/client/index.js';
import { SseParser } from '../src/client/sse.js';
import { silentLogger } from '../src/log.js';
import { connectService } from '../src/redis/connection.js';
import { Durability } from '../src/redis/durability.js';
import { startService, type RunningService } from '../server/service.js';
import { testEmbedder } from './support/embedder.js';
import { canOwnRedis, ownRedis, until } from './support/fleet.js';
import { isolatedConfig } from './support/redis.js';
import { startTestService, type TestService } from './support/service.js';
import { startTcpProxy } from './support/tcp-proxy.js';

let s: TestService;
let client: AgentmemClient;
beforeAll(async () => {
  s = await startTestService();
  client = new AgentmemClient({ baseUrl: s.service.url });
});
afterAll(async () => {
  await s?.stop();
});

const portOf = (url: string): number => Number(new URL(url).port);

/** A fetch that passes every request on and notes when it was sent and with which Idempotency-Key. */
function recordingFetch(): { fetch: NonNullable<ClientOptions['fetch']>; sent: { at: number; key: string | null }[] } {
  const sent: { at: number; key: string | null }[] = [];
  return {
    sent,
    fetch: (input, init) => {
      sent.push({ at: Date.now(), key: new Headers(init?.headers).get('Idempotency-Key') });
      return fetch(input, init);
    },
  };
}

/** Reads an iterator in the background into `events`. */
function collect(iterator: AsyncGenerator<EventRecord, void, undefined>): { events: EventRecord[]; done: Promise<unknown> } {
  const events: EventRecord[] = [];
  const done = (async () => {
    for await (const event of iterator) events.push(event);
  })().catch((err: unknown) => err);
  return { events, done };
}

describe('AgentmemClient against a real server', () => {
  it('covers every /v1 route and hands back what the server sends', async () => {
    const { thread_id } = await client.createThread({ user: 'ann', agent: 'planner' });
    expect(await client.getThread(thread_id)).toMatchObject({ thread_id, user: 'ann', agent: 'planner', turn_count: 0, recent_turns: [] });
    expect(await client.updateThread(thread_id, { goal: 'plan a trip', scratchpad: 'Lisbon?' })).toMatchObject({ thread_id, goal: 'plan a trip', scratchpad: 'Lisbon?' });

    const posted = await client.postTurn(thread_id, { content: 'Ann is allergic to peanuts.', user: 'ann', remember: 'semantic' });
    expect(posted).toMatchObject({ thread_id, replayed: false, result: null, idempotency_key: expect.stringMatching(/^[0-9a-f]{32}$/) });
    const done = await client.waitForTurn(posted.turn_id);
    expect(done).toMatchObject({ turn_id: posted.turn_id, thread_id, status: 'done', turn_count: 1, memory: { kind: 'semantic', deduped: false } });
    expect(await client.getTurn(posted.turn_id)).toMatchObject({ turn_id: posted.turn_id, status: 'done', memory: done.memory });
    const memoryId = done.memory?.id as string;

    // ?wait: the answer is the processed turn, its recall included.
    const waited = await client.postTurn(thread_id, { content: 'Is Ann allergic to peanuts?', user: 'ann', remember: 'skip' }, { waitMs: 20_000, idempotencyKey: 'ask-1' });
    expect(waited.result).toMatchObject({ status: 'done', turn_count: 2 });
    expect(waited.result?.recall?.map((m) => m.id)).toContain(memoryId);
    // The same Idempotency-Key again: the same turn, not a new one.
    expect(await client.postTurn(thread_id, { content: 'Is Ann allergic to peanuts?', user: 'ann', remember: 'skip' }, { idempotencyKey: 'ask-1' }))
      .toMatchObject({ turn_id: waited.turn_id, replayed: true });
    expect((await client.getThread(thread_id)).turn_count).toBe(2);

    const { recall } = await client.recall({ text: 'peanut allergy', user: 'ann' });
    expect(recall[0]).toMatchObject({ id: memoryId, text: 'Ann is allergic to peanuts.', kind: 'semantic', distance: expect.any(Number) });
    expect((await client.listMemories({ user: 'ann' })).memories.map((m) => m.id)).toEqual([memoryId]);
    expect(await client.deleteMemory(memoryId)).toEqual({ deleted: true, memory_id: memoryId });
    expect((await client.listMemories({ user: 'ann', limit: 10 })).memories).toEqual([]);

    expect(await client.deadLetter({ count: 5 })).toEqual({ entries: [] });
    expect(await client.whoami()).toEqual({ auth: 'off', key_id: null, name: null, role: 'admin', users: ['*'], namespaces: ['*'], expires_ts: null });
    const key = await client.createKey({ users: ['ann'], role: 'read', name: 'ci', expires: '1h' });
    expect(key).toMatchObject({ key: expect.stringMatching(/^am_/), role: 'read', users: ['ann'], namespaces: ['*'], name: 'ci', revoked: false });
    expect((await client.listKeys()).keys.map((k) => k.key_id)).toContain(key.key_id);
    expect(await client.revokeKey(key.key_id)).toEqual({ key_id: key.key_id, revoked: true });
    expect((await client.listKeys()).keys.find((k) => k.key_id === key.key_id)).toMatchObject({ revoked: true });
  });

  it('throws errors carrying the status, the field and the message the server sent, and retries none of the 4xx', async () => {
    const retries: RetryInfo[] = [];
    const c = new AgentmemClient({ baseUrl: s.service.url, onRetry: (info) => retries.push(info) });
    const empty = await c.postTurn('errors-1', { content: '' }).catch((err: unknown) => err);
    expect(empty).toBeInstanceOf(AgentmemApiError);
    expect(empty).toMatchObject({ status: 400, field: 'content', retryable: false, retryAfterSeconds: null, message: expect.stringContaining('content') });
    expect(await c.recall({ text: 'x', k: 1000 }).catch((err: unknown) => err)).toMatchObject({ status: 400, field: 'k' });
    expect(await c.updateThread('errors-1', {}).catch((err: unknown) => err)).toMatchObject({ status: 400, field: 'body' });
    expect(await c.getThread('no-such-thread').catch((err: unknown) => err)).toMatchObject({ status: 404, field: null, message: 'thread no-such-thread not found' });
    expect(await c.getTurn('not a turn id').catch((err: unknown) => err)).toMatchObject({ status: 400, field: 'turn_id' });
    expect(retries).toEqual([]);
    const nobody = new AgentmemClient({ baseUrl: `http://127.0.0.1:${portOf(s.service.url) === 1 ? 2 : 1}`, retry: { attempts: 1 } });
    expect(await nobody.postTurn('t', { content: 'x' }).catch((err: unknown) => err)).toMatchObject({ name: 'AgentmemNetworkError', status: null, retryable: true });
  });

  it('sends a turn whose answer was lost again with the same Idempotency-Key: the server queues it once', async () => {
    const proxy = await startTcpProxy(portOf(s.service.url));
    try {
      const { fetch: recording, sent } = recordingFetch();
      const retries: RetryInfo[] = [];
      const c = new AgentmemClient({ baseUrl: proxy.url, fetch: recording, onRetry: (info) => retries.push(info) });
      // The request reaches the server, which accepts the turn; its 202 never reaches the client.
      const cut = proxy.cutResponseOnce((chunk) => chunk.toString('latin1').startsWith('HTTP/1.1 202'));
      const posted = await c.postTurn('lost-answer', { content: 'the answer to this one is lost' });
      await cut;
      expect(retries).toHaveLength(1);
      expect(retries[0]?.error).toBeInstanceOf(AgentmemNetworkError);
      expect(sent).toHaveLength(2);
      expect(sent[1]?.key).toBe(sent[0]?.key);
      expect(posted.replayed).toBe(true);
      expect(await client.waitForTurn(posted.turn_id)).toMatchObject({ status: 'done', turn_count: 1 });
      const thread = await client.getThread('lost-answer');
      expect({ turns: thread.turn_count, recent: thread.recent_turns.length }).toEqual({ turns: 1, recent: 1 });
    } finally {
      await proxy.close();
    }
  });

  it('retries a 429 after its Retry-After with one Idempotency-Key until the backlog has room', async () => {
    const paused = await startTestService({ maxBacklog: 1 }, { workers: false });
    let starting: Promise<RunningService> | undefined;
    try {
      expect((await paused.post('/v1/threads/full/turns', { content: 'fills the backlog' })).status).toBe(202);
      const { fetch: recording, sent } = recordingFetch();
      const retries: RetryInfo[] = [];
      const c = new AgentmemClient({
        baseUrl: paused.service.url, fetch: recording, retry: { attempts: 30, maxElapsedMs: 90_000 },
        onRetry: (info) => {
          retries.push(info);
          // Workers for the paused service's keys start after the first refusal: they make room.
          starting ??= serviceOver(paused, paused.config);
        },
      });
      const posted = await c.postTurn('full', { content: 'waits for room' });
      expect(retries.length).toBeGreaterThanOrEqual(1);
      for (const retry of retries) expect(retry).toMatchObject({ delayMs: 1000, error: { status: 429, retryAfterSeconds: 1, retryable: true } });
      for (let i = 1; i < sent.length; i++) expect((sent[i]?.at ?? 0) - (sent[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(1000);
      expect(new Set(sent.map((r) => r.key)).size).toBe(1);
      expect(await c.waitForTurn(posted.turn_id)).toMatchObject({ status: 'done', turn_count: 2 });
    } finally {
      await (await starting)?.stop();
      await paused.stop();
    }
  });

  it.runIf(canOwnRedis())('retries a 503 while Redis is down after its Retry-After, and queues the turn once Redis is back', async () => {
    const redisServer = await ownRedis();
    const redis = connectService(redisServer.url);
    redis.on('error', () => undefined);
    const config = isolatedConfig({ redisUrl: redisServer.url, port: 0 });
    const tiers = createTiers(redis, config);
    await tiers.longTerm.ensureIndex();
    const service = await serviceOver(tiers, config);
    try {
      await redisServer.kill();
      const { fetch: recording, sent } = recordingFetch();
      const retries: RetryInfo[] = [];
      let restarting: Promise<void> | undefined;
      const c = new AgentmemClient({
        baseUrl: service.url, fetch: recording, retry: { attempts: 30, maxElapsedMs: 90_000 },
        onRetry: (info) => {
          retries.push(info);
          restarting ??= redisServer.restart();
        },
      });
      const posted = await c.postTurn('redis-down', { content: 'sent while Redis is down' });
      await restarting;
      expect(retries.length).toBeGreaterThanOrEqual(1);
      for (const retry of retries) expect(retry).toMatchObject({ delayMs: 1000, error: { status: 503, retryAfterSeconds: 1 } });
      for (let i = 1; i < sent.length; i++) expect((sent[i]?.at ?? 0) - (sent[i - 1]?.at ?? 0)).toBeGreaterThanOrEqual(1000);
      expect(new Set(sent.map((r) => r.key)).size).toBe(1);
      const owner = new AgentmemClient({ baseUrl: service.url });
      expect(await owner.waitForTurn(posted.turn_id)).toMatchObject({ status: 'done', turn_count: 1 });
      expect((await owner.getThread('redis-down')).turn_count).toBe(1);
    } finally {
      await service.stop();
      await redis.quit().catch(() => undefined);
      await redisServer.stop();
    }
  });

  it('sends its API key as a Bearer header, event streams included', async () => {
    const keyed = await startTestService({ auth: 'keys' });
    try {
      const admin = (await new ApiKeyStore(keyed.redis, keyed.keys).create({ users: ['*'], namespaces: ['*'], role: 'admin', name: 'ops' })).token;
      expect(await new AgentmemClient({ baseUrl: keyed.service.url }).whoami().catch((err: unknown) => err)).toMatchObject({ status: 401 });
      const ops = new AgentmemClient({ baseUrl: keyed.service.url, apiKey: admin });
      expect(await ops.whoami()).toMatchObject({ auth: 'keys', role: 'admin', name: 'ops' });
      const aliceKey = await ops.createKey({ users: ['alice'], role: 'write' });
      const alice = new AgentmemClient({ baseUrl: keyed.service.url, apiKey: aliceKey.key });
      expect(await alice.whoami()).toMatchObject({ auth: 'keys', key_id: aliceKey.key_id, role: 'write', users: ['alice'] });
      const { thread_id } = await alice.createThread();
      const stream = collect(alice.events(thread_id, { since: '0' }));
      const posted = await alice.postTurn(thread_id, { content: 'a keyed turn', remember: 'skip' });
      await alice.waitForTurn(posted.turn_id);
      await until('the keyed stream delivers the turn', () => stream.events.some((e) => e.action === 'turn_accepted'));
      expect(stream.events[0]).toMatchObject({ thread_id, action: 'thread_started' });
      expect(await alice.listKeys().catch((err: unknown) => err)).toMatchObject({ status: 403 });
      await ops.revokeKey(aliceKey.key_id);
      expect(await alice.whoami().catch((err: unknown) => err)).toMatchObject({ status: 401 });
    } finally {
      await keyed.stop();
    }
  });
});

describe('event streams', () => {
  it('events() resumes after its connection is cut mid-stream: every event of the thread once, in order', async () => {
    const proxy = await startTcpProxy(portOf(s.service.url));
    const controller = new AbortController();
    try {
      const retries: RetryInfo[] = [];
      const c = new AgentmemClient({ baseUrl: proxy.url, onRetry: (info) => retries.push(info) });
      const { thread_id } = await client.createThread({ user: 'eve' });
      const stream = collect(c.events(thread_id, { since: '0', signal: controller.signal }));
      const turnIds: string[] = [];
      for (let i = 0; i < 3; i++) turnIds.push((await client.postTurn(thread_id, { content: `before the cut ${i}`, remember: 'skip' })).turn_id);
      await until('some events delivered', () => stream.events.length >= 3);
      proxy.cutAll();
      const atCut = stream.events.length;
      for (let i = 0; i < 3; i++) turnIds.push((await client.postTurn(thread_id, { content: `after the cut ${i}`, remember: 'skip' })).turn_id);
      for (const id of turnIds) await client.waitForTurn(id);
      const log = (await s.redis.xrange(s.keys.events(thread_id), '-', '+')).map(([id]) => id);
      await until('every event delivered', () => stream.events.length >= log.length);
      expect(stream.events.map((e) => e.event_id)).toEqual(log);
      expect(atCut).toBeLessThan(log.length);
      expect(retries.length).toBeGreaterThanOrEqual(1);
      expect(stream.events.filter((e) => e.action === 'turn_accepted')).toHaveLength(6);
    } finally {
      controller.abort();
      await proxy.close();
    }
  });

  it('events() without since, cut before its first event, resumes from where it connected: nothing missed in between', async () => {
    const proxy = await startTcpProxy(portOf(s.service.url));
    const controller = new AbortController();
    try {
      const { thread_id } = await client.createThread({ user: 'eve' });
      // A reconnect delay long enough that the turn below is written while the client is away.
      const c = new AgentmemClient({ baseUrl: proxy.url, reconnect: { minDelayMs: 3000, maxDelayMs: 3000 } });
      const connected = proxy.forwarded((chunk) => chunk.toString().includes(': connected'));
      const stream = collect(c.events(thread_id, { signal: controller.signal }));
      await connected;
      proxy.cutAll();
      const posted = await client.postTurn(thread_id, { content: 'while the stream is away', remember: 'skip' });
      await client.waitForTurn(posted.turn_id);
      const log = (await s.redis.xrange(s.keys.events(thread_id), '-', '+')).map(([id]) => id);
      await until('the events written while away', () => stream.events.length >= log.length - 1);
      // Everything after thread_started (the newest entry when it connected).
      expect(stream.events.map((e) => e.event_id)).toEqual(log.slice(1));
    } finally {
      controller.abort();
      await proxy.close();
    }
  });

  it('memoryEvents() resumes after a cut too, and ends when its signal aborts', async () => {
    const proxy = await startTcpProxy(portOf(s.service.url));
    const controller = new AbortController();
    try {
      const c = new AgentmemClient({ baseUrl: proxy.url });
      const stream = collect(c.memoryEvents({ since: '0', signal: controller.signal }));
      const remember = async (text: string): Promise<void> => {
        await client.waitForTurn((await client.postTurn('mem-events', { content: text, user: 'mel', remember: 'semantic' })).turn_id);
      };
      await remember('Mel keeps bees on the roof.');
      await until('the first memory event', () => stream.events.length >= 1);
      proxy.cutAll();
      await remember('Mel sails on Sundays.');
      await remember('Mel speaks Finnish.');
      const log = (await s.redis.xrange(s.keys.memoryLog, '-', '+')).map(([id]) => id);
      await until('every memory event', () => stream.events.length >= log.length);
      expect(stream.events.map((e) => e.event_id)).toEqual(log);
      expect(stream.events.every((e) => e.thread_id === 'memories')).toBe(true);
      controller.abort();
      expect(await stream.done).toBeUndefined();
    } finally {
      controller.abort();
      await proxy.close();
    }
  });

  it('throws AgentmemStreamError when the server ends the stream with stream_error, without reconnecting', async () => {
    const retries: RetryInfo[] = [];
    const c = new AgentmemClient({ baseUrl: s.service.url, onRetry: (info) => retries.push(info) });
    await client.postTurn('broken-stream', { content: 'the stream exists', remember: 'skip' });
    await client.postTurn('kept-stream', { content: 'the stream exists', remember: 'skip' });
    const controller = new AbortController();
    const stream = collect(c.events('broken-stream', { since: '0' }));
    const kept = collect(c.events('kept-stream', { since: '0', signal: controller.signal }));
    await until('both streams are followed', () => stream.events.length >= 1 && kept.events.length >= 1);
    await s.redis.multi().del(s.keys.events('broken-stream')).set(s.keys.events('broken-stream'), 'not a stream').exec();
    // A new event on a followed stream wakes the process's shared read, whose next round is refused for the broken one.
    await client.postTurn('kept-stream', { content: 'wakes the shared read', remember: 'skip' });
    const ended = await stream.done;
    controller.abort();
    expect(ended).toBeInstanceOf(AgentmemStreamError);
    expect(ended).toMatchObject({ message: 'this event stream cannot be read', retryable: false });
    expect(retries).toEqual([]);
    await s.redis.del(s.keys.events('broken-stream'));
  });

  it('waitForTurn gives up at its deadline and on abort', async () => {
    const paused = await startTestService({}, { workers: false });
    try {
      const c = new AgentmemClient({ baseUrl: paused.service.url });
      const { turn_id } = await c.postTurn('never-done', { content: 'no worker will take this' });
      expect(await c.waitForTurn(turn_id, { timeoutMs: 300 }).catch((err: unknown) => err)).toMatchObject({ name: 'AgentmemTimeoutError', retryable: true });
      const controller = new AbortController();
      const waiting = c.waitForTurn(turn_id, { signal: controller.signal }).catch((err: unknown) => err);
      controller.abort(new Error('stop waiting'));
      expect(await waiting).toMatchObject({ message: 'stop waiting' });
    } finally {
      await paused.stop();
    }
  });
});

describe('SseParser', () => {
  it('parses events cut at any byte, with CRLF, LF or CR line ends, and never dispatches an event cut off before its blank line', () => {
    const text = ': connected\r\nid: 1-0\r\n\r\nid: 2-0\ndata: {"a":1}\n\nevent: stream_error\rdata: {"error":{"message":"x"}}\r\rid: 3-0\ndata: half';
    for (let size = 1; size <= text.length; size++) {
      const parser = new SseParser();
      const messages = [];
      for (let i = 0; i < text.length; i += size) messages.push(...parser.push(text.slice(i, i + size)));
      expect(messages).toEqual([
        { event: 'message', data: '{"a":1}', id: '2-0' },
        { event: 'stream_error', data: '{"error":{"message":"x"}}', id: '2-0' },
      ]);
      expect(parser.lastEventId).toBe('2-0');
    }
  });
});

/** What startService needs, over tiers that already exist (another service's keys, or a Redis of the test's own). */
async function serviceDeps(tiers: MemoryTiers): Promise<Parameters<typeof startService>[0]> {
  const [embedder, durability] = await Promise.all([
    testEmbedder(),
    Durability.open(tiers.redis, { mode: 'auto', fenceKey: tiers.keys.durabilityFence, log: silentLogger }),
  ]);
  return { ...tiers, embedder, durability, server: { url: '', options: {}, origin: 'test', stop: async () => undefined }, close: async () => undefined };
}

/** Starts a service (API and workers) over existing tiers; stop() also closes what it opened. */
async function serviceOver(tiers: MemoryTiers, config: TestService['config']): Promise<RunningService> {
  const deps = await serviceDeps(tiers);
  const service = await startService(deps, { ...config, port: 0 }, silentLogger);
  return { ...service, stop: async () => {
    await service.stop();
    await deps.durability.close();
  } };
}
