import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { blockingConnection } from './connection.js';

/** One Stream entry as XREAD and XRANGE return it: id, then flat field/value pairs. */
export type RawEntry = [id: string, fields: string[]];

interface Follower {
  /** Id of the last entry handed over; only later ones go out. */
  cursor: string;
  /** Live entries held back while the follower reads its history, or null once it has caught up. */
  held: RawEntry[] | null;
  onEntries(entries: RawEntry[]): void;
}

interface FollowedStream {
  /** Where the shared read continues this stream. */
  cursor: string;
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
  // Milliseconds fit a double exactly; sequence numbers may not, but equal-length digit strings compare as text.
  const ms = Number(am) - Number(bm);
  if (ms !== 0) return ms < 0 ? -1 : 1;
  if (as.length !== bs.length) return as.length < bs.length ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
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

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly options: FanoutOptions,
  ) {}

  /** Calls `onEntries` with every entry of `key` after `afterId`, as they come; returns the unfollow function. */
  follow(key: string, afterId: string, onEntries: (entries: RawEntry[]) => void): () => void {
    if (this.closed) throw new Error('stream fan-out closed');
    const follower: Follower = { cursor: afterId, held: null, onEntries };
    let stream = this.streams.get(key);
    if (!stream) {
      // A stream new to the read starts at this follower's cursor: the shared read brings its history.
      stream = { cursor: afterId, followers: new Set() };
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
    while (!this.closed) {
      // The wake-up stream first; followed streams as they are now.
      const keys = [wakeKey, ...this.streams.keys()];
      const ids = [this.wakeCursor, ...[...this.streams.values()].map((s) => s.cursor)];
      let reply: [string, RawEntry[]][] | null;
      try {
        reply = (await reader.xread('COUNT', COUNT, 'BLOCK', BLOCK_MS, 'STREAMS', ...keys, ...ids)) as [string, RawEntry[]][] | null;
      } catch (err) {
        if (this.closed) break;
        this.log.warn('events.read_failed', { streams: keys.length - 1, error: err });
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      for (const [key, entries] of reply ?? []) {
        if (key === wakeKey) this.wakeCursor = entries.at(-1)?.[0] ?? this.wakeCursor;
        else this.dispatch(key, entries);
      }
    }
  }

  private dispatch(key: string, entries: RawEntry[]): void {
    const stream = this.streams.get(key);
    const last = entries.at(-1);
    if (!stream || !last) return;
    if (compareStreamIds(last[0], stream.cursor) > 0) stream.cursor = last[0];
    for (const follower of stream.followers) {
      if (follower.held) follower.held.push(...entries);
      else hand(follower, entries);
    }
  }

  /**
   * Reads a late follower's history (after its cursor) with XRANGE, then lets live entries
   * through. A failed read is retried while the follower stays: skipping it would leave a gap.
   */
  private async catchUp(key: string, stream: FollowedStream, follower: Follower): Promise<void> {
    for (;;) {
      try {
        const page = (await this.redis.xrange(key, `(${follower.cursor}`, '+', 'COUNT', COUNT)) as RawEntry[];
        hand(follower, page);
        if (page.length < COUNT) break;
      } catch (err) {
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
