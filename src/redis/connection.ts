import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { Redis, type RedisOptions } from 'ioredis';
import type { Config } from '../config.js';
import { RedisCapabilityError, ValidationError } from '../errors.js';
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
export function connectService(url: string, base: RedisOptions = {}): Redis {
  return connectRedis(url, {
    ...base,
    commandTimeout: COMMAND_TIMEOUT_MS,
    connectTimeout: COMMAND_TIMEOUT_MS,
    maxRetriesPerRequest: 1,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  });
}

type TlsSettings = Pick<Config, 'redisUrl' | 'redisTlsCa' | 'redisTlsCert' | 'redisTlsKey'>;

/**
 * What every connection to REDIS_URL needs beyond the URL (which carries the user, password, host
 * and db): for rediss://, the CA to trust and the client certificate. Every other connection is
 * made with `.duplicate()`, which copies these. A TLS file set for a plain redis:// URL is refused
 * rather than ignored: the operator meant the traffic to be encrypted.
 */
export function redisConnectionOptions(config: TlsSettings): RedisOptions {
  const files = { AGENTMEM_REDIS_TLS_CA: config.redisTlsCa, AGENTMEM_REDIS_TLS_CERT: config.redisTlsCert, AGENTMEM_REDIS_TLS_KEY: config.redisTlsKey };
  const given = Object.entries(files).filter(([, path]) => path !== undefined);
  if (given.length === 0) return {};
  const [firstGiven] = given[0] as [string, string];
  if (!/^rediss:\/\//i.test(config.redisUrl ?? '')) throw new ValidationError(firstGiven, 'is only used with a rediss:// REDIS_URL (TLS)');
  if ((config.redisTlsCert === undefined) !== (config.redisTlsKey === undefined)) {
    throw new ValidationError(config.redisTlsCert === undefined ? 'AGENTMEM_REDIS_TLS_KEY' : 'AGENTMEM_REDIS_TLS_CERT', 'a client certificate needs both AGENTMEM_REDIS_TLS_CERT and AGENTMEM_REDIS_TLS_KEY');
  }
  const read = (name: string, path: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ValidationError(name, `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  };
  const tls: ConnectionOptions = {};
  if (config.redisTlsCa !== undefined) tls.ca = read('AGENTMEM_REDIS_TLS_CA', config.redisTlsCa);
  if (config.redisTlsCert !== undefined) tls.cert = read('AGENTMEM_REDIS_TLS_CERT', config.redisTlsCert);
  if (config.redisTlsKey !== undefined) tls.key = read('AGENTMEM_REDIS_TLS_KEY', config.redisTlsKey);
  return { tls };
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
