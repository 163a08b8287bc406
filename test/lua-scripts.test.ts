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
    expect(await t.redis.upsertSession(key, 'lua000000004', 'alice', 'bot', 60)).toBe(1);
    expect(await t.redis.upsertSession(key, 'lua000000004', 'mallory', 'x', 60, 'goal', 'g1')).toBe(0);
    const hash = await t.redis.hgetall(key);
    expect(hash).toMatchObject({ thread_id: 'lua000000004', user: 'alice', agent: 'bot', goal: 'g1', turn_count: '0', recent_turns: '[]' });
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
