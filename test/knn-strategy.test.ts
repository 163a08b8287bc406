import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SearchIncompleteError } from '../src/errors.js';
import type { Keys } from '../src/keys.js';
import type { LongTermMemory } from '../src/memory/long-term.js';
import { knnSearchArgs, parseSearchReply, scopeFilter, type KnnPlan } from '../src/query.js';
import { pairs } from '../src/redis/reply.js';
import { openTiers, type TestTiers } from './support/redis.js';
import { startTestService, type TestService } from './support/service.js';
import { cosineDistance, unitVector } from './support/vectors.js';

const NAMESPACE = 'knn';

/** Writes `count` memories of `user` in the exact document shape; returns their ids and vectors. */
async function loadScope(t: { redis: Redis; keys: Keys; longTerm: LongTermMemory }, user: string, count: number, seed: number) {
  const memories: { id: string; vector: Float32Array; kind: 'semantic' | 'episodic' }[] = [];
  for (let first = 0; first < count; first += 500) {
    const pipeline = t.redis.pipeline();
    for (let i = first; i < Math.min(count, first + 500); i++) {
      const vector = unitVector(seed + i);
      const kind = i % 2 === 0 ? 'semantic' : 'episodic';
      const doc = t.longTerm.newDocument({ user, namespace: NAMESPACE, kind, text: `memory ${i} of ${user}`, embedding: vector, sourceThread: 'thread-a' });
      pipeline.call('JSON.SET', t.keys.memory(doc.id), '$', JSON.stringify(doc));
      memories.push({ id: doc.id, vector, kind });
    }
    for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
  }
  return memories;
}

/** FT.PROFILE of exactly the KNN agentmem sends for `user`, reduced to what tells the strategies apart. */
async function profile(t: TestTiers, user: string, plan: KnnPlan) {
  const args = knnSearchArgs(scopeFilter({ user, namespace: NAMESPACE }), 5, unitVector(999), ['distance'], plan);
  const reply = (await t.redis.call('FT.PROFILE', t.config.indexName, 'SEARCH', 'QUERY', ...args)) as [unknown, unknown[][]];
  const iterators = reply[1].find((entry) => entry[0] === 'Iterators profile')?.[1] as unknown[];
  const vector = pairs(iterators);
  const child = pairs(vector.get('Child iterator') as unknown[]);
  return { type: vector.get('Type'), batches: vector.get('Batches number'), filterRead: Number(child.get('Counter')) };
}

describe('KNN strategy per scope size', () => {
  let t: TestTiers;
  let tiny: Awaited<ReturnType<typeof loadScope>>;
  beforeAll(async () => {
    // A small brute-force bound, so that a "large" scope fits in a test.
    t = await openTiers({ knnBruteForceMax: 50, knnEfRuntime: 40 });
    tiny = await loadScope(t, 'tiny', 5, 1000);
    await loadScope(t, 'mid', 40, 2000);
    await loadScope(t, 'large', 400, 3000);
    for (let u = 0; u < 10; u++) await loadScope(t, `other${u}`, 100, 10_000 + u * 1000);
  }, 120_000);
  afterAll(async () => {
    await t?.cleanup();
  });

  it('counts a scope exactly up to the bound, and only says "more" beyond it', async () => {
    expect(await t.longTerm.knn.scopeSize(scopeFilter({ user: 'tiny', namespace: NAMESPACE }))).toEqual({ count: 5, overBound: false });
    expect(await t.longTerm.knn.scopeSize(scopeFilter({ user: 'mid', namespace: NAMESPACE }))).toEqual({ count: 40, overBound: false });
    expect(await t.longTerm.knn.scopeSize(scopeFilter({ user: 'large', namespace: NAMESPACE }))).toEqual({ count: 51, overBound: true });
    expect(await t.longTerm.knn.scopeSize(scopeFilter({ user: 'nobody', namespace: NAMESPACE }))).toEqual({ count: 0, overBound: false });
  });

  it('sends brute force for tiny and mid scopes and HNSW with the configured EF_RUNTIME for a large one, as FT.PROFILE shows', async () => {
    for (const [user, size] of [['tiny', 5], ['mid', 40]] as const) {
      const plan = await t.longTerm.knn.plan(scopeFilter({ user, namespace: NAMESPACE }));
      expect(plan).toMatchObject({ strategy: 'brute-force' });
      // Brute force reads the whole filtered set and scores each memory: no HNSW batches. The
      // filter's counter is a floor, not an equality: on a busy shared server FT.PROFILE has
      // counted 9 reads for this 5-memory scope (the intersection's skip-to steps are counted too).
      const brute = await profile(t, user, plan);
      expect(brute).toMatchObject({ type: 'VECTOR', batches: undefined });
      expect(brute.filterRead).toBeGreaterThanOrEqual(size);
    }
    const plan = await t.longTerm.knn.plan(scopeFilter({ user: 'large', namespace: NAMESPACE }));
    expect(plan).toEqual({ strategy: 'hnsw', efRuntime: 40, timeoutMs: 0 });
    const large = await profile(t, 'large', plan);
    expect(large.batches).toBeGreaterThanOrEqual(1);
    expect(large.filterRead).toBeLessThan(400);
  });

  it('recalls every memory of a tiny scope, and the dedup probe finds each one', async () => {
    const recalled = await t.longTerm.recall({ user: 'tiny', namespace: NAMESPACE, embedding: unitVector(999), k: 10, threshold: 2 });
    expect(recalled.map((m) => m.id).sort()).toEqual(tiny.map((m) => m.id).sort());
    for (const m of tiny) {
      const nearest = await t.longTerm.nearestSameKind({ user: 'tiny', namespace: NAMESPACE }, m.kind, m.vector);
      expect(nearest?.id).toBe(m.id);
      expect(nearest?.distance).toBeLessThan(1e-4);
    }
  });

  it('finds the exact nearest memories of a large scope through HNSW', async () => {
    const recalled = await t.longTerm.recall({ user: 'large', namespace: NAMESPACE, embedding: unitVector(3000 + 7), k: 3, threshold: 2 });
    expect(recalled).toHaveLength(3);
    expect(recalled[0]?.distance).toBeLessThan(1e-4);
  });

  it('answers an empty scope with no memories without running a KNN', async () => {
    expect(await t.longTerm.recall({ user: 'nobody', namespace: NAMESPACE, embedding: unitVector(1), k: 5, threshold: 2 })).toEqual([]);
  });
});

describe('a search that times out', () => {
  let s: TestService;
  let crowd: Awaited<ReturnType<typeof loadScope>>;
  let few: Awaited<ReturnType<typeof loadScope>>;
  beforeAll(async () => {
    // Every search gets 1 ms, and scopes over 100 memories go through HNSW first with 10,000
    // candidates: that walk takes several ms on any machine, so it times out for real. Brute
    // force over 12,000 memories times out too; over 1,000 it usually answers (Search checks
    // the clock only every so many memories scored).
    s = await startTestService({ knnBruteForceMax: 100, knnEfRuntime: 10_000, searchTimeoutMs: 1 }, { workers: false });
    crowd = await loadScope(s, 'crowd', 12_000, 50_000);
    few = await loadScope(s, 'few', 1000, 80_000);
  }, 120_000);
  afterAll(async () => {
    await s?.stop();
  });

  it('comes back from Redis looking like "no memories" when read as the reference demos read it', async () => {
    const args = knnSearchArgs(scopeFilter({ user: 'crowd', namespace: NAMESPACE }), 5, unitVector(4), ['distance'], { strategy: 'hnsw', efRuntime: 10_000, timeoutMs: 1 });
    const partial = parseSearchReply(await s.redis.call('FT.SEARCH', s.config.indexName, ...args));
    expect(partial.hits.length).toBeLessThan(5);
  });

  it('is refused as incomplete by recall and by the dedup probe when no strategy answers, never answered as empty', async () => {
    await expect(s.longTerm.recall({ user: 'crowd', namespace: NAMESPACE, embedding: unitVector(5), k: 5, threshold: 2 })).rejects.toBeInstanceOf(SearchIncompleteError);
    await expect(s.longTerm.nearestSameKind({ user: 'crowd', namespace: NAMESPACE }, 'semantic', crowd[0]!.vector)).rejects.toBeInstanceOf(SearchIncompleteError);
  });

  it('answers with the exact nearest memories or refuses, whichever strategy ran', async () => {
    for (const [i, target] of few.slice(0, 5).entries()) {
      const query = unitVector(90_000 + i);
      const truth = few.map((m) => ({ id: m.id, distance: cosineDistance(query, m.vector) })).sort((a, b) => a.distance - b.distance).slice(0, 3);
      const recalled = await s.longTerm.recall({ user: 'few', namespace: NAMESPACE, embedding: query, k: 3, threshold: 2 }).catch((err: unknown) => err);
      if (recalled instanceof SearchIncompleteError) continue;
      expect((recalled as { id: string }[]).map((m) => m.id)).toEqual(truth.map((m) => m.id));
      const nearest = await s.longTerm.nearestSameKind({ user: 'few', namespace: NAMESPACE }, target.kind, target.vector).catch((err: unknown) => err);
      if (!(nearest instanceof SearchIncompleteError)) expect(nearest).toMatchObject({ id: target.id });
    }
  });

  it('answers POST /v1/recall with 503 and Retry-After, and counts every incomplete attempt in /metrics', async () => {
    const res = await s.post('/v1/recall', { text: 'what does the crowd remember?', user: 'crowd', namespace: NAMESPACE });
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/incomplete.*Timeout/i);
    const metrics = await (await s.get('/metrics')).text();
    expect(metrics).toMatch(/agentmem_search_incomplete_total\{strategy="hnsw",outcome="retried"\} [1-9]/);
    expect(metrics).toMatch(/agentmem_search_incomplete_total\{strategy="brute-force",outcome="failed"\} [1-9]/);
  });
});
