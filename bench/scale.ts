/**
 * Scale benchmark: loads N synthetic memories in agentmem's exact document shape (JSON documents
 * under the memory prefix, clustered 384-d unit vectors) into a Redis of its own, then measures,
 * per scope size, what recall and the dedup probe return and how fast: result count against what
 * the scope holds, the dedup probe finding the exact nearest same-kind memory, and recall@10
 * against a brute force computed here. Scopes of 1, 5, 20, 200, 5,000 and 100,000 memories get
 * users of their own; the rest is spread over 1,000 users (the "rest" row is one of them). Prints
 * a table and writes bench/results/scale.json.
 *
 *   npm run bench:scale [-- --n 200000 --queries 40 --index-after --url redis://... --impl name=<dist dir>,...]
 *
 * --url uses a running Redis instead of starting one, loads only what it lacks and leaves it
 * running (so one load can be measured with several builds). --impl measures the LongTermMemory
 * of other builds (their dist folder) on the same data, e.g. main's before a change.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { createKeys } from '../src/keys.js';
import { createLogger } from '../src/log.js';
import type { LongTermMemory, MemoryDocument } from '../src/memory/long-term.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { findOrProvisionRedis, startRedis, type RunningRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import { knnSearchArgs, parseSearchReply3, scopeFilter, type KnnPlan } from '../src/query.js';
import { pairs } from '../src/redis/reply.js';
import { percentile } from './stats.js';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '200000' },
    queries: { type: 'string', default: '40' },
    url: { type: 'string' },
    impl: { type: 'string' },
    'index-after': { type: 'boolean', default: false },
    'in-flight': { type: 'string', default: '8' },
    // Per scope: each strategy forced (brute force; HNSW at each EF_RUNTIME), p50 and recall@10.
    sweep: { type: 'boolean', default: false },
    // With --url: the server's pid, for its CPU time while loading (the write ceiling).
    'redis-pid': { type: 'string' },
    'sweep-ef': { type: 'string', default: '10,20,50,100,200' },
    // Scopes to sweep (default: every scope measured); skips the per-build measurements when given.
    'sweep-users': { type: 'string' },
  },
});
const N = Number(values.n);
const QUERIES = Number(values.queries);
const IN_FLIGHT = Number(values['in-flight']);
if (!Number.isInteger(N) || N < 10_000 || N > 1_000_000) throw new Error(`--n: expected an integer in [10000, 1000000], got ${values.n}`);
if (!Number.isInteger(QUERIES) || QUERIES < 1) throw new Error(`--queries: expected a positive integer, got ${values.queries}`);

const DIMS = 384;
const NAMESPACE = 'bench';
const REST_USERS = 1000;
/** The scope sizes that fit beside the 1,000 users of the rest (all of them from 106,226 memories up). */
const SCOPE_SIZES = [1, 5, 20, 200, 5_000, 100_000].filter((_, i, all) => all.slice(0, i + 1).reduce((a, b) => a + b, 0) + REST_USERS <= N);
const CLUSTERS = 256;
const RECALL_K = 5;
const LOAD_BATCH = 500;
const config = loadConfig();
const keys = createKeys(config);
const log = createLogger('warn');
const say = (line: string): void => void process.stderr.write(line + '\n');

/** Deterministic PRNG (mulberry32), so every run and every build sees the same memories. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function gaussian(next: () => number): number {
  return Math.sqrt(-2 * Math.log(next() || 1e-12)) * Math.cos(2 * Math.PI * next());
}
function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (const x of v) s += x * x;
  const inv = 1 / Math.sqrt(s);
  for (let i = 0; i < v.length; i++) v[i]! *= inv;
  return v;
}
function noisy(base: Float32Array, sigma: number, next: () => number): Float32Array {
  const out = new Float32Array(DIMS);
  for (let d = 0; d < DIMS; d++) out[d] = base[d]! + sigma * gaussian(next);
  return normalize(out);
}

const centres = Array.from({ length: CLUSTERS }, (_, c) => {
  const next = rng(0x5eed0000 + c);
  return normalize(Float32Array.from({ length: DIMS }, () => gaussian(next)));
});

/** Memory `i`: its scope, kind and vector (a cluster centre plus noise: same-cluster cosine distance ~0.3). */
function memory(i: number): { user: string; kind: 'semantic' | 'episodic'; vector: Float32Array } {
  const next = rng(0x9e3779b9 ^ Math.imul(i, 2654435761));
  const vector = noisy(centres[Math.floor(next() * CLUSTERS)]!, 0.033, next);
  return { user: userOf(i), kind: i % 3 === 0 ? 'semantic' : 'episodic', vector };
}
/**
 * Where scopes sit among the memory indices. The small scopes (up to 5,000 memories) are spread
 * out, one memory every STRIDE indices, as a user's memories are when written over time among
 * everyone else's: brute force reads each memory's vector, and a scope written in one block would
 * be read from contiguous memory, several times faster than a real one. The 100k scope and the
 * 1,000 users of the rest fill the indices between.
 */
const SMALL = SCOPE_SIZES.filter((size) => size <= 5_000).reduce((a, b) => a + b, 0);
const BIG = SCOPE_SIZES.filter((size) => size > 5_000).reduce((a, b) => a + b, 0);
const STRIDE = Math.max(1, Math.min(16, Math.floor(N / (2 * SMALL))));
function userOf(i: number): string {
  if (i % STRIDE === 0 && i / STRIDE < SMALL) {
    let start = 0;
    for (const size of SCOPE_SIZES) {
      if (i / STRIDE < start + size) return `scale-${size}`;
      start += size;
    }
  }
  const ordinal = i - Math.min(SMALL, Math.ceil(i / STRIDE));
  return ordinal < BIG ? `scale-${BIG}` : `u${(ordinal - BIG) % REST_USERS}`;
}
/** The indices of every memory of `user` among the first `n`. */
function membersOf(user: string, n: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) if (userOf(i) === user) out.push(i);
  return out;
}
const idOf = (i: number): string => i.toString(16).padStart(12, '0');

function documentOf(i: number): string {
  const m = memory(i);
  const doc: MemoryDocument = {
    id: idOf(i), user: m.user, namespace: NAMESPACE, kind: m.kind, source_thread: `t${i % 5000}`,
    text: `synthetic memory ${i} of ${m.user}: a sentence of about the length agentmem stores`,
    embedding: Array.from(m.vector), created_ts: 1_760_000_000 + i / 100, hit_count: 0,
  };
  return JSON.stringify(doc);
}

const LOADED_KEY = 'bench:scale:loaded';

async function load(redis: Redis, memory0: LongTermMemory): Promise<{ loaded: number; seconds: number; indexSeconds: number; perSecond: number }> {
  const from = Number((await redis.get(LOADED_KEY)) ?? 0);
  // The layout depends on N, so a dataset is only ever reused for the same N.
  if (from !== 0 && from !== N) throw new Error(`this Redis holds a dataset loaded with --n ${from}; use a fresh one for --n ${N}`);
  if (!values['index-after']) await memory0.ensureIndex();
  const started = performance.now();
  let next = from;
  let lastReport = 0;
  const worker = async (): Promise<void> => {
    while (next < N) {
      const first = next;
      next = Math.min(N, next + LOAD_BATCH);
      const pipeline = redis.pipeline();
      for (let i = first; i < next; i++) pipeline.call('JSON.SET', keys.memory(idOf(i)), '$', documentOf(i));
      for (const [err] of (await pipeline.exec()) ?? []) if (err) throw err;
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now();
        const done = next - from;
        say(`  loaded ${next.toLocaleString()} / ${N.toLocaleString()} (${(done / ((performance.now() - started) / 1000)).toFixed(0)}/s)`);
      }
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  await redis.set(LOADED_KEY, String(N));
  const loadSeconds = (performance.now() - started) / 1000;
  let indexSeconds = 0;
  if (values['index-after']) {
    const indexStarted = performance.now();
    await memory0.ensureIndex();
    for (;;) {
      const info = pairs((await redis.call('FT.INFO', keys.indexName)) as unknown[]);
      const percent = Number(info.get('percent_indexed') ?? 1);
      if (Number(info.get('indexing') ?? 0) === 0 && percent >= 1) break;
      say(`  indexing: ${(percent * 100).toFixed(1)}% (${Number(info.get('num_docs')).toLocaleString()} docs)`);
      await new Promise((r) => setTimeout(r, 5000));
    }
    indexSeconds = (performance.now() - indexStarted) / 1000;
  } else {
    // Without background workers Search indexes each write before answering; this only confirms it.
    while (Number(pairs((await redis.call('FT.INFO', keys.indexName)) as unknown[]).get('indexing') ?? 0) !== 0) await new Promise((r) => setTimeout(r, 1000));
  }
  const seconds = loadSeconds + indexSeconds;
  return { loaded: N - from, seconds, indexSeconds, perSecond: (N - from) / seconds };
}

function cosineDistance(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let d = 0; d < DIMS; d++) dot += a[d]! * b[d]!;
  return 1 - dot;
}

interface ScopeResult {
  impl: string;
  scope: string;
  size: number;
  recall_ms: { p50: number; p99: number };
  recall_results: { expected: number; short: number; errors: number; mean: number };
  dedup_ms: { p50: number; p99: number };
  dedup_found: number;
  dedup_errors: number;
  recall_at_10: number;
  errors: string[];
}

async function measureScope(impl: string, mem: LongTermMemory, user: string): Promise<ScopeResult> {
  const members = membersOf(user, N);
  const vectors = members.map((i) => memory(i).vector);
  const kinds = members.map((i) => memory(i).kind);
  const scope = { user, namespace: NAMESPACE };
  const next = rng(0xbe7c4 + members.length);
  const errors: string[] = [];
  const pick = (): number => Math.floor(next() * members.length);
  const timed = async <T>(f: () => Promise<T>): Promise<{ ms: number; value: T | undefined }> => {
    const t0 = performance.now();
    try {
      const value = await f();
      return { ms: performance.now() - t0, value };
    } catch (err) {
      if (errors.length < 3) errors.push(String(err));
      return { ms: performance.now() - t0, value: undefined };
    }
  };

  const recallMs: number[] = [];
  const counts: number[] = [];
  let recallErrors = 0;
  const expected = Math.min(RECALL_K, members.length);
  for (let q = 0; q < QUERIES; q++) {
    const query = noisy(vectors[pick()]!, 0.015, next);
    const r = await timed(() => mem.recall({ ...scope, embedding: query, k: RECALL_K, threshold: 2 }, { withTtls: false }));
    recallMs.push(r.ms);
    if (r.value === undefined) recallErrors++;
    else counts.push(r.value.length);
  }

  const dedupMs: number[] = [];
  let found = 0;
  let dedupErrors = 0;
  for (let q = 0; q < QUERIES; q++) {
    const j = pick();
    const query = noisy(vectors[j]!, 0.002, next);
    let best = Infinity;
    for (let m = 0; m < members.length; m++) if (kinds[m] === kinds[j]) best = Math.min(best, cosineDistance(query, vectors[m]!));
    const r = await timed(() => mem.nearestSameKind(scope, kinds[j]!, query));
    dedupMs.push(r.ms);
    if (r.value === undefined) dedupErrors++;
    else if (r.value !== null && r.value.distance <= best + 1e-4) found++;
  }

  let hits = 0;
  let wanted = 0;
  const atTen = Math.min(QUERIES, 20);
  for (let q = 0; q < atTen; q++) {
    const query = noisy(vectors[pick()]!, 0.015, next);
    const truth = vectors.map((v) => cosineDistance(query, v)).sort((a, b) => a - b).slice(0, 10);
    const r = await timed(() => mem.recall({ ...scope, embedding: query, k: 10, threshold: 2 }, { withTtls: false }));
    wanted += truth.length;
    const cutoff = truth[truth.length - 1]! + 1e-4;
    hits += (r.value ?? []).filter((h) => (h.distance ?? Infinity) <= cutoff).length;
  }

  return {
    impl, scope: user, size: members.length,
    recall_ms: { p50: percentile(recallMs, 50), p99: percentile(recallMs, 99) },
    recall_results: { expected, short: counts.filter((c) => c < expected).length, errors: recallErrors, mean: counts.reduce((a, b) => a + b, 0) / Math.max(1, counts.length) },
    dedup_ms: { p50: percentile(dedupMs, 50), p99: percentile(dedupMs, 99) },
    dedup_found: found / QUERIES,
    dedup_errors: dedupErrors,
    recall_at_10: Math.min(1, hits / wanted),
    errors,
  };
}

interface SweepRow {
  scope: string;
  size: number;
  plan: string;
  ms: { p50: number; p99: number };
  incomplete: number;
  recall_at_10: number;
}

/** Every strategy forced on one scope: what the crossover and the EF_RUNTIME default rest on. */
async function sweepScope(search3: Redis, user: string): Promise<SweepRow[]> {
  const members = membersOf(user, N);
  const vectors = members.map((i) => memory(i).vector);
  const next = rng(0x5eeb + members.length);
  const queries = Array.from({ length: Math.min(QUERIES, 20) }, () => noisy(vectors[Math.floor(next() * members.length)]!, 0.015, next));
  const truths = queries.map((q) => vectors.map((v) => cosineDistance(q, v)).sort((a, b) => a - b).slice(0, 10));
  const plans: [string, KnnPlan | undefined][] = [
    ['planner', undefined],
    ['brute-force', { strategy: 'brute-force' }],
    ...values['sweep-ef'].split(',').map((ef): [string, KnnPlan] => [`hnsw ef ${ef}`, { strategy: 'hnsw', efRuntime: Number(ef) }]),
  ];
  const rows: SweepRow[] = [];
  for (const [name, plan] of plans) {
    const ms: number[] = [];
    let incomplete = 0;
    let hits = 0;
    let wanted = 0;
    for (const [q, query] of queries.entries()) {
      const t0 = performance.now();
      const reply = parseSearchReply3(await search3.call('FT.SEARCH', keys.indexName, ...knnSearchArgs(scopeFilter({ user, namespace: NAMESPACE }), 10, query, ['distance'], plan)));
      ms.push(performance.now() - t0);
      if (reply.warnings.length > 0) incomplete++;
      const truth = truths[q]!;
      wanted += truth.length;
      hits += reply.hits.filter((h) => Number(h.fields.distance) <= truth[truth.length - 1]! + 1e-4).length;
    }
    rows.push({ scope: user, size: members.length, plan: name, ms: { p50: percentile(ms, 50), p99: percentile(ms, 99) }, incomplete, recall_at_10: Math.min(1, hits / wanted) });
  }
  return rows;
}

async function loadImpl(dist: string, redis: Redis): Promise<LongTermMemory> {
  const module = (await import(pathToFileURL(join(resolve(dist), 'src', 'memory', 'long-term.js')).href)) as typeof import('../src/memory/long-term.js');
  return new module.LongTermMemory(redis, keys, { dedupThreshold: config.dedupThreshold, episodicTtlSeconds: config.episodicTtlSeconds });
}

/** User + system CPU seconds of a process so far, from /proc. */
async function cpuSeconds(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return fields.length > 13 ? (Number(fields[11]) + Number(fields[12])) / 100 : null;
}

async function rssKb(pid: number | undefined): Promise<number | null> {
  if (pid === undefined) return null;
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const match = /VmRSS:\s+(\d+)/.exec(status);
  return match ? Number(match[1]) : null;
}

async function main(): Promise<void> {
  let server: RunningRedis | undefined;
  let dataDir: string | undefined;
  let origin = values.url ?? '';
  if (values.url === undefined) {
    dataDir = await mkdtemp(join(tmpdir(), 'agentmem-bench-scale-'));
    const installation = await findOrProvisionRedis(config.cacheDir, log);
    origin = installation.origin;
    server = await startRedis(installation, { port: await freePort(), dataDir, persist: false, log });
  }
  const url = server?.url ?? values.url!;
  const redis = connectRedis(url, { maxRetriesPerRequest: 0 });
  try {
    const impls: [string, string][] = (values.impl ?? `this=${join(PACKAGE_ROOT, 'dist')}`).split(',').map((s) => {
      const [name, dir] = s.split('=');
      if (!name || !dir) throw new Error(`--impl: expected name=<dist dir>[,...], got ${JSON.stringify(values.impl)}`);
      return [name, dir];
    });
    const mems = await Promise.all(impls.map(async ([name, dir]) => [name, await loadImpl(dir, redis)] as const));
    const memoryBefore = Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1]);
    say(`redis ${url} (${origin}); loading up to ${N.toLocaleString()} memories${values['index-after'] ? ', index built after loading' : ''}`);
    const redisPid = server?.child?.pid ?? (values['redis-pid'] === undefined ? undefined : Number(values['redis-pid']));
    const cpuBefore = await cpuSeconds(redisPid);
    const loadStats = await load(redis, mems[0]![1]);
    const cpuAfter = await cpuSeconds(redisPid);
    const redisCpuShare = cpuBefore !== null && cpuAfter !== null && loadStats.seconds > 0 ? (cpuAfter - cpuBefore) / loadStats.seconds : null;
    say(`loaded ${loadStats.loaded.toLocaleString()} in ${loadStats.seconds.toFixed(0)} s (${loadStats.perSecond.toFixed(0)}/s${values['index-after'] ? `; index build ${loadStats.indexSeconds.toFixed(0)} s` : ''})`);
    const info = await redis.info('memory');
    const usedMemory = Number(/used_memory:(\d+)/.exec(info)?.[1]);
    const ftInfo = pairs((await redis.call('FT.INFO', keys.indexName)) as unknown[]);
    const samples: number[] = [];
    for (let i = 0; i < 200; i++) samples.push(Number(await redis.call('MEMORY', 'USAGE', keys.memory(idOf(Math.floor((i * N) / 200))))));
    const bytes = {
      used_memory: usedMemory,
      per_memory: usedMemory / N,
      // A fresh load has nothing else in it; a reused one may, so the increase is the load's only when it loaded everything.
      loaded_increase_per_memory: loadStats.loaded === N ? (usedMemory - memoryBefore) / N : null,
      json_document_per_memory: samples.reduce((a, b) => a + b, 0) / samples.length,
      vector_index_per_memory: (Number(ftInfo.get('vector_index_sz_mb')) * 1024 * 1024) / N,
      num_docs: Number(ftInfo.get('num_docs')),
    };
    say(`memory: ${(usedMemory / 2 ** 30).toFixed(2)} GiB used, ${(bytes.per_memory / 1024).toFixed(1)} KiB per memory (JSON document ${(bytes.json_document_per_memory / 1024).toFixed(1)} KiB, vector index ${(bytes.vector_index_per_memory / 1024).toFixed(1)} KiB)`);

    const users = [...SCOPE_SIZES.map((s) => `scale-${s}`), 'u0'];
    const results: ScopeResult[] = [];
    for (const [name, mem] of values['sweep-users'] === undefined ? mems : []) {
      for (const user of users) {
        say(`  ${name}: measuring ${user}`);
        results.push(await measureScope(name, mem, user));
      }
    }
    const sweep: SweepRow[] = [];
    if (values.sweep) {
      const search3 = redis.duplicate({ protocol: 3 });
      for (const user of values['sweep-users']?.split(',') ?? users) {
        say(`  sweep: ${user}`);
        sweep.push(...(await sweepScope(search3, user)));
      }
      search3.disconnect();
    }
    const redisRssKb = (await rssKb(server?.child?.pid)) ?? Math.round(Number(/used_memory_rss:(\d+)/.exec(await redis.info('memory'))?.[1]) / 1024);
    const f = (x: number, w: number, d = 1): string => x.toFixed(d).padStart(w);
    console.log(`\n${N.toLocaleString()} memories, ${QUERIES} queries per scope and probe; recall k=${RECALL_K} threshold 2 (every memory qualifies)`);
    console.log('impl    scope         size  recall p50/p99 ms    results (mean/exp, short, err)  dedup p50/p99 ms    found  err  recall@10');
    for (const r of results) {
      console.log(
        `${r.impl.padEnd(7)} ${r.scope.padEnd(12)} ${String(r.size).padStart(6)}  ${f(r.recall_ms.p50, 7, 2)} / ${f(r.recall_ms.p99, 7, 2)}   ` +
        `${f(r.recall_results.mean, 4)}/${r.recall_results.expected}  ${String(r.recall_results.short).padStart(5)}  ${String(r.recall_results.errors).padStart(5)}            ` +
        `${f(r.dedup_ms.p50, 7, 2)} / ${f(r.dedup_ms.p99, 7, 2)}  ${f(r.dedup_found * 100, 5, 0)}%  ${String(r.dedup_errors).padStart(3)}  ${f(r.recall_at_10, 9, 3)}`,
      );
      for (const e of r.errors) console.log(`        error: ${e}`);
    }
    if (sweep.length > 0) {
      console.log('\nstrategy sweep, k=10 (each strategy forced; planner = no HYBRID_POLICY, the pre-change query):');
      console.log('scope          size  plan            p50 ms   p99 ms  incomplete  recall@10');
      for (const r of sweep) console.log(`${r.scope.padEnd(12)} ${String(r.size).padStart(6)}  ${r.plan.padEnd(14)} ${f(r.ms.p50, 7, 2)}  ${f(r.ms.p99, 7, 2)}  ${String(r.incomplete).padStart(10)}  ${f(r.recall_at_10, 9, 3)}`);
    }
    console.log(`\nbytes per memory: ${bytes.per_memory.toFixed(0)} (JSON document ${bytes.json_document_per_memory.toFixed(0)}, vector index ${bytes.vector_index_per_memory.toFixed(0)}); memories per GiB: ${(2 ** 30 / bytes.per_memory).toFixed(0)}`);
    console.log(`insert rate: ${loadStats.perSecond.toFixed(0)}/s over ${loadStats.loaded.toLocaleString()} (${values['index-after'] ? `index built after loading, ${loadStats.indexSeconds.toFixed(0)} s of it` : 'index live'}, ${IN_FLIGHT} pipelines of ${LOAD_BATCH} in flight${redisCpuShare === null ? '' : `; redis busy ${(redisCpuShare * 100).toFixed(0)}% of one core meanwhile`})`);
    console.log(`RSS: bench process (runs the queries) ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB; redis ${(redisRssKb / 1024).toFixed(0)} MiB`);
    const out = join(PACKAGE_ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = join(out, 'scale.json');
    await writeFile(file, JSON.stringify({
      n: N, queries: QUERIES, recall_k: RECALL_K, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, redis: origin,
      index_after: values['index-after'], load: { ...loadStats, redis_cpu_share: redisCpuShare }, bytes, rss_mib: { bench: process.memoryUsage().rss / 2 ** 20, redis: redisRssKb / 1024 }, results, sweep,
    }, null, 2));
    console.log(`wrote ${file}`);
  } finally {
    redis.disconnect();
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  }
}

await main();
