import { join } from 'node:path';
import type { Config } from '../config.js';
import { ProvisionError, RedisUnreachableError } from '../errors.js';
import type { Logger } from '../log.js';
import { findOrProvisionRedis, probeModules, startRedis } from '../provision/redis-server.js';
import type { RedisOptions } from 'ioredis';
import { createKeys } from '../keys.js';
import { assertCapabilities, connectRedis, redactUrl, redisConnectionOptions } from './connection.js';
import { claimStarted, stopIfLast, stopStarted } from './embedded-sharing.js';

/** How long the first connection to REDIS_URL may take before start-up fails, naming the URL. */
const CONNECT_TIMEOUT_MS = 5000;

export interface ResolvedRedis {
  url: string;
  /** What every connection needs besides the URL (TLS material for rediss://); pass to connectRedis/connectService. */
  options: RedisOptions;
  /** `REDIS_URL`, `embedded (reused)` or `embedded (<where the binary came from>)`. */
  origin: string;
  /**
   * Stops an embedded server when no other client uses it (see embedded-sharing.ts): one this
   * process started, or one its starter left running for others. A REDIS_URL is never stopped.
   */
  stop(): Promise<void>;
}

/**
 * The Redis agentmem talks to: `REDIS_URL` when set (checked for both modules), else an embedded
 * server on 127.0.0.1:<embeddedRedisPort> — reused when one already answers there, otherwise
 * started from a Redis 8 on PATH or the Redis Stack provisioned into the cache folder.
 */
export async function resolveRedis(config: Config, log: Logger): Promise<ResolvedRedis> {
  if (config.redisUrl) {
    const options = redisConnectionOptions(config);
    const redis = connectRedis(config.redisUrl, { ...options, lazyConnect: true, maxRetriesPerRequest: 1, retryStrategy: () => null, connectTimeout: CONNECT_TIMEOUT_MS });
    // connect() rejects with a bare "Connection is closed."; the reason comes as an error event.
    let reason: Error | undefined;
    redis.on('error', (err: Error) => (reason ??= err));
    try {
      await redis.connect().catch((err: unknown) => {
        throw new RedisUnreachableError(redactUrl(config.redisUrl as string), reason ?? err);
      });
      await assertCapabilities(redis, config.redisUrl);
    } finally {
      redis.disconnect();
    }
    return { url: config.redisUrl, options, origin: 'REDIS_URL', stop: async () => undefined };
  }

  const url = `redis://127.0.0.1:${config.embeddedRedisPort}`;
  const missing = await probeModules(url);
  const leftRunning = createKeys(config).embeddedLeftRunning;
  if (missing?.length === 0) {
    log.info('redis.reused', { url });
    return { url, options: {}, origin: 'embedded (reused)', stop: () => stopIfLast(url, leftRunning, log) };
  }
  if (missing) {
    throw new ProvisionError(
      `${redactUrl(url)} is taken by a Redis that lacks ${missing.join(' and ')}; set AGENTMEM_REDIS_PORT (--redis-port) to a free port or REDIS_URL to a suitable server`,
    );
  }
  const installation = await findOrProvisionRedis(config.cacheDir, log);
  const running = await startRedis(installation, {
    port: config.embeddedRedisPort,
    dataDir: join(config.cacheDir, 'redis-data'),
    persist: true,
    log,
  });
  await claimStarted(url, leftRunning);
  return { url, options: {}, origin: `embedded (${installation.origin})`, stop: () => stopStarted(running, leftRunning, log) };
}
