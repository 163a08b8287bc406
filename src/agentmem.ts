import type { Redis } from 'ioredis';
import { knnTuningOf, modelDirOf, type Config } from './config.js';
import type { Embedder } from './embedder/embedder.js';
import { EmbedderPool, poolShape } from './embedder/pool.js';
import type { TextEmbedder } from './embedder/types.js';
import { createKeys, type Keys } from './keys.js';
import type { Logger } from './log.js';
import { EventLog } from './memory/events.js';
import { LongTermMemory } from './memory/long-term.js';
import { WorkingMemory } from './memory/working.js';
import { ensureModel } from './provision/model.js';
import { RedisUnreachableError } from './errors.js';
import { connectService, redactUrl } from './redis/connection.js';
import { Durability } from './redis/durability.js';
import { resolveRedis, type ResolvedRedis } from './redis/resolve.js';

/** The three memory tiers over one Redis connection. */
export interface MemoryTiers {
  redis: Redis;
  keys: Keys;
  working: WorkingMemory;
  longTerm: LongTermMemory;
  events: EventLog;
}

export function createTiers(redis: Redis, config: Config, log?: Logger): MemoryTiers {
  const keys = createKeys(config);
  return {
    redis,
    keys,
    working: new WorkingMemory(redis, keys, { sessionTtlSeconds: config.sessionTtlSeconds, eventsMaxLen: config.eventsMaxLen }),
    longTerm: new LongTermMemory(redis, keys, { dedupThreshold: config.dedupThreshold, episodicTtlSeconds: config.episodicTtlSeconds, knn: knnTuningOf(config), ...(log ? { log } : {}) }),
    events: new EventLog(redis, keys, { maxLen: config.eventsMaxLen, ttlSeconds: config.sessionTtlSeconds }),
  };
}

/** The model, provisioned if needed, loaded on this thread (for one-off commands and benchmarks). */
export async function loadEmbedder(config: Config, log: Logger): Promise<Embedder> {
  const modelDir = modelDirOf(config);
  await ensureModel(modelDir, log);
  const started = Date.now();
  // Imported here, not at the top: only processes that embed on their main thread load ONNX Runtime.
  const { Embedder } = await import('./embedder/embedder.js');
  const embedder = await Embedder.load(modelDir, config.embedThreads);
  log.info('embedder.loaded', { model: embedder.modelId, model_dir: modelDir, ms: Date.now() - started, thread: 'main' });
  return embedder;
}

/** The model on worker threads (for services: inference must not stall the event loop). */
export async function loadThreadedEmbedder(config: Config, log: Logger): Promise<EmbedderPool> {
  const modelDir = modelDirOf(config);
  await ensureModel(modelDir, log);
  const started = Date.now();
  const { sessions, threads } = poolShape(config.embedSessions, config.embedThreads);
  const embedder = await EmbedderPool.load(modelDir, sessions, threads);
  log.info('embedder.loaded', { model: embedder.modelId, model_dir: modelDir, ms: Date.now() - started, sessions, threads_per_session: threads });
  return embedder;
}

export interface AgentMem extends MemoryTiers {
  server: ResolvedRedis;
  /** How acknowledged writes are confirmed on disk, from the server's persistence settings. */
  durability: Durability;
  close(): Promise<void>;
}

/** Everything a process needs: Redis (resolved or provisioned), the index, the embedder. */
export async function openAgentMem(config: Config, log: Logger): Promise<AgentMem & { embedder: TextEmbedder }>;
export async function openAgentMem(config: Config, log: Logger, options: { embedder: false }): Promise<AgentMem>;
export async function openAgentMem(config: Config, log: Logger, options = { embedder: true }): Promise<AgentMem & { embedder?: TextEmbedder }> {
  const server = await resolveRedis(config, log);
  const redis = connectService(server.url, server.options);
  redis.on('error', (err: Error) => log.warn('redis.error', { url: redactUrl(server.url), error: err }));
  const tiers = createTiers(redis, config, log);
  let closing: Promise<void> | undefined;
  let embedder: EmbedderPool | undefined;
  let durability: Durability | undefined;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      await embedder?.close();
      await durability?.close();
      await redis.quit().catch(() => undefined);
      await server.stop();
    })());
  try {
    durability = await Durability.open(redis, { mode: config.durability, fenceKey: tiers.keys.durabilityFence, log });
    let created: boolean;
    [created, embedder] = await Promise.all([tiers.longTerm.ensureIndex(), options.embedder ? loadThreadedEmbedder(config, log) : undefined]);
    log.info('index.ready', { index: config.indexName, created });
    return { ...tiers, server, durability, close, ...(embedder ? { embedder } : {}) };
  } catch (err) {
    await close();
    throw lostConnection(err) ? new RedisUnreachableError(redactUrl(server.url), err) : err;
  }
}

/** ioredis's ways of saying the connection went away while a command waited. */
function lostConnection(err: unknown): boolean {
  return err instanceof Error && (err.name === 'MaxRetriesPerRequestError' || err.message === 'Connection is closed.');
}
