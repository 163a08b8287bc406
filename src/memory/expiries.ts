import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import type { LongTermMemory } from './long-term.js';

/**
 * Turns Redis's expired-key notifications for memory documents into memory_expired entries on the
 * memory log, so pages showing a scope drop the memory when it expires. Needs
 * `notify-keyspace-events` to include `Ex` (the embedded Redis sets it); without it, nothing is
 * heard and expiries show up at the next change instead. Every API process forwards what it
 * hears, so with several of them an expiry is logged more than once: readers only refresh on it.
 */
export async function watchExpiries(redis: Redis, keys: Keys, longTerm: LongTermMemory, log: Logger): Promise<() => Promise<void>> {
  const subscriber = redis.duplicate();
  subscriber.on('error', () => undefined);
  subscriber.on('pmessage', (_pattern: string, _channel: string, key: string) => {
    if (!key.startsWith(keys.memoryPrefix)) return;
    longTerm.logChange('memory_expired', { memory_id: keys.memoryIdOf(key) }).catch((err: unknown) => log.warn('expiries.log_failed', { key, error: err }));
  });
  // ioredis subscribes again after every reconnect (autoResubscribe): a Redis restart costs only
  // the expiries that happened while it was down.
  await subscriber.psubscribe('__keyevent@*__:expired');
  return async () => {
    await subscriber.quit().catch(() => undefined);
  };
}
