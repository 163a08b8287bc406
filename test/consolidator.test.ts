import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { Consolidator } from '../src/consolidation/consolidator.js';
import { silentLogger } from '../src/log.js';
import type { MemoryDocument } from '../src/memory/long-term.js';
import { ScriptGateway } from '../src/redis/scripts.js';
import type { MemoryKind } from '../src/validate.js';
import { connect, openTiers, type TestTiers } from './support/redis.js';
import { cosineDistance, nearVector, unitVector } from './support/vectors.js';

let t: TestTiers;
beforeAll(async () => {
  t = await openTiers();
});
afterAll(async () => {
  await t.cleanup();
});

let clock = 1_700_000_000;
/** Writes a memory document directly, as a racing writer would have (no dedup). */
async function put(id: string, vector: Float32Array, scope: { user: string; kind?: MemoryKind; namespace?: string }, extra: { hits?: number; ttl?: number } = {}): Promise<void> {
  const doc: MemoryDocument = {
    id, user: scope.user, namespace: scope.namespace ?? 'default', kind: scope.kind ?? 'semantic', source_thread: 'c0ffeec0ffee',
    text: `memory ${id}`, embedding: Array.from(vector), created_ts: (clock += 1), hit_count: extra.hits ?? 0,
  };
  await new ScriptGateway(t.redis, t.keys).applyMemory({ write: { mode: 'write', memoryId: id, documentJson: JSON.stringify(doc), ttlSeconds: extra.ttl ?? 0 }, logDetail: { memory_id: id } });
}

function consolidator(redis = t.redis): Consolidator {
  return new Consolidator(redis, t.keys, { threshold: 0.2, pageSize: 7 }, silentLogger);
}

async function ids(user: string, namespace = 'default'): Promise<string[]> {
  return (await t.longTerm.list({ user, namespace }, 10_000)).map((m) => m.id).sort();
}

describe('consolidator', () => {
  it('merges exactly the near-duplicates of one scope and kind, oldest survives, hits and TTLs combined, events logged', async () => {
    const fact = unitVector(1);
    const other = unitVector(2);
    await put('a00000000001', fact, { user: 'merge' }, { hits: 2 });
    await put('a00000000002', nearVector(fact, 11), { user: 'merge' }, { hits: 3 });
    await put('a00000000003', nearVector(fact, 12), { user: 'merge' });
    await put('a00000000004', other, { user: 'merge' });
    // Same vector, other user, other kind, other namespace: never merged with the above.
    await put('b00000000001', fact, { user: 'merge-other' });
    await put('c00000000001', fact, { user: 'merge', kind: 'episodic' }, { ttl: 100 });
    await put('c00000000002', nearVector(fact, 13), { user: 'merge', kind: 'episodic' }, { ttl: 5000 });
    await put('d00000000001', fact, { user: 'merge', namespace: 'elsewhere' });
    // Many unrelated memories spread the scope over several pages.
    for (let i = 0; i < 20; i++) await put(`e0000000${String(i).padStart(4, '0')}`, unitVector(100 + i), { user: 'merge' });

    const summary = await consolidator().runPass();
    expect(summary).toMatchObject({ skipped: false, merged: 3 });

    expect(await ids('merge')).toEqual(['a00000000001', 'a00000000004', 'c00000000001', ...Array.from({ length: 20 }, (_, i) => `e0000000${String(i).padStart(4, '0')}`)].sort());
    expect(await ids('merge-other')).toEqual(['b00000000001']);
    expect(await ids('merge', 'elsewhere')).toEqual(['d00000000001']);
    expect((await t.longTerm.get('a00000000001'))?.hit_count).toBe(2 + 3 + 0 + 2);
    expect((await t.longTerm.get('c00000000001'))?.hit_count).toBe(1);
    expect(await t.redis.ttl(t.keys.memory('c00000000001'))).toBeGreaterThan(4900);

    const log = await t.redis.xrange(t.keys.memoryLog, '-', '+');
    const merges = log.filter(([, fields]) => fields[1] === 'memory_consolidated').map(([, fields]) => JSON.parse(fields[3] as string) as { survivor: string; merged: string });
    expect(merges.map((m) => `${m.survivor}<-${m.merged}`).sort()).toEqual(['a00000000001<-a00000000002', 'a00000000001<-a00000000003', 'c00000000001<-c00000000002']);
    expect(await t.redis.exists(t.keys.consolidatorProgress)).toBe(0);

    expect((await consolidator().runPass()).merged).toBe(0);
  });

  it('runs one pass at a time: a second consolidator started meanwhile skips, and nothing is merged twice', async () => {
    const base = unitVector(7);
    for (let i = 0; i < 30; i++) await put(`f0000000${String(i).padStart(4, '0')}`, i % 3 === 0 ? unitVector(500 + i) : nearVector(base, 600 + i), { user: 'twice' });
    const other = connect();
    try {
      const [a, b] = await Promise.all([consolidator().runPass(), consolidator(other).runPass()]);
      expect([a.skipped, b.skipped].sort()).toEqual([false, true]);
      expect(a.merged + b.merged).toBe(19);
    } finally {
      await other.quit();
    }
    expect(await ids('twice')).toHaveLength(11);
    const [survivor] = (await t.longTerm.list({ user: 'twice', namespace: 'default' }, 100)).filter((m) => m.hit_count > 0);
    expect(survivor?.hit_count).toBe(19);
  });

  it('resumes an interrupted pass from the cursor it left for a scope, and clears the cursor when done', async () => {
    const base = unitVector(41);
    for (let i = 0; i < 6; i++) await put(`60000000${String(i).padStart(4, '0')}`, nearVector(base, 4100 + i), { user: 'resume' });
    const older = clock;
    for (let i = 6; i < 12; i++) await put(`60000000${String(i).padStart(4, '0')}`, nearVector(unitVector(42), 4200 + i), { user: 'resume' });
    // As if a pass had died after scanning the scope up to `older`: the next pass starts there.
    await t.redis.hset(t.keys.consolidatorProgress, JSON.stringify(['resume', 'default', 'semantic']), String(older + 0.5));
    const summary = await consolidator().runPass();
    expect(summary.merged).toBe(5);
    expect(await ids('resume')).toHaveLength(12 - 5);
    expect(await t.redis.exists(t.keys.consolidatorProgress)).toBe(0);
    expect((await consolidator().runPass()).merged).toBe(5);
    expect(await ids('resume')).toHaveLength(2);
  });

  it('leaves no pair within the threshold after writers race it, and deletes nothing outside a duplicate group', async () => {
    const facts = Array.from({ length: 12 }, (_, i) => unitVector(1000 + i));
    const loners = Array.from({ length: 15 }, (_, i) => unitVector(2000 + i));
    for (const [i, v] of loners.entries()) await put(`10000000${String(i).padStart(4, '0')}`, v, { user: 'race' });
    let writing = true;
    let n = 0;
    const writers = Promise.all(Array.from({ length: 3 }, async (_, w) => {
      for (let round = 0; round < 8; round++) {
        for (const [i, fact] of facts.entries()) await put(`2${w}${String(round).padStart(2, '0')}${String(i).padStart(8, '0')}`, nearVector(fact, 3000 + n++, 0.01), { user: 'race' });
      }
    })).finally(() => (writing = false));
    const passes: Promise<unknown>[] = [];
    while (writing) {
      passes.push(consolidator().runPass());
      await passes.at(-1);
    }
    await writers;
    await Promise.all(passes);
    await consolidator().runPass();

    const remaining = await t.longTerm.list({ user: 'race', namespace: 'default' }, 10_000);
    const vectors = new Map<string, Float32Array>();
    for (const m of remaining) {
      const [doc] = JSON.parse((await t.redis.call('JSON.GET', t.keys.memory(m.id), '$')) as string) as MemoryDocument[];
      vectors.set(m.id, Float32Array.from(doc?.embedding ?? []));
    }
    const list = [...vectors.entries()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) expect(cosineDistance(list[i]![1], list[j]![1])).toBeGreaterThan(0.2);
    }
    for (let i = 0; i < loners.length; i++) expect(vectors.has(`10000000${String(i).padStart(4, '0')}`)).toBe(true);
    expect(remaining).toHaveLength(loners.length + facts.length);
    expect(remaining.reduce((sum, m) => sum + m.hit_count, 0)).toBe(3 * 8 * facts.length - facts.length);
  });
});

describe('consolidator processes', () => {
  function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), ...args], { env: { ...process.env, ...env } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.once('exit', (code) => resolve({ code, stdout, stderr }));
    });
  }

  it('two `consolidate --once` processes at once: one pass merges, the other skips, no errors', async () => {
    const base = unitVector(9);
    for (let i = 0; i < 40; i++) await put(`90000000${String(i).padStart(4, '0')}`, i % 4 === 0 ? unitVector(900 + i) : nearVector(base, 950 + i), { user: 'procs' });
    const c = t.config;
    const env = {
      REDIS_URL: inject('redisUrl'), AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_METRICS_PORT: '0', AGENTMEM_INDEX_NAME: c.indexName, AGENTMEM_SESSION_PREFIX: c.sessionPrefix,
      AGENTMEM_MEMORY_PREFIX: c.memoryPrefix, AGENTMEM_EVENTS_PREFIX: c.eventsPrefix, AGENTMEM_PIPELINE_PREFIX: c.pipelinePrefix,
    };
    const runs = await Promise.all([cli(['consolidate', '--once'], env), cli(['consolidate', '--once'], env)]);
    expect(runs.map((r) => r.code)).toEqual([0, 0]);
    expect(runs.map((r) => r.stderr).join('')).not.toMatch(/error/i);
    const summaries = runs.map((r) => JSON.parse(r.stdout) as { skipped: boolean; merged: number });
    expect(summaries.reduce((n, s) => n + s.merged, 0)).toBe(29);
    expect(await ids('procs')).toHaveLength(11);
  }, 60_000);

  it('the scheduled worker runs passes through BullMQ and stops cleanly on SIGTERM', async () => {
    const base = unitVector(31);
    for (let i = 0; i < 5; i++) await put(`70000000${String(i).padStart(4, '0')}`, nearVector(base, 3100 + i), { user: 'scheduled' });
    const c = t.config;
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'worker', 'consolidator'], {
      env: {
        ...process.env, REDIS_URL: inject('redisUrl'), AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_METRICS_PORT: '0', AGENTMEM_INDEX_NAME: c.indexName,
        AGENTMEM_MEMORY_PREFIX: c.memoryPrefix, AGENTMEM_PIPELINE_PREFIX: c.pipelinePrefix, AGENTMEM_CONSOLIDATE_INTERVAL_MS: '1000',
      },
      stdio: 'ignore',
    });
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve(`code ${code} signal ${signal}`)));
    try {
      const deadline = Date.now() + 30_000;
      while ((await ids('scheduled')).length > 1 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
      expect(await ids('scheduled')).toEqual(['700000000000']);
    } finally {
      child.kill('SIGTERM');
    }
    // A worker that ignores SIGTERM fails the test instead of outliving it.
    const stuck = setTimeout(() => child.kill('SIGKILL'), 10_000);
    expect(await exited).toBe('code 0 signal null');
    clearTimeout(stuck);
  }, 60_000);
});
