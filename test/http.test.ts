import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.js';

let s: TestService;
beforeAll(async () => {
  s = await startTestService({}, { workers: false });
});
afterAll(async () => {
  await s.stop();
});

describe('health endpoints', () => {
  it('/healthz answers while the process lives', async () => {
    const res = await s.get('/healthz');
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with Redis, both modules, the index and the embedder, says degraded while no worker consumes a stage, and recreates a dropped index', async () => {
    const ready = await s.get('/readyz');
    expect(ready.status).toBe(200);
    // The suite's Redis keeps no append-only file: ready, with the risk said (AGENTMEM_DURABILITY=auto).
    expect(await ready.json()).toEqual({
      status: 'degraded',
      checks: {
        redis: 'ok', index: 'ok', embedder: 'ok', stages: { 'embed-recall': expect.stringMatching(/^no consumer/), remember: expect.stringMatching(/^no consumer/) },
        durability: expect.stringMatching(/^at risk: Redis runs without an append-only file \(appendonly no\)/),
      },
    });

    await s.redis.call('FT.DROPINDEX', s.config.indexName);
    const healed = await s.get('/readyz');
    expect(healed.status).toBe(200);
    expect(((await healed.json()) as { checks: Record<string, unknown> }).checks.index).toBe('ok');
    expect(await s.longTerm.ensureIndex()).toBe(false);
  });

  it('answers an unknown route with a JSON 404', async () => {
    const res = await s.get('/v1/nothing-here');
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: { message: 'route GET /v1/nothing-here not found' } });
  });
});
