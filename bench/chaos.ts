/**
 * Chaos run: the pipeline under load while its processes die. Starts a Redis of its own (the way
 * `agentmem serve` starts the embedded one), `agentmem serve --api-only` and embed-recall and
 * remember workers as separate processes, then posts --turns turns from --clients clients (each on
 * its own thread, each turn with an Idempotency-Key, retried on 429, 503 or a broken connection
 * as a well-behaved client would). Meanwhile a random worker is SIGKILLed every few seconds and
 * replaced, and Redis itself is SIGKILLed once and restarted on the same data. Clients post with
 * `?wait`, as an agent that needs the turn's recall would, so the load follows the pipeline's pace
 * and Redis dies with turns in every stage. At the end every acknowledged turn is checked:
 *   lost        acknowledged (202, or 200 with its result), but its turn record is gone
 *   missing_from_working_memory  a thread counts fewer turns than were acknowledged on it
 *   duplicated  a thread holds more turns than were acknowledged on it, or a memory was written twice
 *   stuck       still not done --drain-seconds after the last post
 * Prints progress, a summary, writes bench/results/chaos.json; exits 1 unless all three are 0.
 *
 *   npm run chaos [-- --turns 10000 --clients 16 --kill-every 3,5 --redis-kill-at 0.4 --drain-seconds 180]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createTiers } from '../src/agentmem.js';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { readTurn } from '../src/pipeline/turns.js';
import { findOrProvisionRedis, startRedis, type RunningRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import { sampleTexts } from './texts.js';

const { values } = parseArgs({
  options: {
    turns: { type: 'string', default: '10000' },
    clients: { type: 'string', default: '16' },
    'kill-every': { type: 'string', default: '3,5' },
    'redis-kill-at': { type: 'string', default: '0.4' },
    'drain-seconds': { type: 'string', default: '180' },
  },
});
const positive = (raw: string | undefined, name: string): number => {
  const n = Number(raw);
  if (!(n > 0)) throw new Error(`--${name}: expected a positive number, got ${JSON.stringify(raw)}`);
  return n;
};
const TURNS = Math.floor(positive(values.turns, 'turns'));
const CLIENTS = Math.floor(positive(values.clients, 'clients'));
const [KILL_MIN_S, KILL_MAX_S] = String(values['kill-every']).split(',').map((s) => positive(s, 'kill-every')) as [number, number?];
const REDIS_KILL_AT = positive(values['redis-kill-at'], 'redis-kill-at');
const DRAIN_MS = positive(values['drain-seconds'], 'drain-seconds') * 1000;
const CLAIM_IDLE_MS = 3000;

const say = (line: string): void => void process.stderr.write(line + '\n');
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const children = new Set<ChildProcess>();
// Whatever ends the run (a failed check, an error, Ctrl-C), no agentmem process it started lives on:
// the 'exit' hook kills them, and signals and errors leave through process.exit so that it runs.
process.once('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(signal === 'SIGINT' ? 130 : 143));

function spawnAgentmem(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), ...args], {
    stdio: ['ignore', 'ignore', 'ignore'],
    env: { ...process.env, AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_HOST: '127.0.0.1', AGENTMEM_CLAIM_IDLE_MS: String(CLAIM_IDLE_MS), ...env },
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

const counts = { posted: 0, acknowledged: 0, retried: 0, status503: 0, status429: 0, other5xx: 0, networkErrors: 0, workerKills: 0, redisKills: 0 };
/** Every acknowledged turn: its id and thread. */
const acknowledged = new Map<string, string>();
const perThread = new Map<string, number>();

async function postTurn(api: string, threadId: string, content: string, key: string): Promise<void> {
  const started = Date.now();
  for (;;) {
    let res: Response;
    try {
      res = await fetch(`${api}/v1/threads/${threadId}/turns?wait=15000`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': key },
        body: JSON.stringify({ content, user: 'chaos', remember: 'episodic' }),
        signal: AbortSignal.timeout(30_000),
      });
    } catch {
      counts.networkErrors++;
      counts.retried++;
      await sleep(250);
      continue;
    }
    if (res.status === 202 || res.status === 200) {
      const { turn_id: turnId } = (await res.json()) as { turn_id: string };
      if (!acknowledged.has(turnId)) {
        acknowledged.set(turnId, threadId);
        perThread.set(threadId, (perThread.get(threadId) ?? 0) + 1);
      }
      counts.acknowledged = acknowledged.size;
      return;
    }
    await res.arrayBuffer();
    if (res.status === 503) counts.status503++;
    else if (res.status === 429) counts.status429++;
    else if (res.status >= 500) counts.other5xx++;
    else throw new Error(`POST turn: unexpected ${res.status}`);
    if (Date.now() - started > 120_000) throw new Error(`a turn was refused for two minutes (last status ${res.status})`);
    counts.retried++;
    const retryAfter = Number(res.headers.get('retry-after') ?? '1');
    await sleep(Math.min(2000, Math.max(100, retryAfter * 1000 * Math.random())));
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  const installation = await findOrProvisionRedis(config.cacheDir, silentLogger);
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-chaos-'));
  const port = await freePort();
  let redis: RunningRedis = await startRedis(installation, { port, dataDir, persist: true, log: silentLogger });
  const env = { REDIS_URL: redis.url, AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_BATCH_SIZE: '16' };
  const apiPort = await freePort();
  const api = `http://127.0.0.1:${apiPort}`;
  spawnAgentmem(['serve', '--api-only', '--no-reset', '--port', String(apiPort)], env);
  for (const deadline = Date.now() + 180_000; (await fetch(`${api}/readyz`).catch(() => undefined))?.status !== 200; await sleep(200)) {
    if (Date.now() > deadline) throw new Error('agentmem serve --api-only not ready within 180 s');
  }
  const workers: { name: 'embed-recall' | 'remember'; child: ChildProcess; ready: string }[] = [];
  const startWorker = async (name: 'embed-recall' | 'remember'): Promise<void> => {
    const metricsPort = await freePort();
    const child = spawnAgentmem(['worker', name], { ...env, AGENTMEM_METRICS_PORT: String(metricsPort) });
    workers.push({ name, child, ready: `http://127.0.0.1:${metricsPort}/readyz` });
  };
  for (const name of ['embed-recall', 'embed-recall', 'remember', 'remember'] as const) await startWorker(name);
  for (const w of workers) {
    for (const deadline = Date.now() + 180_000; (await fetch(w.ready).catch(() => undefined))?.status !== 200; await sleep(200)) {
      if (Date.now() > deadline) throw new Error(`worker ${w.name} not ready within 180 s`);
    }
  }
  say(`chaos: ${TURNS} turns from ${CLIENTS} clients; Redis ${redis.url} (${dataDir}); a worker SIGKILLed every ${KILL_MIN_S}-${KILL_MAX_S ?? KILL_MIN_S} s; Redis SIGKILLed at ${Math.round(REDIS_KILL_AT * 100)}% of the turns`);

  const started = Date.now();
  let posting = true;
  const killer = (async () => {
    while (posting) {
      await sleep(1000 * (KILL_MIN_S + Math.random() * ((KILL_MAX_S ?? KILL_MIN_S) - KILL_MIN_S)));
      if (!posting) break;
      const victim = workers.splice(Math.floor(Math.random() * workers.length), 1)[0];
      if (!victim) continue;
      victim.child.kill('SIGKILL');
      counts.workerKills++;
      await startWorker(victim.name);
    }
  })();
  let redisKilled = false;
  const restartRedis = async (): Promise<void> => {
    redisKilled = true;
    say(`chaos: SIGKILL redis-server at ${counts.acknowledged} acknowledged turns`);
    redis.child?.kill('SIGKILL');
    await new Promise((r) => redis.child?.once('exit', r));
    counts.redisKills++;
    await sleep(1000);
    redis = await startRedis(installation, { port, dataDir, persist: true, log: silentLogger });
    say(`chaos: redis-server restarted after ${counts.status503} 503s so far`);
  };
  const progress = setInterval(() => say(`chaos: ${JSON.stringify({ s: Math.round((Date.now() - started) / 1000), ...counts })}`), 5000);

  const texts = sampleTexts(4096);
  let next = 0;
  const clients = Array.from({ length: CLIENTS }, async (_, c) => {
    const threadId = `chaos-${c}`;
    for (let i = next++; i < TURNS; i = next++) {
      if (!redisKilled && i >= TURNS * REDIS_KILL_AT) void restartRedis();
      counts.posted++;
      await postTurn(api, threadId, texts[i % texts.length] as string, `chaos-${i}`);
    }
  });
  await Promise.all(clients);
  posting = false;
  await killer;
  const postedMs = Date.now() - started;
  say(`chaos: all ${TURNS} turns acknowledged in ${Math.round(postedMs / 1000)} s; waiting for them to finish`);

  const client = connectRedis(redis.url, { maxRetriesPerRequest: null });
  client.on('error', () => undefined);
  const tiers = createTiers(client, { ...config, redisUrl: redis.url });
  const ids = [...acknowledged.keys()];
  const notDone = async (): Promise<string[]> => {
    const missing: string[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const slice = ids.slice(i, i + 500);
      const statuses = await Promise.all(slice.map((id) => client.hget(tiers.keys.turn(id), 'status')));
      slice.forEach((id, j) => statuses[j] !== 'done' && missing.push(id));
    }
    return missing;
  };
  let pending = await notDone();
  for (const deadline = Date.now() + DRAIN_MS; pending.length > 0 && Date.now() < deadline; ) {
    await sleep(2000);
    pending = await notDone();
    say(`chaos: ${pending.length} turns not done yet`);
  }
  clearInterval(progress);

  let lost = 0;
  let stuck = 0;
  for (const id of pending) {
    const turn = await readTurn(client, tiers.keys, tiers.longTerm, id);
    if (turn === null) lost++;
    else stuck++;
  }
  let duplicated = 0;
  let missingFromWorkingMemory = 0;
  for (const [threadId, expected] of perThread) {
    const session = await tiers.working.load(threadId);
    const count = session?.turn_count ?? 0;
    if (count < expected) missingFromWorkingMemory += expected - count;
    if (count > expected) duplicated += count - expected;
  }
  const written = new Set<string>();
  let bumps = 0;
  for (const id of ids) {
    const memory = await client.hget(tiers.keys.turn(id), 'memory');
    if (!memory) continue;
    const outcome = JSON.parse(memory) as { id: string; deduped: boolean };
    if (outcome.deduped) bumps++;
    else if (written.has(outcome.id)) duplicated++;
    else written.add(outcome.id);
  }
  const stored = await tiers.longTerm.list({ user: 'chaos', namespace: 'default' }, 10_000);
  const storedIds = new Set(stored.map((m) => m.id));
  const missingMemories = [...written].filter((id) => !storedIds.has(id)).length;
  duplicated += stored.filter((m) => !written.has(m.id)).length;
  const hits = stored.reduce((sum, m) => sum + m.hit_count, 0);

  const summary = {
    turns: TURNS, clients: CLIENTS, acknowledged: acknowledged.size, lost, missing_from_working_memory: missingFromWorkingMemory, duplicated, stuck,
    memories_written: written.size, memories_missing: missingMemories, dedup_bumps: bumps, stored_hit_count: hits,
    worker_kills: counts.workerKills, redis_kills: counts.redisKills, status_503: counts.status503, status_429: counts.status429,
    other_5xx: counts.other5xx, network_errors: counts.networkErrors, retries: counts.retried,
    post_seconds: Math.round(postedMs / 100) / 10, total_seconds: Math.round((Date.now() - started) / 100) / 10,
  };
  process.stdout.write(`\n${Object.entries(summary).map(([k, v]) => `${k.padEnd(18)} ${v}`).join('\n')}\n`);
  await mkdir(join(PACKAGE_ROOT, 'bench', 'results'), { recursive: true });
  await writeFile(join(PACKAGE_ROOT, 'bench', 'results', 'chaos.json'), JSON.stringify(summary, null, 2) + '\n');
  client.disconnect();
  for (const child of children) child.kill('SIGTERM');
  await sleep(500);
  await redis.stop();
  await rm(dataDir, { recursive: true, force: true });
  const ok = lost === 0 && missingFromWorkingMemory === 0 && duplicated === 0 && stuck === 0 && missingMemories === 0 && hits === bumps;
  process.exitCode = ok ? 0 : 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
