import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BacklogFullError, ScriptError, ThreadNotVisible } from '../src/errors.js';
import { isScriptError, SCRIPT_NAMES, ScriptErrorCode, ScriptGateway, scriptSource, type AcceptTurnParams } from '../src/redis/scripts.js';
import { openTiers, type TestTiers } from './support/redis.js';

/** The scripts through their gateway, without the library around them. */
let t: TestTiers;
let scripts: ScriptGateway;
beforeAll(async () => {
  t = await openTiers();
  scripts = new ScriptGateway(t.redis, t.keys);
});
afterAll(async () => {
  await t.cleanup();
});

const LIMITS = { windowSize: 20, sessionTtlSeconds: 60, turnTtlSeconds: 600, eventsMaxLen: 1000, maxBacklog: 100 };

function turn(threadId: string, turnId: string, overrides: Partial<AcceptTurnParams> = {}): AcceptTurnParams {
  return {
    threadId, turnId, user: 'u', agent: 'a', namespace: 'ns', role: 'user', content: `content of ${turnId}`, remember: 'episodic', k: 5, threshold: 0.55,
    idempotencyKeyHash: null, exclusive: false, keyId: null, ...LIMITS, ...overrides,
  };
}

const actions = async (threadId: string): Promise<string[]> => (await t.redis.xrange(t.keys.events(threadId), '-', '+')).map(([, f]) => f[1] as string);

describe('the error codes', () => {
  it('give each negative code one meaning, and the Lua scripts read the same table', () => {
    const codes = Object.values(ScriptErrorCode).filter((c): c is number => typeof c === 'number');
    expect(new Set(codes).size).toBe(codes.length);
    expect(codes.every((c) => c < 0)).toBe(true);
    for (const name of SCRIPT_NAMES) {
      const { lua } = scriptSource(name);
      expect(lua).not.toMatch(/return -\d/);
      if (lua.includes('ERR.')) expect(lua).toContain('THREAD_NOT_VISIBLE = -3, MEMORY_GONE = -4');
    }
  });
});

describe('acceptTurn-6.lua', () => {
  it('trims working memory to the window, newest last, and refreshes the TTL', async () => {
    for (let i = 1; i <= 5; i++) await scripts.acceptTurn(turn('lua000000001', `aaaaaaaa000${i}`, { content: `m${i}`, windowSize: 3 }));
    const turns = JSON.parse((await t.redis.hget(t.keys.session('lua000000001'), 'recent_turns')) as string) as { content: string }[];
    expect(turns.map((x) => x.content)).toEqual(['m3', 'm4', 'm5']);
    expect(await t.redis.ttl(t.keys.session('lua000000001'))).toBeGreaterThan(55);
  });

  it('keeps content byte for byte (quotes, backslashes, unicode, JSON-looking text)', async () => {
    const content = 'say "hi" \\ {"role":"x"} "ts":1 日本語 🙂 \n tab\t';
    await scripts.acceptTurn(turn('lua000000002', 'bbbbbbbb0001', { content }));
    const turns = JSON.parse((await t.redis.hget(t.keys.session('lua000000002'), 'recent_turns')) as string) as { content: string }[];
    expect(turns[0]?.content).toBe(content);
  });

  it('refuses with RecentTurnsNotArray and changes nothing when recent_turns is not a JSON array', async () => {
    const key = t.keys.session('lua000000003');
    await t.redis.hset(key, 'recent_turns', '{"not": "a list"}', 'turn_count', '7');
    const err = await scripts.acceptTurn(turn('lua000000003', 'cccccccc0001')).catch((e: unknown) => e);
    expect(isScriptError(err, ScriptErrorCode.RecentTurnsNotArray)).toBe(true);
    expect(await t.redis.hgetall(key)).toEqual({ recent_turns: '{"not": "a list"}', turn_count: '7' });
    expect(await t.redis.ttl(key)).toBe(-1);
    expect(await t.redis.exists(t.keys.turn('cccccccc0001'))).toBe(0);
  });

  it('appends, queues and logs in one step; replays an idempotency key; refuses past the backlog bound without writing', async () => {
    expect(await scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa1', { idempotencyKeyHash: 'key-1' })))
      .toEqual({ created: true, turnId: 'aaaaaaaaaaa1', turnCount: 1, streamId: expect.stringMatching(/^\d+-\d+$/) });
    expect(await scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa2', { idempotencyKeyHash: 'key-1' }))).toEqual({ created: false, turnId: 'aaaaaaaaaaa1' });
    expect(await t.redis.hget(t.keys.turn('aaaaaaaaaaa1'), 'status')).toBe('queued');
    expect(await actions('acc000000001')).toEqual(['thread_started', 'turn_accepted']);
    const backlog = await t.redis.xlen(t.keys.ingestStream);
    await expect(scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa3', { maxBacklog: backlog }))).rejects.toBeInstanceOf(BacklogFullError);
    expect(await t.redis.hget(t.keys.session('acc000000001'), 'turn_count')).toBe('1');
    expect(await t.redis.exists(t.keys.turn('aaaaaaaaaaa3'))).toBe(0);
  });

  it("gives the thread's event stream the session's TTL", async () => {
    const ttl = await t.redis.ttl(t.keys.events('acc000000001'));
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60);
  });

  it('counts the remember stage in the backlog: entries waiting there fill the bound too', async () => {
    const ingest = await t.redis.xlen(t.keys.ingestStream);
    await t.redis.xadd(t.keys.rememberStream, '*', 'turn_id', 'waiting');
    await t.redis.xadd(t.keys.rememberStream, '*', 'turn_id', 'waiting');
    await expect(scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa4', { maxBacklog: ingest + 2 }))).rejects.toBeInstanceOf(BacklogFullError);
    expect(await scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa5', { maxBacklog: ingest + 3 }))).toMatchObject({ created: true, turnCount: 2 });
  });

  it("with the owner check, refuses another user's thread as ThreadNotVisible", async () => {
    await expect(scripts.acceptTurn(turn('acc000000001', 'aaaaaaaaaaa6', { user: 'mallory', exclusive: true }))).rejects.toBeInstanceOf(ThreadNotVisible);
    expect(await t.redis.exists(t.keys.turn('aaaaaaaaaaa6'))).toBe(0);
  });
});

describe('upsertSession-2.lua', () => {
  const session = (threadId: string, fields: { user?: string; goal?: string; exclusive?: boolean } = {}) =>
    scripts.upsertSession({ threadId, user: fields.user ?? 'alice', agent: 'bot', namespace: 'work', exclusive: fields.exclusive ?? false, keyId: null,
      ...(fields.goal === undefined ? {} : { goal: fields.goal }), sessionTtlSeconds: 60, eventsMaxLen: 1000 });

  it('creates with defaults once (logging thread_started once), then only sets the given fields', async () => {
    expect(await session('lua000000004')).toEqual({ created: true });
    expect(await session('lua000000004', { user: 'mallory', goal: 'g1' })).toEqual({ created: false });
    expect(await t.redis.hgetall(t.keys.session('lua000000004')))
      .toMatchObject({ thread_id: 'lua000000004', user: 'alice', agent: 'bot', goal: 'g1', turn_count: '0', recent_turns: '[]' });
    expect(await actions('lua000000004')).toEqual(['thread_started', 'goal_set']);
    const [first] = await t.redis.xrange(t.keys.events('lua000000004'), '-', '+');
    expect(first?.[1][3]).toBe('user=alice namespace=work');
  });

  it("with the owner check, refuses another user's thread (case-insensitively the same user is the owner)", async () => {
    expect(await session('lua000000005', { goal: 'mine', exclusive: true })).toEqual({ created: true });
    await expect(session('lua000000005', { user: 'bob', goal: 'stolen', exclusive: true })).rejects.toBeInstanceOf(ThreadNotVisible);
    expect(await session('lua000000005', { user: 'ALICE', goal: 'still mine', exclusive: true })).toEqual({ created: false });
    expect(await t.redis.hget(t.keys.session('lua000000005'), 'goal')).toBe('still mine');
    expect(await actions('lua000000005')).toEqual(['thread_started', 'goal_set', 'goal_set']);
  });
});

describe('applyMemory-5.lua without a turn (seeding)', () => {
  const write = (memoryId: string, doc: object, ttlSeconds: number) =>
    scripts.applyMemory({ write: { mode: 'write', memoryId, documentJson: JSON.stringify(doc), ttlSeconds }, logDetail: { memory_id: memoryId } });

  it('writes the document and its TTL together, logs it, and never overwrites', async () => {
    const key = t.keys.memory('aaaaaaaaaaaa');
    expect(await write('aaaaaaaaaaaa', { v: 1, hit_count: 0 }, 120)).toBe(true);
    expect(await t.redis.ttl(key)).toBeGreaterThan(115);
    const err = await write('aaaaaaaaaaaa', { v: 2 }, 0).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScriptError);
    expect((err as ScriptError).code).toBe(ScriptErrorCode.MemoryExists);
    expect(await t.redis.call('JSON.GET', key, '$.v')).toBe('[1]');
    expect(await t.redis.ttl(key)).toBeGreaterThan(115);
    const log = (await t.redis.xrange(t.keys.memoryLog, '-', '+')).map(([, f]) => [f[1], f[3]]);
    expect(log).toEqual([['memory_written', '{"memory_id":"aaaaaaaaaaaa"}']]);
  });

  it('leaves no TTL when asked for none; bumps a memory that exists, and refuses one that is gone', async () => {
    expect(await write('bbbbbbbbbbbb', { hit_count: 0 }, 0)).toBe(true);
    expect(await t.redis.ttl(t.keys.memory('bbbbbbbbbbbb'))).toBe(-1);
    expect(await scripts.applyMemory({ write: { mode: 'bump', memoryId: 'bbbbbbbbbbbb' }, logDetail: {} })).toBe(true);
    expect(await t.redis.call('JSON.GET', t.keys.memory('bbbbbbbbbbbb'), '$.hit_count')).toBe('[1]');
    const gone = await scripts.applyMemory({ write: { mode: 'bump', memoryId: '999999999999' }, logDetail: {} }).catch((e: unknown) => e);
    expect(isScriptError(gone, ScriptErrorCode.MemoryGone)).toBe(true);
    expect(await t.redis.exists(t.keys.memory('999999999999'))).toBe(0);
  });
});

describe('mergeMemories-3.lua and releaseLock-1.lua', () => {
  it('merge changes nothing when either memory is gone', async () => {
    await t.redis.call('JSON.SET', t.keys.memory('cccccccccccc'), '$', JSON.stringify({ hit_count: 2 }));
    const before = await t.redis.xlen(t.keys.memoryLog);
    const err = await scripts.mergeMemories({ survivorId: 'cccccccccccc', duplicateId: 'dddddddddddd', distance: 0.01 }).catch((e: unknown) => e);
    expect(isScriptError(err, ScriptErrorCode.MemoryGone)).toBe(true);
    expect(await t.redis.call('JSON.GET', t.keys.memory('cccccccccccc'), '$.hit_count')).toBe('[2]');
    expect(await t.redis.xlen(t.keys.memoryLog)).toBe(before);
  });

  it("logs a merge with the survivor's scope, so event streams can deliver it to that scope's keys only", async () => {
    await t.redis.call('JSON.SET', t.keys.memory('eeeeeeeeeeee'), '$', JSON.stringify({ user: 'alice', namespace: 'work', hit_count: 1 }));
    await t.redis.call('JSON.SET', t.keys.memory('ffffffffffff'), '$', JSON.stringify({ user: 'alice', namespace: 'work', hit_count: 0 }));
    expect(await scripts.mergeMemories({ survivorId: 'eeeeeeeeeeee', duplicateId: 'ffffffffffff', distance: 0.01 })).toBe(2);
    const [[, fields]] = (await t.redis.xrevrange(t.keys.memoryLog, '+', '-', 'COUNT', 1)) as [[string, string[]]];
    expect(JSON.parse(fields[3] as string)).toEqual({ survivor: 'eeeeeeeeeeee', merged: 'ffffffffffff', distance: 0.01, hit_count: 2, user: 'alice', namespace: 'work' });
  });

  it('releases or extends a lock only for the token that holds it', async () => {
    const lockKey = t.keys.consolidatorLock;
    await t.redis.set(lockKey, 'mine', 'PX', 1000);
    expect(await scripts.releaseLock({ lockKey, token: 'theirs' })).toBe(false);
    expect(await scripts.releaseLock({ lockKey, token: 'mine', extendMs: 60_000 })).toBe(true);
    expect(await t.redis.pttl(lockKey)).toBeGreaterThan(50_000);
    expect(await scripts.releaseLock({ lockKey, token: 'mine' })).toBe(true);
    expect(await t.redis.exists(lockKey)).toBe(0);
  });
});
