import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { inject } from 'vitest';
import { createTiers, type MemoryTiers } from '../../src/agentmem.js';
import { DEFAULT_CONFIG, type Config } from '../../src/config.js';
import { connectRedis } from '../../src/redis/connection.js';

/** A config whose keys and index are this test's alone (the wire layout with a unique prefix). */
export function isolatedConfig(overrides: Partial<Config> = {}): Config {
  const tag = `t${randomBytes(4).toString('hex')}`;
  return {
    ...DEFAULT_CONFIG,
    redisUrl: inject('redisUrl'),
    indexName: `${tag}:agentmem:idx`,
    sessionPrefix: `${tag}:agent:session:`,
    memoryPrefix: `${tag}:agent:mem:`,
    eventsPrefix: `${tag}:agent:events:`,
    pipelinePrefix: `${tag}:agentmem:`,
    ...overrides,
  };
}

export function connect(): Redis {
  return connectRedis(inject('redisUrl'));
}

export interface TestTiers extends MemoryTiers {
  config: Config;
  /** Drops the index and every key under this test's prefixes, then disconnects. */
  cleanup(): Promise<void>;
}

export async function openTiers(overrides: Partial<Config> = {}): Promise<TestTiers> {
  const config = isolatedConfig(overrides);
  const redis = connect();
  const tiers = createTiers(redis, config);
  await tiers.longTerm.ensureIndex();
  return {
    ...tiers,
    config,
    cleanup: async () => {
      await redis.call('FT.DROPINDEX', config.indexName, 'DD').catch(() => undefined);
      for (const prefix of [config.sessionPrefix, config.memoryPrefix, config.eventsPrefix, config.pipelinePrefix]) {
        await deleteByPrefix(redis, prefix);
      }
      await redis.quit();
    },
  };
}

/** Keys under this test's prefixes (DBSIZE would count other test files' keys on the shared Redis). */
export async function countOwnKeys(t: TestTiers): Promise<number> {
  let count = 0;
  for (const prefix of [t.config.sessionPrefix, t.config.memoryPrefix, t.config.eventsPrefix, t.config.pipelinePrefix]) {
    let cursor = '0';
    do {
      const [next, keys] = await t.redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      count += keys.length;
      cursor = next;
    } while (cursor !== '0');
  }
  return count;
}

export async function deleteByPrefix(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.unlink(...keys);
    cursor = next;
  } while (cursor !== '0');
}
