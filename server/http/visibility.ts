import type { Redis } from 'ioredis';
import type { EventFilter } from './sse.js';
import type { Keys } from '../../src/keys.js';
import { allUsers, foldName, inScope, mayActAs, type Principal } from '../../src/auth/principal.js';

/** Provenance for a JSON detail: `{ key_id }` when a key acted, else nothing. */
export function keyField(p: Principal): { key_id?: string } {
  return p.keyId ? { key_id: p.keyId } : {};
}

/**
 * The memory log holds every user's changes: a key not bound to `*` is sent only entries whose
 * detail names a user and namespace inside its scope. Entries that name no scope (an expiry,
 * which only knows the memory id; a consolidation) go to `*` keys only.
 */
export function memoryEventFilter(p: Principal): EventFilter {
  if (allUsers(p)) return () => 'send';
  return (event) => {
    let detail: unknown;
    try {
      detail = JSON.parse(event.detail);
    } catch {
      return 'skip';
    }
    const { user, namespace } = (detail ?? {}) as { user?: unknown; namespace?: unknown };
    return typeof user === 'string' && typeof namespace === 'string' && inScope(p, { user, namespace }) ? 'send' : 'skip';
  };
}

/**
 * A thread's event stream, for a key that may see its owner. Should the thread expire and another
 * user start one with the same id while this stream is open, that thread_started ends the stream:
 * what follows is not this key's.
 */
export function threadEventFilter(p: Principal): EventFilter {
  if (allUsers(p)) return () => 'send';
  return (event) => {
    if (event.action !== 'thread_started') return 'send';
    const detail = foldName(event.detail);
    return p.users.some((u) => detail.startsWith(foldName(`user=${u} namespace=`))) ? 'send' : 'end';
  };
}

/** Whether `p` may see a turn: its hash names its user (older turns: its thread's owner). */
export async function turnVisible(redis: Redis, keys: Keys, p: Principal, turnId: string): Promise<boolean> {
  if (allUsers(p)) return true;
  const [user, threadId] = await redis.hmget(keys.turn(turnId), 'user', 'thread_id');
  const owner = user ?? (threadId ? await redis.hget(keys.session(threadId), 'user') : null);
  return owner !== null && mayActAs(p, owner);
}
