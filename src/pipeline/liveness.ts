import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { isMissingGroup } from '../redis/missing.js';
import { pairs } from '../redis/reply.js';
import { CONSUMER_LIVE_MS, EMBED_RECALL_GROUP, REMEMBER_GROUP } from './groups.js';

/** The consumers of one stage's group: how many it knows, how many are live, and the freshest one's idle time. */
export interface StageConsumers {
  stage: string;
  /** False when the group does not exist (no worker of the stage has started since Redis lost it). */
  group: boolean;
  known: number;
  live: number;
  freshestIdleMs: number | null;
}

/**
 * Each pipeline stage's consumers. A consumer is live when it tried to read within
 * CONSUMER_LIVE_MS (XINFO CONSUMERS `idle` counts from the last attempt, so a worker waiting on
 * an empty stream stays live). A stage without one still accepts turns; they wait until a worker
 * of that stage runs again.
 */
export async function stageConsumers(redis: Redis, keys: Keys): Promise<StageConsumers[]> {
  const stages = [
    { stage: EMBED_RECALL_GROUP, stream: keys.ingestStream },
    { stage: REMEMBER_GROUP, stream: keys.rememberStream },
  ];
  return Promise.all(stages.map(({ stage, stream }) => consumersOf(redis, stage, stream)));
}

/** /readyz's view: 'ok' per stage with a live consumer, else what is missing. */
export async function stageLiveness(redis: Redis, keys: Keys): Promise<Record<string, string>> {
  return Object.fromEntries((await stageConsumers(redis, keys)).map((s) => [s.stage, describe(s)]));
}

function describe(s: StageConsumers): string {
  if (!s.group) return 'no consumer group: no worker of this stage has started since Redis lost it';
  if (s.known === 0) return 'no consumer';
  if (s.live > 0) return 'ok';
  return `no live consumer: ${s.known} known, the latest read ${s.freshestIdleMs} ms ago`;
}

async function consumersOf(redis: Redis, stage: string, stream: string): Promise<StageConsumers> {
  let consumers: unknown[][];
  try {
    consumers = (await redis.xinfo('CONSUMERS', stream, stage)) as unknown[][];
  } catch (err) {
    if (isMissingGroup(err) || (err instanceof Error && /no such key/i.test(err.message))) return { stage, group: false, known: 0, live: 0, freshestIdleMs: null };
    throw err;
  }
  const idles = consumers.map((raw) => Number(pairs(raw).get('idle')));
  return {
    stage, group: true, known: idles.length,
    live: idles.filter((idle) => idle <= CONSUMER_LIVE_MS).length,
    freshestIdleMs: idles.length > 0 ? Math.min(...idles) : null,
  };
}
