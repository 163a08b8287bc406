import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MemoryRecord } from '../src/memory/long-term.js';
import { agentmemEnv, canOwnRedis, ownRedis, until, type OwnRedis } from './support/fleet.js';
import { call, callFailing, stdioClient, type StdioAgentmem } from './support/mcp.js';

/** Redis dies under `agentmem mcp`: tool calls fail as retryable tool errors, the server keeps serving, and works again once Redis is back. */

describe.skipIf(!canOwnRedis())('agentmem mcp while Redis is down', () => {
  let redis: OwnRedis;
  let mcp: StdioAgentmem;

  beforeAll(async () => {
    redis = await ownRedis();
    mcp = await stdioClient(agentmemEnv(redis.url, { AGENTMEM_API_ONLY: 'true', AGENTMEM_EMBED_THREADS: '1' }));
  });

  afterAll(async () => {
    await mcp?.client.close();
    await redis?.stop();
  });

  it('answers retryable tool errors while Redis is down, and the same calls succeed once it is back', async () => {
    const { memory_id: id } = await call<{ memory_id: string }>(mcp.client, 'remember', { text: 'The spare key is under the blue flower pot.' });
    await redis.kill('SIGKILL');

    for (const [tool, args] of [
      ['recall', { text: 'Where is the spare key?' }],
      ['remember', { text: 'The boiler was serviced in March.' }],
      ['list_memories', {}],
      ['new_thread', {}],
      ['forget', { memory_id: id }],
    ] as const) {
      const failed = await callFailing(mcp.client, tool, args);
      expect(failed.error, tool).toMatchObject({ retryable: true, retry_after_seconds: 1, message: expect.stringMatching(/^Redis is unavailable/) });
    }
    // A refused argument is still answered as such, without Redis.
    expect((await callFailing(mcp.client, 'recall', { text: '' })).error).toMatchObject({ field: 'text', retryable: false });
    expect(mcp.logs.some((l) => l.event === 'mcp.redis_unavailable')).toBe(true);

    await redis.restart();
    let recalled: MemoryRecord[] = [];
    // ioredis reconnects within a second or so; until then the call stays a retryable error.
    await until('recall to work again', async () => {
      const result = await mcp.client.callTool({ name: 'recall', arguments: { text: 'Where is the spare key?' } });
      if (!result.isError) recalled = (result.structuredContent as { memories: MemoryRecord[] }).memories;
      return !result.isError;
    }, 30_000, 200);
    expect(recalled.map((m) => m.id)).toEqual([id]);
  });
});
