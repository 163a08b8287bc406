import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../src/embedder/embedder.js';
import { ValidationError } from '../src/errors.js';
import { SEED_MEMORIES, seedMemories } from '../src/memory/seed.js';
import type { MemoryKind } from '../src/validate.js';
import { testEmbedder } from './support/embedder.js';
import { openTiers, type TestTiers } from './support/redis.js';

let t: TestTiers;
let embedder: Embedder;
beforeAll(async () => {
  [t, embedder] = await Promise.all([openTiers(), testEmbedder()]);
});
afterAll(async () => {
  await t.cleanup();
});

const FACT = 'The user prefers concise answers without filler phrases.';
const PARAPHRASE = 'User prefers short, concise answers without filler.';

async function remember(text: string, scope: { user?: string; namespace?: string; kind?: MemoryKind } = {}) {
  return t.longTerm.remember({
    text, embedding: await embedder.embedOne(text), user: scope.user ?? 'dedup', namespace: scope.namespace ?? 'ns',
    kind: scope.kind ?? 'semantic', sourceThread: 'abcdefabcdef',
  });
}

describe('remember with dedup', () => {
  it('stores the same fact twice as one document with hit_count 1', async () => {
    const first = await remember(FACT, { user: 'same' });
    const second = await remember(FACT, { user: 'same' });
    expect(first).toMatchObject({ deduped: false, written: true });
    expect(second).toMatchObject({ id: first.id, deduped: true, written: false });
    expect(second.existingDistance).toBeLessThan(1e-4);
    const all = await t.longTerm.list({ user: 'same', namespace: 'ns' });
    expect(all).toHaveLength(1);
    expect(all[0]?.hit_count).toBe(1);
  });

  it('folds a paraphrase within the threshold onto the existing memory', async () => {
    const first = await remember(FACT, { user: 'para' });
    const second = await remember(PARAPHRASE, { user: 'para' });
    expect(second.deduped).toBe(true);
    expect(second.id).toBe(first.id);
    expect(second.existingDistance).toBeGreaterThan(0.01);
    expect(second.existingDistance).toBeLessThanOrEqual(0.2);
    expect((await t.longTerm.get(first.id))?.hit_count).toBe(1);
  });

  it('writes a related but different fact as a new memory, reporting the distance it saw', async () => {
    await remember(FACT, { user: 'distinct' });
    const other = await remember('The user lives in Berlin and works in the Europe/Berlin time zone.', { user: 'distinct' });
    expect(other).toMatchObject({ deduped: false, written: true });
    expect(other.existingDistance).toBeGreaterThan(0.2);
    expect(await t.longTerm.list({ user: 'distinct', namespace: 'ns' })).toHaveLength(2);
  });

  it('never dedups across kind, user or namespace', async () => {
    const base = await remember(FACT, { user: 'cross', namespace: 'a', kind: 'semantic' });
    const otherKind = await remember(FACT, { user: 'cross', namespace: 'a', kind: 'episodic' });
    const otherUser = await remember(FACT, { user: 'cross2', namespace: 'a', kind: 'semantic' });
    const otherNamespace = await remember(FACT, { user: 'cross', namespace: 'b', kind: 'semantic' });
    for (const r of [otherKind, otherUser, otherNamespace]) expect(r).toMatchObject({ deduped: false, written: true });
    expect(new Set([base.id, otherKind.id, otherUser.id, otherNamespace.id]).size).toBe(4);
    expect((await t.longTerm.get(base.id))?.hit_count).toBe(0);
  });

  it('gives episodic memories a 7-day TTL and semantic ones none', async () => {
    const episodic = await remember('Yesterday the user shipped release 4.2.', { user: 'ttl', kind: 'episodic' });
    const semantic = await remember('The user works on the billing service.', { user: 'ttl', kind: 'semantic' });
    const ttlEpisodic = await t.redis.ttl(t.keys.memory(episodic.id));
    expect(ttlEpisodic).toBeGreaterThan(604_800 - 10);
    expect(ttlEpisodic).toBeLessThanOrEqual(604_800);
    expect(await t.redis.ttl(t.keys.memory(semantic.id))).toBe(-1);
    expect((await t.longTerm.get(semantic.id))?.ttl_seconds).toBeNull();
  });

  it('is a no-op when the same id is written again (redelivery), without bumping anything', async () => {
    const text = 'The user keeps their notes in Obsidian.';
    const input = { text, embedding: await embedder.embedOne(text), user: 'redeliver', namespace: 'ns', kind: 'semantic' as const, sourceThread: 'abcdefabcdef', id: '0123456789ab' };
    expect(await t.longTerm.remember(input)).toMatchObject({ id: '0123456789ab', written: true, deduped: false });
    expect(await t.longTerm.remember(input)).toMatchObject({ id: '0123456789ab', written: false, deduped: false });
    expect((await t.longTerm.get('0123456789ab'))?.hit_count).toBe(0);
  });
});

describe('recall', () => {
  it('returns in-scope memories within the threshold, nearest first, with distances and TTLs', async () => {
    const scope = { user: 'recall', namespace: 'ns' };
    await seedMemories(t.longTerm, embedder, scope);
    const query = await embedder.embedOne('What time zone is the user in?');
    const hits = await t.longTerm.recall({ ...scope, embedding: query, k: 5, threshold: 0.55 });
    expect(hits.length).toBeGreaterThan(0);
    expect(hits[0]?.text).toContain('Europe/Berlin');
    const distances = hits.map((h) => h.distance as number);
    expect(distances).toEqual([...distances].sort((a, b) => a - b));
    for (const d of distances) expect(d).toBeLessThanOrEqual(0.55);
    for (const h of hits) expect(h.ttl_seconds === null || h.ttl_seconds > 0).toBe(true);
    const strict = await t.longTerm.recall({ ...scope, embedding: query, k: 5, threshold: (distances[0] as number) - 1e-3 });
    expect(strict).toEqual([]);
  });

  it('never writes', async () => {
    const scope = { user: 'recall-readonly', namespace: 'ns' };
    await remember(FACT, { user: scope.user });
    const before = await t.longTerm.list(scope);
    await t.longTerm.recall({ ...scope, embedding: await embedder.embedOne(FACT), k: 5, threshold: 2 });
    expect(await t.longTerm.list(scope)).toEqual(before);
  });

  it('refuses k and threshold out of range', async () => {
    const embedding = await embedder.embedOne('x');
    await expect(t.longTerm.recall({ user: 'u', namespace: 'n', embedding, k: 0, threshold: 0.5 })).rejects.toBeInstanceOf(ValidationError);
    await expect(t.longTerm.recall({ user: 'u', namespace: 'n', embedding, k: 5, threshold: 2.5 })).rejects.toBeInstanceOf(ValidationError);
  });
});

describe('list, delete, clear, seed', () => {
  it('seeds the 8 reference memories on an empty scope, and dedups all 8 when seeded again', async () => {
    const scope = { user: 'seed', namespace: 'ns' };
    const first = await seedMemories(t.longTerm, embedder, scope);
    expect(first.filter((r) => r.written)).toHaveLength(8);
    const again = await seedMemories(t.longTerm, embedder, scope);
    expect(again.every((r) => r.deduped)).toBe(true);
    const listed = await t.longTerm.list(scope);
    expect(listed).toHaveLength(8);
    expect(listed.map((m) => m.text).sort()).toEqual(SEED_MEMORIES.map((m) => m.text).sort());
    expect(listed.every((m) => m.source_thread === 'seed' && m.hit_count === 1)).toBe(true);
    const created = listed.map((m) => m.created_ts);
    expect(created).toEqual([...created].sort((a, b) => b - a));
  });

  it('logs every seed write on the memory log (memory_written, then memory_deduped), so open pages refresh after /reset', async () => {
    const scope = { user: 'seed-log', namespace: 'ns' };
    const logged = async () => (await t.redis.xrange(t.keys.memoryLog, '-', '+'))
      .map(([, f]) => ({ action: f[1], detail: JSON.parse(f[3] as string) as Record<string, unknown> }))
      .filter((e) => e.detail.user === scope.user);
    const first = await seedMemories(t.longTerm, embedder, scope);
    expect(await logged()).toEqual(first.map((r) => ({ action: 'memory_written', detail: { memory_id: r.id, user: 'seed-log', namespace: 'ns', kind: r.kind } })));
    await seedMemories(t.longTerm, embedder, scope);
    expect((await logged()).map((e) => e.action)).toEqual([...Array(8).fill('memory_written'), ...Array(8).fill('memory_deduped')]);
  });

  it('deletes one memory by id', async () => {
    const { id } = await remember('The user drinks oat milk.', { user: 'delete' });
    expect(await t.longTerm.delete(id)).toBe(true);
    expect(await t.longTerm.delete(id)).toBe(false);
    expect(await t.longTerm.get(id)).toBeNull();
    await expect(t.longTerm.delete('../../etc')).rejects.toBeInstanceOf(ValidationError);
  });

  it("clears one user+namespace and never another's memories", async () => {
    await seedMemories(t.longTerm, embedder, { user: 'clear', namespace: 'mine' });
    await seedMemories(t.longTerm, embedder, { user: 'clear', namespace: 'theirs' });
    await seedMemories(t.longTerm, embedder, { user: 'clear-other', namespace: 'mine' });
    expect(await t.longTerm.clearScope({ user: 'clear', namespace: 'mine' })).toBe(8);
    expect(await t.longTerm.list({ user: 'clear', namespace: 'mine' })).toEqual([]);
    expect(await t.longTerm.list({ user: 'clear', namespace: 'theirs' })).toHaveLength(8);
    expect(await t.longTerm.list({ user: 'clear-other', namespace: 'mine' })).toHaveLength(8);
  });
});
