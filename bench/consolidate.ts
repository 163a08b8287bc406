/**
 * One consolidation pass over a large index, timed: its own Redis, N memories in a few scopes with
 * a known share of near-duplicates (synthetic unit vectors, written directly as racing writers
 * would), then `Consolidator.runPass`. Reports time, memories scanned, merges (checked against the
 * planted duplicates) and peak RSS; writes bench/results/consolidate.json.
 *
 *   npm run bench:consolidate [-- --memories 10000 --duplicate-share 0.1]
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTiers } from '../src/agentmem.js';
import { loadConfig } from '../src/config.js';
import { Consolidator } from '../src/consolidation/consolidator.js';
import { createLogger } from '../src/log.js';
import type { MemoryDocument } from '../src/memory/long-term.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { findOrProvisionRedis, startRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';

const { values } = parseArgs({ options: { memories: { type: 'string', default: '10000' }, 'duplicate-share': { type: 'string', default: '0.1' } } });
const total = Number(values.memories);
const duplicateShare = Number(values['duplicate-share']);
const SCOPES = [['alice', 'work'], ['alice', 'home'], ['bob', 'work'], ['carol', 'default'], ['dave', 'default']] as const;


/** Deterministic unit vectors (xorshift), and a near neighbour of one. */
function unit(seed: number): number[] {
  let s = seed >>> 0 || 1;
  const v = Array.from({ length: 384 }, () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0xffffffff - 0.5;
  });
  const n = Math.hypot(...v);
  return v.map((x) => x / n);
}
function near(v: number[], seed: number): number[] {
  const noise = unit(seed);
  const w = v.map((x, i) => x + 0.2 * (noise[i] as number));
  const n = Math.hypot(...w);
  return w.map((x) => x / n);
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const config = loadConfig();
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-bench-consolidate-'));
  const redisServer = await startRedis(await findOrProvisionRedis(config.cacheDir, log), { port: await freePort(), dataDir, persist: false, log });
  const redis = connectRedis(redisServer.url);
  try {
    const { keys, longTerm } = createTiers(redis, { ...config, redisUrl: redisServer.url });
    await longTerm.ensureIndex();
    const duplicates = Math.round(total * duplicateShare);
    const originals = total - duplicates;
    process.stderr.write(`writing ${total} memories (${duplicates} near-duplicates) in ${SCOPES.length} scopes\n`);
    let clock = 1_700_000_000;
    const originalVectors: number[][] = [];
    for (let i = 0; i < total; i += 500) {
      const pipeline = redis.pipeline();
      for (let j = i; j < Math.min(total, i + 500); j++) {
        const isDuplicate = j >= originals;
        const base = isDuplicate ? (j - originals) % originals : j;
        const embedding = isDuplicate ? near(originalVectors[base] as number[], 7_000_000 + j) : unit(1 + j);
        if (!isDuplicate) originalVectors.push(embedding);
        const [user, namespace] = SCOPES[base % SCOPES.length] as readonly [string, string];
        const id = j.toString(16).padStart(12, '0');
        const doc: MemoryDocument = { id, user, namespace, kind: 'semantic', source_thread: 'bench', text: `memory ${j}`, embedding, created_ts: (clock += 0.001), hit_count: 0 };
        pipeline.call('JSON.SET', keys.memory(id), '$', JSON.stringify(doc));
      }
      await pipeline.exec();
      process.stderr.write(`  ${Math.min(total, i + 500)}/${total}\n`);
    }
    const info = await longTerm.indexInfo();
    process.stderr.write(`indexed ${info.numDocs} memories; consolidating\n`);

    let peakRss = process.memoryUsage().rss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);
    const consolidator = new Consolidator(redis, keys, { threshold: config.dedupThreshold }, log);
    const summary = await consolidator.runPass((p) => process.stderr.write(`  scope ${p.scopesDone + 1}/${p.scopes}: ${p.scanned} scanned, ${p.merged} merged\n`));
    clearInterval(sampler);
    const remaining = (await longTerm.indexInfo()).numDocs;

    const result = {
      memories: total, planted_duplicates: duplicates, scopes: summary.scopes, scanned: summary.scanned, merged: summary.merged,
      remaining, seconds: summary.seconds, memories_per_second: summary.scanned / summary.seconds, peak_rss_mib: peakRss / 2 ** 20,
    };
    console.log(`\nconsolidation pass over ${total} memories in ${summary.scopes} scopes`);
    console.log(`  ${summary.seconds.toFixed(2)} s, ${result.memories_per_second.toFixed(0)} memories/s scanned`);
    console.log(`  merged ${summary.merged} (planted ${duplicates}); ${remaining} memories remain`);
    console.log(`  peak RSS of this process ${result.peak_rss_mib.toFixed(0)} MiB`);
    const out = join(PACKAGE_ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    await writeFile(join(out, 'consolidate.json'), JSON.stringify(result, null, 2));
    if (summary.merged !== duplicates) process.exitCode = 1;
  } finally {
    await redis.quit();
    await redisServer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
