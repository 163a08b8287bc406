import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { isMissingGroup } from '../redis/missing.js';
import { pairs } from '../redis/reply.js';
import { EMBED_RECALL_GROUP, REMEMBER_GROUP } from './stages.js';
import { CONSUMER_LIVE_MS } from './worker.js';

/**
 * Whether each pipeline stage has a live consumer: one of its group that tried to read within
 * CONSUMER_LIVE_MS (XINFO CONSUMERS `idle` counts from the last attempt, so a worker waiting
 * on an empty stream stays live). A stage without one still accepts turns; they wait until a
 * worker of that stage runs again. 'ok' per stage, else what is missing.
 */
export async function stageLiveness(redis: Redis, keys: Keys): Promise<Record<string, string>> {
  const stages = [
    { stage: EMBED_RECALL_GROUP, stream: keys.ingestStream },
    { stage: REMEMBER_GROUP, stream: keys.rememberStream },
  ];
  const results = await Promise.all(stages.map(({ stage, stream }) => consumerState(redis, stream, stage)));
  return Object.fromEntries(stages.map(({ stage }, i) => [stage, results[i] as string]));
}

async function consumerState(redis: Redis, stream: string, group: string): Promise<string> {
  let consumers: unknown[][];
  try {
    consumers = (await redis.xinfo('CONSUMERS', stream, group)) as unknown[][];
  } catch (err) {
    if (isMissingGroup(err) || (err instanceof Error && /no such key/i.test(err.message))) return 'no consumer group: no worker of this stage has started since Redis lost it';
    throw err;
  }
  const idles = consumers.map((raw) => Number(pairs(raw).get('idle')));
  if (idles.length === 0) return 'no consumer';
  const freshest = Math.min(...idles);
  if (freshest <= CONSUMER_LIVE_MS) return 'ok';
  return `no live consumer: ${idles.length} known, the latest read ${freshest} ms ago`;
}
