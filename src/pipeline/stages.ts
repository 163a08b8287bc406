import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { TextEmbedder } from '../embedder/types.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import type { LongTermMemory } from '../memory/long-term.js';
import type { Metrics } from '../metrics.js';
import { vectorBytes } from '../query.js';
import { ScriptGateway } from '../redis/scripts.js';
import * as v from '../validate.js';
import type { StreamEntry } from './consumer.js';
import { EMBED_RECALL_GROUP, REMEMBER_GROUP } from './groups.js';

type StageConfig = Pick<Config, 'eventsMaxLen' | 'sessionTtlSeconds' | 'turnTtlSeconds' | 'dedupThreshold'>;

export interface StageDeps {
  redis: Redis;
  keys: Keys;
  longTerm: LongTermMemory;
  config: StageConfig;
  log: Logger;
  metrics?: Metrics;
}

/** The fields every pipeline entry carries, checked: workers never trust what they read from a stream. */
function parseTurnFields(entry: StreamEntry) {
  const f = entry.fields;
  return {
    entryId: entry.id,
    turnId: v.memoryId(f.turn_id, 'turn_id'),
    threadId: v.threadId(f.thread_id),
    user: v.scopeValue(f.user, 'user'),
    namespace: v.scopeValue(f.namespace, 'namespace'),
    role: v.role(f.role),
    content: v.memoryText(f.content, 'content'),
  };
}

function parseIngest(entry: StreamEntry) {
  const f = entry.fields;
  return {
    ...parseTurnFields(entry),
    remember: f.remember === 'skip' ? ('skip' as const) : v.kind(f.remember, 'remember'),
    k: v.positiveInt(Number(f.k), 'k', 100),
    threshold: v.distanceThreshold(Number(f.threshold), 'threshold'),
    acceptedTs: Number(f.accepted_ts),
  };
}

/**
 * Embed-and-recall: embeds a whole batch in one inference call, recalls each turn (before any
 * write of its own), records the results and hands each turn with its embedding to the remember
 * stage — per turn in one script, together with the acknowledgement.
 *
 * `handle` starts a batch and returns as soon as an embedder session is free for the next one, so
 * the embedder (the bottleneck) never waits for Redis, and the next read collects everything that
 * queued meanwhile into one batch. Recalls and writes of at most MAX_FINISHING batches run behind
 * the embedding; `drain` waits for all of them. Working-memory order was fixed at ingest, so
 * batches may finish in any order.
 */
const MAX_FINISHING = 2;
const EMBED_FAILURE_PAUSE_MS = 500;

export class EmbedRecallStage {
  private readonly batches = new Set<Promise<void>>();
  private embedding = 0;
  private finishing = 0;
  private readonly finishWaiters: (() => void)[] = [];
  /** Resolves the `handle` waiting for room, if any; only the consumer's loop calls `handle`, one call at a time. */
  private wake: () => void = () => undefined;
  private readonly scripts: ScriptGateway;

  constructor(
    private readonly deps: StageDeps,
    private readonly embedder: TextEmbedder,
  ) {
    this.scripts = new ScriptGateway(deps.redis, deps.keys);
  }

  async handle(entries: StreamEntry[]): Promise<void> {
    const { log } = this.deps;
    const turns: ReturnType<typeof parseIngest>[] = [];
    for (const entry of entries) {
      try {
        turns.push(parseIngest(entry));
      } catch (err) {
        // Left pending: after maxDeliveries it reaches the dead-letter stream with this reason.
        log.warn('embed_recall.bad_entry', { entry_id: entry.id, error: err });
        this.deps.metrics?.errors.inc({ kind: 'bad_entry' });
      }
    }
    if (turns.length === 0) return;
    const batch = this.run(turns).finally(() => {
      this.batches.delete(batch);
      this.wake();
    });
    this.batches.add(batch);
    const limit = this.embedder.parallelism;
    while (this.embedding >= limit || this.batches.size >= limit + MAX_FINISHING) {
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  private async run(turns: ReturnType<typeof parseIngest>[]): Promise<void> {
    const { log, metrics } = this.deps;
    const started = performance.now();
    let vectors: Float32Array[];
    this.embedding++;
    try {
      vectors = await this.embedder.embed(turns.map((t) => t.content));
    } catch (err) {
      // Left pending: reclaimed after claimIdleMs, dead-lettered after maxDeliveries.
      log.error('embed_recall.embed_failed', { size: turns.length, entry_ids: turns.map((t) => t.entryId), error: err });
      metrics?.errors.inc({ kind: 'embed' });
      await Promise.all(turns.map((t) => recordError(this.scripts, this.deps.log, EMBED_RECALL_GROUP, t.turnId, err)));
      // Holds the session slot a moment: a broken embedder must not turn the read loop into a spin.
      await new Promise((r) => setTimeout(r, EMBED_FAILURE_PAUSE_MS));
      return;
    } finally {
      this.embedding--;
      this.wake();
    }
    const embedMs = performance.now() - started;
    log.debug('embed_recall.batch', { size: turns.length, embed_ms: round(embedMs) });
    metrics?.batchSize.observe({ stage: 'embed_recall' }, turns.length);
    metrics?.stageSeconds.observe({ stage: 'embed' }, embedMs / 1000);
    while (this.finishing >= MAX_FINISHING) await new Promise<void>((resolve) => this.finishWaiters.push(resolve));
    this.finishing++;
    try {
      await Promise.all(
        turns.map((turn, i) =>
          this.finish(turn, vectors[i] as Float32Array, embedMs).catch(async (err: unknown) => {
            log.warn('embed_recall.failed', { turn_id: turn.turnId, thread_id: turn.threadId, entry_id: turn.entryId, error: err });
            metrics?.errors.inc({ kind: 'embed_recall' });
            await recordError(this.scripts, this.deps.log, EMBED_RECALL_GROUP, turn.turnId, err);
          }),
        ),
      );
    } finally {
      this.finishing--;
      this.finishWaiters.shift()?.();
    }
  }

  /** Waits until every batch's recalls and writes are done. */
  async drain(): Promise<void> {
    await Promise.all(this.batches);
  }

  private async finish(turn: ReturnType<typeof parseIngest>, vector: Float32Array, embedMs: number): Promise<void> {
    const { longTerm, config } = this.deps;
    const started = performance.now();
    const recall = await longTerm.recall({ user: turn.user, namespace: turn.namespace, embedding: vector, k: turn.k, threshold: turn.threshold }, { withTtls: false });
    const recallMs = performance.now() - started;
    const detail = { turn_id: turn.turnId, recall: recall.map((m) => ({ id: m.id, distance: m.distance })) };
    const stored = await this.scripts.finishRecall({
      group: EMBED_RECALL_GROUP, entryId: turn.entryId, turnId: turn.turnId, threadId: turn.threadId, user: turn.user, namespace: turn.namespace,
      role: turn.role, content: turn.content, remember: turn.remember, recallJson: JSON.stringify(recall), eventDetailJson: JSON.stringify(detail),
      embedMs: round(embedMs), recallMs: round(recallMs), embedding: vectorBytes(vector),
      eventsMaxLen: config.eventsMaxLen, turnTtlSeconds: config.turnTtlSeconds, sessionTtlSeconds: config.sessionTtlSeconds,
    });
    const metrics = this.deps.metrics;
    if (metrics) {
      metrics.stageSeconds.observe({ stage: 'recall' }, recallMs / 1000);
      // accepted_ts is Redis's clock, this is ours: on one host (or NTP-synced ones) they agree closely.
      if (stored && Number.isFinite(turn.acceptedTs)) metrics.stageSeconds.observe({ stage: 'end_to_end' }, Math.max(0, Date.now() / 1000 - turn.acceptedTs));
      metrics.recallHits.observe(recall.length);
      for (const m of recall) metrics.recallDistance.observe(m.distance ?? 0);
    }
  }
}

/** A remember entry, checked; the embedding arrives as raw float32 bytes from the previous stage. */
function parseRemember(entry: StreamEntry) {
  const f = entry.fields;
  const bytes = entry.raw.embedding;
  if (!bytes || bytes.length !== 384 * 4) throw new Error('embedding: expected 1536 bytes');
  const embedding = new Float32Array(384);
  for (let i = 0; i < 384; i++) embedding[i] = bytes.readFloatLE(i * 4);
  return { ...parseTurnFields(entry), kind: v.kind(f.kind), embedding };
}

/**
 * Remember: the dedup write. KNN k=1 in the turn's scope and kind; within the threshold the
 * neighbour's hit_count is bumped, otherwise the document is written with its TTL. Entries of a
 * batch go one after another, so a batch never stores a fact twice against itself.
 */
export class RememberStage {
  private readonly scripts: ScriptGateway;

  constructor(private readonly deps: StageDeps) {
    this.scripts = new ScriptGateway(deps.redis, deps.keys);
  }

  async handle(entries: StreamEntry[]): Promise<void> {
    this.deps.metrics?.batchSize.observe({ stage: 'remember' }, entries.length);
    for (const entry of entries) {
      let turn: ReturnType<typeof parseRemember>;
      try {
        turn = parseRemember(entry);
      } catch (err) {
        // Left pending: after maxDeliveries it reaches the dead-letter stream with this reason.
        this.deps.log.warn('remember.bad_entry', { entry_id: entry.id, turn_id: entry.fields.turn_id, error: err });
        this.deps.metrics?.errors.inc({ kind: 'bad_entry' });
        continue;
      }
      try {
        await this.apply(turn);
      } catch (err) {
        this.deps.log.warn('remember.failed', { entry_id: entry.id, turn_id: turn.turnId, error: err });
        this.deps.metrics?.errors.inc({ kind: 'remember' });
        await recordError(this.scripts, this.deps.log, REMEMBER_GROUP, turn.turnId, err);
      }
    }
  }

  private async apply(turn: ReturnType<typeof parseRemember>): Promise<void> {
    const { longTerm, config, metrics } = this.deps;
    const started = performance.now();
    const result = await longTerm.remember(
      { user: turn.user, namespace: turn.namespace, text: turn.content, embedding: turn.embedding, kind: turn.kind, sourceThread: turn.threadId, dedupThreshold: config.dedupThreshold },
      { group: REMEMBER_GROUP, entryId: turn.entryId, turnId: turn.turnId, threadId: turn.threadId, role: turn.role,
        eventsMaxLen: config.eventsMaxLen, turnTtlSeconds: config.turnTtlSeconds, sessionTtlSeconds: config.sessionTtlSeconds },
    );
    // Counted only when this delivery applied it, not when it found it applied.
    if (!result.applied || !metrics) return;
    metrics.memoryWrites.inc({ outcome: result.deduped ? 'deduped' : 'written' });
    metrics.stageSeconds.observe({ stage: 'remember' }, (performance.now() - started) / 1000);
  }
}

/** The longest error text kept on a turn or a dead letter. */
const MAX_ERROR_TEXT = 1000;

/** An error as one line for failure records: its message and its causes' (`a: b: c`), bounded. */
export function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && depth < 5; depth++) {
    parts.push(e instanceof Error ? e.message : String(e));
    e = e instanceof Error ? e.cause : undefined;
  }
  const text = parts.join(': ');
  return text.length > MAX_ERROR_TEXT ? `${text.slice(0, MAX_ERROR_TEXT - 1)}…` : text;
}

/**
 * Keeps why this delivery of a turn's entry failed, so that a dead letter names the error
 * (recordError-1.lua). Never throws: a record that cannot be written costs detail, not the entry.
 */
async function recordError(scripts: ScriptGateway, log: Logger, group: string, turnId: string, err: unknown): Promise<void> {
  await scripts.recordError({ turnId, group, message: errorText(err) }).catch((recordFailure: unknown) =>
    log.warn('stage.record_error_failed', { turn_id: turnId, group, error: recordFailure }),
  );
}

/** Each stage's check of its entries: an entry it refuses fails the same way on every delivery. */
const PARSERS: Record<string, (entry: StreamEntry) => unknown> = { [EMBED_RECALL_GROUP]: parseIngest, [REMEMBER_GROUP]: parseRemember };

/** Why `group`'s stage refuses `entry`, or '' when it accepts it (the failure was elsewhere). */
function refusal(group: string, entry: StreamEntry | undefined): string {
  try {
    if (entry) PARSERS[group]?.(entry);
    return '';
  } catch (err) {
    return errorText(err);
  }
}

/**
 * Moves an entry out of `stream` into the dead-letter stream, failing its turn if it names one.
 * The reason names the error: the last one the stage recorded on the turn, else why the stage
 * refuses the entry (deadLetter-4.lua).
 */
export async function deadLetter(
  scripts: ScriptGateway, config: StageDeps['config'], stream: string, group: string, stage: string,
  entry: StreamEntry | undefined, entryId: string, deliveries: number,
): Promise<void> {
  const turnId = entry?.fields.turn_id && v.GENERATED_ID.test(entry.fields.turn_id) ? entry.fields.turn_id : '';
  const threadId = entry?.fields.thread_id && v.CLIENT_THREAD_ID.test(entry.fields.thread_id) ? entry.fields.thread_id : '';
  await scripts.deadLetter({
    stream, group, entryId, stage, cause: refusal(group, entry), deliveries,
    turn: turnId !== '' && threadId !== '' ? { turnId, threadId } : null,
    eventsMaxLen: config.eventsMaxLen, sessionTtlSeconds: config.sessionTtlSeconds,
  });
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}
