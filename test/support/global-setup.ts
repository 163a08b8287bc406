import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import { DEFAULT_CONFIG, modelDirOf } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { ensureModel } from '../../src/provision/model.js';
import { findOrProvisionRedis, startRedis, type RedisInstallation } from '../../src/provision/redis-server.js';
import { resolveRedis } from '../../src/redis/resolve.js';
import { freePort } from './ports.js';

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
    modelDir: string;
    redisInstallation: RedisInstallation | null;
  }
}

/**
 * One real Redis with Search + JSON for the whole run: REDIS_URL when given (checked for both
 * modules), otherwise the project's provisioned server on a free port with a throwaway data dir.
 * Tests isolate themselves with unique key prefixes and index names.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const log = createLogger('warn');
  const modelDir = modelDirOf(DEFAULT_CONFIG);
  await ensureModel(modelDir, log);
  project.provide('modelDir', modelDir);

  if (process.env.REDIS_URL) {
    const server = await resolveRedis({ ...DEFAULT_CONFIG, redisUrl: process.env.REDIS_URL }, log);
    project.provide('redisUrl', server.url);
    project.provide('redisInstallation', null);
    return async () => undefined;
  }
  const installation = await findOrProvisionRedis(DEFAULT_CONFIG.cacheDir, log);
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-test-redis-'));
  const running = await startRedis(installation, { port: await freePort(), dataDir, persist: false, log });
  project.provide('redisUrl', running.url);
  project.provide('redisInstallation', installation);
  return async () => {
    await running.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
}
