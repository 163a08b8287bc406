/**
 * `agentmem`: the library. The memory tiers over your Redis, the pipeline pieces the service is
 * built from, configuration, API keys and the errors they throw. The HTTP server and the CLI are
 * not part of it (run them with `npx agentmem serve`); an HTTP client is in `agentmem/client`.
 *
 * @packageDocumentation
 */

/** Configuration: every setting once, with its env var and flag; `loadConfig()` reads both. */
export { AUTH_MODES, DEFAULT_CONFIG, SETTINGS, loadConfig, modelDirOf, type AuthMode, type Config } from './config.js';

/** Every Redis key and index name agentmem uses, from the configured prefixes. */
export { createKeys, type Keys } from './keys.js';

/**
 * Opening agentmem: `openAgentMem()` resolves (or provisions) Redis, ensures the index and loads
 * the embedder; `createTiers()` builds the three tiers over a Redis connection you already have.
 */
export { createTiers, loadEmbedder, loadThreadedEmbedder, openAgentMem, type AgentMem, type MemoryTiers } from './agentmem.js';

/** Redis connections as agentmem makes them (command timeouts, TLS from the config) and the capability check. */
export { assertCapabilities, connectRedis, connectService, redisConnectionOptions } from './redis/connection.js';

/** Working memory: one hash per thread (goal, scratchpad, recent turns), every write atomic. */
export { WorkingMemory, type SessionOwner, type SessionState, type Turn, type WorkingMemoryOptions } from './memory/working.js';

/** Long-term memory: JSON documents under a vector index; recall, dedup-on-write, TTLs per kind. */
export {
  LongTermMemory, type LongTermOptions, type MemoryDocument, type MemoryRecord, type RecallInput, type RememberInput, type RememberResult,
} from './memory/long-term.js';

/** The event log: one capped, expiring Stream per thread. */
export { EventLog, type EventRecord } from './memory/events.js';

/** The demo's seed memories and the function that writes them. */
export { DEFAULT_SCOPE, SEED_MEMORIES, seedMemories } from './memory/seed.js';

/** A user and namespace: what every memory belongs to and every recall is bounded by. */
export type { Scope } from './query.js';

/** The pipeline's entry: validates a turn and accepts it durably (working memory, queue, log in one script). */
export { Ingest, REMEMBER_MODES, parseTurnInput, type Accepted, type RememberMode, type TurnInput } from './pipeline/ingest.js';

/** A turn's status and results, and waiting for them. */
export { readTurn, type TurnResult, type TurnStatus } from './pipeline/turns.js';
/** Every Lua script behind one typed method per state change; negative replies from one enum. */
export { ScriptGateway, ScriptErrorCode, isScriptError, STREAM_CAPS, type MemoryOutcome } from './redis/scripts.js';
/** Waits for turns to finish (one Pub/Sub subscription shared by every waiter). */
export { TurnWaiter } from './pipeline/waiter.js';

/** The pipeline's stages (embed-and-recall, remember) and the worker loop that runs one over its stream. */
export { EmbedRecallStage, RememberStage, type StageDeps } from './pipeline/stages.js';
/** The consumer groups of the two stages. */
export { EMBED_RECALL_GROUP, REMEMBER_GROUP } from './pipeline/groups.js';
/** Start one pipeline worker in this process (what `agentmem worker <name>` and `serve` run). */
export { startEmbedRecallWorker } from './pipeline/embed-recall-worker.js';
export { startRememberWorker } from './pipeline/remember-worker.js';
export { startConsolidatorWorker } from './consolidation/worker.js';
/** A consumer-group reader with claiming of stalled entries and dead-lettering. */
export { StreamConsumer, type ConsumerOptions, type StreamEntry } from './pipeline/consumer.js';
/** Runs one stage as a worker (blocking reads on their own connection); how the service's workers start. */
export { startStageWorker, type RunningWorker } from './pipeline/worker.js';

/** Merges near-duplicate memories, one scope at a time, resumably. */
export { Consolidator, type ConsolidationSummary, type ConsolidatorOptions } from './consolidation/consolidator.js';

/** Embedding text: what the tiers and stages need from a model (`loadEmbedder`/`loadThreadedEmbedder` give one). */
export { EMBEDDING_DIMS, type TextEmbedder } from './embedder/types.js';
/** The model on the calling thread (loaded by `loadEmbedder`). */
export type { Embedder } from './embedder/embedder.js';

/** API keys: create, list, revoke and verify keys stored (hashed) in Redis. */
export { ApiKeyStore, parseNewKey, type ApiKeyInfo, type NewKey } from './auth/key-store.js';
/** Roles a key can have and who a request acts for. */
export { ROLES, Forbidden, type Principal, type Role } from './auth/principal.js';

/** The errors the library throws, each with what a caller needs to act on it. */
export {
  BacklogFullError, DurabilityError, ProvisionError, RedisCapabilityError, RedisUnavailableError, RedisUnreachableError, ScriptError, ThreadNotVisible,
  ValidationError,
} from './errors.js';

/** JSON-lines logging: what every component takes as `log`. */
export { createLogger, silentLogger, type LogFields, type Logger, type LogLevel } from './log.js';

/** The values agentmem accepts for kinds and roles, and the bounds of its input. */
export { MAX_SCOPE_LENGTH, MAX_TEXT_LENGTH, MEMORY_KINDS, TURN_ROLES, type MemoryKind, type TurnRole } from './validate.js';

/** Where the package's files are (Lua scripts, web page, assets), wherever it is installed. */
export { ASSETS_DIR, LUA_DIR, PACKAGE_ROOT, WEB_DIR } from './paths.js';
