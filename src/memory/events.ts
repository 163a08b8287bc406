import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { pairs } from '../redis/reply.js';
import * as v from '../validate.js';

/** One entry of a thread's event log (the reference demos' Event record). */
export interface EventRecord {
  event_id: string;
  thread_id: string;
  action: string;
  detail: string;
  ts: number;
}

/**
 * The event log: one Stream per thread, capped with `MAXLEN ~`, fields in the demos' order, and
 * expiring like the thread's working memory (every entry refreshes the TTL, as the Lua scripts
 * that log do): a thread id any client can invent must not leave a stream behind forever.
 */
export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: { maxLen: number; ttlSeconds: number },
  ) {}

  async record(threadId: string, action: string, detail = ''): Promise<string> {
    const key = this.keys.events(v.threadId(threadId));
    const ts = (Date.now() / 1000).toFixed(3);
    const replies = await this.redis.multi()
      .xadd(key, 'MAXLEN', '~', this.options.maxLen, '*', 'action', action, 'detail', detail, 'ts', ts)
      .expire(key, this.options.ttlSeconds)
      .exec();
    const [err, id] = replies?.[0] ?? [new Error('MULTI was discarded'), null];
    if (err) throw err;
    if (typeof id !== 'string') throw new Error('XADD returned no id');
    return id;
  }

  /** Newest first. */
  async recent(threadId: string, count = 20): Promise<EventRecord[]> {
    const id = v.threadId(threadId);
    const entries = await this.redis.xrevrange(this.keys.events(id), '+', '-', 'COUNT', count);
    return entries.map(([eventId, fields]) => toEventRecord(id, eventId, fields));
  }
}

export function toEventRecord(threadId: string, eventId: string, fields: string[]): EventRecord {
  const map = pairs(fields);
  return {
    event_id: eventId,
    thread_id: threadId,
    action: String(map.get('action') ?? ''),
    detail: String(map.get('detail') ?? ''),
    ts: Number(map.get('ts') ?? 0),
  };
}
