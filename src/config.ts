import { join } from 'node:path';
import { ValidationError } from './errors.js';
import { isLogLevel, type LogLevel } from './log.js';
import type { KnnTuning } from './memory/knn.js';
import { DEFAULT_CACHE_DIR } from './paths.js';
import { scopeValue } from './validate.js';
import { DURABILITY_MODES, type DurabilityMode } from './redis/durability.js';

export interface Config {
  /** Unset: use (or provision and start) the embedded Redis. */
  redisUrl: string | undefined;
  /** PEM files for a rediss:// REDIS_URL: the CA that signed the server's certificate, and a client certificate and key for mutual TLS. */
  redisTlsCa: string | undefined;
  redisTlsCert: string | undefined;
  redisTlsKey: string | undefined;
  embeddedRedisPort: number;
  cacheDir: string;
  /** Unset: `<cacheDir>/models`. */
  modelDir: string | undefined;
  host: string;
  port: number;
  indexName: string;
  sessionPrefix: string;
  memoryPrefix: string;
  eventsPrefix: string;
  sessionTtlSeconds: number;
  windowSize: number;
  episodicTtlSeconds: number;
  eventsMaxLen: number;
  dedupThreshold: number;
  recallThreshold: number;
  recallK: number;
  logLevel: LogLevel;
  noReset: boolean;
  pipelinePrefix: string;
  maxBacklog: number;
  batchSize: number;
  claimIdleMs: number;
  maxDeliveries: number;
  turnTtlSeconds: number;
  maxBodyBytes: number;
  consumerName: string | undefined;
  embedThreads: number;
  embedSessions: number;
  /** Unset: the dedup threshold. */
  consolidateThreshold: number | undefined;
  consolidateIntervalMs: number;
  metricsPort: number;
  apiOnly: boolean;
  shutdownTimeoutMs: number;
  durability: DurabilityMode;
  auth: AuthMode;
  /** An API key token installed at start as an admin key bound to `*` (unless its id exists). */
  bootstrapAdminKey: string | undefined;
  metricsPublic: boolean;
  keyRatePerSecond: number;
  keyRateBurst: number;
  authFailuresPerMinute: number;
  authFailureBurst: number;
  knnEfRuntime: number;
  knnBruteForceMax: number;
  searchTimeoutMs: number;
  /** `agentmem mcp` (stdio): the user and namespace every tool acts in. */
  mcpUser: string;
  mcpNamespace: string;
}

export const AUTH_MODES = ['off', 'keys', 'off-insecure'] as const;
export type AuthMode = (typeof AUTH_MODES)[number];

type Parse<T> = (raw: string, name: string) => T;

interface Setting<K extends keyof Config = keyof Config> {
  key: K;
  env: string;
  flag: string;
  help: string;
  defaultValue: Config[K];
  parse: Parse<Config[K]>;
}

const text: Parse<string> = (raw, name) => {
  if (raw.trim() === '') throw new ValidationError(name, 'must not be empty');
  return raw;
};
const optionalText: Parse<string | undefined> = (raw) => (raw.trim() === '' ? undefined : raw);
const boolean: Parse<boolean> = (raw, name) => {
  if (['1', 'true', 'yes', 'on', ''].includes(raw.toLowerCase())) return true;
  if (['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false;
  throw new ValidationError(name, `expected true or false, got ${JSON.stringify(raw)}`);
};
function integer(min: number, max: number): Parse<number> {
  return (raw, name) => {
    const value = Number(raw);
    if (!Number.isInteger(value) || value < min || value > max) {
      throw new ValidationError(name, `expected an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    }
    return value;
  };
}
function distance(raw: string, name: string): number {
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value) || value < 0 || value > 2) {
    throw new ValidationError(name, `expected a cosine distance in [0, 2], got ${JSON.stringify(raw)}`);
  }
  return value;
}
const logLevel: Parse<LogLevel> = (raw, name) => {
  if (!isLogLevel(raw)) throw new ValidationError(name, `expected debug, info, warn or error, got ${JSON.stringify(raw)}`);
  return raw;
};

const durabilityMode: Parse<DurabilityMode> = (raw, name) => {
  if (!(DURABILITY_MODES as readonly string[]).includes(raw)) throw new ValidationError(name, `expected ${DURABILITY_MODES.join(', ')}, got ${JSON.stringify(raw)}`);
  return raw as DurabilityMode;
};

const authMode: Parse<AuthMode> = (raw, name) => {
  if (!(AUTH_MODES as readonly string[]).includes(raw)) throw new ValidationError(name, `expected off, keys or off-insecure, got ${JSON.stringify(raw)}`);
  return raw as AuthMode;
};

function scopeName(field: 'user' | 'namespace'): Parse<string> {
  return (raw, name) => {
    try {
      return scopeValue(raw, field);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      throw new ValidationError(name, err.message.slice(field.length + 2));
    }
  };
}

function setting<K extends keyof Config>(s: Setting<K>): Setting<K> {
  return s;
}

/** Every setting, once: the CLI flags, the environment variables and the README table derive from it. */
export const SETTINGS = [
  setting({ key: 'redisUrl', env: 'REDIS_URL', flag: 'redis-url', defaultValue: undefined, parse: optionalText,
    help: 'Redis with Search + JSON; unset = embedded server. redis://[[user]:password@]host:port[/db]; rediss:// for TLS' }),
  setting({ key: 'redisTlsCa', env: 'AGENTMEM_REDIS_TLS_CA', flag: 'redis-tls-ca', defaultValue: undefined, parse: optionalText,
    help: "rediss://: PEM file of the CA(s) to trust for the server's certificate, instead of the system's" }),
  setting({ key: 'redisTlsCert', env: 'AGENTMEM_REDIS_TLS_CERT', flag: 'redis-tls-cert', defaultValue: undefined, parse: optionalText,
    help: 'rediss://: PEM file of a client certificate, for servers that require one (tls-auth-clients); with --redis-tls-key' }),
  setting({ key: 'redisTlsKey', env: 'AGENTMEM_REDIS_TLS_KEY', flag: 'redis-tls-key', defaultValue: undefined, parse: optionalText,
    help: "rediss://: PEM file of the client certificate's private key; with --redis-tls-cert" }),
  setting({ key: 'embeddedRedisPort', env: 'AGENTMEM_REDIS_PORT', flag: 'redis-port', defaultValue: 6399, parse: integer(1, 65535),
    help: 'port of the embedded Redis (127.0.0.1)' }),
  setting({ key: 'cacheDir', env: 'AGENTMEM_CACHE_DIR', flag: 'cache-dir', defaultValue: DEFAULT_CACHE_DIR, parse: text,
    help: 'where provisioned Redis binaries, model and embedded data live' }),
  setting({ key: 'modelDir', env: 'AGENTMEM_MODEL_DIR', flag: 'model-dir', defaultValue: undefined, parse: optionalText,
    help: 'local model folder; unset = <cache-dir>/models' }),
  setting({ key: 'host', env: 'AGENTMEM_HOST', flag: 'host', defaultValue: '127.0.0.1', parse: text,
    help: 'HTTP listen address' }),
  setting({ key: 'port', env: 'AGENTMEM_PORT', flag: 'port', defaultValue: 8094, parse: integer(0, 65535),
    help: 'HTTP listen port' }),
  setting({ key: 'indexName', env: 'AGENTMEM_INDEX_NAME', flag: 'index-name', defaultValue: 'agentmem:idx', parse: text,
    help: 'Search index over long-term memories' }),
  setting({ key: 'sessionPrefix', env: 'AGENTMEM_SESSION_PREFIX', flag: 'session-prefix', defaultValue: 'agent:session:', parse: text,
    help: 'key prefix of working-memory hashes' }),
  setting({ key: 'memoryPrefix', env: 'AGENTMEM_MEMORY_PREFIX', flag: 'memory-prefix', defaultValue: 'agent:mem:', parse: text,
    help: 'key prefix of long-term memory documents' }),
  setting({ key: 'eventsPrefix', env: 'AGENTMEM_EVENTS_PREFIX', flag: 'events-prefix', defaultValue: 'agent:events:', parse: text,
    help: 'key prefix of per-thread event streams' }),
  setting({ key: 'sessionTtlSeconds', env: 'AGENTMEM_SESSION_TTL_SECONDS', flag: 'session-ttl-seconds', defaultValue: 3600, parse: integer(1, 31_536_000),
    help: 'working-memory TTL, refreshed on every write' }),
  setting({ key: 'windowSize', env: 'AGENTMEM_WINDOW_SIZE', flag: 'window-size', defaultValue: 20, parse: integer(1, 1000),
    help: 'recent turns kept in working memory' }),
  setting({ key: 'episodicTtlSeconds', env: 'AGENTMEM_EPISODIC_TTL_SECONDS', flag: 'episodic-ttl-seconds', defaultValue: 604_800, parse: integer(1, 315_360_000),
    help: 'TTL of episodic memories (semantic ones never expire)' }),
  setting({ key: 'eventsMaxLen', env: 'AGENTMEM_EVENTS_MAXLEN', flag: 'events-maxlen', defaultValue: 1000, parse: integer(1, 10_000_000),
    help: 'approximate length cap of each event stream' }),
  setting({ key: 'dedupThreshold', env: 'AGENTMEM_DEDUP_THRESHOLD', flag: 'dedup-threshold', defaultValue: 0.2, parse: distance,
    help: 'cosine distance at or under which a write bumps an existing memory' }),
  setting({ key: 'recallThreshold', env: 'AGENTMEM_RECALL_THRESHOLD', flag: 'recall-threshold', defaultValue: 0.55, parse: distance,
    help: 'cosine distance at or under which a memory is recalled' }),
  setting({ key: 'recallK', env: 'AGENTMEM_RECALL_K', flag: 'recall-k', defaultValue: 5, parse: integer(1, 100),
    help: 'nearest neighbours considered by recall' }),
  setting({ key: 'logLevel', env: 'AGENTMEM_LOG_LEVEL', flag: 'log-level', defaultValue: 'info', parse: logLevel,
    help: 'debug, info, warn or error' }),
  setting({ key: 'noReset', env: 'AGENTMEM_NO_RESET', flag: 'no-reset', defaultValue: false, parse: boolean,
    help: 'serve: keep the default scope instead of clearing and re-seeding it' }),
  setting({ key: 'pipelinePrefix', env: 'AGENTMEM_PIPELINE_PREFIX', flag: 'pipeline-prefix', defaultValue: 'agentmem:', parse: text,
    help: "prefix of agentmem's own keys: pipeline streams, turn results, idempotency keys" }),
  setting({ key: 'maxBacklog', env: 'AGENTMEM_MAX_BACKLOG', flag: 'max-backlog', defaultValue: 10_000, parse: integer(1, 10_000_000),
    help: 'turns waiting for embedding beyond which the API answers 429' }),
  setting({ key: 'batchSize', env: 'AGENTMEM_BATCH_SIZE', flag: 'batch-size', defaultValue: 32, parse: integer(1, 256),
    help: 'entries a worker reads, and turns it embeds, at once' }),
  setting({ key: 'claimIdleMs', env: 'AGENTMEM_CLAIM_IDLE_MS', flag: 'claim-idle-ms', defaultValue: 30_000, parse: integer(100, 86_400_000),
    help: "idle time after which a dead consumer's pending entries are reclaimed" }),
  setting({ key: 'maxDeliveries', env: 'AGENTMEM_MAX_DELIVERIES', flag: 'max-deliveries', defaultValue: 5, parse: integer(1, 1000),
    help: 'deliveries after which a failing entry moves to the dead-letter stream' }),
  setting({ key: 'turnTtlSeconds', env: 'AGENTMEM_TURN_TTL_SECONDS', flag: 'turn-ttl-seconds', defaultValue: 86_400, parse: integer(60, 31_536_000),
    help: 'how long turn results and idempotency keys are kept' }),
  setting({ key: 'maxBodyBytes', env: 'AGENTMEM_MAX_BODY_BYTES', flag: 'max-body-bytes', defaultValue: 65_536, parse: integer(1024, 10_485_760),
    help: 'largest accepted HTTP request body' }),
  setting({ key: 'consumerName', env: 'AGENTMEM_CONSUMER_NAME', flag: 'consumer-name', defaultValue: undefined, parse: optionalText,
    help: 'consumer name in the stream groups; unset = <host>-<pid>-<random>' }),
  setting({ key: 'embedThreads', env: 'AGENTMEM_EMBED_THREADS', flag: 'embed-threads', defaultValue: 0, parse: integer(0, 256),
    help: 'ONNX Runtime threads per embedder session; 0 = the cores shared out among the sessions' }),
  setting({ key: 'embedSessions', env: 'AGENTMEM_EMBED_SESSIONS', flag: 'embed-sessions', defaultValue: 0, parse: integer(0, 64),
    help: 'embedder sessions (threads, each with its own copy of the model) embedding batches side by side; 0 = one per core, at most 4 (serve --api-only: 1)' }),
  setting({ key: 'consolidateThreshold', env: 'AGENTMEM_CONSOLIDATE_THRESHOLD', flag: 'consolidate-threshold', defaultValue: undefined,
    parse: (raw: string, name: string) => (raw.trim() === '' ? undefined : distance(raw, name)),
    help: 'cosine distance at or under which the consolidator merges two memories; unset = the dedup threshold' }),
  setting({ key: 'consolidateIntervalMs', env: 'AGENTMEM_CONSOLIDATE_INTERVAL_MS', flag: 'consolidate-interval-ms', defaultValue: 60_000, parse: integer(1000, 86_400_000),
    help: 'how often the consolidator worker schedules a pass' }),
  setting({ key: 'metricsPort', env: 'AGENTMEM_METRICS_PORT', flag: 'metrics-port', defaultValue: 9464, parse: integer(0, 65535),
    help: "worker: port of its /metrics, /healthz and /readyz (serve has them on its API port); 0 = none" }),
  setting({ key: 'apiOnly', env: 'AGENTMEM_API_ONLY', flag: 'api-only', defaultValue: false, parse: boolean,
    help: 'serve, mcp: run without the pipeline workers (run them with `agentmem worker`)' }),
  setting({ key: 'shutdownTimeoutMs', env: 'AGENTMEM_SHUTDOWN_TIMEOUT_MS', flag: 'shutdown-timeout-ms', defaultValue: 5000, parse: integer(100, 600_000),
    help: 'serve, worker: how long a graceful shutdown (SIGTERM, SIGINT) may take before the process exits anyway (exit code 1)' }),
  setting({ key: 'durability', env: 'AGENTMEM_DURABILITY', flag: 'durability', defaultValue: 'auto', parse: durabilityMode,
    help: 'auto: a 202 waits until the turn is on disk when Redis keeps an append-only file, with a loud warning when it cannot; require: refuse a Redis that can lose acknowledged turns, 503 when a turn cannot be confirmed; off: never wait (a crash can lose the last second of turns)' }),
  setting({ key: 'auth', env: 'AGENTMEM_AUTH', flag: 'auth', defaultValue: 'off', parse: authMode,
    help: 'keys = every request needs an API key (agentmem keys create); off = none, only while --host is loopback; off-insecure = none on any address (logs a warning every 10 minutes)' }),
  setting({ key: 'bootstrapAdminKey', env: 'AGENTMEM_BOOTSTRAP_ADMIN_KEY', flag: 'bootstrap-admin-key', defaultValue: undefined, parse: optionalText,
    help: 'an API key (am_<12 hex>_<secret>) installed at start as an admin key bound to every user, unless its id exists; set it in the environment (a flag shows in ps)' }),
  setting({ key: 'metricsPublic', env: 'AGENTMEM_METRICS_PUBLIC', flag: 'metrics-public', defaultValue: false, parse: boolean,
    help: "with --auth keys: serve /metrics on the API port without a key (workers' metrics ports never ask for one)" }),
  setting({ key: 'keyRatePerSecond', env: 'AGENTMEM_KEY_RATE_PER_SECOND', flag: 'key-rate-per-second', defaultValue: 50, parse: integer(1, 1_000_000),
    help: 'requests per second each API key may make on average (a token bucket shared by every API process); over it: 429 with Retry-After' }),
  setting({ key: 'keyRateBurst', env: 'AGENTMEM_KEY_RATE_BURST', flag: 'key-rate-burst', defaultValue: 100, parse: integer(1, 10_000_000),
    help: 'requests an API key may make at once before its rate applies' }),
  setting({ key: 'authFailuresPerMinute', env: 'AGENTMEM_AUTH_FAILURES_PER_MINUTE', flag: 'auth-failures-per-minute', defaultValue: 10, parse: integer(1, 1_000_000),
    help: 'failed authentications per minute a client address may make on average; over it every request of it with a key is 429 until the bucket refills' }),
  setting({ key: 'authFailureBurst', env: 'AGENTMEM_AUTH_FAILURE_BURST', flag: 'auth-failure-burst', defaultValue: 20, parse: integer(1, 1_000_000),
    help: 'failed authentications a client address may make at once' }),
  setting({ key: 'knnEfRuntime', env: 'AGENTMEM_KNN_EF_RUNTIME', flag: 'knn-ef-runtime', defaultValue: 400, parse: integer(1, 10_000),
    help: 'HNSW candidates per search of a scope larger than knn-brute-force-max: higher finds more true neighbours, slower' }),
  setting({ key: 'knnBruteForceMax', env: 'AGENTMEM_KNN_BRUTE_FORCE_MAX', flag: 'knn-brute-force-max', defaultValue: 3000, parse: integer(0, 1_000_000),
    help: 'scopes of at most this many memories are searched exactly (every memory scored) instead of through HNSW' }),
  setting({ key: 'searchTimeoutMs', env: 'AGENTMEM_SEARCH_TIMEOUT_MS', flag: 'search-timeout-ms', defaultValue: 0, parse: integer(0, 60_000),
    help: "per-query timeout of vector searches; 0 = the server's (Search TIMEOUT, 500 ms by default). A search that hits it is retried with the other strategy, then answered 503" }),
  setting({ key: 'mcpUser', env: 'AGENTMEM_MCP_USER', flag: 'mcp-user', defaultValue: 'default', parse: scopeName('user'),
    help: 'mcp: the user every tool acts as (working memory, long-term memories); over HTTP the API key decides instead' }),
  setting({ key: 'mcpNamespace', env: 'AGENTMEM_MCP_NAMESPACE', flag: 'mcp-namespace', defaultValue: 'default', parse: scopeName('namespace'),
    help: 'mcp: the namespace every tool acts in' }),
] as const satisfies readonly Setting[];

export const DEFAULT_CONFIG: Readonly<Config> = Object.freeze(
  Object.fromEntries(SETTINGS.map((s) => [s.key, s.defaultValue])) as unknown as Config,
);

/**
 * Builds the config: defaults, then environment variables, then flags (`--name value` strings as
 * node:util parseArgs returns them). A bad value fails fast, naming the variable or flag.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  flags: Readonly<Record<string, string | boolean | undefined>> = {},
): Config {
  const config: Record<string, unknown> = { ...DEFAULT_CONFIG };
  for (const s of SETTINGS) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined) config[s.key] = (s.parse as Parse<unknown>)(fromEnv, s.env);
    const fromFlag = flags[s.flag];
    if (fromFlag !== undefined) {
      const raw = typeof fromFlag === 'boolean' ? String(fromFlag) : fromFlag;
      config[s.key] = (s.parse as Parse<unknown>)(raw, `--${s.flag}`);
    }
  }
  return config as unknown as Config;
}

/** The KNN settings as the search layer takes them. */
export function knnTuningOf(config: Pick<Config, 'knnEfRuntime' | 'knnBruteForceMax' | 'searchTimeoutMs'>): KnnTuning {
  return { efRuntime: config.knnEfRuntime, bruteForceMax: config.knnBruteForceMax, timeoutMs: config.searchTimeoutMs };
}

export function modelDirOf(config: Pick<Config, 'modelDir' | 'cacheDir'>): string {
  return config.modelDir ?? join(config.cacheDir, 'models');
}
