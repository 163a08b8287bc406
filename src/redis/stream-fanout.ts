import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { blockingConnection } from './connection.js';
import { isReplyError, pairs } from './reply.js';

/** One Stream entry as XREAD and XRANGE return it: id, then flat field/value pairs. */
export type RawEntry = [id: string, fields: string[]];

interface Follower {
  /** Id of the last entry handed over; only later ones go out. */
  cursor: string;
  /** Live entries held back while the follower reads its history, or null once it has caught up. */
  held: RawEntry[] | null;
  onEntries(entries: RawEntry[]): void;
  /** Redis refuses to read the stream for this follower (a bad cursor, a key of another type); it is dropped. */
  onFailed(error: Error): void;
}

interface FollowedStream {
  /** Where the shared read continues this stream. */
  cursor: string;
  /** The last id the shared read got from Redis for this stream (never a client's id), if any. */
  received: string | undefined;
  followers: Set<Follower>;
}

const BLOCK_MS = 15_000;
const COUNT = 100;
/** Orphaned wake-up streams (their process died) expire after this. */
const WAKE_TTL_SECONDS = 3600;

/** Orders two Stream ids (`<ms>-<seq>`, decimal, no leading zeros) numerically. */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  return compareDigits(am, bm) || compareDigits(as, bs);
}

/** Either part may reach 2^64-1, past what a double holds exactly; digit strings without leading zeros compare by length, then as text. */
function compareDigits(a: string, b: string): number {
  if (a.length !== b.length) return a.length < b.length ? -1 : 1;
  return a === b ? 0 : a < b ? -1 : 1;
}

export interface FanoutOptions {
  /** CLIENT SETNAME of the shared connection, so operators can find it. */
  connectionName: string;
  /** A stream of this process's own (keys.eventsWake): appending to it ends the blocked read. */
  wakeKey: string;
}

/**
 * Follows any number of Streams for any number of followers over one blocking connection: one
 * `XREAD BLOCK` names every followed stream, so a process serving thousands of event-stream
 * clients holds one Redis connection for them, and one reply wakes all the clients it concerns.
 * A follower that starts behind the shared read (resuming from an old id) reads its history with
 * XRANGE first and receives live entries after it; each follower gets every entry after its
 * starting id once, in order. Following a stream the read does not name yet appends to the
 * process's wake-up stream, which the read also names: it returns at once and the next read
 * names the new stream. (CLIENT UNBLOCK would need the connection's id, which changes on every
 * reconnect, and an ACL permission managed Redis often withholds.)
 */
export class StreamFanout {
  private readonly streams = new Map<string, FollowedStream>();
  private reader: Redis | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  /** Where the read continues the wake-up stream: anything appended after it ends the block. */
  private wakeCursor = '0-0';
  /** Set when the connection dropped: the next read first checks for recreated streams. */
  private recheck = false;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly options: FanoutOptions,
  ) {}

  /**
   * Calls `onEntries` with every entry of `key` after `afterId`, as they come; returns the
   * unfollow function. Should Redis refuse to read `key` from there (a cursor it rejects, a key
   * of another type), `onFailed` is called once and the follower is dropped; followers of other
   * streams, and of the same stream from good cursors, read on.
   */
  follow(key: string, afterId: string, onEntries: (entries: RawEntry[]) => void, onFailed: (error: Error) => void): () => void {
    if (this.closed) throw new Error('stream fan-out closed');
    const follower: Follower = { cursor: afterId, held: null, onEntries, onFailed };
    let stream = this.streams.get(key);
    if (!stream) {
      // A stream new to the read starts at this follower's cursor: the shared read brings its history.
      stream = { cursor: afterId, received: undefined, followers: new Set() };
      this.streams.set(key, stream);
      if (this.loop) void this.wake();
    }
    stream.followers.add(follower);
    if (compareStreamIds(afterId, stream.cursor) < 0) {
      follower.held = [];
      void this.catchUp(key, stream, follower);
    }
    this.loop ??= this.run();
    const followed = stream;
    return () => {
      followed.followers.delete(follower);
      if (followed.followers.size === 0 && this.streams.get(key) === followed) this.streams.delete(key);
    };
  }

  /** Followers and the streams they follow, for metrics. */
  get size(): { followers: number; streams: number } {
    let followers = 0;
    for (const stream of this.streams.values()) followers += stream.followers.size;
    return { followers, streams: this.streams.size };
  }

  /** Ends the shared read; followers get nothing more. */
  async close(): Promise<void> {
    this.closed = true;
    this.streams.clear();
    this.reader?.disconnect();
    await this.loop;
    if (this.loop) await this.redis.del(this.options.wakeKey).catch(() => undefined);
  }

  private async run(): Promise<void> {
    const { connectionName, wakeKey } = this.options;
    const reader = (this.reader = blockingConnection(this.redis, { connectionName }));
    reader.on('error', () => undefined);
    // ioredis sends the read in flight again after a reconnect, with the cursors of before: wake
    // it, so that the next read checks them against what this Redis holds now.
    let connected = false;
    reader.on('ready', () => {
      if (connected) {
        this.recheck = true;
        void this.wake();
      }
      connected = true;
    });
    while (!this.closed) {
      if (this.recheck) {
        try {
          await this.rewindRecreated();
          this.recheck = false;
        } catch (err) {
          this.log.warn('events.recheck_failed', { error: err });
          await new Promise((r) => setTimeout(r, 500));
          continue;
        }
      }
      // The wake-up stream first; followed streams as they are now.
      const keys = [wakeKey, ...this.streams.keys()];
      const ids = [this.wakeCursor, ...[...this.streams.values()].map((s) => s.cursor)];
      let reply: [string, RawEntry[]][] | null;
      try {
        reply = await reader.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids);
      } catch (err) {
        if (this.closed) break;
        this.log.warn('events.read_failed', { streams: keys.length - 1, error: err });
        this.recheck = true;
        // A refused read would be refused again as long as what caused it is named: find it and drop it.
        const isolated = isReplyError(err) && (await this.dropUnreadable().catch(() => false));
        if (!isolated) await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        if (key === wakeKey) this.wakeCursor = entries.at(-1)?.[0] ?? this.wakeCursor;
        else this.dispatch(key, entries);
      }
    }
  }

  /**
   * After a lost connection Redis may be another dataset (restarted empty, failed over): a stream
   * recreated there numbers its entries from its new server's clock, possibly below the ids we
   * read before, and a read from our cursor would skip them. A stream whose last generated id is
   * below what we received (or that is gone) is therefore new to every follower: read it from the
   * start. Only ids Redis gave us count, so a client's made-up cursor cannot rewind others.
   */
  private async rewindRecreated(): Promise<void> {
    const { wakeKey } = this.options;
    const keys = [wakeKey, ...this.streams.keys()];
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.xinfo('STREAM', key);
    const replies = (await pipeline.exec()) ?? [];
    // A stream that is gone has generated nothing yet; any other error leaves its cursor alone.
    const lastIds = keys.map((_key, i): string | undefined => {
      const [err, info] = replies[i] ?? [null, null];
      if (err) return /no such key/i.test(err.message) ? '0-0' : undefined;
      return String(pairs(info as unknown[]).get('last-generated-id') ?? '0-0');
    });
    const wakeLast = lastIds[0];
    if (wakeLast !== undefined && compareStreamIds(this.wakeCursor, wakeLast) > 0) this.wakeCursor = '0-0';
    keys.slice(1).forEach((key, i) => {
      const stream = this.streams.get(key);
      const lastId = lastIds[i + 1];
      if (!stream?.received || lastId === undefined || compareStreamIds(stream.received, lastId) <= 0) return;
      this.log.warn('events.stream_recreated', { stream: key, received: stream.received, last_id: lastId });
      stream.cursor = '0-0';
      stream.received = undefined;
      for (const follower of stream.followers) follower.cursor = '0-0';
    });
  }

  private dispatch(key: string, entries: RawEntry[]): void {
    const stream = this.streams.get(key);
    const last = entries.at(-1);
    if (!stream || !last) return;
    stream.received = last[0];
    if (compareStreamIds(last[0], stream.cursor) > 0) stream.cursor = last[0];
    for (const follower of stream.followers) {
      if (follower.held) follower.held.push(...entries);
      else hand(follower, entries);
    }
  }

  /**
   * After the shared read was refused: reads each followed stream once, without blocking, from
   * its shared cursor and from each follower's cursor, and drops exactly the followers Redis
   * refuses (told why); a stream whose shared cursor alone is refused continues from its
   * remaining followers' cursors. The wake-up stream is the process's own: one of another type
   * is replaced, and any other refusal of it means Redis refuses every read, so nobody is
   * dropped. Returns whether anything was dropped (false: the cause lies elsewhere).
   */
  private async dropUnreadable(): Promise<boolean> {
    const { wakeKey } = this.options;
    const probes: { key: string; id: string }[] = [{ key: wakeKey, id: this.wakeCursor }];
    for (const [key, stream] of this.streams) {
      const ids = new Set([stream.cursor, ...[...stream.followers].map((f) => f.cursor)]);
      for (const id of ids) probes.push({ key, id });
    }
    const pipeline = this.redis.pipeline();
    for (const { key, id } of probes) pipeline.xread('COUNT', 1, 'STREAMS', key, id);
    const results = (await pipeline.exec()) ?? [];
    const refused = new Map<string, Map<string, Error>>();
    probes.forEach(({ key, id }, i) => {
      const error = results[i]?.[0];
      if (!error) return;
      if (!refused.has(key)) refused.set(key, new Map());
      refused.get(key)?.set(id, error);
    });
    let dropped = false;
    const wakeError = refused.get(wakeKey)?.get(this.wakeCursor);
    // The wake-up stream is ours and its cursor came from Redis: refused other than for its type,
    // Redis refuses every read (loading, permissions, ...), and no follower is to blame.
    if (wakeError && !wakeError.message.startsWith('WRONGTYPE')) return false;
    if (wakeError) {
      this.log.warn('events.wake_stream_replaced', { stream: wakeKey, error: wakeError });
      await this.redis.del(wakeKey);
      this.wakeCursor = '0-0';
      dropped = true;
    }
    for (const [key, errors] of refused) {
      const stream = this.streams.get(key);
      if (!stream || key === wakeKey) continue;
      for (const follower of stream.followers) {
        const error = errors.get(follower.cursor);
        if (error) this.drop(key, stream, follower, error);
      }
      const sharedError = errors.get(stream.cursor);
      if (sharedError && stream.followers.size > 0) {
        // Every remaining follower's cursor reads fine; the lowest of them misses nothing (hand() skips what a follower has).
        stream.cursor = [...stream.followers].map((f) => f.cursor).reduce((a, b) => (compareStreamIds(a, b) <= 0 ? a : b));
      }
      dropped = true;
    }
    return dropped;
  }

  private drop(key: string, stream: FollowedStream, follower: Follower, error: Error): void {
    stream.followers.delete(follower);
    if (stream.followers.size === 0 && this.streams.get(key) === stream) this.streams.delete(key);
    this.log.warn('events.follower_dropped', { stream: key, cursor: follower.cursor, error });
    follower.onFailed(error);
  }

  /**
   * Reads a late follower's history (after its cursor) with XRANGE, then lets live entries
   * through. A failed read is retried while the follower stays (skipping it would leave a gap);
   * one Redis refuses drops the follower.
   */
  private async catchUp(key: string, stream: FollowedStream, follower: Follower): Promise<void> {
    for (;;) {
      try {
        const page = (await this.redis.xrange(key, `(${follower.cursor}`, '+', 'COUNT', COUNT)) as RawEntry[];
        hand(follower, page);
        if (page.length < COUNT) break;
      } catch (err) {
        if (isReplyError(err)) {
          if (stream.followers.has(follower)) this.drop(key, stream, follower, err as Error);
          return;
        }
        this.log.warn('events.catch_up_failed', { stream: key, error: err });
        await new Promise((r) => setTimeout(r, 500));
        if (this.closed || !stream.followers.has(follower)) return;
      }
    }
    const held = follower.held ?? [];
    follower.held = null;
    hand(follower, held);
  }

  /** Ends the blocked read, whenever it was sent: the wake-up entry outlives the moment. */
  private async wake(): Promise<void> {
    const { wakeKey } = this.options;
    try {
      await this.redis.multi().xadd(wakeKey, 'MAXLEN', 1, '*', 'wake', '1').expire(wakeKey, WAKE_TTL_SECONDS).exec();
    } catch (err) {
      // The read still names the stream once it returns (at the latest after BLOCK_MS).
      this.log.warn('events.wake_failed', { error: err });
    }
  }
}

function hand(follower: Follower, entries: RawEntry[]): void {
  const first = entries[0];
  // Entries come in id order: when the first is new, all are (the usual case, one comparison).
  const fresh = first && compareStreamIds(first[0], follower.cursor) > 0 ? entries : entries.filter(([id]) => compareStreamIds(id, follower.cursor) > 0);
  const last = fresh.at(-1);
  if (!last) return;
  follower.cursor = last[0];
  follower.onEntries(fresh);
}
