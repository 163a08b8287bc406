import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config.js';
import { DurabilityError } from '../src/errors.js';
import { createKeys } from '../src/keys.js';
import { silentLogger } from '../src/log.js';
import { Ingest } from '../src/pipeline/ingest.js';
import { startRedis } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import { Durability, type DurabilityMode } from '../src/redis/durability.js';
import { agentmemEnv, canOwnRedis, ownRedis, spawnAgentmem, type OwnRedis } from './support/fleet.js';
import { freePort } from './support/ports.js';
import { connect } from './support/redis.js';

const keys = createKeys({ ...DEFAULT_CONFIG, pipelinePrefix: 'durability-test:' });
const open = (redis: Redis, mode: DurabilityMode): Promise<Durability> => Durability.open(redis, { mode, fenceKey: keys.durabilityFence, log: silentLogger });
const turn = (i: number) => ({
  threadId: `durable-${i % 4}`, role: 'user' as const, content: `turn ${i}`, user: 'u', namespace: 'n', agent: 'a', remember: 'skip' as const, k: 5, threshold: 0.5,
});
const waitaofCalls = async (redis: Redis): Promise<number> => Number(/cmdstat_waitaof:calls=(\d+)/.exec(await redis.info('commandstats'))?.[1] ?? 0);

describe('against the suite Redis, which keeps no append-only file', () => {
  let redis: Redis;
  beforeAll(() => {
    redis = connect();
  });
  afterAll(async () => {
    await redis.quit();
  });

  it('auto: runs, naming the risk and the setting that fixes it', async () => {
    const durability = await open(redis, 'auto');
    expect(durability.confirmation).toBe('none');
    expect(durability.risk).toMatch(/appendonly no.*set appendonly yes/);
    expect(await durability.check()).toMatchObject({ atRisk: true, detail: expect.stringContaining('appendonly no') });
  });

  it('require: refuses to start, in a library and as `agentmem serve`', async () => {
    await expect(open(redis, 'require')).rejects.toThrow(DurabilityError);
    const serve = spawnAgentmem(['serve', '--port', '0'], agentmemEnv(inject('redisUrl'), { AGENTMEM_DURABILITY: 'require' }));
    const { code } = await serve.exited;
    expect(code).not.toBe(0);
    expect(serve.stderr()).toMatch(/AGENTMEM_DURABILITY=require: Redis runs without an append-only file \(appendonly no\)/);
  });
});

describe.skipIf(!canOwnRedis())('the embedded Redis', () => {
  it('keeps the data of a folder from before the append-only file (dump.rdb only), then appends to an AOF', async () => {
    const installation = inject('redisInstallation');
    if (!installation) throw new Error('needs the provisioned Redis');
    const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-upgrade-'));
    try {
      const port = await freePort();
      const old = await startRedis(installation, { port, dataDir, persist: false, log: silentLogger });
      const before = connectRedis(old.url);
      await before.set('kept', 'from the snapshot');
      await before.save();
      await before.quit();
      await old.stop();
      expect(existsSync(join(dataDir, 'appendonlydir'))).toBe(false);

      const upgraded = await startRedis(installation, { port, dataDir, persist: true, log: silentLogger });
      const after = connectRedis(upgraded.url);
      try {
        expect(await after.get('kept')).toBe('from the snapshot');
        expect(await after.config('GET', 'appendonly')).toEqual(['appendonly', 'yes']);
        expect(await after.config('GET', 'appendfsync')).toEqual(['appendfsync', 'always']);
        expect(existsSync(join(dataDir, 'appendonlydir'))).toBe(true);
      } finally {
        await after.quit();
        await upgraded.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe.skipIf(!canOwnRedis())('against a Redis of its own', () => {
  let server: OwnRedis;
  let admin: Redis;
  const clients: Redis[] = [];
  const client = (user?: string): Redis => {
    const url = new URL(server.url);
    if (user) {
      url.username = user;
      url.password = 'pw';
    }
    const c = connectRedis(url.toString());
    clients.push(c);
    return c;
  };
  beforeAll(async () => {
    server = await ownRedis();
    admin = server.client;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.quit().catch(() => undefined)));
    await server?.stop();
  });

  it('with appendfsync always (as agentmem starts Redis), relies on the reply: Redis fsyncs before it answers', async () => {
    const durability = await open(client(), 'require');
    expect(durability.confirmation).toBe('reply');
    expect(durability.risk).toBeUndefined();
    expect(await durability.check()).toEqual({ atRisk: false, detail: expect.stringContaining('appendfsync always') });
  });

  it('with appendfsync everysec, confirms each acceptance with WAITAOF on a connection of its own, one WAITAOF for the turns of one moment', async () => {
    await admin.config('SET', 'appendfsync', 'everysec');
    try {
      const redis = client();
      const durability = await open(redis, 'require');
      expect(durability.confirmation).toBe('waitaof');
      expect(durability.writer).not.toBe(redis);
      const ingest = new Ingest(redis, keys, DEFAULT_CONFIG, durability);
      const before = await waitaofCalls(admin);
      const accepted = await Promise.all(Array.from({ length: 40 }, (_, i) => ingest.accept(turn(i))));
      const calls = (await waitaofCalls(admin)) - before;
      expect(accepted.every((a) => a.created)).toBe(true);
      expect(calls).toBeGreaterThanOrEqual(1);
      expect(calls).toBeLessThan(40);
      expect(durability.unconfirmed).toBe(0);
      await durability.close();

      // A process that started on `always` and sees the server changed under it says so.
      await admin.config('SET', 'appendfsync', 'always');
      const started = await open(client(), 'auto');
      await admin.config('SET', 'appendfsync', 'everysec');
      expect(await started.check()).toMatchObject({ atRisk: true, detail: expect.stringMatching(/restart agentmem/) });
    } finally {
      await admin.config('SET', 'appendfsync', 'always');
    }
  });

  it('with appendfsync no, or AGENTMEM_DURABILITY=off under everysec, says acknowledged turns are at risk', async () => {
    try {
      await admin.config('SET', 'appendfsync', 'no');
      await expect(open(client(), 'require')).rejects.toThrow(/appendfsync no/);
      await admin.config('SET', 'appendfsync', 'everysec');
      const off = await open(client(), 'off');
      expect(off.confirmation).toBe('none');
      expect(off.risk).toMatch(/AGENTMEM_DURABILITY=off/);
    } finally {
      await admin.config('SET', 'appendfsync', 'always');
    }
  });

  it('reads INFO when CONFIG is denied (managed Redis), and falls back to no confirmation when WAITAOF is denied', async () => {
    await admin.call('ACL', 'SETUSER', 'noconfig', 'on', '>pw', '~*', '&*', '+@all', '-config');
    await admin.call('ACL', 'SETUSER', 'nowaitaof', 'on', '>pw', '~*', '&*', '+@all', '-config', '-waitaof');
    const managed = await open(client('noconfig'), 'require');
    expect(managed.confirmation).toBe('waitaof');
    await managed.close();
    const denied = await open(client('nowaitaof'), 'auto');
    expect(denied.confirmation).toBe('none');
    expect(denied.risk).toMatch(/refused WAITAOF/);
    await denied.close();
  });
});
