import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { compareStreamIds, StreamFanout, type RawEntry } from '../src/redis/stream-fanout.js';
import { connect, deleteByPrefix } from './support/redis.js';

const prefix = `t${randomBytes(4).toString('hex')}:fanout:`;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Collects what one follower receives, and why it was dropped. */
function recorder() {
  const ids: string[] = [];
  const failures: Error[] = [];
  return { ids, failures, onEntries: (entries: RawEntry[]) => void ids.push(...entries.map(([id]) => id)), onFailed: (error: Error) => void failures.push(error) };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; !(await check()); await sleep(20)) {
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
      fanout.follow(key, after, got.onEntries, got.onFailed);
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
    fanout.follow(`${prefix}b0`, '0-0', first.onEntries, first.onFailed);
    await sleep(200); // the read is now blocked on b0 (and the wake-up stream), for up to 15 s
    const second = recorder();
    fanout.follow(`${prefix}b1`, '0-0', second.onEntries, second.onFailed);
    const id = await redis.xadd(`${prefix}b1`, '*', 'n', 'late');
    await until(() => second.ids.length === 1, 3000, 'the entry on the newly followed stream');
    expect(second.ids).toEqual([id]);
    expect(first.ids).toEqual([]);
  });

  it('reads on after its connection is cut, and still reads newly followed streams at once', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const first = recorder();
    fanout.follow(`${prefix}e0`, '0-0', first.onEntries, first.onFailed);
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
    fanout.follow(`${prefix}e1`, '0-0', second.onEntries, second.onFailed);
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
    fanout.follow(key, '0-0', got.onEntries, got.onFailed);
    fanout.follow(bystander, '0-0', other.onEntries, other.onFailed);
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
    expect([...got.failures, ...other.failures]).toEqual([]);
  });

  it('stops handing entries to a follower once it unfollows, and drops the stream with its last follower', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader`, wakeKey: `${prefix}wake` });
    const kept = recorder();
    const gone = recorder();
    fanout.follow(`${prefix}c`, '0-0', kept.onEntries, kept.onFailed);
    const unfollow = fanout.follow(`${prefix}c`, '0-0', gone.onEntries, gone.onFailed);
    const first = await redis.xadd(`${prefix}c`, '*', 'n', '1');
    await until(() => gone.ids.length === 1 && kept.ids.length === 1, 3000, 'the first entry');
    unfollow();
    const second = await redis.xadd(`${prefix}c`, '*', 'n', '2');
    await until(() => kept.ids.length === 2, 3000, 'the second entry');
    expect(gone.ids).toEqual([first]);
    expect(kept.ids).toEqual([first, second]);
    expect(fanout.size).toEqual({ followers: 1, streams: 1 });

    const unfollowLast = fanout.follow(`${prefix}d`, '0-0', () => undefined, () => undefined);
    unfollowLast();
    expect(fanout.size).toEqual({ followers: 1, streams: 1 });
  });
});

describe('StreamFanout when Redis refuses part of the shared read', () => {
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

  it('drops only the followers whose cursor Redis refuses; followers of the same and of other streams read on', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader2`, wakeKey: `${prefix}wake2` });
    const [a, b, c] = ['f0', 'f1', 'f2'].map((k) => `${prefix}${k}`) as [string, string, string];
    const aFirst = await redis.xadd(a, '*', 'n', 'history');
    const goodA = recorder();
    const goodB = recorder();
    fanout.follow(a, aFirst!, goodA.onEntries, goodA.onFailed);
    fanout.follow(b, '0-0', goodB.onEntries, goodB.onFailed);
    // Ids the HTTP layer refuses, handed straight to the fan-out: past 2^64-1 in either part.
    const newStream = recorder(); // the first follower of c: its cursor becomes the shared one
    const ahead = recorder(); // on a, ahead of the shared cursor
    const behind = recorder(); // on a, behind the shared cursor: read with XRANGE first
    fanout.follow(c, '1-18446744073709551616', newStream.onEntries, newStream.onFailed);
    fanout.follow(a, '99999999999999999999-0', ahead.onEntries, ahead.onFailed);
    fanout.follow(a, '1-99999999999999999999', behind.onEntries, behind.onFailed);
    const goodC = recorder();
    fanout.follow(c, '0-0', goodC.onEntries, goodC.onFailed);

    const written = { a: await redis.xadd(a, '*', 'n', '1'), b: await redis.xadd(b, '*', 'n', '1'), c: await redis.xadd(c, '*', 'n', '1') };
    await until(() => goodA.ids.length === 1 && goodB.ids.length === 1 && goodC.ids.length === 1, 5000, 'the good followers got their entries');
    await until(() => [newStream, ahead, behind].every((r) => r.failures.length === 1), 5000, 'the bad followers were told');
    const more = { a: await redis.xadd(a, '*', 'n', '2'), c: await redis.xadd(c, '*', 'n', '2') };
    await until(() => goodA.ids.length === 2 && goodC.ids.length === 2, 5000, 'the good followers got the next entries');

    expect(goodA.ids).toEqual([written.a, more.a]);
    expect(goodB.ids).toEqual([written.b]);
    expect(goodC.ids).toEqual([written.c, more.c]);
    for (const bad of [newStream, ahead, behind]) {
      expect(bad.ids).toEqual([]);
      expect(bad.failures[0]?.message).toMatch(/stream ID|invalid start ID/i);
    }
    expect([goodA, goodB, goodC].every((r) => r.failures.length === 0)).toBe(true);
    expect(fanout.size).toEqual({ followers: 3, streams: 3 });
  });

  it('drops the followers of a key that turns into another type; the others read on', async () => {
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader3`, wakeKey: `${prefix}wake3` });
    const [kept, replaced] = [`${prefix}g0`, `${prefix}g1`];
    const keptRec = recorder();
    const replacedRecs = [recorder(), recorder()];
    fanout.follow(kept, '0-0', keptRec.onEntries, keptRec.onFailed);
    for (const r of replacedRecs) fanout.follow(replaced, '0-0', r.onEntries, r.onFailed);
    await redis.xadd(replaced, '*', 'n', 'before');
    await until(() => replacedRecs.every((r) => r.ids.length === 1), 5000, 'the entry before the change of type');
    await redis.multi().del(replaced).set(replaced, 'not a stream').exec();
    const first = await redis.xadd(kept, '*', 'n', '1'); // wakes the blocked read; the next one is refused
    await until(() => replacedRecs.every((r) => r.failures.length === 1), 5000, 'the followers of the replaced key were told');
    const second = await redis.xadd(kept, '*', 'n', '2');
    await until(() => keptRec.ids.length === 2, 5000, 'both entries of the kept stream');
    expect(keptRec.ids).toEqual([first, second]);
    expect(replacedRecs[0]?.failures[0]?.message).toMatch(/^WRONGTYPE/);
    expect(fanout.size).toEqual({ followers: 1, streams: 1 });
  });

  it('replaces its own wake-up stream when that key holds another type, and still starts new streams at once', async () => {
    const wakeKey = `${prefix}wake4`;
    fanout = new StreamFanout(redis, silentLogger, { connectionName: `${prefix}reader4`, wakeKey });
    const first = recorder();
    fanout.follow(`${prefix}h0`, '0-0', first.onEntries, first.onFailed);
    await redis.xadd(`${prefix}h0`, '*', 'n', '1');
    await until(() => first.ids.length === 1, 5000, 'the first entry');
    await redis.set(wakeKey, 'not a stream');
    await redis.xadd(`${prefix}h0`, '*', 'n', '2'); // wakes the read; the next one names the bad wake-up key
    await until(async () => (await redis.type(wakeKey)) !== 'string', 5000, 'the wake-up key replaced');
    const late = recorder();
    fanout.follow(`${prefix}h1`, '0-0', late.onEntries, late.onFailed);
    const id = await redis.xadd(`${prefix}h1`, '*', 'n', 'late');
    await until(() => late.ids.length === 1, 5000, 'the entry on a stream followed after the repair');
    expect(late.ids).toEqual([id]);
    expect(first.failures).toEqual([]);
  });
});

describe('StreamFanout when Redis refuses every read', () => {
  it('drops nobody while a refusal concerns all streams alike (here: a permission withdrawn), and reads on once it is lifted', async () => {
    const admin = connect();
    const user = `${prefix}acl-user`;
    await admin.acl('SETUSER', user, 'on', 'nopass', '~*', '&*', '+@all');
    // Its own connections (the shared read is a duplicate) log in as that user.
    const limited = connectRedis(inject('redisUrl'), { username: user, password: 'any' });
    const fanout = new StreamFanout(limited, silentLogger, { connectionName: `${prefix}reader5`, wakeKey: `${prefix}wake5` });
    try {
      const followers = [recorder(), recorder()];
      fanout.follow(`${prefix}i0`, '0-0', followers[0]!.onEntries, followers[0]!.onFailed);
      fanout.follow(`${prefix}i1`, '0-0', followers[1]!.onEntries, followers[1]!.onFailed);
      await admin.xadd(`${prefix}i0`, '*', 'n', '1');
      await until(() => followers[0]!.ids.length === 1, 5000, 'the first entry');
      await admin.acl('SETUSER', user, '-xread');
      const written = [await admin.xadd(`${prefix}i0`, '*', 'n', '2'), await admin.xadd(`${prefix}i1`, '*', 'n', '1')];
      // Refused reads meanwhile: the reader retries (and probes) without dropping anyone.
      await until(async () => ((await admin.call('ACL', 'LOG')) as unknown[][]).some((entry) => String(entry).includes(user)), 5000, 'a refused read');
      await admin.acl('SETUSER', user, '+xread');
      await until(() => followers[0]!.ids.length === 2 && followers[1]!.ids.length === 1, 5000, 'the entries written while reads were refused');
      expect([followers[0]!.ids[1], followers[1]!.ids[0]]).toEqual(written);
      expect(followers.map((f) => f.failures)).toEqual([[], []]);
    } finally {
      await fanout.close();
      limited.disconnect();
      await admin.acl('DELUSER', user);
      await admin.quit();
    }
  });
});

describe('compareStreamIds', () => {
  it('orders ids whose parts pass what a double holds exactly', () => {
    expect(compareStreamIds('18446744073709551615-0', '18446744073709551614-0')).toBe(1);
    expect(compareStreamIds('9007199254740993-0', '9007199254740992-5')).toBe(1);
    expect(compareStreamIds('18446744073709551615-18446744073709551615', '18446744073709551615-18446744073709551615')).toBe(0);
  });

  it('orders ids by milliseconds, then by sequence numbers of any length', () => {
    const ids = ['1-0', '0-0', '1700000000000-10', '1700000000000-9', '1700000000001-0', '5-18446744073709551615', '5-18446744073709551614', '5-2'];
    expect([...ids].sort(compareStreamIds)).toEqual(['0-0', '1-0', '5-2', '5-18446744073709551614', '5-18446744073709551615', '1700000000000-9', '1700000000000-10', '1700000000001-0']);
    expect(compareStreamIds('7-3', '7-3')).toBe(0);
  });
});
