import { Redis, type RedisOptions } from 'ioredis';
import { RedisCapabilityError } from '../errors.js';
import { pairs } from './reply.js';

/**
 * A connection speaking RESP2: FT.SEARCH and FT.INFO replies keep the flat-array shape the
 * reference demos and the Redis docs describe, whatever the server's default.
 */
export function connectRedis(url: string, options: RedisOptions = {}): Redis {
  return new Redis(url, { maxRetriesPerRequest: 3, protocol: 2, ...options });
}

/**
 * A service's connection (API and workers): while Redis is down or stalled a command fails
 * within COMMAND_TIMEOUT_MS instead of queueing, so a request gets its 503 in bounded time and
 * a worker's loop retries; reconnects are attempted every 100 ms, backing off to once a second.
 */
export const COMMAND_TIMEOUT_MS = 1500;
export function connectService(url: string): Redis {
  return connectRedis(url, {
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
}

/**
 * A connection of its own for blocking reads (XREADGROUP BLOCK, XREAD BLOCK): like `redis` but
 * without the command timeout, which would cut every read that blocks longer.
 */
export function blockingConnection(redis: Redis, options: RedisOptions = {}): Redis {
  return redis.duplicate({ commandTimeout: undefined, ...options });
}

/** Minimum module versions: vector KNN with DIALECT 2 (Search 2.4) and JSONPath `$` (JSON 2.0). */
const REQUIRED_MODULES = [
  { names: ['search', 'ft'], label: 'the Search module (2.4+)', minVersion: 20400 },
  { names: ['rejson', 'ReJSON'], label: 'the JSON module (2.0+)', minVersion: 20000 },
] as const;

export interface ModuleInfo {
  name: string;
  version: number;
}

export async function listModules(redis: Redis): Promise<ModuleInfo[]> {
  const reply = (await redis.call('MODULE', 'LIST')) as unknown[][];
  return reply.map((entry) => {
    const fields = pairs(entry);
    return { name: String(fields.get('name')), version: Number(fields.get('ver')) };
  });
}

/** Names every required module that is absent or too old; empty when this Redis can run agentmem. */
export function missingModules(modules: readonly ModuleInfo[]): string[] {
  return REQUIRED_MODULES.filter(
    (req) => !modules.some((m) => (req.names as readonly string[]).some((n) => n.toLowerCase() === m.name.toLowerCase()) && m.version >= req.minVersion),
  ).map((req) => req.label);
}

/** Throws RedisCapabilityError, naming what is missing, unless Redis has Search and JSON. */
export async function assertCapabilities(redis: Redis, url: string): Promise<ModuleInfo[]> {
  const modules = await listModules(redis);
  const missing = missingModules(modules);
  if (missing.length > 0) throw new RedisCapabilityError(redactUrl(url), missing);
  return modules;
}

/** A Redis URL fit for logs: the password replaced. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.toString();
  } catch {
    return '<unparseable REDIS_URL>';
  }
}
