/**
 * End-to-end pipeline benchmark, in one run: its own Redis, `agentmem serve` as a child process
 * (so the load generator and the server do not share an event loop), the raw embedder measured
 * alone while that server idles, then phases of N closed-loop clients, each on its own thread:
 * POST a turn, wait for its recall_ready on the thread's SSE stream, post the next. Each phase
 * ends by checking that no turn was lost or duplicated. Prints a table, writes
 * bench/results/pipeline.json, exits 1 when a check fails.
 *
 *   npm run bench [-- --clients 1,32 --turns-per-client 60,40 --batch-size 32]
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEmbedder } from '../src/agentmem.js';
import { loadConfig } from '../src/config.js';
import type { Embedder } from '../src/embedder/embedder.js';
import { createLogger } from '../src/log.js';
import type { EventRecord } from '../src/memory/events.js';
import type { TurnResult } from '../src/pipeline/turns.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { sampleTexts } from './texts.js';
import { findOrProvisionRedis, startRedis } from '../src/provision/redis-server.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1,32' },
    // One value per phase (the last repeats): 60 turns for 1 client, ~15 s of load for 32 on 2 cores.
    'turns-per-client': { type: 'string', default: '60,40' },
    'batch-size': { type: 'string' },
  },
});
const ints = (raw: string, name: string): number[] =>
  raw.split(',').map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected positive integers, got ${JSON.stringify(raw)}`);
    return n;
  });
const config = loadConfig();
const clientCounts = ints(String(values.clients), 'clients');
const turnCounts = ints(String(values['turns-per-client']), 'turns-per-client');
const batchSize = values['batch-size'] === undefined ? config.batchSize : ints(values['batch-size'], 'batch-size')[0]!;
const TURN_TIMEOUT_MS = 30_000;
const log = createLogger('warn');

const texts = sampleTexts(4096);
let textCursor = 0;
const nextText = (): string => texts[textCursor++ % texts.length] as string;

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const say = (line: string): void => void process.stderr.write(line + '\n');

/** `agentmem serve` as a child process, resolved once GET /readyz answers 200. */
async function startServer(redisUrl: string): Promise<{ url: string; pid: number; stop(): Promise<void> }> {
  const port = await freePort();
  const env = { ...process.env, REDIS_URL: redisUrl, AGENTMEM_HOST: '127.0.0.1', AGENTMEM_PORT: String(port), AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_BATCH_SIZE: String(batchSize) };
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js'), 'serve'], { env, stdio: ['ignore', 'inherit', 'inherit'] });
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

/** One thread's SSE stream: counts recall_ready events per turn and wakes the client waiting for one. */
class ThreadEvents {
  readonly recallReady = new Map<string, { count: number; at: number }>();
  duplicateIds = 0;
  private readonly seen = new Set<string>();
  private readonly waiters = new Map<string, (at: number) => void>();
  private readonly abort = new AbortController();
  private reading: Promise<void> = Promise.resolve();

  async open(url: string): Promise<void> {
    const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: this.abort.signal });
    if (res.status !== 200 || !res.body) throw new Error(`GET ${url}: ${res.status}`);
    // A broken stream shows up as turns without recall_ready; say why instead of crashing.
    this.reading = this.read(res.body).catch((err: unknown) => void (this.abort.signal.aborted || say(`sse ${url}: ${String(err)}`)));
  }

  private async read(body: NonNullable<Response['body']>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of body) {
      const at = performance.now(); // receipt time, taken before any parsing
      buffer += decoder.decode(chunk, { stream: true });
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        const lines = buffer.slice(0, end).split('\n');
        buffer = buffer.slice(end + 2);
        const id = lines.find((l) => l.startsWith('id:'))?.slice(3).trim();
        const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (id !== undefined && this.seen.has(id)) this.duplicateIds++;
        else if (id !== undefined) this.seen.add(id);
        if (data) this.onEvent(JSON.parse(data) as EventRecord, at);
      }
    }
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
    this.abort.abort();
    await this.reading;
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

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
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

async function runPhase(base: string, pids: { server: number; redis: number }, phase: number, clients: number, turnsPerClient: number) {
  const threads = Array.from({ length: clients }, (_, i) => `bench-${phase}-${i}`);
  const streams = threads.map(() => new ThreadEvents());
  // Streams are open before the first POST; fresh threads replay from their start, so nothing is missed.
  await Promise.all(threads.map((t, i) => streams[i]!.open(`${base}/v1/threads/${t}/events`)));
  const posted = threads.map((): string[] => []);
  const latencies: number[] = [];
  let timedOut = 0;
  const cpuAtStart = { generator: process.cpuUsage(), server: cpuSeconds(pids.server), redis: cpuSeconds(pids.redis) };
  const started = performance.now();
  const progress = setInterval(() => {
    const s = (performance.now() - started) / 1000;
    say(`phase ${phase} (${clients} clients): ${latencies.length} turns, ${(latencies.length / s).toFixed(1)} turns/s`);
  }, 2000);
  try {
    await Promise.all(threads.map(async (thread, c) => {
      for (let i = 0; i < turnsPerClient; i++) {
        const t0 = performance.now();
        const res = await postJson(`${base}/v1/threads/${thread}/turns`, { content: nextText(), remember: 'episodic' });
        if (res.status !== 202) throw new Error(`POST turn on ${thread}: ${res.status} ${res.body}`);
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
  const cpu_cores = {
    load_generator: (generatorCpu.user + generatorCpu.system) / 1e6 / seconds,
    server: (cpuSeconds(pids.server) - cpuAtStart.server) / seconds,
    redis: (cpuSeconds(pids.redis) - cpuAtStart.redis) / seconds,
  };

  say(`phase ${phase}: verifying ${posted.flat().length} turns`);
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
    phase, clients, turns: latencies.length, posted: ids.length, seconds, turns_per_second: latencies.length / seconds,
    latency_ms: { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99) },
    components_p50_ms, cpu_cores, lost, duplicated, checks,
  };
}

/** Raw embedder throughput at the service's batch size, and single-text latency, in this process. */
async function measureEmbedder(embedder: Embedder) {
  await embedder.embed(texts.slice(0, batchSize)); // warm-up, not counted
  let count = 0;
  const batchMs: number[] = [];
  const started = performance.now();
  while (performance.now() - started < 5000) {
    const t0 = performance.now();
    await embedder.embed(Array.from({ length: batchSize }, nextText));
    batchMs.push(performance.now() - t0);
    count += batchSize;
  }
  const batchedSeconds = (performance.now() - started) / 1000;
  const singleMs: number[] = [];
  for (const end = performance.now() + 3000; performance.now() < end; ) {
    const t0 = performance.now();
    await embedder.embed([nextText()]);
    singleMs.push(performance.now() - t0);
  }
  return { batch: batchSize, texts_per_second: count / batchedSeconds, batch_call_ms_p50: percentile(batchMs, 50), single_ms_p50: percentile(singleMs, 50), single_ms_p95: percentile(singleMs, 95) };
}

async function main(): Promise<number> {
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-bench-'));
  const installation = await findOrProvisionRedis(config.cacheDir, log);
  const redis = await startRedis(installation, { port: await freePort(), dataDir, persist: false, log });
  let server: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    say(`redis ${redis.url} (${installation.origin}); starting agentmem serve and loading the model`);
    const [started, embedder] = await Promise.all([startServer(redis.url), loadEmbedder(config, log)]);
    server = started;
    say('measuring the raw embedder while the server idles (~8 s)');
    const raw = await measureEmbedder(embedder);
    const phases = [];
    for (const [i, clients] of clientCounts.entries()) {
      phases.push(await runPhase(server.url, { server: server.pid, redis: redis.child?.pid ?? 0 }, i + 1, clients, turnCounts[Math.min(i, turnCounts.length - 1)]!));
    }

    const f = (n: number, w: number, d = 1): string => n.toFixed(d).padStart(w);
    console.log('\nphase  clients  turns  seconds  turns/s  p50 ms  p95 ms  p99 ms  lost  dup');
    for (const p of phases) {
      console.log(`${f(p.phase, 5, 0)}  ${f(p.clients, 7, 0)}  ${f(p.turns, 5, 0)}  ${f(p.seconds, 7)}  ${f(p.turns_per_second, 7)}  ${f(p.latency_ms.p50, 6)}  ${f(p.latency_ms.p95, 6)}  ${f(p.latency_ms.p99, 6)}  ${f(p.lost, 4, 0)}  ${f(p.duplicated, 3, 0)}`);
    }
    console.log('\nserver-side p50 ms (turn hash): accepted→recall_ready, embed batch, recall query, remember');
    for (const p of phases) {
      const c = p.components_p50_ms;
      console.log(`  phase ${p.phase}: ${f(c.accepted_to_recall_ready, 7)}  ${f(c.embed_batch, 7)}  ${f(c.recall_query, 7)}  ${f(c.remember, 7)}`);
    }
    console.log('\ncores used during each phase: load generator, agentmem serve, redis');
    for (const p of phases) console.log(`  phase ${p.phase}: ${f(p.cpu_cores.load_generator, 7, 2)}  ${f(p.cpu_cores.server, 7, 2)}  ${f(p.cpu_cores.redis, 7, 2)}`);
    console.log(`\nraw embedder, same run, server idle: batch ${raw.batch}: ${f(raw.texts_per_second, 0)} texts/s (call p50 ${f(raw.batch_call_ms_p50, 0)} ms); single text p50 ${f(raw.single_ms_p50, 0, 2)} ms`);
    const best = Math.max(...phases.map((p) => p.turns_per_second));
    const one = phases.find((p) => p.clients === 1);
    const ratios = {
      pipeline_turns_per_second_over_raw_batched: best / raw.texts_per_second,
      p50_at_1_client_over_single_embedding_p50: one ? one.latency_ms.p50 / raw.single_ms_p50 : null,
    };
    console.log(`pipeline turns/s (max over phases) / raw batched texts/s: ${f(best, 0)} / ${f(raw.texts_per_second, 0)} = ${ratios.pipeline_turns_per_second_over_raw_batched.toFixed(2)}`);
    if (one) console.log(`p50 latency at 1 client / single-embedding p50: ${f(one.latency_ms.p50, 0)} / ${f(raw.single_ms_p50, 0, 2)} ms = ${ratios.p50_at_1_client_over_single_embedding_p50?.toFixed(1)}x`);

    // A turn whose recall_ready took over 30 s is not lost, but a stall that long fails the run too.
    const ok = phases.every((p) => p.lost === 0 && p.duplicated === 0 && p.checks.timed_out === 0);
    const out = join(PACKAGE_ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = join(out, 'pipeline.json');
    await writeFile(file, JSON.stringify({ model: embedder.modelId, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, redis: installation.origin, batch_size: batchSize, ok, phases, raw_embedder: raw, ratios }, null, 2));
    console.log(`\n${ok ? 'no turn lost or duplicated' : 'FAILED: turns lost, duplicated or timed out (see checks in the JSON)'}; wrote ${file}`);
    return ok ? 0 : 1;
  } finally {
    await server?.stop();
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

process.exitCode = await main();
