import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadScripts } from '../src/redis/scripts.js';
import { openTiers, type TestTiers } from './support/redis.js';

/** The scripts called directly, without the library around them. */
let t: TestTiers;
beforeAll(async () => {
  t = await openTiers();
  loadScripts(t.redis);
});
afterAll(async () => {
  await t.cleanup();
});

describe('appendTurn-1.lua', () => {
  it('trims to the window, newest last, and returns the count and timestamp', async () => {
    const key = t.keys.session('lua000000001');
    let reply: unknown;
    for (let i = 1; i <= 5; i++) reply = await t.redis.appendTurn(key, 'lua000000001', 'u', 'a', 'user', `m${i}`, 3, 60);
    expect(reply).toEqual([5, expect.stringMatching(/^\d+\.\d{6}$/)]);
    const turns = JSON.parse((await t.redis.hget(key, 'recent_turns')) as string) as { content: string }[];
    expect(turns.map((x) => x.content)).toEqual(['m3', 'm4', 'm5']);
    expect(await t.redis.ttl(key)).toBeGreaterThan(55);
  });

  it('keeps content byte for byte (quotes, backslashes, unicode, JSON-looking text)', async () => {
    const key = t.keys.session('lua000000002');
    const content = 'say "hi" \\ {"role":"x"} 日本語 🙂 \n tab\t';
    await t.redis.appendTurn(key, 'lua000000002', 'u', 'a', 'user', content, 20, 60);
    const turns = JSON.parse((await t.redis.hget(key, 'recent_turns')) as string) as { content: string }[];
    expect(turns[0]?.content).toBe(content);
  });

  it('answers -1 and changes nothing when recent_turns is not a JSON array', async () => {
    const key = t.keys.session('lua000000003');
    await t.redis.hset(key, 'recent_turns', '{"not": "a list"}', 'turn_count', '7');
    expect(await t.redis.appendTurn(key, 'lua000000003', 'u', 'a', 'user', 'x', 20, 60)).toBe(-1);
    expect(await t.redis.hgetall(key)).toEqual({ recent_turns: '{"not": "a list"}', turn_count: '7' });
    expect(await t.redis.ttl(key)).toBe(-1);
  });
});

describe('upsertSession-1.lua', () => {
  it('creates with defaults once, then only sets the given fields', async () => {
    const key = t.keys.session('lua000000004');
    expect(await t.redis.upsertSession(key, 'lua000000004', 'alice', 'bot', 60, '')).toBe(1);
    expect(await t.redis.upsertSession(key, 'lua000000004', 'mallory', 'x', 60, '', 'goal', 'g1')).toBe(0);
    const hash = await t.redis.hgetall(key);
    expect(hash).toMatchObject({ thread_id: 'lua000000004', user: 'alice', agent: 'bot', goal: 'g1', turn_count: '0', recent_turns: '[]' });
  });

  it("with the owner check, refuses another user's thread (case-insensitively the same user is the owner)", async () => {
    const key = t.keys.session('lua000000005');
    expect(await t.redis.upsertSession(key, 'lua000000005', 'alice', 'bot', 60, '1', 'goal', 'mine')).toBe(1);
    expect(await t.redis.upsertSession(key, 'lua000000005', 'bob', 'bot', 60, '1', 'goal', 'stolen')).toBe(-3);
    expect(await t.redis.upsertSession(key, 'lua000000005', 'ALICE', 'bot', 60, '1', 'goal', 'still mine')).toBe(0);
    expect(await t.redis.hget(key, 'goal')).toBe('still mine');
  });
});

describe('writeMemory-1.lua', () => {
  it('writes the document and its TTL together, and never overwrites', async () => {
    const key = t.keys.memory('aaaaaaaaaaaa');
    expect(await t.redis.writeMemory(key, JSON.stringify({ v: 1 }), 120)).toBe(1);
    expect(await t.redis.ttl(key)).toBeGreaterThan(115);
    expect(await t.redis.writeMemory(key, JSON.stringify({ v: 2 }), 0)).toBe(0);
    expect(await t.redis.call('JSON.GET', key, '$.v')).toBe('[1]');
    expect(await t.redis.ttl(key)).toBeGreaterThan(115);
  });

  it('leaves no TTL when asked for none', async () => {
    const key = t.keys.memory('bbbbbbbbbbbb');
    expect(await t.redis.writeMemory(key, JSON.stringify({ v: 1 }), 0)).toBe(1);
    expect(await t.redis.ttl(key)).toBe(-1);
  });
});

describe('acceptTurn-6.lua', () => {
  const accept = (turnId: string, idem: string | null, maxBacklog = 100) =>
    t.redis.acceptTurn(
      t.keys.session('acc000000001'), t.keys.ingestStream, t.keys.events('acc000000001'), t.keys.turn(turnId), t.keys.idempotency('acc000000001', idem ?? ''),
      t.keys.rememberStream,
      'acc000000001', 'u', 'a', 'user', `content of ${turnId}`, 20, 60, turnId, 'ns', 'episodic', 5, 0.55, 1000, 600, idem === null ? '0' : '1', maxBacklog, '', '',
    );

  it('appends, queues and logs in one step; replays an idempotency key; refuses past the backlog bound without writing', async () => {
    expect(await accept('aaaaaaaaaaa1', 'key-1')).toEqual([1, 'aaaaaaaaaaa1', 1, expect.stringMatching(/^\d+-\d+$/)]);
    expect(await accept('aaaaaaaaaaa2', 'key-1')).toEqual([0, 'aaaaaaaaaaa1']);
    expect(await t.redis.xlen(t.keys.ingestStream)).toBe(1);
    expect(await t.redis.hget(t.keys.turn('aaaaaaaaaaa1'), 'status')).toBe('queued');
    expect((await t.redis.xrange(t.keys.events('acc000000001'), '-', '+')).map(([, f]) => f[1])).toEqual(['thread_started', 'turn_accepted']);
    expect(await accept('aaaaaaaaaaa3', null, 1)).toBe(-2);
    expect(await t.redis.hget(t.keys.session('acc000000001'), 'turn_count')).toBe('1');
    expect(await t.redis.exists(t.keys.turn('aaaaaaaaaaa3'))).toBe(0);
  });

  it("gives the thread's event stream the session's TTL", async () => {
    const ttl = await t.redis.ttl(t.keys.events('acc000000001'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('counts the remember stage in the backlog: entries waiting there fill the bound too', async () => {
    await t.redis.xadd(t.keys.rememberStream, '*', 'turn_id', 'waiting');
    await t.redis.xadd(t.keys.rememberStream, '*', 'turn_id', 'waiting');
    // One turn queued for embedding (from the test above) and two waiting to be remembered.
    expect(await accept('aaaaaaaaaaa4', null, 3)).toBe(-2);
    expect(await accept('aaaaaaaaaaa5', null, 4)).toEqual([1, 'aaaaaaaaaaa5', 2, expect.any(String)]);
  });
});

describe('mergeMemories-3.lua and releaseLock-1.lua', () => {
  it('merge changes nothing when either memory is gone', async () => {
    await t.redis.writeMemory(t.keys.memory('cccccccccccc'), JSON.stringify({ hit_count: 2 }), 0);
    expect(await t.redis.mergeMemories(t.keys.memory('cccccccccccc'), t.keys.memory('dddddddddddd'), t.keys.memoryLog, 'cccccccccccc', 'dddddddddddd', 0.01, 100)).toBe(-1);
    expect(await t.redis.call('JSON.GET', t.keys.memory('cccccccccccc'), '$.hit_count')).toBe('[2]');
    expect(await t.redis.exists(t.keys.memoryLog)).toBe(0);
  });

  it("logs a merge with the survivor's scope, so event streams can deliver it to that scope's keys only", async () => {
    await t.redis.writeMemory(t.keys.memory('eeeeeeeeeeee'), JSON.stringify({ user: 'alice', namespace: 'work', hit_count: 1 }), 0);
    await t.redis.writeMemory(t.keys.memory('ffffffffffff'), JSON.stringify({ user: 'alice', namespace: 'work', hit_count: 0 }), 0);
    expect(await t.redis.mergeMemories(t.keys.memory('eeeeeeeeeeee'), t.keys.memory('ffffffffffff'), t.keys.memoryLog, 'eeeeeeeeeeee', 'ffffffffffff', 0.01, 100)).toBe(2);
    const [[, fields]] = (await t.redis.xrange(t.keys.memoryLog, '-', '+')) as [[string, string[]]];
    expect(JSON.parse(fields[3] as string)).toEqual({ survivor: 'eeeeeeeeeeee', merged: 'ffffffffffff', distance: 0.01, hit_count: 2, user: 'alice', namespace: 'work' });
  });

  it('releases or extends a lock only for the token that holds it', async () => {
    await t.redis.set(t.keys.consolidatorLock, 'mine', 'PX', 1000);
    expect(await t.redis.releaseLock(t.keys.consolidatorLock, 'theirs', '')).toBe(0);
    expect(await t.redis.releaseLock(t.keys.consolidatorLock, 'mine', 60_000)).toBe(1);
    expect(await t.redis.pttl(t.keys.consolidatorLock)).toBeGreaterThan(50_000);
    expect(await t.redis.releaseLock(t.keys.consolidatorLock, 'mine', '')).toBe(1);
    expect(await t.redis.exists(t.keys.consolidatorLock)).toBe(0);
  });
});
