import type { Config } from './config.js';

/** Every Redis key and index name agentmem touches is built here, from the configured prefixes. */
export interface Keys {
  readonly indexName: string;
  readonly memoryPrefix: string;
  session(threadId: string): string;
  memory(memoryId: string): string;
  events(threadId: string): string;
  /** Memory id from its key (`agent:mem:<id>` → `<id>`). */
  memoryIdOf(key: string): string;
  /** Turns accepted by the API, waiting for the embed-and-recall workers. */
  readonly ingestStream: string;
  /** Embedded turns waiting for the remember workers. */
  readonly rememberStream: string;
  /** Entries that kept failing, with stage and reason. */
  readonly deadLetterStream: string;
  /** Pub/Sub channel announcing each finished (done or failed) turn id. */
  readonly turnDoneChannel: string;
  /** Changes to long-term memory, whoever made them: written, deduped, consolidated, dropped, cleared, expired. */
  readonly memoryLog: string;
  /** Held by the one consolidation pass running at a time. */
  readonly consolidatorLock: string;
  /** Where an interrupted consolidation pass resumes: scope → last created_ts scanned. */
  readonly consolidatorProgress: string;
  /** Key prefix of the BullMQ queue that schedules consolidation passes. */
  readonly bullPrefix: string;
  /** A tiny stream one process's event-stream reader also reads, so that it can be woken (`name`: the process's consumer name). */
  eventsWake(name: string): string;
  /** A turn's status and results. */
  turn(turnId: string): string;
  /** Written (with a short TTL) just to be confirmed by WAITAOF: confirms what was read before it. */
  readonly durabilityFence: string;
  /** The turn id an Idempotency-Key of one thread maps to (`keyHash`: sha256 of the header). */
  idempotency(threadId: string, keyHash: string): string;
  /** An API key's record (id, role, scope, sha256 of its secret; never the secret). */
  apiKey(keyId: string): string;
  /** Set of every API key id, for listing (ids whose record expired are pruned when listed). */
  readonly apiKeyIndex: string;
  /** A token bucket (`kind`: key = requests of one API key, authfail = failed authentications of one client address). */
  rateBucket(kind: 'key' | 'authfail', subject: string): string;
  /** In the embedded Redis only: set by the process that started it when it left it running for others (see resolveRedis). */
  readonly embeddedLeftRunning: string;
}

export function createKeys(config: Pick<Config, 'indexName' | 'sessionPrefix' | 'memoryPrefix' | 'eventsPrefix' | 'pipelinePrefix'>): Keys {
  const { indexName, sessionPrefix, memoryPrefix, eventsPrefix, pipelinePrefix: p } = config;
  return {
    indexName,
    memoryPrefix,
    session: (threadId) => sessionPrefix + threadId,
    memory: (memoryId) => memoryPrefix + memoryId,
    events: (threadId) => eventsPrefix + threadId,
    memoryIdOf: (key) => (key.startsWith(memoryPrefix) ? key.slice(memoryPrefix.length) : key),
    ingestStream: `${p}stream:turns`,
    rememberStream: `${p}stream:remember`,
    deadLetterStream: `${p}stream:deadletter`,
    turnDoneChannel: `${p}channel:turn-done`,
    memoryLog: `${p}stream:memory-events`,
    consolidatorLock: `${p}consolidator:lock`,
    consolidatorProgress: `${p}consolidator:progress`,
    bullPrefix: `${p}bull`,
    eventsWake: (name) => `${p}events-wake:${name}`,
    turn: (turnId) => `${p}turn:${turnId}`,
    durabilityFence: `${p}durability:fence`,
    idempotency: (threadId, keyHash) => `${p}idem:${threadId}:${keyHash}`,
    apiKey: (keyId) => `${p}apikey:${keyId}`,
    apiKeyIndex: `${p}apikeys`,
    rateBucket: (kind, subject) => `${p}ratelimit:${kind}:${subject}`,
    embeddedLeftRunning: `${p}embedded:left-running`,
  };
}
