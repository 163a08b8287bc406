import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ValidationError } from '../src/errors.js';
import { Ingest, parseTurnInput } from '../src/pipeline/ingest.js';
import { connect, openTiers, type TestTiers } from './support/redis.js';

let t: TestTiers;
beforeAll(async () => {
  t = await openTiers();
});
afterAll(async () => {
  await t.cleanup();
});

/** Appends a turn the way the API does (turns reach working memory only through ingest). */
async function appendTurn(threadId: string, turn: { role: string; content: string }, owner: { user?: string; agent?: string } = {}, redis: Redis = t.redis): Promise<{ turnCount: number }> {
  const accepted = await new Ingest(redis, t.keys, t.config).accept(parseTurnInput(threadId, { ...turn, ...owner }, t.config));
  return { turnCount: accepted.turnCount ?? 0 };
}

describe('working memory', () => {
  it('keeps every one of 500 concurrent appends from several connections: count, window, order, TTL', async () => {
    const connections: Redis[] = Array.from({ length: 8 }, () => connect());
    const thread = 'race0000000a';
    try {
      const results = await Promise.all(
        Array.from({ length: 500 }, (_, i) => {
          return appendTurn(thread, { role: 'user', content: `turn ${i}` }, {}, connections[i % connections.length]).then((r) => ({ i, ...r }));
        }),
      );
      const state = await t.working.load(thread);
      expect(state?.turn_count).toBe(500);
      // Each append learned its position from the script; the window must hold exactly positions 481..500, in order.
      const byPosition = new Map(results.map((r) => [r.turnCount, `turn ${r.i}`]));
      expect(new Set(results.map((r) => r.turnCount)).size).toBe(500);
      const expected = Array.from({ length: 20 }, (_, k) => byPosition.get(481 + k));
      expect(state?.recent_turns.map((turn) => turn.content)).toEqual(expected);
      const timestamps = state?.recent_turns.map((turn) => turn.ts) ?? [];
      expect(timestamps).toEqual([...timestamps].sort((a, b) => a - b));
      expect(state?.ttl_seconds).toBeGreaterThan(3590);
      expect(state?.ttl_seconds).toBeLessThanOrEqual(3600);
    } finally {
      await Promise.all(connections.map((c) => c.quit()));
    }
  });

  it('creates the hash on first use with the reference field set, and counts turns', async () => {
    const first = await appendTurn('a1b2c3d4e5f6', { role: 'user', content: 'hello' }, { user: 'alice' });
    expect(first.turnCount).toBe(1);
    const hash = await t.redis.hgetall(t.keys.session('a1b2c3d4e5f6'));
    expect(Object.keys(hash).sort()).toEqual(
      ['agent', 'created_ts', 'goal', 'last_active_ts', 'recent_turns', 'scratchpad', 'thread_id', 'turn_count', 'user'].sort(),
    );
    expect(hash.user).toBe('alice');
    expect(hash.turn_count).toBe('1');
    expect(hash.created_ts).toMatch(/^\d{10}\.\d{6}$/);
    expect(JSON.parse(hash.recent_turns as string)).toEqual([{ role: 'user', content: 'hello', ts: expect.any(Number) }]);
  });

  it('refreshes the TTL on every write but not on reads', async () => {
    const thread = 'ttl000000001';
    await t.working.start(thread);
    const key = t.keys.session(thread);
    await t.redis.expire(key, 100);
    await t.working.load(thread);
    expect(await t.redis.ttl(key)).toBeLessThanOrEqual(100);
    await t.working.setGoal(thread, 'ship the release');
    expect(await t.redis.ttl(key)).toBeGreaterThan(3590);
    await t.redis.expire(key, 100);
    await t.working.setScratchpad(thread, 'step 2 of 5');
    expect(await t.redis.ttl(key)).toBeGreaterThan(3590);
    await t.redis.expire(key, 100);
    await appendTurn(thread, { role: 'assistant', content: 'on it' });
    expect(await t.redis.ttl(key)).toBeGreaterThan(3590);
  });

  it('sets goal and scratchpad without touching the turns, and loads them with the remaining TTL', async () => {
    const thread = 'goal00000001';
    await appendTurn(thread, { role: 'user', content: 'plan my week' }, { user: 'bob', agent: 'planner' });
    await t.working.setGoal(thread, 'a plan for the week');
    await t.working.setScratchpad(thread, 'Mon: gym');
    const state = await t.working.load(thread);
    expect(state).toMatchObject({
      thread_id: thread, user: 'bob', agent: 'planner', goal: 'a plan for the week', scratchpad: 'Mon: gym', turn_count: 1,
    });
    expect(state?.recent_turns).toHaveLength(1);
    expect(state?.ttl_seconds).toBeGreaterThan(3590);
  });

  it('returns null for a thread that does not exist', async () => {
    expect(await t.working.load('nosuchthread')).toBeNull();
  });

  it('appends to a session written by another demo (differently formatted JSON, no TTL)', async () => {
    const thread = 'py0000000001';
    await t.redis.hset(t.keys.session(thread), {
      thread_id: thread, user: 'default', agent: 'default', goal: 'g', scratchpad: '', turn_count: '2',
      created_ts: '1715990400.123', last_active_ts: '1715990401.5',
      recent_turns: '[{"role": "user", "content": "caf\\u00e9", "ts": 1715990400.1}, {"role": "assistant", "content": "ok", "ts": 1715990401.5}]',
    });
    const { turnCount } = await appendTurn(thread, { role: 'user', content: 'next' });
    expect(turnCount).toBe(3);
    const state = await t.working.load(thread);
    expect(state?.recent_turns.map((x) => x.content)).toEqual(['café', 'ok', 'next']);
    expect(state?.goal).toBe('g');
    expect(state?.ttl_seconds).toBeGreaterThan(3590);
  });

  it("keeps each turn's ts to the microsecond, as the hash fields have it, and the fields other writers added", async () => {
    const thread = 'ts0000000001';
    await t.redis.hset(t.keys.session(thread), {
      thread_id: thread, user: 'default', agent: 'default', goal: '', scratchpad: '', turn_count: '1',
      created_ts: '1715990400.123456', last_active_ts: '1715990400.123456',
      recent_turns: '[{"role": "user", "content": "first", "ts": 1715990400.123456, "lang": "en"}]',
    });
    await appendTurn(thread, { role: 'assistant', content: 'second' });
    const hash = await t.redis.hgetall(t.keys.session(thread));
    const raw = hash.recent_turns as string;
    // cjson alone writes 14 significant digits: 1715990400.1235.
    expect([...raw.matchAll(/"ts":([\d.]+)/g)].map((m) => m[1])).toEqual(['1715990400.123456', hash.last_active_ts]);
    expect(JSON.parse(raw)).toEqual([
      { role: 'user', content: 'first', ts: 1715990400.123456, lang: 'en' },
      { role: 'assistant', content: 'second', ts: Number(hash.last_active_ts) },
    ]);
  });

  it('refuses bad input with a typed error naming the field, and writes nothing', async () => {
    const bad: [() => Promise<unknown>, string][] = [
      [() => appendTurn('bad id!', { role: 'user', content: 'x' }), 'thread_id'],
      [() => appendTurn('*', { role: 'user', content: 'x' }), 'thread_id'],
      [() => appendTurn('okthread0001', { role: 'robot', content: 'x' }), 'role'],
      [() => appendTurn('okthread0001', { role: 'user', content: '   ' }), 'content'],
      [() => appendTurn('okthread0001', { role: 'user', content: 'x' }, { user: '' }), 'user'],
      [() => t.working.setGoal('okthread0001', 42 as unknown as string), 'goal'],
    ];
    for (const [call, field] of bad) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe(field);
    }
    expect(await t.redis.exists(t.keys.session('okthread0001'))).toBe(0);
  });
});
