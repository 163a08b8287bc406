/**
 * The cost of authentication per request, in one run: its own Redis and two `agentmem serve
 * --api-only` processes on it, one with AGENTMEM_AUTH=off and one with AGENTMEM_AUTH=keys (a
 * bootstrap admin key; every request verified against Redis and charged to the key's token
 * bucket, whose limit is set out of reach). Rounds alternate which server goes first, so machine
 * noise hits both alike. Each round: the p50 latency of POST /v1/threads/{id}/turns (accept only,
 * remember: skip) for one client, sequentially; then accepted turns/s with N closed-loop clients,
 * and the CPU the server and Redis spent per turn meanwhile (steadier than wall time on a machine
 * others share).
 * Workers do not run: the embedder would dominate both and hide the API's own cost. Prints a
 * table and the medians; writes bench/results/auth.json.
 *
 *   npm run bench:auth [-- --rounds 5 --latency-turns 300 --clients 16 --turns-per-client 100]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { findOrProvisionRedis, startRedis } from '../src/provision/redis-server.js';
import { median, percentile, processCpuSeconds } from './stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    'latency-turns': { type: 'string', default: '300' },
    clients: { type: 'string', default: '16' },
    'turns-per-client': { type: 'string', default: '100' },
  },
});
const positive = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(values[name])}`);
  return n;
};
const rounds = positive('rounds');
const latencyTurns = positive('latency-turns');
const clients = positive('clients');
const turnsPerClient = positive('turns-per-client');
const config = loadConfig();
const log = createLogger('warn');
const say = (line: string): void => void process.stderr.write(line + '\n');
const ADMIN_KEY = `am_be7c4a0f0001_${'benchmark-bootstrap-key-'.repeat(2)}`;

type Mode = 'off' | 'keys';

async function startServer(redisUrl: string, mode: Mode): Promise<{ url: string; child: ChildProcess }> {
  const port = await freePort();
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'serve'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env, REDIS_URL: redisUrl, AGENTMEM_PORT: String(port), AGENTMEM_HOST: '127.0.0.1', AGENTMEM_API_ONLY: 'true',
      AGENTMEM_NO_RESET: 'true', AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_MAX_BACKLOG: '10000000', AGENTMEM_AUTH: mode,
      AGENTMEM_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY, AGENTMEM_KEY_RATE_PER_SECOND: '1000000', AGENTMEM_KEY_RATE_BURST: '1000000',
    },
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    const ready = await fetch(`${url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return { url, child };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`agentmem serve (auth ${mode}) did not become ready`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const headers = (mode: Mode): Record<string, string> => ({
  'content-type': 'application/json', ...(mode === 'keys' ? { authorization: `Bearer ${ADMIN_KEY}` } : {}),
});

async function postTurn(url: string, mode: Mode, threadId: string): Promise<number> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/threads/${threadId}/turns`, { method: 'POST', headers: headers(mode), body: JSON.stringify({ content: 'a turn to accept', remember: 'skip' }) });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`auth ${mode}: turn answered ${res.status}`);
  return performance.now() - t0;
}

async function measure(url: string, mode: Mode, round: number, pids: { server: number; redis: number }) {
  const thread = `bench-${mode}-${round}`;
  const latencies: number[] = [];
  for (let i = 0; i < latencyTurns; i++) latencies.push(await postTurn(url, mode, thread));
  const cpuBefore = { server: processCpuSeconds(pids.server), redis: processCpuSeconds(pids.redis) };
  const started = performance.now();
  await Promise.all(Array.from({ length: clients }, async (_, c) => {
    for (let i = 0; i < turnsPerClient; i++) await postTurn(url, mode, `${thread}-c${c}`);
  }));
  const seconds = (performance.now() - started) / 1000;
  const turns = clients * turnsPerClient;
  return {
    round, mode, p50_ms: percentile(latencies, 50), p95_ms: percentile(latencies, 95), turns_per_second: turns / seconds,
    server_cpu_ms_per_turn: ((processCpuSeconds(pids.server) - cpuBefore.server) * 1000) / turns,
    redis_cpu_ms_per_turn: ((processCpuSeconds(pids.redis) - cpuBefore.redis) * 1000) / turns,
  };
}

async function main(): Promise<void> {
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-bench-auth-'));
  const installation = await findOrProvisionRedis(config.cacheDir, log);
  const redis = await startRedis(installation, { port: await freePort(), dataDir, persist: false, log });
  const servers: { url: string; child: ChildProcess }[] = [];
  try {
    say(`redis ${redis.url}; starting two agentmem serve --api-only (auth off, auth keys)`);
    const [off, keys] = await Promise.all([startServer(redis.url, 'off'), startServer(redis.url, 'keys')]);
    servers.push(off, keys);
    const urls: Record<Mode, string> = { off: off.url, keys: keys.url };
    const pids: Record<Mode, { server: number; redis: number }> = {
      off: { server: off.child.pid ?? 0, redis: redis.child?.pid ?? 0 }, keys: { server: keys.child.pid ?? 0, redis: redis.child?.pid ?? 0 },
    };
    say('warming up (not counted)');
    for (const mode of ['off', 'keys'] as const) await measure(urls[mode], mode, 0, pids[mode]);
    const results: Awaited<ReturnType<typeof measure>>[] = [];
    for (let round = 1; round <= rounds; round++) {
      const order: Mode[] = round % 2 ? ['off', 'keys'] : ['keys', 'off'];
      for (const mode of order) results.push(await measure(urls[mode], mode, round, pids[mode]));
    }
    const f = (n: number, w: number, d = 2): string => n.toFixed(d).padStart(w);
    console.log(`\nPOST /v1/threads/{id}/turns, accept only: p50/p95 at 1 client (${latencyTurns} turns), turns/s at ${clients} clients × ${turnsPerClient}`);
    console.log('round  auth   p50 ms  p95 ms  turns/s  server CPU ms/turn  redis CPU ms/turn');
    for (const r of results) {
      console.log(`${f(r.round, 5, 0)}  ${r.mode.padEnd(5)}  ${f(r.p50_ms, 6)}  ${f(r.p95_ms, 6)}  ${f(r.turns_per_second, 7, 0)}  ${f(r.server_cpu_ms_per_turn, 18, 3)}  ${f(r.redis_cpu_ms_per_turn, 17, 3)}`);
    }
    const of = (mode: Mode) => results.filter((r) => r.mode === mode);
    const summary = {
      p50_ms: { off: median(of('off').map((r) => r.p50_ms)), keys: median(of('keys').map((r) => r.p50_ms)) },
      turns_per_second: { off: median(of('off').map((r) => r.turns_per_second)), keys: median(of('keys').map((r) => r.turns_per_second)) },
      server_cpu_ms_per_turn: { off: median(of('off').map((r) => r.server_cpu_ms_per_turn)), keys: median(of('keys').map((r) => r.server_cpu_ms_per_turn)) },
      redis_cpu_ms_per_turn: { off: median(of('off').map((r) => r.redis_cpu_ms_per_turn)), keys: median(of('keys').map((r) => r.redis_cpu_ms_per_turn)) },
    };
    console.log(`median over ${rounds} rounds: p50 ${summary.p50_ms.off.toFixed(2)} ms (off) vs ${summary.p50_ms.keys.toFixed(2)} ms (keys), +${(summary.p50_ms.keys - summary.p50_ms.off).toFixed(2)} ms; ` +
      `turns/s ${summary.turns_per_second.off.toFixed(0)} (off) vs ${summary.turns_per_second.keys.toFixed(0)} (keys), ${((summary.turns_per_second.keys / summary.turns_per_second.off - 1) * 100).toFixed(1)}%`);
    console.log(`median CPU per turn: server ${summary.server_cpu_ms_per_turn.off.toFixed(3)} ms (off) vs ${summary.server_cpu_ms_per_turn.keys.toFixed(3)} ms (keys); ` +
      `redis ${summary.redis_cpu_ms_per_turn.off.toFixed(3)} ms (off) vs ${summary.redis_cpu_ms_per_turn.keys.toFixed(3)} ms (keys)`);
    await mkdir(join(PACKAGE_ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(PACKAGE_ROOT, 'bench/results/auth.json'), JSON.stringify({ clients, turnsPerClient, latencyTurns, results, summary }, null, 2) + '\n');
  } finally {
    for (const s of servers) s.child.kill('SIGTERM');
    await Promise.all(servers.filter((s) => s.child.exitCode === null).map((s) => new Promise((r) => s.child.once('exit', r))));
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
