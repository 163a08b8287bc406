import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SessionState } from '../src/memory/working.js';
import type { TurnResult } from '../src/pipeline/turns.js';
import { countOwnKeys } from './support/redis.js';
import { startTestService, waitForTurn, type TestService } from './support/service.js';

let s: TestService;
beforeAll(async () => {
  s = await startTestService({ windowSize: 200 });
});
afterAll(async () => {
  await s.stop();
});

async function json<T>(res: Response): Promise<T> {
  return (await res.json()) as T;
}

describe('pipeline: ingest API and workers', () => {
  it('processes 200 turns posted concurrently to one thread, in acceptance order', async () => {
    const thread = 'order-test-1';
    const responses = await Promise.all(
      Array.from({ length: 200 }, (_, i) => s.post(`/v1/threads/${thread}/turns`, { content: `Concurrent note number ${i} about topic ${i % 7}.`, remember: i % 2 ? 'semantic' : 'episodic' })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(200).fill(202));
    const accepted = await Promise.all(responses.map((r) => json<{ turn_id: string }>(r)));
    const turns = (await Promise.all(accepted.map((a) => waitForTurn(s, a.turn_id)))) as unknown as (TurnResult & { content?: string })[];
    expect(turns.map((t) => t.status)).toEqual(Array(200).fill('done'));
    expect(turns.every((t) => t.recall !== null && t.memory !== null)).toBe(true);

    const state = await json<SessionState>(await s.get(`/v1/threads/${thread}`));
    expect(state.turn_count).toBe(200);
    expect(new Set(turns.map((t) => t.turn_count))).toEqual(new Set(Array.from({ length: 200 }, (_, i) => i + 1)));
    // Acceptance order is each turn's position; working memory must list the turns in exactly that order.
    const contentByPosition = new Map(turns.map((t, i) => [t.turn_count, `Concurrent note number ${i} about topic ${i % 7}.`]));
    expect(state.recent_turns.map((t) => t.content)).toEqual(Array.from({ length: 200 }, (_, i) => contentByPosition.get(i + 1)));

    const written = turns.filter((t) => !t.memory?.deduped).map((t) => t.memory?.id);
    expect(new Set(written).size).toBe(written.length);
  });

  it('answers ?wait with the finished turn: recall before the write, memory outcome, timings', async () => {
    const res = await s.post('/v1/threads/waiter-1/turns?wait=10000', { content: 'The user is training for the Berlin marathon in September.', remember: 'semantic' });
    expect(res.status).toBe(200);
    const turn = await json<TurnResult>(res);
    expect(turn).toMatchObject({ status: 'done', thread_id: 'waiter-1', turn_count: 1, recall: [], memory: { deduped: false, kind: 'semantic' } });
    expect(turn.timings.embed_ms).toBeGreaterThan(0);

    const again = await json<TurnResult>(await s.post('/v1/threads/waiter-1/turns?wait=10000', { content: 'The user is training for the Berlin marathon in September.', remember: 'semantic' }));
    expect(again.recall?.map((m) => m.id)).toEqual([turn.memory?.id]);
    expect(again.memory).toMatchObject({ id: turn.memory?.id, deduped: true });
  });

  it('reports recalled memories with their current TTL', async () => {
    await s.post('/v1/threads/ttl-recall/turns?wait=10000', { content: 'The user is flying to Lisbon on Friday.', remember: 'episodic', user: 'ttl-recall' });
    const turn = await json<TurnResult>(await s.post('/v1/threads/ttl-recall/turns?wait=10000', { content: 'When is the user flying to Lisbon?', remember: 'skip', user: 'ttl-recall' }));
    expect(turn.recall?.[0]?.text).toBe('The user is flying to Lisbon on Friday.');
    expect(turn.recall?.[0]?.ttl_seconds).toBeGreaterThan(604_800 - 60);
  });

  it('treats a retried POST with the same Idempotency-Key as one turn', async () => {
    const headers = { 'Idempotency-Key': 'retry-abc-123' };
    const body = { content: 'The user asked to book a table for four.' };
    const first = await s.post('/v1/threads/idem-1/turns', body, headers);
    const second = await s.post('/v1/threads/idem-1/turns', body, headers);
    expect(first.status).toBe(202);
    expect(second.status).toBe(202);
    expect(second.headers.get('Idempotent-Replayed')).toBe('true');
    const [a, b] = [await json<{ turn_id: string }>(first), await json<{ turn_id: string }>(second)];
    expect(b.turn_id).toBe(a.turn_id);
    await waitForTurn(s, a.turn_id);
    const state = await json<SessionState>(await s.get('/v1/threads/idem-1'));
    expect(state.turn_count).toBe(1);
    const other = await json<{ turn_id: string }>(await s.post('/v1/threads/idem-1/turns', body, { 'Idempotency-Key': 'another-key' }));
    expect(other.turn_id).not.toBe(a.turn_id);
  });

  it('recalls without writing, lists, drops memories, and updates goal and scratchpad', async () => {
    await s.post('/v1/threads/crud-1/turns?wait=10000', { content: 'The user owns a grey cat called Miso.', remember: 'semantic', user: 'crud' });
    const recall = await json<{ recall: { id: string; distance: number }[] }>(await s.post('/v1/recall', { text: 'What pet does the user have?', user: 'crud' }));
    expect(recall.recall).toHaveLength(1);
    const listed = await json<{ memories: { id: string }[] }>(await s.get('/v1/memories?user=crud'));
    expect(listed.memories.map((m) => m.id)).toEqual([recall.recall[0]?.id]);
    const dropped = await fetch(`${s.service.url}/v1/memories/${recall.recall[0]?.id}`, { method: 'DELETE' });
    expect(await dropped.json()).toEqual({ deleted: true, memory_id: recall.recall[0]?.id });
    expect((await fetch(`${s.service.url}/v1/memories/${recall.recall[0]?.id}`, { method: 'DELETE' })).status).toBe(404);

    const put = await fetch(`${s.service.url}/v1/threads/crud-1`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ goal: 'adopt a second cat', scratchpad: 'ask about shelters' }) });
    expect(await put.json()).toMatchObject({ goal: 'adopt a second cat', scratchpad: 'ask about shelters', turn_count: 1 });
    const created = await s.post('/v1/threads', {});
    expect(created.status).toBe(201);
    expect((await json<{ thread_id: string }>(created)).thread_id).toMatch(/^[0-9a-f]{12}$/);
  });

  it('refuses bad input with a 4xx naming the field, and writes nothing', async () => {
    const before = { keys: await countOwnKeys(s), queued: await s.redis.xlen(s.keys.ingestStream) };
    const cases: [string, unknown, number, string][] = [
      ['/v1/threads/bad-1/turns', { content: 42 }, 400, 'content'],
      ['/v1/threads/bad-1/turns', { content: '   ' }, 400, 'content'],
      ['/v1/threads/bad-1/turns', {}, 400, 'content'],
      ['/v1/threads/bad-1/turns', { content: 'x', remember: 'forever' }, 400, 'remember'],
      ['/v1/threads/bad-1/turns', { content: 'x', role: 'admin' }, 400, 'role'],
      ['/v1/threads/bad-1/turns', { content: 'x', k: '5' }, 400, 'k'],
      ['/v1/threads/bad-1/turns', { content: 'x', threshold: 3 }, 400, 'threshold'],
      ['/v1/threads/bad-1/turns', { content: 'x', user: '' }, 400, 'user'],
      ['/v1/threads/bad-1/turns', { content: 'x', user: 'a,b' }, 400, 'user'],
      ['/v1/threads/bad-1/turns', { content: 'x'.repeat(20_000) }, 400, 'content'],
      ['/v1/threads/bad-1/turns', '{"content": ', 400, 'body'],
      ['/v1/threads/bad-1/turns', '[1,2]', 400, 'body'],
      ['/v1/threads/bad-1/turns', JSON.stringify({ content: 'y'.repeat(70_000) }), 413, 'body'],
      ['/v1/threads/bad%20id!/turns', { content: 'x' }, 400, 'thread_id'],
      ['/v1/threads/' + 'a'.repeat(65) + '/turns', { content: 'x' }, 400, 'thread_id'],
      ['/v1/recall', { text: 'x', k: 0 }, 400, 'k'],
    ];
    for (const [path, body, status, field] of cases) {
      const res = await s.post(path, body);
      expect([path, res.status]).toEqual([path, status]);
      expect(((await res.json()) as { error: { field: string } }).error.field).toBe(field);
    }
    const badIdem = await s.post('/v1/threads/bad-1/turns', { content: 'x' }, { 'Idempotency-Key': 'ü'.repeat(3) });
    expect(badIdem.status).toBe(400);
    expect((await s.get('/v1/turns/not-a-turn')).status).toBe(400);
    expect((await s.get('/v1/turns/0123456789ab')).status).toBe(404);
    expect((await s.get('/v1/memories?user=')).status).toBe(400);
    expect({ keys: await countOwnKeys(s), queued: await s.redis.xlen(s.keys.ingestStream) }).toEqual(before);
  });
});

describe('backpressure', () => {
  let paused: TestService;
  beforeAll(async () => {
    paused = await startTestService({ maxBacklog: 3 }, { workers: false });
  });
  afterAll(async () => {
    await paused.stop();
  });

  it('answers 429 with Retry-After once the backlog reaches its bound, without writing the turn', async () => {
    for (let i = 0; i < 3; i++) expect((await paused.post('/v1/threads/bp-1/turns', { content: `turn ${i}` })).status).toBe(202);
    const refused = await paused.post('/v1/threads/bp-1/turns', { content: 'one too many' });
    expect(refused.status).toBe(429);
    expect(refused.headers.get('Retry-After')).toBe('1');
    expect((await json<SessionState>(await paused.get('/v1/threads/bp-1'))).turn_count).toBe(3);
  });
});
