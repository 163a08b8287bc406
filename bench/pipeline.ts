/**
 * End-to-end pipeline benchmark, in one run: its own Redis, `agentmem serve` as a child process
 * (so the load generator and the server do not share an event loop) and, in this process, the
 * same embedder the service uses (same sessions and threads). Rounds interleave, so machine noise
 * hits each measurement alike: the raw embedder alone while the server idles (batched, every
 * session busy, at each raw batch size; then one text at a time), then one phase per client count
 * of N closed-loop clients, each on its own thread: POST a turn, wait for its recall_ready on the
 * thread's SSE stream, post the next. Every phase ends by checking that no turn was lost or
 * duplicated. Each client count runs once per durability mode, side by side in the same round:
 * `always` (Redis fsyncs before it replies: agentmem's embedded Redis), `none` (no append-only
 * file: no confirmation, the setup before durable acknowledgement) and `waitaof` (appendfsync
 * everysec, each acknowledgement confirmed with WAITAOF by a second `agentmem serve` started
 * against it, on keys of its own). The ratios are taken within each round and summarised by
 * their median. Prints a table, writes bench/results/pipeline.json, exits 1 when a check fails.
 *
 *   npm run bench [-- --rounds 5 --clients 1,32 --turns-per-client 20,15 --durability always,none,waitaof --batch-size 32 --raw-batch-sizes 16,32 --raw-seconds 2]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, get, request, type ClientRequest } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadThreadedEmbedder } from '../src/agentmem.js';
import { loadConfig } from '../src/config.js';
import type { EmbedderPool } from '../src/embedder/pool.js';
import type { TextEmbedder } from '../src/embedder/types.js';
import { createLogger } from '../src/log.js';
import type { EventRecord } from '../src/memory/events.js';
import type { TurnResult } from '../src/pipeline/turns.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { median, percentile } from './stats.js';
import { sampleTexts } from './texts.js';
import { findOrProvisionRedis, startRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import type { Redis } from 'ioredis';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    clients: { type: 'string', default: '1,32' },
    // One value per phase (the last repeats): ~0.5 s of load for 1 client, ~4 s for 32 on 2 cores.
    'turns-per-client': { type: 'string', default: '20,15' },
    'batch-size': { type: 'string' },
    // The raw rate is the best of these: the pipeline's batches come in every size up to --batch-size.
    'raw-batch-sizes': { type: 'string' },
    'raw-seconds': { type: 'string', default: '2' },
    durability: { type: 'string', default: 'always,none,waitaof' },
  },
});
const ints = (raw: string, name: string): number[] =>
  raw.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected positive integers, got ${JSON.stringify(raw)}`);
    return n;
  });
const config = loadConfig();
const rounds = ints(String(values.rounds), 'rounds')[0]!;
const clientCounts = ints(String(values.clients), 'clients');
const turnCounts = ints(String(values['turns-per-client']), 'turns-per-client');
const batchSize = values['batch-size'] === undefined ? config.batchSize : ints(values['batch-size'], 'batch-size')[0]!;
const rawBatchSizes = values['raw-batch-sizes'] === undefined ? [...new Set([Math.max(1, batchSize >> 1), batchSize])] : ints(values['raw-batch-sizes'], 'raw-batch-sizes');
const DURABILITY_MODES = ['always', 'none', 'waitaof'] as const;
type BenchDurability = (typeof DURABILITY_MODES)[number];
const durabilityModes = String(values.durability).split(',').map((m) => {
  if (!(DURABILITY_MODES as readonly string[]).includes(m)) throw new Error(`--durability: expected some of ${DURABILITY_MODES.join(',')}, got ${JSON.stringify(m)}`);
  return m as BenchDurability;
});
/** The mode the headline ratios (pipeline vs raw embedder) are taken in: what agentmem runs by default. */
const HEADLINE_MODE: BenchDurability = durabilityModes.includes('always') ? 'always' : (durabilityModes[0] as BenchDurability);
const rawSeconds = Number(values['raw-seconds']);
if (!(rawSeconds > 0)) throw new Error(`--raw-seconds: expected a positive number, got ${JSON.stringify(values['raw-seconds'])}`);
const TURN_TIMEOUT_MS = 30_000;
const log = createLogger('warn');

const texts = sampleTexts(4096);
let textCursor = 0;
const nextText = (): string => texts[textCursor++ % texts.length] as string;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stderr.write(line + '\n');

/** `agentmem serve` as a child process, resolved once GET /readyz answers 200. */
async function startServer(redisUrl: string, extraEnv: Record<string, string> = {}): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const env = { ...process.env, REDIS_URL: redisUrl, AGENTMEM_HOST: '127.0.0.1', AGENTMEM_PORT: String(port), AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_BATCH_SIZE: String(batchSize), ...extraEnv };
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'server', 'cli', 'main.js'), 'serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
  const killOnExit = (): void => void child.kill('SIGKILL'); // never outlive a crashed bench
  process.once('exit', killOnExit);
  let running = true;
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      running = false;
      process.off('exit', killOnExit);
      resolve();
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    if (running) child.kill('SIGTERM');
    await exited;
  };
  for (const deadline = Date.now() + 180_000; ; await sleep(200)) {
    if (!running) throw new Error('agentmem serve exited before it was ready');
    if (Date.now() > deadline) {
      await stop();
      throw new Error('agentmem serve not ready within 180 s');
    }
    if ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200) return { url, pid: child.pid ?? 0, stop };
  }
}

/**
 * One thread's SSE stream: counts recall_ready events per turn and wakes the client waiting for
 * one. Read with node:http rather than fetch: the load generator shares the cores it measures,
 * and a web stream per chunk costs it several times the CPU.
 */
class ThreadEvents {
  readonly recallReady = new Map<string, { count: number; at: number }>();
  duplicateIds = 0;
  private readonly seen = new Set<string>();
  private readonly waiters = new Map<string, (at: number) => void>();
  private req: ClientRequest | undefined;
  private closing = false;
  private ended: Promise<void> = Promise.resolve();

  open(url: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const req = get(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`GET ${url}: ${res.statusCode}`));
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          const at = performance.now(); // receipt time, taken before any parsing
          buffer += chunk;
          for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
            this.onBlock(buffer.slice(0, end), at);
            buffer = buffer.slice(end + 2);
          }
        });
        this.ended = new Promise((done) => res.once('close', done));
        resolve();
      });
      // A broken stream shows up as turns without recall_ready; say why instead of crashing.
      req.once('error', (err) => (this.closing ? undefined : say(`sse ${url}: ${String(err)}`), reject(err)));
      this.req = req;
    });
  }

  private onBlock(block: string, at: number): void {
    const lines = block.split('\n');
    const id = lines.find((l) => l.startsWith('id:'))?.slice(3).trim();
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
    if (id !== undefined && this.seen.has(id)) this.duplicateIds++;
    else if (id !== undefined) this.seen.add(id);
    if (data) this.onEvent(JSON.parse(data) as EventRecord, at);
  }

  private onEvent(event: EventRecord, at: number): void {
    if (event.action !== 'recall_ready') return;
    const { turn_id: turnId } = JSON.parse(event.detail) as { turn_id: string };
    const seen = this.recallReady.get(turnId);
    this.recallReady.set(turnId, { count: (seen?.count ?? 0) + 1, at: seen?.at ?? at });
    this.waiters.get(turnId)?.(at);
  }

  /** When the turn's recall_ready arrived (it may beat the POST's answer), or undefined on timeout. */
  waitFor(turnId: string, timeoutMs: number): Promise<number | undefined> {
    const known = this.recallReady.get(turnId);
    if (known) return Promise.resolve(known.at);
    return new Promise((resolve) => {
      const timer = setTimeout(() => (this.waiters.delete(turnId), resolve(undefined)), timeoutMs);
      this.waiters.set(turnId, (at) => (clearTimeout(timer), this.waiters.delete(turnId), resolve(at)));
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    this.req?.destroy();
    await this.ended;
  }
}

/**
 * POSTs on a keep-alive node:http agent: the load generator shares two cores with the server,
 * and fetch costs it several times the CPU per request.
 */
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
function postJson(url: string, payload: unknown): Promise<{ status: number; body: string }> {
  const data = JSON.stringify(payload);
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.once('error', reject);
    req.end(data);
  });
}

/** CPU seconds (user + system) a process, or one of its threads, has used so far, from /proc. */
function cpuSeconds(pid: number, tid?: number): number {
  const fields = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  return (await res.json()) as T;
}

async function pollDone(base: string, turnId: string): Promise<TurnResult | undefined> {
  for (const deadline = Date.now() + TURN_TIMEOUT_MS; ; await sleep(50)) {
    const turn = await getJson<TurnResult>(`${base}/v1/turns/${turnId}`).catch(() => undefined);
    if (turn?.status === 'done' || Date.now() > deadline) return turn;
  }
}

/** `fn` over `items`, at most `limit` at a time, results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) { const i = next++; out[i] = await fn(items[i] as T); }
  }));
  return out;
}

async function runPhase(base: string, pids: { server: number; redis: number }, round: number, phase: number, clients: number, turnsPerClient: number, durability: BenchDurability) {
  // A keep-alive socket idle for the server's keepAliveTimeout (5 s: the other modes' phases ran
  // meanwhile) may be closed by the server just as a POST reuses it: phases start on fresh ones.
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
  const threads = Array.from({ length: clients }, (_, i) => `bench-${round}-${phase}-${durability}-${i}`);
  const streams = threads.map(() => new ThreadEvents());
  // Streams are open before the first POST; fresh threads replay from their start, so nothing is missed.
  await Promise.all(threads.map((t, i) => streams[i]!.open(`${base}/v1/threads/${t}/events`)));
  const posted = threads.map((): string[] => []);
  const latencies: number[] = [];
  /** POST to its 202: what the durability confirmation adds to first. */
  const ackLatencies: number[] = [];
  let timedOut = 0;
  // The server's main thread has the process id as its thread id; the rest is mostly the embedder's threads.
  const cpuAtStart = { generator: process.cpuUsage(), server: cpuSeconds(pids.server), serverMain: cpuSeconds(pids.server, pids.server), redis: cpuSeconds(pids.redis) };
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    say(`round ${round} phase ${phase} (${clients} clients, durability ${durability}): ${latencies.length} turns, ${(latencies.length / s).toFixed(1)} turns/s`);
  }, 2000);
  try {
    await Promise.all(threads.map(async (thread, c) => {
      for (let i = 0; i < turnsPerClient; i++) {
        const t0 = performance.now();
        const res = await postJson(`${base}/v1/threads/${thread}/turns`, { content: nextText(), remember: 'episodic' });
        if (res.status !== 202) throw new Error(`POST turn on ${thread}: ${res.status} ${res.body}`);
        ackLatencies.push(performance.now() - t0);
        const { turn_id: turnId } = JSON.parse(res.body) as { turn_id: string };
        posted[c]!.push(turnId);
        const at = await streams[c]!.waitFor(turnId, TURN_TIMEOUT_MS);
        // A closed loop cannot go on without the answer; the checks below count the turn.
        if (at === undefined) return void timedOut++;
        latencies.push(at - t0);
      }
    }));
  } finally {
    clearInterval(progress);
  }
  const seconds = (performance.now() - started) / 1000;
  const generatorCpu = process.cpuUsage(cpuAtStart.generator);
  // Share of one core each process used during the phase: on two cores the load generator competes with the server.
  const serverCores = (cpuSeconds(pids.server) - cpuAtStart.server) / seconds;
  const serverMainCores = (cpuSeconds(pids.server, pids.server) - cpuAtStart.serverMain) / seconds;
  const cpu_cores = {
    load_generator: (generatorCpu.user + generatorCpu.system) / 1e6 / seconds,
    server_main_thread: serverMainCores,
    server_other_threads: serverCores - serverMainCores,
    redis: (cpuSeconds(pids.redis) - cpuAtStart.redis) / seconds,
  };
  // What each turn costs outside the embedder: on a machine this small, that is what the embedder loses.
  const perTurn = (cores: number): number => (cores * seconds * 1000) / Math.max(latencies.length, 1);
  const cpu_ms_per_turn = {
    load_generator: perTurn(cpu_cores.load_generator),
    server_main_thread: perTurn(cpu_cores.server_main_thread),
    server_other_threads: perTurn(cpu_cores.server_other_threads),
    redis: perTurn(cpu_cores.redis),
  };

  say(`round ${round} phase ${phase}: verifying ${posted.flat().length} turns`);
  const ids = posted.flat();
  const turns = await mapLimit(ids, 16, (id) => pollDone(base, id));
  await sleep(500); // lets a late (duplicate) recall_ready still reach the streams before counting
  await Promise.all(streams.map((s) => s.close()));
  const notDone = turns.filter((t) => t?.status !== 'done').length;
  let noRecallReady = 0, extraRecallReady = 0, countShort = 0, countOver = 0;
  for (const [c, thread] of threads.entries()) {
    const mine = new Set(posted[c]);
    for (const id of mine) if (!streams[c]!.recallReady.has(id)) noRecallReady++;
    // Extra: the same turn announced twice, or a recall_ready for a turn this client never posted.
    for (const [id, { count }] of streams[c]!.recallReady) extraRecallReady += mine.has(id) ? count - 1 : count;
    const { turn_count: count } = await getJson<{ turn_count: number }>(`${base}/v1/threads/${thread}`);
    countShort += Math.max(0, posted[c]!.length - count);
    countOver += Math.max(0, count - posted[c]!.length);
  }
  const badTurns = ids.filter((id, i) => turns[i]?.status !== 'done' || !streams.some((s) => s.recallReady.has(id)));
  const checks = {
    not_done: notDone, no_recall_ready: noRecallReady, timed_out: timedOut, turn_count_short: countShort,
    repeated_turn_ids: ids.length - new Set(ids).size, extra_recall_ready: extraRecallReady, turn_count_over: countOver,
    repeated_sse_ids: streams.reduce((n, s) => n + s.duplicateIds, 0),
  };
  const lost = new Set(badTurns).size + countShort;
  const duplicated = checks.repeated_turn_ids + extraRecallReady + countOver + checks.repeated_sse_ids;
  // Where the time goes, from the turn hashes (Redis clock): queue + embed + recall, then the rest is HTTP + SSE.
  const done = turns.filter((t): t is TurnResult => t?.status === 'done');
  const serverMs = done.map((t) => ((t.timings.recall_ts ?? NaN) - t.timings.accepted_ts) * 1000);
  const components_p50_ms = {
    accepted_to_recall_ready: percentile(serverMs, 50),
    embed_batch: percentile(done.map((t) => t.timings.embed_ms ?? NaN), 50),
    recall_query: percentile(done.map((t) => t.timings.recall_ms ?? NaN), 50),
    remember: percentile(done.map((t) => t.timings.remember_ms ?? NaN), 50),
  };
  return {
    round, phase, clients, durability, turns: latencies.length, posted: ids.length, seconds, turns_per_second: latencies.length / seconds,
    latency_ms: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    ack_ms_p50: percentile(ackLatencies, 50),
    components_p50_ms, cpu_cores, cpu_ms_per_turn, lost, duplicated, checks,
  };
}

/**
 * The raw embedder alone: texts/s with every session embedding `batch` texts per call back to back
 * (the best of the raw batch sizes counts), then one text at a time (the latency a lone turn pays).
 */
async function measureEmbedder(embedder: TextEmbedder, round: number) {
  const batched = [];
  for (const batch of rawBatchSizes) {
    say(`round ${round}: raw embedder, batch ${batch}, ${embedder.parallelism} at a time`);
    let count = 0;
    const callMs: number[] = [];
    const cpuAtStart = process.cpuUsage();
    const started = performance.now();
    await Promise.all(Array.from({ length: embedder.parallelism }, async () => {
      while (performance.now() - started < rawSeconds * 1000) {
        const t0 = performance.now();
        await embedder.embed(Array.from({ length: batch }, nextText));
        callMs.push(performance.now() - t0);
        count += batch;
      }
    }));
    const cpu = process.cpuUsage(cpuAtStart);
    batched.push({ batch, texts_per_second: count / ((performance.now() - started) / 1000), call_ms_p50: percentile(callMs, 50), cpu_ms_per_text: (cpu.user + cpu.system) / 1000 / count });
  }
  say(`round ${round}: raw embedder, one text at a time`);
  const singleMs: number[] = [];
  for (const end = performance.now() + (rawSeconds * 1000) / 2; performance.now() < end; ) {
    const t0 = performance.now();
    await embedder.embed([nextText()]);
    singleMs.push(performance.now() - t0);
  }
  const best = batched.reduce((a, b) => (b.texts_per_second > a.texts_per_second ? b : a));
  return { batched, best_texts_per_second: best.texts_per_second, best_batch: best.batch, best_cpu_ms_per_text: best.cpu_ms_per_text, single_ms_p50: percentile(singleMs, 50), single_ms_p95: percentile(singleMs, 95) };
}

/**
 * Per client count and durability mode: medians over the rounds of turns/s and latency, and of
 * each round's ratio to the `none` phase of the same client count (measured minutes apart, not hours).
 */
function durabilitySummary(phases: { round: number; clients: number; durability: BenchDurability; turns_per_second: number; ack_ms_p50: number; latency_ms: { p50: number } }[]) {
  const out = [];
  for (const clients of clientCounts) {
    for (const mode of durabilityModes) {
      const mine = phases.filter((p) => p.clients === clients && p.durability === mode);
      const ratios = mine.flatMap((p) => {
        const none = phases.find((q) => q.round === p.round && q.clients === clients && q.durability === 'none');
        return none ? [{ tps: p.turns_per_second / none.turns_per_second, p50: p.latency_ms.p50 / none.latency_ms.p50 }] : [];
      });
      out.push({
        clients, durability: mode,
        turns_per_second: median(mine.map((p) => p.turns_per_second)),
        ack_ms_p50: median(mine.map((p) => p.ack_ms_p50)),
        p50_ms: median(mine.map((p) => p.latency_ms.p50)),
        turns_per_second_vs_none: ratios.length > 0 ? median(ratios.map((r) => r.tps)) : null,
        p50_vs_none: ratios.length > 0 ? median(ratios.map((r) => r.p50)) : null,
      });
    }
  }
  return out;
}

/** CPU of every process on the machine's side of the benchmark, per turn, in one phase. */
const totalCpuPerTurn = (p: { cpu_ms_per_turn: Record<string, number> }): number => Object.values(p.cpu_ms_per_turn).reduce((a, b) => a + b, 0);


/**
 * Puts the bench's Redis in `mode`: appendfsync always, no append-only file, or appendfsync
 * everysec. Turning the file back on rewrites it in the background; phases start once it is done.
 */
async function setRedisDurability(redis: Redis, mode: BenchDurability): Promise<void> {
  if (mode === 'none') {
    await redis.config('SET', 'appendonly', 'no');
    return;
  }
  await redis.config('SET', 'appendfsync', mode === 'always' ? 'always' : 'everysec');
  await redis.config('SET', 'appendonly', 'yes');
  for (;;) {
    const info = await redis.info('persistence');
    if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) return;
    await sleep(50);
  }
}

async function main(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-bench-'));
  const installation = await findOrProvisionRedis(config.cacheDir, log);
  // As agentmem starts its embedded Redis: append-only file, fsynced before each reply.
  const redis = await startRedis(installation, { port: await freePort(), dataDir, persist: true, log });
  const admin = connectRedis(redis.url);
  const servers = new Map<BenchDurability, Awaited<ReturnType<typeof startServer>>>();
  let embedder: EmbedderPool | undefined;
  try {
    say(`redis ${redis.url} (${installation.origin}); starting agentmem serve and loading the model`);
    // One server started against appendfsync always serves that mode and `none` (it waits for
    // nothing either way: in `always` Redis's reply comes after the fsync); one started against
    // everysec confirms with WAITAOF, on keys of its own so that its workers take only its turns.
    const [started, loaded] = await Promise.all([startServer(redis.url), loadThreadedEmbedder(config, log)]);
    servers.set('always', started).set('none', started);
    embedder = loaded;
    if (durabilityModes.includes('waitaof')) {
      await setRedisDurability(admin, 'waitaof');
      servers.set('waitaof', await startServer(redis.url, {
        AGENTMEM_PIPELINE_PREFIX: 'waitaof:agentmem:', AGENTMEM_INDEX_NAME: 'waitaof:agentmem:idx', AGENTMEM_MEMORY_PREFIX: 'waitaof:agent:mem:',
      }));
    }
    // Every session's first call is slow; warm them all, not only the one a single call would reach.
    await Promise.all(Array.from({ length: loaded.parallelism }, () => loaded.embed(texts.slice(0, batchSize))));
    const pidsOf = (mode: BenchDurability) => ({ server: servers.get(mode)?.pid ?? 0, redis: redis.child?.pid ?? 0 });
    say('warming up the service (not counted)');
    const warmUps = [];
    for (const mode of new Set(durabilityModes.map((m) => (m === 'none' ? 'always' : m)))) {
      await setRedisDurability(admin, mode);
      warmUps.push(await runPhase(servers.get(mode)!.url, pidsOf(mode), 0, 1, Math.max(...clientCounts), 25, mode));
    }
    const results = [];
    for (let round = 1; round <= rounds; round++) {
      const raw = await measureEmbedder(embedder, round);
      const phases = [];
      for (const [i, clients] of clientCounts.entries()) {
        for (const mode of durabilityModes) {
          await setRedisDurability(admin, mode);
          phases.push(await runPhase(servers.get(mode)!.url, pidsOf(mode), round, i + 1, clients, turnCounts[Math.min(i, turnCounts.length - 1)]!, mode));
        }
      }
      await setRedisDurability(admin, 'always');
      const headline = phases.filter((p) => p.durability === HEADLINE_MODE);
      const best = Math.max(...headline.map((p) => p.turns_per_second));
      const one = headline.find((p) => p.clients === 1);
      results.push({
        round, raw, phases,
        ratios: {
          pipeline_turns_per_second_over_raw_batched: best / raw.best_texts_per_second,
          // With every core busy, throughput is cores / CPU per turn: this is the ratio the CPU accounts for.
          raw_cpu_per_text_over_pipeline_cpu_per_turn: raw.best_cpu_ms_per_text / totalCpuPerTurn(headline.reduce((a, b) => (b.turns_per_second > a.turns_per_second ? b : a))),
          p50_at_1_client_over_single_embedding_p50: one ? one.latency_ms.p50 / raw.single_ms_p50 : null,
        },
      });
    }

    const f = (n: number, w: number, d = 1): string => n.toFixed(d).padStart(w);
    const phases = results.flatMap((r) => r.phases);
    console.log(`\nembedder: ${embedder.parallelism} session(s); service batch size ${batchSize}`);
    console.log('\nround  phase  clients  durability  turns  seconds  turns/s  202 p50  p50 ms  p95 ms  p99 ms  lost  dup');
    for (const p of phases) {
      console.log(`${f(p.round, 5, 0)}  ${f(p.phase, 5, 0)}  ${f(p.clients, 7, 0)}  ${p.durability.padStart(10)}  ${f(p.turns, 5, 0)}  ${f(p.seconds, 7)}  ${f(p.turns_per_second, 7)}  ${f(p.ack_ms_p50, 7, 2)}  ${f(p.latency_ms.p50, 6)}  ${f(p.latency_ms.p95, 6)}  ${f(p.latency_ms.p99, 6)}  ${f(p.lost, 4, 0)}  ${f(p.duplicated, 3, 0)}`);
    }
    console.log('\nserver-side p50 ms (turn hash): accepted→recall_ready, embed batch, recall query, remember');
    for (const p of phases) {
      const c = p.components_p50_ms;
      console.log(`  round ${p.round} phase ${p.phase} ${p.durability.padStart(7)}: ${f(c.accepted_to_recall_ready, 7)}  ${f(c.embed_batch, 7)}  ${f(c.recall_query, 7)}  ${f(c.remember, 7)}`);
    }
    console.log('\nCPU per phase, cores (ms per turn): load generator, serve main thread, serve other threads (embedder), redis');
    for (const p of phases) {
      const c = p.cpu_cores, t = p.cpu_ms_per_turn;
      const cell = (cores: number, ms: number): string => `${f(cores, 5, 2)} (${f(ms, 5, 2)})`;
      console.log(`  round ${p.round} phase ${p.phase} ${p.durability.padStart(7)}: ${cell(c.load_generator, t.load_generator)}  ${cell(c.server_main_thread, t.server_main_thread)}  ${cell(c.server_other_threads, t.server_other_threads)}  ${cell(c.redis, t.redis)}`);
    }
    console.log('\nround  raw texts/s by batch size   raw CPU ms/text  single p50 ms  pipeline/raw  CPU-explained  p50(1 client)/single');
    for (const r of results) {
      const byBatch = r.raw.batched.map((b) => `${b.batch}: ${b.texts_per_second.toFixed(0)}`).join(', ');
      const latency = r.ratios.p50_at_1_client_over_single_embedding_p50;
      console.log(`${f(r.round, 5, 0)}  ${byBatch.padEnd(25)}  ${f(r.raw.best_cpu_ms_per_text, 15, 2)}  ${f(r.raw.single_ms_p50, 13, 2)}  ${f(r.ratios.pipeline_turns_per_second_over_raw_batched, 12, 2)}  ${f(r.ratios.raw_cpu_per_text_over_pipeline_cpu_per_turn, 13, 2)}  ${latency === null ? '-'.padStart(20) : `${f(latency, 19, 2)}x`}`);
    }
    console.log('(CPU-explained: raw CPU per text / CPU per turn of all processes in the fastest phase; when it matches pipeline/raw, nothing waits and the gap is the CPU the rest of the turn costs)');
    const throughputRatios = results.map((r) => r.ratios.pipeline_turns_per_second_over_raw_batched);
    const latencyRatios = results.flatMap((r) => (r.ratios.p50_at_1_client_over_single_embedding_p50 === null ? [] : [r.ratios.p50_at_1_client_over_single_embedding_p50]));
    const summary = {
      pipeline_turns_per_second_over_raw_batched: median(throughputRatios),
      p50_at_1_client_over_single_embedding_p50: latencyRatios.length > 0 ? median(latencyRatios) : null,
      raw_cpu_per_text_over_pipeline_cpu_per_turn: median(results.map((r) => r.ratios.raw_cpu_per_text_over_pipeline_cpu_per_turn)),
    };
    console.log(`\nmedian over ${rounds} round(s), durability ${HEADLINE_MODE}: pipeline turns/s / raw batched texts/s = ${summary.pipeline_turns_per_second_over_raw_batched.toFixed(2)} (target >= 0.8); CPU-explained ${summary.raw_cpu_per_text_over_pipeline_cpu_per_turn.toFixed(2)}`);
    if (summary.p50_at_1_client_over_single_embedding_p50 !== null) {
      console.log(`median over ${rounds} round(s): p50 latency at 1 client / single-embedding p50 = ${summary.p50_at_1_client_over_single_embedding_p50.toFixed(2)}x (target <= 2)`);
    }

    const durability = durabilitySummary(phases);
    if (durability.length > 0) {
      console.log('\ndurability, medians over the rounds (ratios taken within each round, against `none`: no append-only file, no confirmation)');
      console.log('clients  durability  turns/s  202 p50 ms  p50 ms  turns/s ratio  p50 ratio');
      for (const d of durability) {
        console.log(`${f(d.clients, 7, 0)}  ${d.durability.padStart(10)}  ${f(d.turns_per_second, 7)}  ${f(d.ack_ms_p50, 10, 2)}  ${f(d.p50_ms, 6)}  ${d.turns_per_second_vs_none === null ? '-'.padStart(13) : f(d.turns_per_second_vs_none, 13, 2)}  ${d.p50_vs_none === null ? '-'.padStart(9) : f(d.p50_vs_none, 9, 2)}`);
      }
      if (durabilityModes.includes('waitaof')) {
        console.log('(waitaof: Redis 7.4 answers WAITAOF once the write is in the AOF file, before its fsync (redis/redis#13793, fixed in 8.0); on Redis 8 each waits for the next once-a-second fsync)');
      }
    }

    // A turn whose recall_ready took over 30 s is not lost, but a stall that long fails the run too.
    const ok = [...warmUps, ...phases].every((p) => p.lost === 0 && p.duplicated === 0 && p.checks.timed_out === 0);
    const out = join(PACKAGE_ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = join(out, 'pipeline.json');
    await writeFile(file, JSON.stringify({
      model: embedder.modelId, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, redis: installation.origin,
      batch_size: batchSize, embedder_sessions: embedder.parallelism, ok, summary, durability, rounds: results,
    }, null, 2));
    console.log(`\n${ok ? 'no turn lost or duplicated' : 'FAILED: turns lost, duplicated or timed out (see checks in the JSON)'}; wrote ${file}`);
    return ok ? 0 : 1;
  } finally {
    await Promise.all([...new Set(servers.values())].map((s) => s.stop()));
    await embedder?.close();
    admin.disconnect();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
