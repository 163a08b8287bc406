import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTiers } from '../src/agentmem.js';
import { TurnWaiter } from '../src/pipeline/waiter.js';
import { connectRedis } from '../src/redis/connection.js';
import { agentmemEnv, canOwnRedis, killAll, ownRedis, spawnAgentmem, until, untilStatus, type AgentmemProcess, type OwnRedis } from './support/fleet.js';
import { freePort } from './support/ports.js';
import { isolatedConfig } from './support/redis.js';
import { openSse } from './support/sse.js';

/**
 * Redis loses everything while agentmem runs (restarted empty, FLUSHALL): with no agentmem
 * process restarted, the API, an embed-recall worker, a remember worker and a consolidator must
 * heal by themselves — consumer groups, the index, the turn waiter's and the expiry watcher's
 * subscriptions, the shared event read, the consolidation schedule — and /readyz must say so.
 * The recovery times are printed (`recovery:` lines) for the README.
 */

interface Fleet {
  redis: OwnRedis;
  api: AgentmemProcess;
  base: string;
  /** /readyz of every process: the API's and each worker's metrics port. */
  readyz: Record<string, string>;
  remember: AgentmemProcess;
  consolidator: AgentmemProcess;
}

interface Readiness {
  status: string;
  checks: Record<string, unknown>;
}

let fleet: Fleet;
/**
 * Every 202 of the load, with the time its request was sent: a request sent after a loss completed
 * reaches Redis after it, while one answered after the loss may have been accepted before it (its
 * turn lost with the rest).
 */
const accepted: { turnId: string; sentAt: number }[] = [];
let loadRunning = true;
let load: Promise<void> | undefined;

async function readiness(url: string): Promise<{ code: number; body: Readiness } | undefined> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  if (!res) return undefined;
  return { code: res.status, body: (await res.json()) as Readiness };
}

async function turnStatus(turnId: string): Promise<string | undefined> {
  const res = await fetch(`${fleet.base}/v1/turns/${turnId}`, { signal: AbortSignal.timeout(5000) }).catch(() => undefined);
  if (res?.status !== 200) return undefined;
  return ((await res.json()) as { status: string }).status;
}

async function postTurn(threadId: string, content: string, query = ''): Promise<Response | undefined> {
  return fetch(`${fleet.base}/v1/threads/${threadId}/turns${query}`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ content, user: 'healing' }), signal: AbortSignal.timeout(35_000),
  }).catch(() => undefined);
}

/** Two clients posting turns all along, outage or not; every 202 is remembered with its time. */
function startLoad(): Promise<void> {
  const client = async (c: number): Promise<void> => {
    for (let i = 0; loadRunning; i++) {
      const sentAt = Date.now();
      const res = await postTurn(`load-${c}-${i % 5}`, `Client ${c} note ${i}: the deploy of service ${i % 17} needs a review.`);
      if (res?.status === 202) accepted.push({ turnId: ((await res.json()) as { turn_id: string }).turn_id, sentAt });
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  return Promise.all([client(0), client(1)]).then(() => undefined);
}

/** Resolves with the time at which every process answers /readyz 200 with status "ready". */
async function untilAllReady(timeoutMs: number): Promise<number> {
  await until('every process to answer /readyz 200 "ready"', async () => {
    const answers = await Promise.all(Object.values(fleet.readyz).map(readiness));
    return answers.every((a) => a?.code === 200 && a.body.status === 'ready');
  }, timeoutMs, 100);
  return Date.now();
}

/** Resolves with the time at which the first turn accepted after `since` is done. */
async function untilFirstDoneAfter(since: number, timeoutMs: number): Promise<number> {
  let doneAt = 0;
  await until('a turn accepted after the loss to be done', async () => {
    const fresh = accepted.filter((t) => t.sentAt > since).slice(0, 20);
    for (const t of fresh) if ((await turnStatus(t.turnId)) === 'done') doneAt = Date.now();
    return doneAt > 0;
  }, timeoutMs, 50);
  return doneAt;
}

/** Every turn accepted after `since` (and a few more after now) ends up done. */
async function expectAllDoneAfter(since: number): Promise<void> {
  const target = accepted.length + 10;
  await until('ten more turns to be accepted', () => accepted.length >= target, 20_000);
  const fresh = accepted.filter((t) => t.sentAt > since);
  await until(`all ${fresh.length} turns accepted after the loss to be done`, async () => {
    const statuses = await Promise.all(fresh.map((t) => turnStatus(t.turnId)));
    return statuses.every((s) => s === 'done');
  }, 30_000, 250);
}

/** The consolidator runs scheduled passes again: its schedule is back (BullMQ's `repeat` set) and a pass finished after `since`. */
async function untilConsolidating(since: number): Promise<void> {
  await until('the consolidation schedule to be back and a pass to finish', async () =>
    (await fleet.redis.client.zscore('agentmem:bull:consolidate:repeat', 'consolidate-every')) !== null &&
    fleet.consolidator.logs.some((l) => l.event === 'consolidate.pass_done' && Date.parse(String(l.ts)) > since), 20_000);
}

describe.skipIf(!canOwnRedis())('self-healing after Redis loses its data', () => {
  beforeAll(async () => {
    const redis = await ownRedis();
    const [apiPort, embedPort, rememberPort, consolidatorPort] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    // Episodic memories live 3 s, so that expiries (heard over Pub/Sub) happen within the test.
    const env = (extra: Record<string, string>) => agentmemEnv(redis.url, { AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_EPISODIC_TTL_SECONDS: '3', ...extra });
    const api = spawnAgentmem(['serve', '--api-only', '--no-reset', '--port', String(apiPort)], env({}));
    spawnAgentmem(['worker', 'embed-recall'], env({ AGENTMEM_METRICS_PORT: String(embedPort), AGENTMEM_CONSUMER_NAME: 'embed-1' }));
    const remember = spawnAgentmem(['worker', 'remember'], env({ AGENTMEM_METRICS_PORT: String(rememberPort), AGENTMEM_CONSUMER_NAME: 'remember-1' }));
    const consolidator = spawnAgentmem(['worker', 'consolidator'], env({
      AGENTMEM_METRICS_PORT: String(consolidatorPort), AGENTMEM_CONSUMER_NAME: 'consolidator-1', AGENTMEM_CONSOLIDATE_INTERVAL_MS: '1000',
    }));
    const base = `http://127.0.0.1:${apiPort}`;
    fleet = {
      redis, api, base, remember, consolidator,
      readyz: {
        api: `${base}/readyz`,
        'embed-recall': `http://127.0.0.1:${embedPort}/readyz`,
        remember: `http://127.0.0.1:${rememberPort}/readyz`,
        consolidator: `http://127.0.0.1:${consolidatorPort}/readyz`,
      },
    };
    await Promise.all(Object.values(fleet.readyz).map((url) => untilStatus(url, 200, 60_000)));
    await untilAllReady(30_000);
    load = startLoad();
  }, 90_000);

  afterAll(async () => {
    loadRunning = false;
    await load;
    killAll();
    await fleet?.redis.stop();
  });

  it('Redis restarted empty under load: new turns finish, live events and expiries flow again, /readyz is "ready" on every process', async () => {
    await until('turns to flow', async () => accepted.length >= 10 && (await turnStatus(accepted[5]!.turnId)) === 'done', 30_000);
    const thread = await openSse(`${fleet.base}/v1/threads/heal-sse/events`);
    const memories = await openSse(`${fleet.base}/v1/memories/events`);
    await postTurn('heal-sse', 'Before the restart: the user prefers tea.', '?wait=20000');
    await thread.until((events) => events.some((e) => e.action === 'turn_appended:user'));

    const lostAt = Date.now();
    // Down long enough for every process to notice (the API says so), then back without its data.
    await fleet.redis.kill();
    await until('the API to report Redis unreachable', async () => (await readiness(fleet.readyz.api!))?.code === 503, 20_000, 100);
    await fleet.redis.restart({ empty: true });
    const upAt = Date.now();
    const doneAt = await untilFirstDoneAfter(upAt, 30_000);
    const readyAt = await untilAllReady(30_000);
    console.log(`recovery: Redis restarted empty (down ${upAt - lostAt} ms): first turn accepted afterwards done ${doneAt - upAt} ms, every /readyz "ready" ${readyAt - upAt} ms after it was back`);

    // The turn waiter hears finished turns again: ?wait answers with the finished turn.
    const waited = await postTurn('heal-sse', 'After the restart: the user now prefers coffee.', '?wait=20000');
    expect(waited?.status).toBe(200);
    const turnId = ((await waited!.json()) as { turn_id: string; status: string }).turn_id;
    // The SSE clients opened before the restart get what was written after it.
    await thread.until((events) => events.some((e) => e.action === 'turn_accepted' && e.detail.includes(turnId)));
    await memories.until((events) => events.some((e) => e.action === 'memory_written' && e.detail.includes(turnId)));
    // The expiry watcher hears Redis again: a memory written after the restart is reported expired.
    const written = memories.events.find((e) => e.action === 'memory_written' && e.detail.includes(turnId))!;
    const memoryId = (JSON.parse(written.detail) as { memory_id: string }).memory_id;
    await memories.until((events) => events.some((e) => e.action === 'memory_expired' && e.detail.includes(memoryId)), 20_000);
    thread.close();
    memories.close();

    const recall = await fetch(`${fleet.base}/v1/recall`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'coffee', user: 'healing' }) });
    expect(recall.status).toBe(200);
    await untilConsolidating(upAt);
    await expectAllDoneAfter(upAt);
  }, 120_000);

  it('FLUSHALL under load: new turns finish and /readyz is "ready" on every process', async () => {
    await until('turns to flow', async () => (await turnStatus(accepted.at(-5)!.turnId)) === 'done', 30_000);
    const thread = await openSse(`${fleet.base}/v1/threads/heal-flush/events`);
    await fleet.redis.client.flushall();
    const flushedAt = Date.now();
    const doneAt = await untilFirstDoneAfter(flushedAt, 30_000);
    const readyAt = await untilAllReady(30_000);
    console.log(`recovery: FLUSHALL: first turn accepted afterwards done ${doneAt - flushedAt} ms, every /readyz "ready" ${readyAt - flushedAt} ms after it`);

    const waited = await postTurn('heal-flush', 'After the flush: the user moved to Lisbon.', '?wait=20000');
    expect(waited?.status).toBe(200);
    const turnId = ((await waited!.json()) as { turn_id: string }).turn_id;
    await thread.until((events) => events.some((e) => e.action === 'turn_accepted' && e.detail.includes(turnId)));
    thread.close();
    const recall = await fetch(`${fleet.base}/v1/recall`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: 'Lisbon', user: 'healing' }) });
    expect(recall.status).toBe(200);
    await untilConsolidating(flushedAt);
    await expectAllDoneAfter(flushedAt);
  }, 120_000);

  it("a worker's /readyz fails while its own loop cannot read, and recovers when it reads again", async () => {
    // An ACL change takes XREADGROUP away: the workers' loops fail while every check still answers.
    await fleet.redis.client.call('ACL', 'SETUSER', 'default', '-xreadgroup');
    try {
      let answer: { code: number; body: Readiness } | undefined;
      await until("the embed-recall worker's /readyz to fail on its stalled loop", async () => {
        answer = await readiness(fleet.readyz['embed-recall']!);
        return answer?.code === 503;
      }, 30_000, 250);
      expect(answer?.body).toMatchObject({
        status: 'not ready',
        checks: { redis: 'ok', index: 'ok', workers: { 'embed-recall': expect.stringMatching(/^stalled: no read for \d+ ms \(last error: NOPERM/) } },
      });
    } finally {
      await fleet.redis.client.call('ACL', 'SETUSER', 'default', '+xreadgroup');
    }
    await untilAllReady(20_000);
  }, 60_000);

  it('/readyz names a stage whose workers are gone (degraded, still 200) and turns are still accepted', async () => {
    fleet.remember.kill('SIGKILL');
    await fleet.remember.exited;
    let answer: { code: number; body: Readiness } | undefined;
    await until('the API to report the remember stage without a live consumer', async () => {
      answer = await readiness(fleet.readyz.api!);
      return answer?.body.status === 'degraded';
    }, 30_000, 250);
    expect(answer?.code).toBe(200);
    expect(answer?.body.checks.stages).toEqual({ 'embed-recall': 'ok', remember: expect.stringMatching(/^no live consumer/) });
    // The embed-recall worker itself is fine: its own loop reads, so it stays in service.
    const worker = await readiness(fleet.readyz['embed-recall']!);
    expect(worker?.code).toBe(200);
    expect(worker?.body.checks).toMatchObject({ workers: { 'embed-recall': 'ok' }, stages: { remember: expect.stringMatching(/^no live consumer/) } });
    const metrics = await (await fetch(`${fleet.base}/metrics`)).text();
    expect(metrics).toContain('agentmem_stage_live_consumers{stage="remember"} 0');
    expect(metrics).toContain('agentmem_stage_live_consumers{stage="embed-recall"} 1');
    const posted = await postTurn('heal-degraded', 'Accepted while no remember worker runs.');
    expect(posted?.status).toBe(202);
  }, 60_000);
});

describe.skipIf(!canOwnRedis())('the turn waiter', () => {
  it('subscribes again on a later wait when its first subscribe failed because Redis was down', async () => {
    const server = await ownRedis();
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    redis.on('error', () => undefined);
    const tiers = createTiers(redis, isolatedConfig({ redisUrl: server.url }));
    const waiter = new TurnWaiter(redis, tiers.keys, tiers.longTerm);
    try {
      await server.kill();
      await expect(waiter.waitFor('0123456789ab', 100)).rejects.toThrow();
      await server.restart();
      await until('Redis to answer again', async () => (await redis.ping().catch(() => '')) === 'PONG', 10_000);
      const turnKey = tiers.keys.turn('0123456789ab');
      await redis.hset(turnKey, 'turn_id', '0123456789ab', 'thread_id', 'waiter-1', 'status', 'queued', 'accepted_ts', '1');
      const waiting = waiter.waitFor('0123456789ab', 30_000);
      // Finished the way the stage scripts finish a turn: the hash, then the announcement.
      await until('the waiter to listen', async () => ((await redis.call('PUBSUB', 'NUMSUB', tiers.keys.turnDoneChannel)) as [string, number])[1] === 1, 10_000);
      await redis.hset(turnKey, 'status', 'done');
      await redis.publish(tiers.keys.turnDoneChannel, '0123456789ab');
      expect((await waiting)?.status).toBe('done');
    } finally {
      await waiter.close();
      redis.disconnect();
      await server.stop();
    }
  }, 30_000);
});
