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
 * linked in rather than downloaded again) and runs the workers; a second process reuses the
 * running server. Whichever quits first, the other keeps its Redis; the last one out stops it.
 */
/**
 * Stops an `agentmem mcp` the way its client would (SIGTERM; stdin closing takes the same path,
 * test/mcp.test.ts checks it), waiting for the end of its graceful shutdown however busy the
 * machine is: the SDK's own close() SIGKILLs a process still running 4 s after stdin closed.
 */
async function stop(mcp: StdioAgentmem): Promise<void> {
  if (mcp.pid !== null) process.kill(mcp.pid, 'SIGTERM');
  await until('agentmem mcp to finish its shutdown', () => mcp.logs.some((l) => l.event === 'shutdown.done'), 60_000, 50);
  await mcp.client.close();
}

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

  it('starts the embedded Redis, serves the tools through it, shares it with a second process that outlives the first, and the last one out stops it', async () => {
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

    // The agent that started Redis quits first: the other process keeps its Redis and its memories.
    await stop(first);
    expect(first.logs.find((l) => l.event === 'redis.left_running')).toMatchObject({ other_clients: expect.any(Number) });
    expect(await probeModules(url)).toEqual([]);
    const afterwards = await call<{ memories: { id: string }[] }>(second.client, 'recall', { text: 'What does Carol ride?' });
    expect(afterwards.memories.map((m) => m.id)).toContain(id);

    // The last agentmem process to leave stops it.
    await stop(second);
    await until('the embedded Redis to stop with the last process that used it', async () => (await probeModules(url as string)) === undefined, 30_000, 100);
    expect(second.logs.some((l) => l.event === 'redis.stopped')).toBe(true);

    // Started again from its data folder, with every write still there.
    const third = await stdioClient(env);
    opened.push(third);
    expect(third.logs.some((l) => l.event === 'redis.started')).toBe(true);
    const recalledAgain = await call<{ memories: { id: string }[] }>(third.client, 'recall', { text: 'How does Carol commute?' });
    expect(recalledAgain.memories.map((m) => m.id)).toContain(id);
    await stop(third);
    await until('the embedded Redis to stop with its only user', async () => (await probeModules(url as string)) === undefined, 30_000, 100);
  });
});
