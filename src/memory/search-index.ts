import type { Redis } from 'ioredis';
import { EMBEDDING_DIMS } from '../embedder/types.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import { isMissingIndex } from '../redis/missing.js';

const INDEX_SCHEMA = [
  'ON', 'JSON', 'PREFIX', 1, '<prefix>', 'SCHEMA',
  '$.text', 'AS', 'text', 'TEXT',
  '$.user', 'AS', 'user', 'TAG',
  '$.namespace', 'AS', 'namespace', 'TAG',
  '$.kind', 'AS', 'kind', 'TAG',
  '$.source_thread', 'AS', 'source_thread', 'TAG',
  '$.created_ts', 'AS', 'created_ts', 'NUMERIC', 'SORTABLE',
  '$.hit_count', 'AS', 'hit_count', 'NUMERIC', 'SORTABLE',
  '$.embedding', 'AS', 'embedding', 'VECTOR', 'HNSW', 6, 'TYPE', 'FLOAT32', 'DIM', EMBEDDING_DIMS, 'DISTANCE_METRIC', 'COSINE',
] as const;

type Arg = string | number | Buffer;

/**
 * The Search index over long-term memories: created at start, and recreated by whichever command
 * finds it gone (Redis restarted empty, FLUSHALL, failover to an empty replica). FT.CREATE indexes
 * whatever documents exist under the prefix, so a recreated index is complete once Redis has
 * scanned them. Every process heals it the same way; of several racing, one creates it and the
 * others find it there.
 */
export class SearchIndex {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly log?: Logger,
  ) {}

  /** Creates the index unless it exists; returns whether it was created. */
  async ensure(): Promise<boolean> {
    const args = INDEX_SCHEMA.map((a) => (a === '<prefix>' ? this.keys.memoryPrefix : a));
    try {
      await this.redis.call('FT.CREATE', this.keys.indexName, ...args);
      return true;
    } catch (err) {
      if (err instanceof Error && /index already exists/i.test(err.message)) return false;
      throw err;
    }
  }

  /** Runs `command` on the index (its name goes first); recreates a missing index and runs it once more. */
  async call(command: 'FT.SEARCH' | 'FT.AGGREGATE' | 'FT.INFO', ...args: Arg[]): Promise<unknown> {
    return this.heal(() => this.redis.call(command, this.keys.indexName, ...args));
  }

  /** Runs `search` (any command on the index, on any connection); recreates a missing index and runs it once more. */
  async heal<T>(search: () => Promise<T>): Promise<T> {
    try {
      return await search();
    } catch (err) {
      if (!isMissingIndex(err)) throw err;
      const created = await this.ensure();
      if (created) this.log?.warn('index.recreated', { index: this.keys.indexName, cause: (err as Error).message });
      return await search();
    }
  }
}
