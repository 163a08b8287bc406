import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createTiers } from '../src/agentmem.js';
import { EmbedderPool } from '../src/embedder/pool.js';
import { ThreadedEmbedder } from '../src/embedder/threaded.js';
import { createOpsApp } from '../server/http/app.js';
import { silentLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { startRedis, type RunningRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import { freePort } from './support/ports.js';
import { isolatedConfig } from './support/redis.js';
import { startTestService, type TestService } from './support/service.js';

/** The value of one sample line of a Prometheus exposition, 0 when absent. */
function sample(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('/metrics on the API', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService();
  });
  afterAll(async () => {
    await s.stop();
  });

  it('exposes the named series, and they move when turns flow', async () => {
    const before = await (await s.get('/metrics')).text();
    for (const name of ['agentmem_turns_ingested_total', 'agentmem_stage_duration_seconds', 'agentmem_batch_size', 'agentmem_recall_hits', 'agentmem_recall_distance',
      'agentmem_memory_writes_total', 'agentmem_consolidator_merges_total', 'agentmem_stream_length', 'agentmem_stream_pending', 'agentmem_stream_lag',
      'agentmem_deadletter_entries', 'agentmem_errors_total', 'process_cpu_seconds_total', 'nodejs_eventloop_lag_seconds']) {
      expect(before).toContain(`# TYPE ${name} `);
    }
    await s.post('/v1/threads/metrics-1/turns?wait=10000', { content: 'The user likes hiking in the Alps.', remember: 'semantic' });
    await s.post('/v1/threads/metrics-1/turns?wait=10000', { content: 'The user likes hiking in the Alps.', remember: 'semantic' });
    const after = await (await s.get('/metrics')).text();
    const moved = (series: string) => sample(after, series) - sample(before, series);
    expect(moved('agentmem_turns_ingested_total{result="accepted"}')).toBe(2);
    expect(moved('agentmem_memory_writes_total{outcome="written"}')).toBe(1);
    expect(moved('agentmem_memory_writes_total{outcome="deduped"}')).toBe(1);
    expect(moved('agentmem_stage_duration_seconds_count{stage="end_to_end"}')).toBe(2);
    expect(moved('agentmem_stage_duration_seconds_count{stage="embed"}')).toBeGreaterThanOrEqual(1);
    expect(moved('agentmem_recall_distance_count')).toBe(1);
    expect(sample(after, `agentmem_stream_pending{stream="${s.keys.ingestStream}",group="embed-recall"}`)).toBe(0);
  });
});

describe('/readyz', () => {
  let server: RunningRedis;
  let dataDir: string;
  let port: number;
  beforeAll(async () => {
    const installation = inject('redisInstallation');
    if (!installation) return;
    dataDir = await mkdtemp(join(tmpdir(), 'agentmem-readyz-'));
    port = await freePort();
    server = await startRedis(installation, { port, dataDir, persist: false, log: silentLogger });
  });
  afterAll(async () => {
    await server?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('fails while Redis is stopped and recovers when it is back', async (ctx) => {
    const installation = inject('redisInstallation');
    if (!installation) return ctx.skip(); // needs the provisioned binary to stop and restart a server
    const config = isolatedConfig({ redisUrl: server.url });
    const redis = connectRedis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
    redis.on('error', () => undefined);
    const tiers = createTiers(redis, config);
    await tiers.longTerm.ensureIndex();
    const http = createOpsApp({ redis, keys: tiers.keys, longTerm: tiers.longTerm }, new Metrics()).listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/readyz`;
    try {
      expect((await fetch(url)).status).toBe(200);
      await server.stop();
      const down = await fetch(url);
      expect(down.status).toBe(503);
      expect(((await down.json()) as { checks: { redis: string } }).checks.redis).toMatch(/^unreachable/);
      server = await startRedis(installation, { port, dataDir, persist: false, log: silentLogger });
      // The client reconnects by itself; the fresh server (no persistence) has no index, and the
      // check recreates it.
      const deadline = Date.now() + 10_000;
      let checks: Record<string, unknown> = {};
      while (Date.now() < deadline && checks.redis !== 'ok') {
        checks = ((await (await fetch(url)).json()) as { checks: Record<string, unknown> }).checks;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(checks).toMatchObject({ redis: 'ok', index: 'ok' });
      expect(await tiers.longTerm.ensureIndex()).toBe(false);
      expect((await fetch(url)).status).toBe(200);
    } finally {
      await new Promise((r) => http.close(r));
      redis.disconnect();
    }
  });

  it('fails, naming the embedder, once every embedder session has died', async () => {
    const config = isolatedConfig();
    const redis = connectRedis(config.redisUrl as string);
    const tiers = createTiers(redis, config);
    await tiers.longTerm.ensureIndex();
    const sessions = await Promise.all([ThreadedEmbedder.load(inject('modelDir'), 1), ThreadedEmbedder.load(inject('modelDir'), 1)]);
    const http = createOpsApp({ redis, keys: tiers.keys, longTerm: tiers.longTerm, embedder: new EmbedderPool(sessions) }, new Metrics()).listen(0, '127.0.0.1');
    await new Promise((r) => http.once('listening', r));
    const url = `http://127.0.0.1:${(http.address() as { port: number }).port}/readyz`;
    try {
      // No worker runs on this test's streams: ready for traffic, degraded.
      expect(await (await fetch(url)).json()).toMatchObject({ status: 'degraded', checks: { embedder: 'ok' } });
      await sessions[0].close();
      expect((await fetch(url)).status).toBe(200); // one session left still embeds
      await sessions[1].close();
      const down = await fetch(url);
      expect(down.status).toBe(503);
      expect(await down.json()).toMatchObject({ checks: { redis: 'ok', index: 'ok', embedder: 'failed: embedder closed' } });
    } finally {
      await new Promise((r) => http.close(r));
      await redis.call('FT.DROPINDEX', config.indexName);
      redis.disconnect();
    }
  });
});
