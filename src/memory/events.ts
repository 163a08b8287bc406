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

/** The event log: one Stream per thread, capped with `MAXLEN ~`, fields in the demos' order. */
export class EventLog {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly maxLen: number,
  ) {}

  async record(threadId: string, action: string, detail = ''): Promise<string> {
    const key = this.keys.events(v.threadId(threadId));
    const ts = (Date.now() / 1000).toFixed(3);
    const id = await this.redis.xadd(key, 'MAXLEN', '~', this.maxLen, '*', 'action', action, 'detail', detail, 'ts', ts);
    if (id === null) throw new Error('XADD returned no id');
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
