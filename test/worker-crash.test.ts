import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EMBED_RECALL_GROUP, REMEMBER_GROUP } from '../src/pipeline/groups.js';
import { Ingest } from '../src/pipeline/ingest.js';
import { readTurn, type TurnResult } from '../src/pipeline/turns.js';
import { createKeys } from '../src/keys.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort } from './support/ports.js';
import { openTiers, type TestTiers } from './support/redis.js';
import { agentmemEnv, keysEnv } from './support/fleet.js';

const TURNS = 500;
let t: TestTiers;
const children: ChildProcess[] = [];

beforeAll(async () => {
  t = await openTiers({ claimIdleMs: 1000, batchSize: 16 });
});
afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  await t.cleanup();
});

/** The environment that points an agentmem process at this test's Redis, model and keys. */
function testEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const c = t.config;
  return agentmemEnv(inject('redisUrl'), {
    ...keysEnv(c), AGENTMEM_LOG_LEVEL: 'warn', AGENTMEM_CLAIM_IDLE_MS: String(c.claimIdleMs), AGENTMEM_BATCH_SIZE: String(c.batchSize),
    ...extra,
  });
}

/** `agentmem worker <name>` as its own process, on this test's keys. */
function startWorker(name: 'embed-recall' | 'remember', metricsPort = 0, consumerName = ''): ChildProcess {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'worker', name], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: testEnv({ AGENTMEM_METRICS_PORT: String(metricsPort), AGENTMEM_CONSUMER_NAME: consumerName }),
  });
  children.push(child);
  return child;
}

async function turnsDone(ids: string[]): Promise<TurnResult[]> {
  return (await Promise.all(ids.map((id) => readTurn(t.redis, t.keys, t.longTerm, id)))).filter((r): r is TurnResult => r?.status === 'done');
}

async function until(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a killed worker', () => {
  it('loses nothing: after SIGKILL mid-run and a fresh worker, every turn is done once and nothing stays pending', async () => {
    const ingest = new Ingest(t.redis, t.keys, t.config);
    const topics = ['deploys', 'invoices', 'the warehouse', 'hiring', 'the roadmap', 'on-call', 'customer churn', 'latency'];
    const ids: string[] = [];
    for (let i = 0; i < TURNS; i++) {
      const accepted = await ingest.accept({
        threadId: 'crash-1', role: 'user', content: `Note ${i % 60}: the user is worried about ${topics[i % topics.length]} this week.`,
        user: 'crash', namespace: 'default', agent: 'default', remember: i % 3 === 0 ? 'semantic' : 'episodic', k: 5, threshold: 0.55,
      });
      ids.push(accepted.turnId);
    }

    const first = [startWorker('embed-recall'), startWorker('remember')];
    await until(async () => (await turnsDone(ids)).length >= 120, 60_000);
    for (const child of first) child.kill('SIGKILL');
    const doneAtKill = (await turnsDone(ids)).length;
    expect(doneAtKill).toBeLessThan(TURNS);

    startWorker('embed-recall');
    startWorker('remember');
    await until(async () => (await turnsDone(ids)).length === TURNS, 90_000);

    const turns = await turnsDone(ids);
    const state = await t.working.load('crash-1');
    expect(state?.turn_count).toBe(TURNS);
    expect(await t.redis.xlen(t.keys.ingestStream)).toBe(0);
    expect(await t.redis.xlen(t.keys.rememberStream)).toBe(0);
    expect(((await t.redis.xpending(t.keys.ingestStream, EMBED_RECALL_GROUP)) as [number])[0]).toBe(0);
    expect(((await t.redis.xpending(t.keys.rememberStream, REMEMBER_GROUP)) as [number])[0]).toBe(0);

    // Exactly once: each written outcome is one document, and the bumps add up to the dedup outcomes.
    const written = turns.filter((r) => r.memory && !r.memory.deduped).map((r) => r.memory?.id);
    const memories = await t.longTerm.list({ user: 'crash', namespace: 'default' }, 10_000);
    expect(new Set(written).size).toBe(written.length);
    expect(memories.map((m) => m.id).sort()).toEqual([...written].sort());
    const bumps = turns.filter((r) => r.memory?.deduped).length;
    expect(memories.reduce((sum, m) => sum + m.hit_count, 0)).toBe(bumps);
    expect(bumps).toBeGreaterThan(0);

    const accepted = await t.events.recent('crash-1', 10_000);
    expect(accepted.filter((e) => e.action === 'turn_appended:user')).toHaveLength(TURNS);
  }, 180_000);
});

describe('a worker asked to stop', () => {
  it('serves /healthz, /readyz and /metrics while it runs, then exits 0 promptly on SIGTERM, leaving nothing pending', async () => {
    const port = await freePort();
    const child = startWorker('remember', port, 'stopping-worker');
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const consumers = async () => ((await t.redis.xinfo('CONSUMERS', t.keys.rememberStream, REMEMBER_GROUP).catch(() => [])) as unknown[][]).map((c) => String(c[1]));
    await until(async () => (await consumers()).includes('stopping-worker'), 30_000);
    const base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${base}/healthz`).catch(() => undefined))?.status === 200, 10_000);
    expect((await fetch(`${base}/readyz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain(`agentmem_stream_pending{stream="${t.keys.rememberStream}",group="remember"} 0`);
    expect(metrics).toMatch(/^process_resident_memory_bytes \d+/m);
    const started = Date.now();
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(((await t.redis.xpending(t.keys.rememberStream, REMEMBER_GROUP)) as [number])[0]).toBe(0);
  }, 60_000);
});

describe('agentmem serve --api-only', () => {
  it('answers the API with one embedder session and no workers, leaving turns queued for worker processes', async () => {
    const port = await freePort();
    // Streams of its own: the worker processes of the tests above still read this file's.
    const keys = createKeys({ ...t.config, pipelinePrefix: `${t.config.pipelinePrefix}api-only:` });
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'serve', '--api-only', '--no-reset', '--port', String(port)], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: testEnv({ AGENTMEM_LOG_LEVEL: 'info', AGENTMEM_HOST: '127.0.0.1', AGENTMEM_PIPELINE_PREFIX: `${t.config.pipelinePrefix}api-only:` }),
    });
    children.push(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const base = `http://127.0.0.1:${port}`;
    await until(async () => (await fetch(`${base}/readyz`).catch(() => undefined))?.status === 200, 30_000);
    // It embeds only /v1/recall queries, one text at a time: one session, one copy of the weights.
    expect(stderr).toMatch(/"event":"embedder.loaded".*"sessions":1,/);
    const recall = await fetch(`${base}/v1/recall`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'anything', user: 'api-only' }) });
    expect(recall.status).toBe(200);
    const posted = await fetch(`${base}/v1/threads/api-only-1/turns`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content: 'Queued for a worker process.' }) });
    expect(posted.status).toBe(202);
    const { turn_id: turnId } = (await posted.json()) as { turn_id: string };
    await new Promise((r) => setTimeout(r, 500));
    expect((await readTurn(t.redis, keys, t.longTerm, turnId))?.status).toBe('queued');
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  }, 60_000);
});
