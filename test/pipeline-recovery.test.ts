import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureGroup, type StreamEntry } from '../src/pipeline/consumer.js';
import { REMEMBER_GROUP } from '../src/pipeline/groups.js';
import { RememberStage } from '../src/pipeline/stages.js';
import type { TurnResult } from '../src/pipeline/turns.js';
import { silentLogger } from '../src/log.js';
import { vectorBytes } from '../src/query.js';
import { testEmbedder } from './support/embedder.js';
import { startTestService, waitForTurn, type TestService } from './support/service.js';
import { openSse } from './support/sse.js';

describe('Server-Sent Events', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService();
  });
  afterAll(async () => {
    await s.stop();
  });

  it("delivers a turn's recall, and a reconnect with Last-Event-ID misses nothing and repeats nothing", async () => {
    const url = `${s.service.url}/v1/threads/sse-1/events`;
    const first = await openSse(url);
    const t1 = (await (await s.post('/v1/threads/sse-1/turns', { content: 'The user collects vintage synthesizers.' })).json()) as { turn_id: string };
    await first.until((events) => events.some((e) => e.action === 'recall_ready' && (JSON.parse(e.detail) as { turn_id: string }).turn_id === t1.turn_id));
    await first.until((events) => events.some((e) => e.action === 'turn_appended:user'));
    first.close();
    const lastSeen = first.events.at(-1)?.id as string;

    // While disconnected, another turn runs its whole course.
    const t2 = (await (await s.post('/v1/threads/sse-1/turns', { content: 'The user plays the cello on weekends.' })).json()) as { turn_id: string };
    await waitForTurn(s, t2.turn_id);
    const expected = (await s.redis.xrange(s.keys.events('sse-1'), `(${lastSeen}`, '+')).map(([id]) => id);
    expect(expected.length).toBeGreaterThanOrEqual(3);

    const second = await openSse(url, lastSeen);
    await second.until((events) => events.length >= expected.length);
    await new Promise((r) => setTimeout(r, 300));
    second.close();
    expect(second.events.map((e) => e.id)).toEqual(expected);
    expect(second.events.map((e) => e.action)).toEqual(['turn_accepted', 'recall_ready', 'turn_appended:user']);
  });

  it('shows a client that connects to an existing thread, then posts, every event of that turn', async () => {
    await s.post('/v1/threads/sse-3/turns?wait=10000', { content: 'An earlier turn.' });
    const client = await openSse(`${s.service.url}/v1/threads/sse-3/events`);
    const turn = (await (await s.post('/v1/threads/sse-3/turns', { content: 'A turn after connecting.' })).json()) as { turn_id: string };
    await client.until((events) => events.some((e) => e.action === 'turn_appended:user'));
    client.close();
    expect(client.events.map((e) => e.action)).toEqual(['turn_accepted', 'recall_ready', 'turn_appended:user']);
    expect(client.events[0]?.detail).toContain(turn.turn_id);
  });

  it('serves many clients over one Redis connection, and forgets each client the moment it goes', async () => {
    const gauge = async (name: string): Promise<number> => Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(await (await s.get('/metrics')).text())?.[1]);
    const sharedReaders = async () => ((await s.redis.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=agentmem-events-${s.service.workers[0]!.consumer} `)).length;
    const settled = async (expected: number): Promise<number> => {
      // A client's departure reaches the server a moment after it closes.
      for (const deadline = Date.now() + 5000; (await gauge('agentmem_event_stream_clients')) !== expected && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
      return gauge('agentmem_event_stream_clients');
    };
    const before = await settled(0);
    const clients = await Promise.all(Array.from({ length: 5 }, (_, i) => openSse(`${s.service.url}/v1/threads/sse-2-${i % 2}/events`)));
    expect(await gauge('agentmem_event_stream_clients')).toBe(before + 5);
    expect(await sharedReaders()).toBe(1);
    const turn = (await (await s.post('/v1/threads/sse-2-1/turns', { content: 'Heard by the two clients of this thread only.' })).json()) as { turn_id: string };
    await Promise.all([1, 3].map((i) => clients[i]!.until((events) => events.some((e) => e.action === 'recall_ready' && e.detail.includes(turn.turn_id)))));
    expect([0, 2, 4].map((i) => clients[i]!.events.length)).toEqual([0, 0, 0]);

    for (const c of clients) c.close();
    expect(await settled(before)).toBe(before);
    expect(await gauge('agentmem_event_streams_followed')).toBe(0);
    expect(await sharedReaders()).toBe(1);
  });
});

describe('the memory log', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({}, { workers: false });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('streams writes, drops and expiries to SSE clients (GET /v1/memories/events)', async (ctx) => {
    const notifications = await s.redis.config('GET', 'notify-keyspace-events');
    if (!/E/.test(notifications[1] ?? '') || !/[xA]/.test(notifications[1] ?? '')) return ctx.skip(); // a REDIS_URL without expired-key events
    const client = await openSse(`${s.service.url}/v1/memories/events`);
    const embedding = await (await testEmbedder()).embedOne('A memory that expires.');
    const short = await s.longTerm.remember({ text: 'A memory that expires.', embedding, user: 'log', namespace: 'default', kind: 'episodic', sourceThread: 'abcdefabcdef', ttlSeconds: 1 });
    const dropped = await s.longTerm.remember({ text: 'A memory that is dropped.', embedding: await (await testEmbedder()).embedOne('A memory that is dropped.'), user: 'log', namespace: 'default', kind: 'semantic', sourceThread: 'abcdefabcdef' });
    await s.longTerm.delete(dropped.id);
    await client.until((events) => events.some((e) => e.action === 'memory_expired' && e.detail.includes(short.id)), 10_000);
    client.close();
    expect(client.events.map((e) => e.action)).toEqual(['memory_written', 'memory_written', 'memory_dropped', 'memory_expired']);
  });
});

describe('remember stage under redelivery', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({}, { workers: false });
    await ensureGroup(s.redis, s.keys.rememberStream, REMEMBER_GROUP);
  });
  afterAll(async () => {
    await s.stop();
  });

  /** Queues a turn as the embed-and-recall stage would hand it on, and reads it as one consumer. */
  async function rememberEntry(threadId: string, content: string): Promise<{ turnId: string; entry: StreamEntry }> {
    const accepted = await s.ingest.accept({ threadId, role: 'user', content, user: 'redelivery', namespace: 'default', agent: 'default', remember: 'semantic', k: 5, threshold: 0.55 });
    const vector = await (await testEmbedder()).embedOne(content);
    const id = await s.redis.xadd(s.keys.rememberStream, '*', 'turn_id', accepted.turnId, 'thread_id', threadId, 'user', 'redelivery', 'namespace', 'default', 'kind', 'semantic', 'role', 'user', 'content', content, 'embedding', vectorBytes(vector));
    await s.redis.xreadgroup('GROUP', REMEMBER_GROUP, 'consumer-a', 'COUNT', 10, 'STREAMS', s.keys.rememberStream, '>');
    const [raw] = (await s.redis.xrangeBuffer(s.keys.rememberStream, id as string, id as string)) as [Buffer, Buffer[]][];
    const fields: Record<string, string> = {};
    const buffers: Record<string, Buffer> = {};
    raw?.[1].forEach((b, i, all) => {
      if (i % 2 === 0) {
        fields[b.toString()] = (all[i + 1] as Buffer).toString();
        buffers[b.toString()] = all[i + 1] as Buffer;
      }
    });
    return { turnId: accepted.turnId, entry: { id: id as string, fields, raw: buffers } };
  }

  it('writes one memory when the same entry is handled twice, one after the other and at once', async () => {
    const stage = new RememberStage({ ...s, log: silentLogger });
    const { turnId, entry } = await rememberEntry('redeliver-1', 'The user speaks Portuguese and Japanese.');
    await stage.handle([entry]);
    await stage.handle([entry]);
    const { entry: racing } = await rememberEntry('redeliver-2', 'The user is vegetarian since 2019.');
    await Promise.all([stage.handle([racing]), stage.handle([racing]), stage.handle([racing])]);

    const memories = await s.longTerm.list({ user: 'redelivery', namespace: 'default' });
    expect(memories.map((m) => m.text).sort()).toEqual(['The user is vegetarian since 2019.', 'The user speaks Portuguese and Japanese.']);
    expect(memories.every((m) => m.hit_count === 0)).toBe(true);
    const turn = (await (await s.get(`/v1/turns/${turnId}`)).json()) as TurnResult;
    expect(turn).toMatchObject({ status: 'done', memory: { deduped: false } });
    expect(await s.redis.xlen(s.keys.rememberStream)).toBe(0);
    expect(((await s.redis.xpending(s.keys.rememberStream, REMEMBER_GROUP)) as [number])[0]).toBe(0);
  });

  it('bumps a near-duplicate once however often its entry is delivered', async () => {
    const stage = new RememberStage({ ...s, log: silentLogger });
    const { entry: original } = await rememberEntry('redeliver-3', 'The user drives an electric car.');
    await stage.handle([original]);
    const { entry: duplicate } = await rememberEntry('redeliver-3', 'The user drives an electric car.');
    await Promise.all([stage.handle([duplicate]), stage.handle([duplicate])]);
    await stage.handle([duplicate]);
    const [memory] = (await s.longTerm.list({ user: 'redelivery', namespace: 'default' })).filter((m) => m.text === 'The user drives an electric car.');
    expect(memory?.hit_count).toBe(1);
  });
});

describe('poisoned entries', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({ claimIdleMs: 300, maxDeliveries: 3 });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('go to the dead-letter stream after N deliveries, visible via the API, and do not block the thread', async () => {
    const turnId = 'badbadbadbad';
    await s.redis.hset(s.keys.turn(turnId), 'turn_id', turnId, 'thread_id', 'poison-1', 'status', 'queued', 'accepted_ts', '1');
    await s.redis.xadd(s.keys.ingestStream, '*', 'turn_id', turnId, 'thread_id', 'poison-1', 'user', 'default', 'namespace', 'default', 'role', 'user', 'content', 'x', 'remember', 'forever', 'k', '5', 'threshold', '0.55');

    const later = (await (await s.post('/v1/threads/poison-1/turns?wait=10000', { content: 'A later turn on the same thread.' })).json()) as TurnResult;
    expect(later.status).toBe('done');

    const failed = (await waitForTurn(s, turnId, 15_000)) as unknown as TurnResult;
    expect(failed.status).toBe('failed');
    // The reason is the error that failed the entry, not just a delivery count.
    const reason = 'remember: must be one of episodic, semantic (after 3 deliveries)';
    expect(failed.error).toBe(`embed-recall: ${reason}`);
    const dead = (await (await s.get('/v1/deadletter')).json()) as { entries: Record<string, string>[] };
    expect(dead.entries).toHaveLength(1);
    expect(dead.entries[0]).toMatchObject({ turn_id: turnId, stage: 'embed-recall', deliveries: '3', remember: 'forever', reason });
    const events = await s.events.recent('poison-1');
    expect(events.some((e) => e.action === 'turn_failed' && e.detail.includes(turnId))).toBe(true);
    expect(await s.redis.xlen(s.keys.ingestStream)).toBe(0);
  });
});

describe('entries that keep failing at run time', () => {
  let s: TestService;
  beforeAll(async () => {
    // An embedder that fails on one text the way ONNX Runtime fails (the error and its cause).
    s = await startTestService({ claimIdleMs: 300, maxDeliveries: 3 }, {
      embedder: (real) => ({
        modelId: real.modelId, dims: real.dims, parallelism: 1, broken: undefined,
        embed: async (texts) => {
          if (texts.some((text) => text.includes('unembeddable'))) throw new Error('embedder: inference failed', { cause: new Error('std::bad_alloc') });
          return real.embed(texts);
        },
        embedOne: (text) => real.embedOne(text),
      }),
    });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('reach the dead-letter stream and fail their turn with the error that failed them', async () => {
    const posted = await s.post('/v1/threads/failing-1/turns', { content: 'An unembeddable turn.' });
    const { turn_id: turnId } = (await posted.json()) as { turn_id: string };
    const failed = (await waitForTurn(s, turnId, 20_000)) as unknown as TurnResult;
    const reason = 'embedder: inference failed: std::bad_alloc (after 3 deliveries)';
    expect(failed).toMatchObject({ status: 'failed', error: `embed-recall: ${reason}` });
    const dead = (await (await s.get('/v1/deadletter')).json()) as { entries: Record<string, string>[] };
    expect(dead.entries).toEqual([expect.objectContaining({ turn_id: turnId, stage: 'embed-recall', deliveries: '3', reason })]);
  });
});

describe('consumer groups over time', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({ claimIdleMs: 300 });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('forget consumers that own nothing and have been quiet for ten claim-idle periods, and keep the live one', async () => {
    const names = async () => ((await s.redis.xinfo('CONSUMERS', s.keys.rememberStream, 'remember')) as unknown[][]).map((c) => String(c[1]));
    // A name left by a process that exited.
    await s.redis.xgroup('CREATECONSUMER', s.keys.rememberStream, 'remember', 'gone-host-1-abcd');
    const live = s.service.workers.find((w) => w.name === 'remember')?.consumer;
    expect(await names()).toEqual(expect.arrayContaining(['gone-host-1-abcd', live]));
    const deadline = Date.now() + 10_000;
    while ((await names()).includes('gone-host-1-abcd') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
    expect(await names()).toEqual([live]);
  });
});
