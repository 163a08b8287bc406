import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApp } from '../src/http/app.js';
import { openTiers, type TestTiers } from './support/redis.js';

let t: TestTiers;
let server: Server;
let base: string;
beforeAll(async () => {
  t = await openTiers();
  server = createApp(t).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await t.cleanup();
});

describe('health endpoints', () => {
  it('/healthz answers while the process lives', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with Redis, both modules and the index, and 503 naming the index once it is gone', async () => {
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', checks: { redis: 'ok', index: 'ok' } });

    await t.redis.call('FT.DROPINDEX', t.config.indexName);
    const notReady = await fetch(`${base}/readyz`);
    expect(notReady.status).toBe(503);
    const body = (await notReady.json()) as { checks: Record<string, string> };
    expect(body.checks.redis).toBe('ok');
    expect(body.checks.index).toMatch(/^missing/);
    await t.longTerm.ensureIndex();
  });
});
