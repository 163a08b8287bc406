import type { Redis } from 'ioredis';
import { SearchIncompleteError } from '../errors.js';
import { knnSearchArgs, parseSearchReply3, scopeSizeArgs, type KnnPlan, type KnnStrategy, type SearchHit } from '../query.js';

/** KNN quality and strategy settings (see SETTINGS: knnEfRuntime, knnBruteForceMax, searchTimeoutMs). */
export interface KnnTuning {
  /** HNSW candidate list size for scopes searched through the graph. */
  efRuntime: number;
  /** Scopes of at most this many memories are searched by brute force (exact). */
  bruteForceMax: number;
  /** Per-query TIMEOUT in ms; 0 = the server's own (Search's TIMEOUT, 500 ms by default). */
  timeoutMs: number;
}

/** Counts of searches that came back incomplete, by the strategy that ran and what followed. */
export interface SearchIncompleteSink {
  searchIncomplete: { inc(labels: { strategy: KnnStrategy; outcome: 'retried' | 'failed' }): void };
}

/** What a scope holds, as far as choosing a strategy needs: the exact count up to the brute-force bound. */
export interface ScopeSize {
  /** Exact when `overBound` is false. */
  count: number;
  overBound: boolean;
}

/**
 * Filtered KNN over the memory index with the strategy chosen here rather than by Search's
 * planner, whose choice depends on the index size and misfires as the index grows. A bounded count
 * of the scope decides: at most `bruteForceMax` memories are scored one by one (exact, and cheap
 * because the scope is small); more go through HNSW with `efRuntime` candidates. Searches run on
 * a RESP3 connection of their own, because only RESP3 replies say when a search hit its timeout;
 * an incomplete answer is retried once with the other strategy, then refused with
 * SearchIncompleteError (retryable), so a timeout never looks like "no memories".
 */
export class ScopedKnn {
  private search3: Redis | undefined;
  sink: SearchIncompleteSink | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly indexName: string,
    readonly tuning: KnnTuning,
  ) {}

  /**
   * The k nearest memories matching `filter`, nearest first, with `returnFields` (and `distance`).
   * `plan` skips the scope count when the caller already has one for this filter (the
   * consolidator searches one scope many times).
   */
  async search(filter: string, k: number, vector: Float32Array, returnFields: readonly string[], plan?: KnnPlan): Promise<SearchHit[]> {
    let first = plan;
    if (first === undefined) {
      const size = await this.scopeSize(filter);
      if (size && !size.overBound && size.count === 0) return [];
      first = this.planFor(size);
    }
    const second = first.strategy === 'brute-force' ? this.hnswPlan() : this.bruteForcePlan();
    let warnings: string[] = [];
    for (const attempt of [first, second]) {
      const reply = await this.connection().call('FT.SEARCH', this.indexName, ...knnSearchArgs(filter, k, vector, returnFields, attempt)).then(
        parseSearchReply3,
        // A server set to ON_TIMEOUT FAIL refuses instead of warning: the same incomplete search.
        (err: unknown) => {
          if (err instanceof Error && /timeout/i.test(err.message)) return { hits: [], warnings: [err.message] };
          throw err;
        },
      );
      if (reply.warnings.length === 0) return reply.hits;
      warnings = reply.warnings;
      this.sink?.searchIncomplete.inc({ strategy: attempt.strategy, outcome: attempt === first ? 'retried' : 'failed' });
    }
    throw new SearchIncompleteError(warnings);
  }

  /** The plan `search` starts with for `filter` (tests check it against FT.PROFILE). */
  async plan(filter: string): Promise<KnnPlan> {
    return this.planFor(await this.scopeSize(filter));
  }

  /**
   * How many memories `filter` matches, counted up to bruteForceMax + 1; undefined when the count
   * itself came back incomplete (then nothing is concluded from it, least of all "empty").
   */
  async scopeSize(filter: string): Promise<ScopeSize | undefined> {
    const cap = this.tuning.bruteForceMax;
    const reply = parseSearchReply3(await this.connection().call('FT.AGGREGATE', this.indexName, ...scopeSizeArgs(filter, cap)));
    if (reply.warnings.length > 0) return undefined;
    return { count: Math.min(reply.total, cap + 1), overBound: reply.total > cap };
  }

  private planFor(size: ScopeSize | undefined): KnnPlan {
    return size !== undefined && !size.overBound ? this.bruteForcePlan() : this.hnswPlan();
  }

  private bruteForcePlan(): KnnPlan {
    return { strategy: 'brute-force', timeoutMs: this.tuning.timeoutMs };
  }

  private hnswPlan(): KnnPlan {
    return { strategy: 'hnsw', efRuntime: this.tuning.efRuntime, timeoutMs: this.tuning.timeoutMs };
  }

  /** The RESP3 connection, made on first use and closed when the connection it was made from ends. */
  private connection(): Redis {
    if (this.search3) return this.search3;
    const search3 = this.redis.duplicate({ protocol: 3 });
    search3.on('error', () => undefined); // each failed command rejects with its own error
    this.redis.once('end', () => search3.disconnect());
    this.search3 = search3;
    return search3;
  }
}
