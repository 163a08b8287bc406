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
}

export function createKeys(config: Pick<Config, 'indexName' | 'sessionPrefix' | 'memoryPrefix' | 'eventsPrefix'>): Keys {
  const { indexName, sessionPrefix, memoryPrefix, eventsPrefix } = config;
  return {
    indexName,
    memoryPrefix,
    session: (threadId) => sessionPrefix + threadId,
    memory: (memoryId) => memoryPrefix + memoryId,
    events: (threadId) => eventsPrefix + threadId,
    memoryIdOf: (key) => (key.startsWith(memoryPrefix) ? key.slice(memoryPrefix.length) : key),
  };
}
