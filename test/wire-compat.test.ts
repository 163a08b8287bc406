import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Embedder } from '../src/embedder/embedder.js';
import { Ingest, parseTurnInput } from '../src/pipeline/ingest.js';
import { vectorBytes } from '../src/query.js';
import { testEmbedder } from './support/embedder.js';
import { openTiers, type TestTiers } from './support/redis.js';

/**
 * The layout in ../shared/spec/wire-compat.md, checked against what agentmem writes and reads.
 * Keys carry a per-test prefix; everything after it is the shared layout.
 */
let t: TestTiers;
let embedder: Embedder;
beforeAll(async () => {
  [t, embedder] = await Promise.all([openTiers(), testEmbedder()]);
});
afterAll(async () => {
  await t.cleanup();
});

describe('wire compatibility with the reference demos', () => {
  it('creates the index with the reference schema, idempotently', async () => {
    expect(await t.longTerm.ensureIndex()).toBe(false);
    const info = (await t.redis.call('FT.INFO', t.config.indexName)) as unknown[];
    const fields = new Map<string, unknown>();
    for (let i = 0; i + 1 < info.length; i += 2) fields.set(String(info[i]), info[i + 1]);
    const definition = fields.get('index_definition') as unknown[];
    expect(definition).toEqual(expect.arrayContaining(['key_type', 'JSON', 'prefixes', [t.config.memoryPrefix]]));
    const attributes = (fields.get('attributes') as unknown[][]).map((a) => {
      const m = new Map<string, unknown>();
      for (let i = 0; i + 1 < a.length; i += 2) m.set(String(a[i]), a[i + 1]);
      return [m.get('identifier'), m.get('attribute'), m.get('type')];
    });
    expect(attributes).toEqual([
      ['$.text', 'text', 'TEXT'],
      ['$.user', 'user', 'TAG'],
      ['$.namespace', 'namespace', 'TAG'],
      ['$.kind', 'kind', 'TAG'],
      ['$.source_thread', 'source_thread', 'TAG'],
      ['$.created_ts', 'created_ts', 'NUMERIC'],
      ['$.hit_count', 'hit_count', 'NUMERIC'],
      ['$.embedding', 'embedding', 'VECTOR'],
    ]);
  });

  it('recalls and dedups onto a document written exactly as the reference demos write it', async () => {
    const text = 'The user is a Python developer working on a logistics platform.';
    const vector = await embedder.embedOne(text);
    const key = t.keys.memory('0a1b2c3d4e5f');
    // What the Python demo sends: JSON.SET of the whole document, then EXPIRE for episodic memories.
    const doc = {
      id: '0a1b2c3d4e5f', user: 'default', namespace: 'default', kind: 'episodic', source_thread: 'c0ffeec0ffee',
      text, embedding: Array.from(vector, (x) => Number(x.toFixed(8))), created_ts: 1715990400.123, hit_count: 0,
    };
    await t.redis.call('JSON.SET', key, '$', JSON.stringify(doc));
    await t.redis.expire(key, 604800);

    const query = await embedder.embedOne('What programming language does the user work in?');
    const recalled = await t.longTerm.recall({ user: 'default', namespace: 'default', embedding: query, k: 5, threshold: 0.55 });
    expect(recalled.map((m) => m.id)).toEqual(['0a1b2c3d4e5f']);
    // Search returns numbers to ~12 significant digits (10 ms here), for every client alike.
    expect(recalled[0]).toMatchObject({ kind: 'episodic', source_thread: 'c0ffeec0ffee', created_ts: expect.closeTo(1715990400.123, 1), hit_count: 0, text });

    const again = await t.longTerm.remember({ text, embedding: vector, user: 'default', namespace: 'default', kind: 'episodic', sourceThread: 'c0ffeec0ffee' });
    expect(again).toMatchObject({ id: '0a1b2c3d4e5f', deduped: true });
    expect(await t.redis.call('JSON.GET', key, '$.hit_count')).toBe('[1]');
  });

  it('answers the reference KNN query shape with its own documents', async () => {
    const text = 'The user dislikes dark mode.';
    const vector = await embedder.embedOne(text);
    const { id } = await t.longTerm.remember({ text, embedding: vector, user: 'knn-shape', namespace: 'default', kind: 'semantic', sourceThread: 'c0ffeec0ffee' });
    const reply = (await t.redis.call(
      'FT.SEARCH', t.config.indexName, '(@user:{knn\\-shape} @namespace:{default})=>[KNN 5 @embedding $vec AS distance]',
      'PARAMS', 2, 'vec', vectorBytes(vector), 'SORTBY', 'distance',
      'RETURN', 8, 'user', 'namespace', 'kind', 'source_thread', 'text', 'created_ts', 'hit_count', 'distance',
      'LIMIT', 0, 5, 'DIALECT', 2,
    )) as unknown[];
    expect(reply[0]).toBe(1);
    expect(reply[1]).toBe(t.keys.memory(id));
  });

  it("writes documents with exactly the reference field set and types", async () => {
    const text = 'The user takes the train to work.';
    const { id } = await t.longTerm.remember({ text, embedding: await embedder.embedOne(text), user: 'fields', namespace: 'default', kind: 'semantic', sourceThread: 'c0ffeec0ffee' });
    const [doc] = JSON.parse((await t.redis.call('JSON.GET', t.keys.memory(id), '$')) as string) as Record<string, unknown>[];
    expect(Object.keys(doc ?? {}).sort()).toEqual(['created_ts', 'embedding', 'hit_count', 'id', 'kind', 'namespace', 'source_thread', 'text', 'user']);
    expect(doc).toMatchObject({ id, user: 'fields', namespace: 'default', kind: 'semantic', source_thread: 'c0ffeec0ffee', text, hit_count: 0 });
    expect(id).toMatch(/^[0-9a-f]{12}$/);
    expect(typeof doc?.created_ts).toBe('number');
    expect(Number.isInteger(doc?.hit_count)).toBe(true);
    expect((doc?.embedding as number[]).length).toBe(384);
  });

  it('writes events with the reference fields in order, read back newest first', async () => {
    await t.events.record('e1e1e1e1e1e1', 'thread_started', 'user=default namespace=default');
    await t.events.record('e1e1e1e1e1e1', 'turn_appended:user', 'wrote 0a1b2c3d4e5f as episodic');
    const [raw] = await t.redis.xrange(t.keys.events('e1e1e1e1e1e1'), '-', '+', 'COUNT', 1);
    expect(raw?.[1].filter((_, i) => i % 2 === 0)).toEqual(['action', 'detail', 'ts']);
    const recent = await t.events.recent('e1e1e1e1e1e1');
    expect(recent.map((e) => e.action)).toEqual(['turn_appended:user', 'thread_started']);
    expect(recent[0]).toMatchObject({ thread_id: 'e1e1e1e1e1e1', detail: 'wrote 0a1b2c3d4e5f as episodic', ts: expect.any(Number) });
  });

  it('writes recent_turns as a JSON array of {role, content, ts: float}, ts as precise as the hash fields', async () => {
    const ingest = new Ingest(t.redis, t.keys, t.config);
    for (const content of ['Hello.', 'Again.']) await ingest.accept(parseTurnInput('f1f1f1f1f1f1', { content }, t.config));
    const hash = await t.redis.hgetall(t.keys.session('f1f1f1f1f1f1'));
    const turns = JSON.parse(hash.recent_turns as string) as Record<string, unknown>[];
    expect(turns.map((turn) => Object.keys(turn))).toEqual([['role', 'content', 'ts'], ['role', 'content', 'ts']]);
    expect(turns.map((turn) => turn.content)).toEqual(['Hello.', 'Again.']);
    // A float with the microseconds of last_active_ts (`1715990400.123456`), not cjson's 14 digits.
    expect(hash.recent_turns).toMatch(/"ts":\d{10}\.\d{6}\}\]$/);
    expect(turns[1]?.ts).toBe(Number(hash.last_active_ts));
    expect(hash.created_ts).toMatch(/^\d{10}\.\d{6}$/);
  });

  it('caps each event stream near its MAXLEN', async () => {
    for (let i = 0; i < 1500; i++) await t.events.record('e2e2e2e2e2e2', 'turn_appended:user', String(i));
    const length = await t.redis.xlen(t.keys.events('e2e2e2e2e2e2'));
    expect(length).toBeGreaterThanOrEqual(1000);
    expect(length).toBeLessThan(1200);
  });
});
