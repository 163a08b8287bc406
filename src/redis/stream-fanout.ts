import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';

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
/** When CLIENT UNBLOCK is not allowed (ACLs), a stream followed mid-read waits at most this long. */
const BLOCK_MS_WITHOUT_UNBLOCK = 1000;
const COUNT = 100;

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

/**
 * Follows any number of Streams for any number of followers over one blocking connection: one
 * `XREAD BLOCK` names every followed stream, so a process serving thousands of event-stream
 * clients holds one Redis connection for them, and one reply wakes all the clients it concerns.
 * A follower that starts behind the shared read (resuming from an old id) reads its history with
 * XRANGE first and receives live entries after it; each follower gets every entry after its
 * starting id once, in order. Following a stream not yet in the read interrupts the blocked read
 * (CLIENT UNBLOCK) so the new stream is read at once.
 */
export class StreamFanout {
  private readonly streams = new Map<string, FollowedStream>();
  private reader: Redis | undefined;
  private readerId: number | undefined;
  private loop: Promise<void> | undefined;
  private closed = false;
  /** True while an XREAD is out; `reads` counts the ones that came back. */
  private reading = false;
  private reads = 0;
  private unblockAllowed = true;
  private wakeIdle: (() => void) | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly log: Logger,
    /** CLIENT SETNAME of the shared connection, so operators can find it. */
    private readonly connectionName = 'agentmem-events',
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
      void this.interrupt();
    }
    stream.followers.add(follower);
    if (compareStreamIds(afterId, stream.cursor) < 0) {
      follower.held = [];
      void this.catchUp(key, stream, follower);
    }
    this.start();
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
    this.wakeIdle?.();
    this.reader?.disconnect();
    await this.loop;
  }

  private start(): void {
    if (this.loop) return;
    this.reader = this.redis.duplicate({ connectionName: this.connectionName });
    this.reader.on('error', () => undefined);
    this.loop = this.run();
  }

  private async run(): Promise<void> {
    const reader = this.reader as Redis;
    while (!this.closed) {
      if (this.streams.size === 0) {
        await new Promise<void>((resolve) => (this.wakeIdle = resolve));
        this.wakeIdle = undefined;
        continue;
      }
      let keys: string[] = [];
      let reply: [string, RawEntry[]][] | null;
      try {
        this.readerId ??= Number(await reader.client('ID'));
        // Taken after the await: a stream followed meanwhile is in this read.
        keys = [...this.streams.keys()];
        if (keys.length === 0) continue;
        const ids = keys.map((k) => (this.streams.get(k) as FollowedStream).cursor);
        this.reading = true;
        const blockMs = this.unblockAllowed ? BLOCK_MS : BLOCK_MS_WITHOUT_UNBLOCK;
        reply = (await reader.xread('COUNT', COUNT, 'BLOCK', blockMs, 'STREAMS', ...keys, ...ids)) as [string, RawEntry[]][] | null;
      } catch (err) {
        if (this.closed) break;
        this.log.warn('events.read_failed', { streams: keys.length, error: err });
        this.readerId = undefined; // a reconnect gives the connection a new id
        await new Promise((r) => setTimeout(r, 500));
        continue;
      } finally {
        this.reading = false;
        this.reads++;
      }
      for (const [key, entries] of reply ?? []) this.dispatch(key, entries);
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

  /**
   * Makes a blocked XREAD return so the next one names the streams followed since. A CLIENT
   * UNBLOCK can reach Redis before the XREAD it targets; then it is retried until that read
   * blocks or returns.
   */
  private async interrupt(): Promise<void> {
    this.wakeIdle?.();
    const read = this.reads;
    for (let attempt = 0; attempt < 50 && this.unblockAllowed && this.reading && this.reads === read && !this.closed; attempt++) {
      try {
        if (this.readerId !== undefined && Number(await this.redis.client('UNBLOCK', this.readerId)) === 1) return;
      } catch (err) {
        this.unblockAllowed = false;
        this.log.warn('events.unblock_denied', { error: err, block_ms: BLOCK_MS_WITHOUT_UNBLOCK });
        return;
      }
      await new Promise((r) => setTimeout(r, 2));
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
