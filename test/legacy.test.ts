import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMemories } from '../src/memory/seed.js';
import { testEmbedder } from './support/embedder.js';
import { startTestService, type TestService } from './support/service.js';

/** A client written for the reference demos: form-encoded POSTs, JSON answers, optional thread_id. */
let s: TestService;
const form = (path: string, fields: Record<string, string>) =>
  fetch(s.service.url + path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

beforeAll(async () => {
  s = await startTestService();
  await seedMemories(s.longTerm, await testEmbedder());
});
afterAll(async () => {
  await s.stop();
});

describe("the reference demos' routes", () => {
  it('POST /turn answers with the demo shape, through the pipeline: recall before the write, dedup, timings', async () => {
    const res = await form('/turn', { text: 'I prefer concise answers without filler phrases.', kind: 'semantic', threshold: '0.55' });
    expect(res.status).toBe(200);
    const turn = (await res.json()) as Record<string, unknown> & { recalled: { text: string; distance: number }[] };
    expect(turn).toMatchObject({ write_skipped: false, deduped: true, kind: 'semantic', thread_id: expect.stringMatching(/^[0-9a-f]{12}$/) });
    expect(turn.recalled[0]?.text).toBe('The user prefers concise answers without filler phrases.');
    expect(typeof turn.existing_distance).toBe('number');
    for (const key of ['memory_id', 'embed_ms', 'recall_ms', 'write_ms']) expect(turn).toHaveProperty(key);

    const skip = (await (await form('/turn', { text: 'Just checking what you remember.', kind: 'skip', thread_id: turn.thread_id as string })).json()) as Record<string, unknown>;
    expect(skip).toMatchObject({ write_skipped: true, memory_id: null, thread_id: turn.thread_id });
  });

  it('GET /state shows index, session, scoped memories and events of the default or given thread', async () => {
    const first = (await (await form('/turn', { text: 'Remember that my favourite colour is teal.' })).json()) as { thread_id: string };
    const state = (await (await s.get('/state')).json()) as Record<string, unknown> & { index: Record<string, unknown>; session: { turn_count: number }; memories: unknown[]; events: { action: string }[] };
    expect(state.thread_id).toBe(first.thread_id);
    expect(state.index).toMatchObject({ index_name: s.config.indexName, model: 'sentence-transformers/all-MiniLM-L6-v2', dedup_threshold: 0.2, default_recall_threshold: 0.55, session_ttl_seconds: 3600 });
    expect(state.index.num_docs).toBeGreaterThanOrEqual(8);
    expect(state.session.turn_count).toBeGreaterThanOrEqual(1);
    expect(state.memories.length).toBeGreaterThanOrEqual(8);
    expect(state.events.map((e) => e.action)).toContain('turn_appended:user');
    expect(state.recalled).toEqual([]);
  });

  it('POST /new_thread switches the legacy default thread; thread_id on a request overrides it', async () => {
    const { thread_id: fresh } = (await (await form('/new_thread', {})).json()) as { thread_id: string };
    expect(fresh).toMatch(/^[0-9a-f]{12}$/);
    expect(((await (await s.get('/state')).json()) as { thread_id: string }).thread_id).toBe(fresh);
    const other = (await (await s.get('/state?thread_id=someone-else')).json()) as { thread_id: string; session: unknown };
    expect(other).toMatchObject({ thread_id: 'someone-else', session: null });
  });

  it('POST /turn with action=goal sets the goal instead of appending', async () => {
    const { thread_id } = (await (await form('/new_thread', {})).json()) as { thread_id: string };
    expect(await (await form('/turn', { text: 'Plan the offsite', action: 'goal' })).json()).toEqual({ thread_id, goal: 'Plan the offsite' });
    const state = (await (await s.get('/state')).json()) as { session: { goal: string; turn_count: number }; events: { action: string; detail: string }[] };
    expect(state.session).toMatchObject({ goal: 'Plan the offsite', turn_count: 0 });
    expect(state.events.map((e) => [e.action, e.detail])).toEqual([['goal_set', 'Plan the offsite'], ['thread_started', 'user=default namespace=default']]);
  });

  it("POST /drop_memory and POST /reset (scoped: never another user's memories)", async () => {
    await form('/turn', { text: 'Bob keeps bees on his roof.', user: 'bob', kind: 'semantic' });
    const [memory] = ((await (await s.get('/state')).json()) as { memories: { id: string }[] }).memories;
    expect(await (await form('/drop_memory', { memory_id: memory?.id ?? '' })).json()).toEqual({ deleted: true, memory_id: memory?.id });
    expect(await (await form('/reset', {})).json()).toEqual({ seeded: 8 });
    // Other open pages follow the memory log: the reset shows there as a clear and eight writes.
    const logged = await s.redis.xrevrange(s.keys.memoryLog, '+', '-', 'COUNT', 9);
    expect(logged.map(([, f]) => f[1]).reverse()).toEqual(['scope_cleared', ...Array(8).fill('memory_written')]);
    expect(((await (await s.get('/state')).json()) as { memories: unknown[] }).memories).toHaveLength(8);
    expect(((await (await s.get('/state?user=bob')).json()) as { memories: { text: string }[] }).memories.map((m) => m.text)).toEqual(['Bob keeps bees on his roof.']);
  });

  it('answers bad form input with a 4xx naming the field', async () => {
    for (const [fields, name] of [[{ text: '' }, 'content'], [{ text: 'x', kind: 'forever' }, 'remember'], [{ text: 'x', threshold: 'high' }, 'threshold'], [{ memory_id: '../x' }, 'memory_id']] as const) {
      const res = await form('memory_id' in fields ? '/drop_memory' : '/turn', fields);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { field: string } }).error.field).toBe(name);
    }
  });
});
