import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { until } from './support/fleet.js';
import { openSse } from './support/sse.js';
import { startTestService, type TestService } from './support/service.js';

/** Every key under this test's prefixes with its type and TTL in seconds (-1: none). */
async function ownKeys(s: TestService): Promise<{ key: string; type: string; ttl: number }[]> {
  const found: { key: string; type: string; ttl: number }[] = [];
  for (const prefix of [s.config.sessionPrefix, s.config.memoryPrefix, s.config.eventsPrefix, s.config.pipelinePrefix]) {
    let cursor = '0';
    do {
      const [next, keys] = await s.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      for (const key of keys) found.push({ key, type: await s.redis.type(key), ttl: await s.redis.ttl(key) });
      cursor = next;
    } while (cursor !== '0');
  }
  return found;
}

const form = (fields: Record<string, string>) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

describe('keys a client can cause', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({ sessionTtlSeconds: 120 });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('all expire, except the capped pipeline streams and semantic memories (no TTL by the wire layout)', async () => {
    const created = (await (await s.post('/v1/threads', { user: 'bounds' })).json()) as { thread_id: string };
    const sse = await openSse(`${s.service.url}/v1/threads/${created.thread_id}/events`);
    const memorySse = await openSse(`${s.service.url}/v1/memories/events`);
    for (const [i, remember] of (['episodic', 'semantic', 'skip'] as const).entries()) {
      const res = await s.post(`/v1/threads/${created.thread_id}/turns?wait=20000`, { content: `Bounded fact number ${i}: the user keeps ${remember} notes.`, user: 'bounds', remember },
        { 'Idempotency-Key': `bounds-${i}` });
      expect(res.status).toBe(200);
    }
    // Threads nobody created first, named by the client.
    expect((await s.post('/v1/threads/invented-thread-1/turns?wait=20000', { content: 'A thread id the client made up.', user: 'bounds' })).status).toBe(200);
    expect((await fetch(`${s.service.url}/v1/threads/invented-thread-2`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ goal: 'g', scratchpad: 's' }) })).status).toBe(200);
    await sse.until((events) => events.filter((e) => e.action.startsWith('turn_appended')).length === 3);
    sse.close();
    memorySse.close();
    // The reference routes, including a reset that re-seeds a scope.
    expect((await fetch(`${s.service.url}/new_thread`, form({ user: 'bounds' }))).status).toBe(200);
    expect((await fetch(`${s.service.url}/turn`, form({ text: 'Legacy clients post turns too.', user: 'bounds', thread_id: 'legacy-thread-1' }))).status).toBe(200);
    expect((await fetch(`${s.service.url}/turn`, form({ text: 'A goal for the legacy thread.', action: 'goal', user: 'bounds', thread_id: 'legacy-thread-2' }))).status).toBe(200);
    expect((await fetch(`${s.service.url}/reset`, form({ user: 'bounds', namespace: 'seeded' }))).status).toBe(200);
    expect((await s.post('/v1/recall', { text: 'notes', user: 'bounds' })).status).toBe(200);

    const keys = await ownKeys(s);
    const capped = new Set([s.keys.ingestStream, s.keys.rememberStream, s.keys.deadLetterStream, s.keys.memoryLog]);
    const unbounded = [];
    for (const k of keys) {
      if (k.ttl > 0 || capped.has(k.key)) continue;
      const kind = k.key.startsWith(s.config.memoryPrefix) ? (JSON.parse(String(await s.redis.call('JSON.GET', k.key, '$.kind'))) as string[])[0] : undefined;
      if (kind !== 'semantic') unbounded.push(k);
    }
    expect(unbounded).toEqual([]);
    // The event streams are there, and they expire like their threads.
    const eventStreams = keys.filter((k) => k.key.startsWith(s.config.eventsPrefix));
    expect(eventStreams.map((k) => k.key)).toEqual(expect.arrayContaining(
      [created.thread_id, 'invented-thread-1', 'invented-thread-2', 'legacy-thread-1', 'legacy-thread-2'].map((id) => s.keys.events(id)),
    ));
    for (const stream of eventStreams) expect(stream.ttl).toBeLessThanOrEqual(120);
    // Capped streams are either empty of work (processed entries are deleted) or trimmed.
    expect(await s.redis.xlen(s.keys.ingestStream)).toBe(0);
    expect(await s.redis.xlen(s.keys.rememberStream)).toBe(0);
  }, 60_000);
});

describe('a thread nobody writes to again', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({ sessionTtlSeconds: 1 }, { workers: false });
  });
  afterAll(async () => {
    await s.stop();
  });

  it('leaves nothing behind: its working memory and its event stream both expire', async () => {
    const { thread_id: threadId } = (await (await s.post('/v1/threads', { user: 'bounds' })).json()) as { thread_id: string };
    expect(await s.redis.exists(s.keys.session(threadId), s.keys.events(threadId))).toBe(2);
    await until('the thread to expire', async () => (await s.redis.exists(s.keys.session(threadId), s.keys.events(threadId))) === 0, 10_000);
  });
});
