import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { DEFAULT_CONFIG, knnTuningOf } from '../config.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import type { MemoryDocument } from '../memory/long-term.js';
import { SearchIndex } from '../memory/search-index.js';
import type { Metrics } from '../metrics.js';
import { ScopedKnn, type KnnTuning } from '../memory/knn.js';
import { escapeTag, parseSearchReply, type KnnPlan } from '../query.js';
import { pairs } from '../redis/reply.js';
import { isScriptError, ScriptErrorCode, ScriptGateway } from '../redis/scripts.js';

export interface ConsolidatorOptions {
  /** Cosine distance at or under which two same-scope, same-kind memories are one fact. */
  threshold: number;
  /** Memories read per page; bounds memory use however large a scope is. */
  pageSize?: number;
  /** Neighbours examined per memory. */
  neighbours?: number;
  lockTtlMs?: number;
  /** Unset: the settings' defaults. */
  knn?: KnnTuning;
}

export interface ConsolidationSummary {
  /** True when another pass held the lock, so this one did nothing. */
  skipped: boolean;
  scopes: number;
  scanned: number;
  merged: number;
  seconds: number;
}

export interface ConsolidationProgress {
  scope: string;
  scopesDone: number;
  scopes: number;
  scanned: number;
  merged: number;
}

interface Scope {
  user: string;
  namespace: string;
  kind: string;
}

const PROGRESS_EVERY_MS = 2000;

/**
 * Merges near-duplicate memories that concurrent writers stored twice (write-time dedup is
 * KNN-then-write and cannot see a write racing it). One pass walks every (user, namespace, kind)
 * scope oldest memory first, a page at a time; for each memory it runs the recall/dedup KNN shape
 * and folds every neighbour within the threshold into the group's oldest member (ties: lower id),
 * one atomic merge per duplicate. Only one pass runs at a time (a lock with a token, renewed while
 * the pass runs); a pass that dies leaves per-scope cursors, and the next pass resumes from them.
 */
export class Consolidator {
  private readonly pageSize: number;
  private readonly neighbours: number;
  private readonly lockTtlMs: number;
  private readonly scripts: ScriptGateway;
  /** Recreates the index should a pass find it gone (Redis restarted empty or flushed). */
  private readonly index: SearchIndex;
  private readonly knn: ScopedKnn;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: ConsolidatorOptions,
    private readonly log: Logger,
    private readonly metrics?: Metrics,
  ) {
    this.scripts = new ScriptGateway(redis, keys);
    this.pageSize = options.pageSize ?? 200;
    this.neighbours = options.neighbours ?? 10;
    this.lockTtlMs = options.lockTtlMs ?? 30_000;
    this.index = new SearchIndex(redis, keys, log);
    this.knn = new ScopedKnn(redis, keys.indexName, options.knn ?? knnTuningOf(DEFAULT_CONFIG));
    if (metrics) this.knn.sink = metrics;
  }

  async runPass(onProgress?: (progress: ConsolidationProgress) => void): Promise<ConsolidationSummary> {
    const started = performance.now();
    const token = randomBytes(8).toString('hex');
    const acquired = await this.redis.set(this.keys.consolidatorLock, token, 'PX', this.lockTtlMs, 'NX');
    if (acquired !== 'OK') {
      this.log.info('consolidate.skipped', { reason: 'another pass holds the lock' });
      return { skipped: true, scopes: 0, scanned: 0, merged: 0, seconds: 0 };
    }
    let lockLost = false;
    const renew = setInterval(() => {
      this.scripts.releaseLock({ lockKey: this.keys.consolidatorLock, token, extendMs: this.lockTtlMs }).then(
        (held) => void (!held && (lockLost = true)),
        () => undefined,
      );
    }, Math.floor(this.lockTtlMs / 3));
    const counters = { scanned: 0, merged: 0 };
    try {
      const scopes = await this.scopes();
      let lastReport = Date.now();
      for (const [i, scope] of scopes.entries()) {
        await this.consolidateScope(scope, counters, () => lockLost, () => {
          if (Date.now() - lastReport < PROGRESS_EVERY_MS) return;
          lastReport = Date.now();
          onProgress?.({ scope: scopeField(scope), scopesDone: i, scopes: scopes.length, ...counters });
        });
        if (lockLost) throw new Error('consolidation lock lost; another pass may be running');
      }
      const summary = { skipped: false, scopes: scopes.length, ...counters, seconds: (performance.now() - started) / 1000 };
      this.log.info('consolidate.pass_done', { ...summary });
      this.metrics?.consolidatorPassSeconds.observe(summary.seconds);
      return summary;
    } finally {
      clearInterval(renew);
      await this.scripts.releaseLock({ lockKey: this.keys.consolidatorLock, token });
    }
  }

  /** Every (user, namespace, kind) that has memories, from the index. */
  private async scopes(): Promise<Scope[]> {
    const reply = (await this.index.call(
      'FT.AGGREGATE', '*', 'GROUPBY', 3, '@user', '@namespace', '@kind', 'LIMIT', 0, 1_000_000, 'DIALECT', 2,
    )) as unknown[];
    return (reply.slice(1) as string[][]).map((row) => {
      const fields = pairs(row);
      return { user: String(fields.get('user') ?? ''), namespace: String(fields.get('namespace') ?? ''), kind: String(fields.get('kind') ?? '') };
    }).filter((s) => s.user && s.namespace && s.kind);
  }

  private async consolidateScope(
    scope: Scope, counters: { scanned: number; merged: number }, lockLost: () => boolean, tick: () => void,
  ): Promise<void> {
    const field = scopeField(scope);
    const filter = `@user:{${escapeTag(scope.user)}} @namespace:{${escapeTag(scope.namespace)}} @kind:{${escapeTag(scope.kind)}}`;
    // The lower bound of the next page: inclusive `<ts>` normally, exclusive `(<ts>` when a whole
    // page shared one timestamp (then inclusive would return the same page forever).
    let bound = (await this.redis.hget(this.keys.consolidatorProgress, field)) ?? '-inf';
    const gone = new Set<string>();
    // One strategy for the whole scope: it is counted once, not once per memory.
    const plan = await this.knn.plan(filter);
    for (;;) {
      if (lockLost()) return;
      const page = parseSearchReply(await this.index.call(
        'FT.SEARCH', `${filter} @created_ts:[${bound} +inf]`,
        'SORTBY', 'created_ts', 'ASC', 'NOCONTENT', 'LIMIT', 0, this.pageSize, 'DIALECT', 2,
      ).then((r) => withEmptyFields(r)));
      if (page.hits.length === 0) break;
      const docs = await this.documents(page.hits.map((h) => h.key));
      for (const doc of docs) {
        counters.scanned++;
        if (!gone.has(doc.id)) counters.merged += await this.mergeNeighbours(doc, filter, plan, gone);
        tick();
      }
      if (page.hits.length < this.pageSize) break;
      // Exact values from the documents (Search would round them); the page's last timestamp is
      // read again next time, and revisiting a memory is harmless.
      const first = Math.min(...docs.map((d) => d.created_ts));
      const last = Math.max(...docs.map((d) => d.created_ts));
      bound = last > first ? String(last) : `(${last}`;
      await this.redis.hset(this.keys.consolidatorProgress, field, bound);
    }
    await this.redis.hdel(this.keys.consolidatorProgress, field);
  }

  /** The documents behind a page of keys (those that still exist), in page order. */
  private async documents(keys: string[]): Promise<MemoryDocument[]> {
    const replies = (await this.redis.call('JSON.MGET', ...keys, '$')) as (string | null)[];
    return replies.flatMap((json) => (json ? (JSON.parse(json) as MemoryDocument[]) : []));
  }

  /** Folds every neighbour of `doc` within the threshold into the group's oldest member. */
  private async mergeNeighbours(doc: MemoryDocument, filter: string, plan: KnnPlan, gone: Set<string>): Promise<number> {
    const hits = await this.index.heal(() => this.knn.search(filter, this.neighbours + 1, Float32Array.from(doc.embedding), ['created_ts', 'distance'], plan));
    const group = hits
      .map((h) => ({ id: this.keys.memoryIdOf(h.key), created: Number(h.fields.created_ts), distance: Number(h.fields.distance) }))
      .filter((m) => m.id === doc.id || m.distance <= this.options.threshold);
    if (group.length < 2) return 0;
    group.sort((a, b) => a.created - b.created || (a.id < b.id ? -1 : 1));
    const [survivor, ...duplicates] = group as [(typeof group)[number], ...typeof group];
    let merged = 0;
    for (const duplicate of duplicates) {
      const hits = await this.scripts.mergeMemories({ survivorId: survivor.id, duplicateId: duplicate.id, distance: duplicate.distance }).catch((err: unknown) => {
        if (isScriptError(err, ScriptErrorCode.MemoryGone)) return null;
        throw err;
      });
      if (hits === null) continue;
      gone.add(duplicate.id);
      merged++;
      this.metrics?.consolidatorMerges.inc();
      this.log.info('consolidate.merged', { survivor: survivor.id, merged: duplicate.id, distance: duplicate.distance, hit_count: hits });
    }
    return merged;
  }
}

function scopeField(scope: Scope): string {
  return JSON.stringify([scope.user, scope.namespace, scope.kind]);
}

/** NOCONTENT replies are `[total, key, key, ...]`; give them the shape parseSearchReply reads. */
function withEmptyFields(reply: unknown): unknown {
  const [total, ...keys] = reply as [number, ...string[]];
  return [total, ...keys.flatMap((k) => [k, []])];
}
