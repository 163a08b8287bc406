import { existsSync } from 'node:fs';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config.js';
import { probeModules } from '../src/provision/redis-server.js';
import { connectRedis } from '../src/redis/connection.js';
import { canOwnRedis, until } from './support/fleet.js';
import { call, stdioClient, type StdioAgentmem } from './support/mcp.js';
import { freePort } from './support/ports.js';

/**
 * A local agent's one-line configuration: `agentmem mcp` with no REDIS_URL starts the embedded
 * Redis itself (on a port and in a cache folder of this test's own, with the provisioned server
 * linked in rather than downloaded again), runs the workers, and stops that Redis when its client
 * goes away; a second process at the same time reuses the running server instead of starting one.
 */
describe.skipIf(!canOwnRedis())('agentmem mcp without REDIS_URL', () => {
  const opened: StdioAgentmem[] = [];
  let cacheDir: string | undefined;
  let url: string | undefined;

  afterAll(async () => {
    for (const mcp of opened) await mcp.client.close();
    // A failed test must not leave its Redis behind.
    if (url && (await probeModules(url)) !== undefined) {
      const redis = connectRedis(url);
      await redis.call('SHUTDOWN', 'NOSAVE').catch(() => undefined);
      redis.disconnect();
    }
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  it('starts the embedded Redis, serves the tools through it, lets a second process reuse it, and stops it with the process that started it', async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'agentmem-mcp-embedded-'));
    const provisioned = join(DEFAULT_CONFIG.cacheDir, 'redis-stack');
    if (existsSync(provisioned)) await symlink(provisioned, join(cacheDir, 'redis-stack'));
    const port = await freePort();
    url = `redis://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      ...process.env, REDIS_URL: undefined, AGENTMEM_CACHE_DIR: cacheDir, AGENTMEM_REDIS_PORT: String(port), AGENTMEM_MODEL_DIR: inject('modelDir'),
      AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_EMBED_THREADS: '1', AGENTMEM_LOG_LEVEL: 'info', AGENTMEM_MCP_USER: 'carol',
    };

    const first = await stdioClient(env);
    opened.push(first);
    expect(first.logs.some((l) => l.event === 'redis.started')).toBe(true);
    const { memory_id: id } = await call<{ memory_id: string }>(first.client, 'remember', { text: 'Carol rides a green folding bike to work.' });
    const { thread_id: threadId } = await call<{ thread_id: string }>(first.client, 'new_thread', {});
    const turn = await call<{ status: string }>(first.client, 'add_turn', { thread_id: threadId, content: 'I need a new bell for my bike.' });
    expect(turn.status).toBe('done');

    const redis = connectRedis(url);
    try {
      expect(JSON.parse((await redis.call('JSON.GET', `agent:mem:${id}`, '$.user')) as string)).toEqual(['carol']);
      expect(await redis.hget(`agent:session:${threadId}`, 'turn_count')).toBe('1');
    } finally {
      redis.disconnect();
    }

    const second = await stdioClient(env);
    opened.push(second);
    expect(second.logs.some((l) => l.event === 'redis.reused')).toBe(true);
    const recalled = await call<{ memories: { id: string }[] }>(second.client, 'recall', { text: 'How does Carol get to the office?' });
    expect(recalled.memories.map((m) => m.id)).toContain(id);

    await second.client.close();
    expect(await probeModules(url)).toEqual([]);
    await first.client.close();
    await until('the embedded Redis to stop with the process that started it', async () => (await probeModules(url as string)) === undefined, 30_000, 100);
  });
});
