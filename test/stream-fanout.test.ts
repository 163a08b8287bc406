import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { compareStreamIds, StreamFanout, type RawEntry } from '../src/redis/stream-fanout.js';
import { connect, deleteByPrefix } from './support/redis.js';

const prefix = `t${randomBytes(4).toString('hex')}:fanout:`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Collects what one follower receives. */
function recorder() {
  const ids: string[] = [];
  return { ids, onEntries: (entries: RawEntry[]) => void ids.push(...entries.map(([id]) => id)) };
}

async function until(check: () => boolean, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !check(); await sleep(20)) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms: ${what}`);
  }
}

describe('StreamFanout (one blocking read shared by many followers)', () => {
  let redis: Redis;
  let fanout: StreamFanout;
  beforeAll(() => {
    redis = connect();
  });
  afterEach(async () => {
    await fanout.close();
  });
  afterAll(async () => {
    await deleteByPrefix(redis, prefix);
    await redis.quit();
  });

  it('gives every follower each entry after its starting id exactly once, in order, while many writers append', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const keys = [0, 1, 2].map((i) => `${prefix}a${i}`);
    for (const key of keys) for (let i = 0; i < 50; i++) await redis.xadd(key, '*', 'n', `early-${i}`);
    const midway = await Promise.all(keys.map(async (key) => (await redis.xrange(key, '-', '+', 'COUNT', 20)).at(-1)![0]));
    const followers: { key: string; after: string; got: ReturnType<typeof recorder> }[] = [];
    const follow = (key: string, after: string): void => {
      const got = recorder();
      fanout.follow(key, after, got.onEntries);
      followers.push({ key, after, got });
    };
    // From the start and from the newest entry; later, once the shared read is past it, from an old id.
    for (const key of keys) {
      follow(key, '0-0');
      follow(key, (await redis.xrevrange(key, '+', '-', 'COUNT', 1))[0]![0]);
    }
    const writers = Array.from({ length: 8 }, async (_, w) => {
      const writer = redis.duplicate();
      for (let i = 0; i < 60; i++) await writer.xadd(keys[(w + i) % keys.length]!, '*', 'n', `w${w}-${i}`);
      await writer.quit();
    });
    const fromStart = [...followers];
    await until(() => fromStart.every((f) => f.got.ids.length >= 50), 5000, 'the early entries');
    for (const [i, key] of keys.entries()) follow(key, midway[i]!);
    await Promise.all(writers);

    const expected = new Map<string, string[]>();
    for (const key of keys) expected.set(key, (await redis.xrange(key, '-', '+')).map(([id]) => id));
    const wanted = (f: (typeof followers)[number]): string[] => expected.get(f.key)!.filter((id) => compareStreamIds(id, f.after) > 0);
    await until(() => followers.length === 9 && followers.every((f) => f.got.ids.length >= wanted(f).length), 10_000, 'every follower caught up');
    await sleep(100);
    for (const f of followers) expect(f.got.ids).toEqual(wanted(f));
    expect(fanout.size).toEqual({ followers: 9, streams: 3 });
  });

  it('reads a stream followed while the shared read is blocked on others at once, not after the block times out', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const first = recorder();
    fanout.follow(`${prefix}b0`, '0-0', first.onEntries);
    await sleep(200); // the read is now blocked on b0 (and the wake-up stream), for up to 15 s
    const second = recorder();
    fanout.follow(`${prefix}b1`, '0-0', second.onEntries);
    const id = await redis.xadd(`${prefix}b1`, '*', 'n', 'late');
    await until(() => second.ids.length === 1, 3000, 'the entry on the newly followed stream');
    expect(second.ids).toEqual([id]);
    expect(first.ids).toEqual([]);
  });

  it('reads on after its connection is cut, and still reads newly followed streams at once', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const first = recorder();
    fanout.follow(`${prefix}e0`, '0-0', first.onEntries);
    await sleep(200);
    const readerIds = async () => ((await redis.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=${prefix}reader `)).map((l) => /id=(\d+)/.exec(l)?.[1]);
    const [before] = await readerIds();
    await redis.client('KILL', 'ID', before!);
    for (const deadline = Date.now() + 5000; ; await sleep(50)) {
      const [now] = await readerIds();
      if (now && now !== before) break;
      if (Date.now() > deadline) throw new Error('the reader did not reconnect');
    }
    const lost = await redis.xadd(`${prefix}e0`, '*', 'n', 'after the cut');
    await until(() => first.ids.length === 1, 3000, 'the entry written after the reconnect');
    const second = recorder();
    fanout.follow(`${prefix}e1`, '0-0', second.onEntries);
    const id = await redis.xadd(`${prefix}e1`, '*', 'n', 'late');
    await until(() => second.ids.length === 1, 3000, 'the entry on a stream followed after the reconnect');
    expect(first.ids).toEqual([lost]);
    expect(second.ids).toEqual([id]);
  });

  it('after a dropped connection, hands over a stream that came back numbered below what it had read (failover to a server whose clock is behind)', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const key = `${prefix}f0`;
    const bystander = `${prefix}f1`;
    const got = recorder();
    const other = recorder();
    fanout.follow(key, '0-0', got.onEntries);
    fanout.follow(bystander, '0-0', other.onEntries);
    const old = await redis.xadd(key, '*', 'n', 'before the failover');
    const kept = await redis.xadd(bystander, '*', 'n', 'kept');
    await until(() => got.ids.length === 1 && other.ids.length === 1, 3000, 'the entries before the failover');
    // The "new server": the stream is gone, then written again with ids below the ones read.
    await redis.del(key);
    await redis.xadd(key, '5-1', 'n', 'after the failover');
    const readers = ((await redis.client('LIST')) as string).split('\n').filter((l) => l.includes(`name=${prefix}reader `));
    for (const line of readers) await redis.client('KILL', 'ID', /id=(\d+)/.exec(line)![1]!);
    await redis.xadd(key, '6-1', 'n', 'later');
    await until(() => got.ids.length === 3, 5000, `the entries of the recreated stream, got ${JSON.stringify(got.ids)}`);
    expect(got.ids).toEqual([old, '5-1', '6-1']);
    // A stream that was not recreated is not replayed.
    const next = await redis.xadd(bystander, '*', 'n', 'next');
    await until(() => other.ids.length === 2, 3000, 'the next entry of the untouched stream');
    expect(other.ids).toEqual([kept, next]);
  });

  it('stops handing entries to a follower once it unfollows, and drops the stream with its last follower', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const kept = recorder();
    const gone = recorder();
    fanout.follow(`${prefix}c`, '0-0', kept.onEntries);
    const unfollow = fanout.follow(`${prefix}c`, '0-0', gone.onEntries);
    const first = await redis.xadd(`${prefix}c`, '*', 'n', '1');
    await until(() => gone.ids.length === 1 && kept.ids.length === 1, 3000, 'the first entry');
    unfollow();
    const second = await redis.xadd(`${prefix}c`, '*', 'n', '2');
    await until(() => kept.ids.length === 2, 3000, 'the second entry');
    expect(gone.ids).toEqual([first]);
    expect(kept.ids).toEqual([first, second]);
    expect(fanout.size).toEqual({ followers: 1, streams: 1 });

    const unfollowLast = fanout.follow(`${prefix}d`, '0-0', () => undefined);
    unfollowLast();
    expect(fanout.size).toEqual({ followers: 1, streams: 1 });
  });
});

describe('compareStreamIds', () => {
  it('orders ids by milliseconds, then by sequence numbers of any length', () => {
    const ids = ['1-0', '0-0', '1700000000000-10', '1700000000000-9', '1700000000001-0', '5-18446744073709551615', '5-18446744073709551614', '5-2'];
    expect([...ids].sort(compareStreamIds)).toEqual(['0-0', '1-0', '5-2', '5-18446744073709551614', '5-18446744073709551615', '1700000000000-9', '1700000000000-10', '1700000000001-0']);
    expect(compareStreamIds('7-3', '7-3')).toBe(0);
  });
});
