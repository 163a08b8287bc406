import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import type { LongTermMemory, MemoryRecord } from '../memory/long-term.js';
import type { MemoryOutcome } from '../redis/scripts.js';
import * as v from '../validate.js';

export type TurnStatus = 'queued' | 'done' | 'failed';


export interface TurnResult {
  turn_id: string;
  thread_id: string;
  status: TurnStatus;
  /** The turn's position in its thread: turn_count right after it was accepted. */
  turn_count: number;
  /** Null until recall is ready (recall is ready before the turn is done when it is remembered). */
  recall: MemoryRecord[] | null;
  memory: MemoryOutcome | null;
  timings: { accepted_ts: number; recall_ts?: number; done_ts?: number; embed_ms?: number; recall_ms?: number; remember_ms?: number };
  error?: string;
}

const TIMING_FIELDS = ['recall_ts', 'done_ts', 'embed_ms', 'recall_ms', 'remember_ms'] as const;

/** A turn's status and results; recalled memories carry their TTL as of this read. */
export async function readTurn(redis: Redis, keys: Keys, longTerm: Pick<LongTermMemory, 'withTtls'>, turnId: string): Promise<TurnResult | null> {
  const hash = await redis.hgetall(keys.turn(v.memoryId(turnId, 'turn_id')));
  if (!hash.turn_id) return null;
  const recall = hash.recall ? await longTerm.withTtls(JSON.parse(hash.recall) as MemoryRecord[]) : null;
  const timings: TurnResult['timings'] = { accepted_ts: Number(hash.accepted_ts) };
  for (const field of TIMING_FIELDS) if (hash[field] !== undefined) timings[field] = Number(hash[field]);
  return {
    turn_id: hash.turn_id,
    thread_id: hash.thread_id ?? '',
    status: (hash.status ?? 'queued') as TurnStatus,
    turn_count: Number(hash.turn_count ?? 0),
    recall,
    memory: hash.memory ? (JSON.parse(hash.memory) as MemoryOutcome) : null,
    timings,
    ...(hash.error ? { error: hash.error } : {}),
  };
}
