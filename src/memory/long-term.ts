import type { Redis } from 'ioredis';
import { DEFAULT_CONFIG, knnTuningOf } from '../config.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import { KNN_RETURN_FIELDS, MEMORY_RETURN_FIELDS, parseSearchReply, scopeFilter, type Scope, type SearchHit } from '../query.js';
import { pairs } from '../redis/reply.js';
import { isScriptError, ScriptErrorCode, ScriptGateway, STREAM_CAPS, type MemoryWrite, type TurnEntry } from '../redis/scripts.js';
import * as v from '../validate.js';
import type { MemoryKind } from '../validate.js';
import { EMBEDDING_DIMS } from '../embedder/types.js';
import { SearchIndex } from './search-index.js';
import { ScopedKnn, type KnnTuning, type SearchIncompleteSink } from './knn.js';

/** The stored JSON document: exactly the reference demos' field set. */
export interface MemoryDocument {
  id: string;
  user: string;
  namespace: string;
  kind: MemoryKind;
  source_thread: string;
  text: string;
  embedding: number[];
  created_ts: number;
  hit_count: number;
}

/** A long-term memory as clients see it (the reference demos' MemoryRecord). */
export interface MemoryRecord extends Omit<MemoryDocument, 'embedding'> {
  /** Cosine distance to the query; only on recall results. */
  distance?: number;
  /** Remaining TTL; null when the memory never expires. */
  ttl_seconds: number | null;
}

export interface LongTermOptions {
  dedupThreshold: number;
  episodicTtlSeconds: number;
  /** Where a recreated index is reported. */
  log?: Logger;
  /** Unset: the settings' defaults. */
  knn?: KnnTuning;
}

export interface RememberInput extends Scope {
  text: string;
  embedding: Float32Array;
  kind: MemoryKind;
  sourceThread: string;
  /** Overrides the per-kind TTL; 0 = never expires. */
  ttlSeconds?: number;
  /** Id for a new document; a write to an id that already exists changes nothing (a repeat). */
  id?: string;
  dedupThreshold?: number;
}

export interface RememberResult {
  id: string;
  kind: MemoryKind;
  /** True when the write was folded onto an existing near-duplicate (its hit_count bumped). */
  deduped: boolean;
  /** Distance to the nearest same-kind memory in scope, if there was one. */
  existingDistance: number | null;
  /** True when a new document was stored. */
  written: boolean;
  /** False when the turn's outcome was already recorded (a redelivery): nothing changed. */
  applied: boolean;
}

export interface RecallInput extends Scope {
  embedding: Float32Array;
  k: number;
  threshold: number;
}

const CLEAR_PAGE = 500;

/** Long-term memory: JSON documents under one Search index; recall and dedup share one KNN shape. */
export class LongTermMemory {
  /** Every Search command goes through it, so a vanished index is recreated by the first to notice. */
  private readonly index: SearchIndex;
  private readonly scripts: ScriptGateway;
  private readonly knnSearch: ScopedKnn;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: LongTermOptions,
  ) {
    this.scripts = new ScriptGateway(redis, keys);
    this.index = new SearchIndex(redis, keys, options.log);
    this.knnSearch = new ScopedKnn(redis, keys.indexName, options.knn ?? knnTuningOf(DEFAULT_CONFIG));
  }

  /** Where searches that came back incomplete are counted (the process's metrics). */
  reportSearchesTo(sink: SearchIncompleteSink): void {
    this.knnSearch.sink = sink;
  }

  /** The KNN that recall and the dedup probe share (tests compare its plan with FT.PROFILE). */
  get knn(): ScopedKnn {
    return this.knnSearch;
  }

  /** Creates the index unless it exists; returns whether it was created. */
  async ensureIndex(): Promise<boolean> {
    return this.index.ensure();
  }

  /** The index's document count and failures; recreates the index first when it is missing. */
  async indexInfo(): Promise<{ numDocs: number; indexingFailures: number }> {
    const reply = (await this.index.call('FT.INFO')) as unknown[];
    const info = pairs(reply);
    return { numDocs: Number(info.get('num_docs') ?? 0), indexingFailures: Number(info.get('hash_indexing_failures') ?? 0) };
  }

  /**
   * The one write path of long-term memory: writes a memory unless a same-kind memory in the same
   * scope lies within the dedup threshold, in which case that one's hit_count is bumped instead;
   * either way the change is logged on the memory log (memory_written, memory_deduped). With
   * `turn`, the same script also completes that turn's remember entry, exactly once.
   */
  async remember(input: RememberInput, turn?: TurnEntry): Promise<RememberResult> {
    const started = performance.now();
    const threshold = v.distanceThreshold(input.dedupThreshold ?? this.options.dedupThreshold, 'dedup_threshold');
    const doc = this.newDocument(input);
    const nearest = await this.nearestSameKind(doc, doc.kind, input.embedding);
    const existingDistance = nearest ? nearest.distance : null;
    const write = (memoryId: string, deduped: boolean, eventDetail: string, memory: MemoryWrite): Promise<boolean> =>
      this.scripts.applyMemory({
        write: memory,
        logDetail: { memory_id: memoryId, user: doc.user, namespace: doc.namespace, kind: doc.kind, ...(turn ? { turn_id: turn.turnId } : {}) },
        ...(turn ? { turn: { ...turn, outcome: { id: memoryId, deduped, existing_distance: existingDistance, kind: doc.kind }, eventDetail, rememberMs: Math.round((performance.now() - started) * 100) / 100 } } : {}),
      });
    if (nearest && nearest.distance <= threshold && nearest.id !== doc.id) {
      try {
        const applied = await write(nearest.id, true, `deduped onto ${nearest.id}`, { mode: 'bump', memoryId: nearest.id });
        return { id: nearest.id, kind: doc.kind, deduped: true, existingDistance, written: false, applied };
      } catch (err) {
        if (!isScriptError(err, ScriptErrorCode.MemoryGone)) throw err;
        this.options.log?.info('remember.bump_target_gone', { turn_id: turn?.turnId, memory_id: nearest.id });
      }
    }
    const ttlSeconds = input.ttlSeconds ?? this.ttlFor(doc.kind);
    try {
      const applied = await write(doc.id, false, `wrote ${doc.id} as ${doc.kind}`, { mode: 'write', memoryId: doc.id, documentJson: JSON.stringify(doc), ttlSeconds });
      return { id: doc.id, kind: doc.kind, deduped: false, existingDistance, written: applied, applied };
    } catch (err) {
      // A chosen id that exists is a repeat of that write; a fresh id that collides is an error.
      if (input.id === undefined || !isScriptError(err, ScriptErrorCode.MemoryExists)) throw err;
      return { id: doc.id, kind: doc.kind, deduped: false, existingDistance, written: false, applied: false };
    }
  }

  /** A validated new document for `input` (a fresh id unless one is given). */
  newDocument(input: Omit<RememberInput, 'ttlSeconds' | 'dedupThreshold'>): MemoryDocument {
    const scope = checkScope(input);
    const sourceThread = input.sourceThread === 'seed' ? 'seed' : v.threadId(input.sourceThread, 'source_thread');
    return {
      id: input.id === undefined ? v.newId() : v.memoryId(input.id, 'id'),
      user: scope.user,
      namespace: scope.namespace,
      kind: v.kind(input.kind),
      source_thread: sourceThread,
      text: v.memoryText(input.text),
      embedding: Array.from(v.embedding(input.embedding, EMBEDDING_DIMS)),
      created_ts: Date.now() / 1000,
      hit_count: 0,
    };
  }

  /** The per-kind TTL in seconds; 0 = never expires. */
  ttlFor(kind: MemoryKind): number {
    return kind === 'episodic' ? this.options.episodicTtlSeconds : 0;
  }

  /** The dedup probe: the nearest memory of the same scope and kind, if any. */
  async nearestSameKind(scope: Scope, kind: MemoryKind, vector: Float32Array): Promise<{ id: string; distance: number } | null> {
    const filter = scopeFilter(checkScope(scope), v.kind(kind));
    const [nearest] = await this.index.heal(() => this.knnSearch.search(filter, 1, v.embedding(vector, EMBEDDING_DIMS), ['distance']));
    return nearest ? { id: this.keys.memoryIdOf(nearest.key), distance: Number(nearest.fields.distance) } : null;
  }

  /**
   * Nearest memories in scope within `threshold`, nearest first. Never writes. With
   * `withTtls: false` ttl_seconds stays null and one round trip is saved (the pipeline fills
   * TTLs when a turn is read, where they are current anyway).
   */
  async recall(input: RecallInput, options: { withTtls?: boolean } = {}): Promise<MemoryRecord[]> {
    const scope = checkScope(input);
    const vector = v.embedding(input.embedding, EMBEDDING_DIMS);
    const k = v.positiveInt(input.k, 'k', 100);
    const threshold = v.distanceThreshold(input.threshold, 'threshold');
    const hits = (await this.nearest(scopeFilter(scope), k, vector)).filter((h) => h.distance <= threshold);
    return options.withTtls === false ? hits : this.withTtls(hits);
  }

  /** Memories in scope, newest first. */
  async list(scopeInput: Scope, limit = 200): Promise<MemoryRecord[]> {
    const scope = checkScope(scopeInput);
    const reply = await this.index.call(
      'FT.SEARCH', scopeFilter(scope),
      'SORTBY', 'created_ts', 'DESC',
      'RETURN', MEMORY_RETURN_FIELDS.length, ...MEMORY_RETURN_FIELDS,
      'LIMIT', 0, v.positiveInt(limit, 'limit', 10_000),
      'DIALECT', 2,
    );
    return this.withTtls(parseSearchReply(reply).hits.map((hit) => this.toRecord(hit)));
  }

  async get(memoryId: string): Promise<MemoryRecord | null> {
    const key = this.keys.memory(v.memoryId(memoryId));
    const replies = await this.redis.multi().call('JSON.GET', key, '$').ttl(key).exec();
    const [[, json], [, ttl]] = replies as [[Error | null, string | null], [Error | null, number]];
    if (json === null) return null;
    const [doc] = JSON.parse(json) as [MemoryDocument];
    return {
      id: doc.id, user: doc.user, namespace: doc.namespace, kind: doc.kind, source_thread: doc.source_thread,
      text: doc.text, created_ts: doc.created_ts, hit_count: doc.hit_count, ttl_seconds: ttl >= 0 ? ttl : null,
    };
  }

  /**
   * Deletes one memory; a deletion is logged on the memory log so open pages can drop it too.
   * `detail` goes into that entry too (its scope, so event streams can filter it; the key id).
   */
  async delete(memoryId: string, detail: Record<string, unknown> = {}): Promise<boolean> {
    const id = v.memoryId(memoryId);
    const deleted = (await this.redis.del(this.keys.memory(id))) === 1;
    if (deleted) await this.logChange('memory_dropped', { memory_id: id, ...detail });
    return deleted;
  }

  /** Appends to the memory log (the stream behind GET /v1/memories/events). */
  async logChange(action: string, detail: Record<string, unknown>): Promise<void> {
    await this.redis.xadd(this.keys.memoryLog, 'MAXLEN', '~', STREAM_CAPS.memoryLog, '*', 'action', action, 'detail', JSON.stringify(detail), 'ts', (Date.now() / 1000).toFixed(3));
  }

  /** Deletes every memory of one user+namespace, and nothing else. Returns how many were deleted. `detail`: extra fields of the log entry (the key id). */
  async clearScope(scopeInput: Scope, detail: Record<string, unknown> = {}): Promise<number> {
    const scope = checkScope(scopeInput);
    let deleted = 0;
    for (;;) {
      const reply = (await this.index.call(
        'FT.SEARCH', scopeFilter(scope), 'NOCONTENT', 'LIMIT', 0, CLEAR_PAGE, 'DIALECT', 2,
      )) as [number, ...string[]];
      const keys = reply.slice(1) as string[];
      if (keys.length === 0) {
        if (deleted > 0) await this.logChange('scope_cleared', { ...detail, ...scope, deleted });
        return deleted;
      }
      const removed = await this.redis.unlink(...keys);
      // Keys that vanished on their own (expiry) still leave the index; stop rather than spin.
      if (removed === 0) return deleted;
      deleted += removed;
    }
  }

  private async nearest(filter: string, k: number, vector: Float32Array): Promise<(MemoryRecord & { distance: number })[]> {
    const hits = await this.index.heal(() => this.knnSearch.search(filter, k, vector, KNN_RETURN_FIELDS));
    return hits.map((hit) => ({ ...this.toRecord(hit), distance: Number(hit.fields.distance) }));
  }

  private toRecord(hit: SearchHit): MemoryRecord {
    const f = hit.fields;
    return {
      id: this.keys.memoryIdOf(hit.key),
      user: f.user ?? '',
      namespace: f.namespace ?? '',
      kind: (f.kind ?? 'episodic') as MemoryKind,
      source_thread: f.source_thread ?? '',
      text: f.text ?? '',
      created_ts: Number(f.created_ts ?? 0),
      hit_count: Number(f.hit_count ?? 0),
      ttl_seconds: null,
    };
  }

  /** Fills ttl_seconds for a page of records in one round trip. */
  async withTtls<T extends MemoryRecord>(records: T[]): Promise<T[]> {
    if (records.length === 0) return records;
    const pipeline = this.redis.pipeline();
    for (const r of records) pipeline.ttl(this.keys.memory(r.id));
    const replies = (await pipeline.exec()) ?? [];
    return records.map((r, i) => {
      const ttl = Number(replies[i]?.[1] ?? -1);
      return { ...r, ttl_seconds: ttl >= 0 ? ttl : null };
    });
  }
}

function checkScope(scope: Scope): Scope {
  return { user: v.scopeValue(scope.user, 'user'), namespace: v.scopeValue(scope.namespace, 'namespace') };
}
