import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentmemEnv, canOwnRedis, killAll, ownRedis, spawnAgentmem, until, untilStatus, type AgentmemProcess, type OwnRedis } from './support/fleet.js';
import { hostileCorpus } from './support/hostile-corpus.js';
import { freePort } from './support/ports.js';
import { httpRequest, sendRaw } from './support/raw-http.js';

/**
 * The hostile-input corpus (test/support/hostile-corpus.ts) against `agentmem serve` as a real
 * process on a Redis of the test's own, over raw sockets. Every write to any key is watched
 * through keyspace notifications; each case ends with a marker write, so the writes seen
 * between two markers are exactly the writes its request caused (a turn that was accepted is
 * first waited for until the workers are done with it).
 */
const MARKER = 'hostile-corpus:marker';

describe.skipIf(!canOwnRedis())('hostile input against a running agentmem serve', () => {
  let redis: OwnRedis;
  let watcher: Redis;
  let serve: AgentmemProcess;
  let base: string;
  let port: number;
  const written: string[] = [];
  let markerSeen = 0;

  beforeAll(async () => {
    redis = await ownRedis();
    port = await freePort();
    base = `http://127.0.0.1:${port}`;
    serve = spawnAgentmem(['serve'], agentmemEnv(redis.url, { AGENTMEM_PORT: String(port), AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_LOG_LEVEL: 'warn' }));
    await untilStatus(`${base}/readyz`, 200, 90_000);
    // Keyspace events for every write (K: per key, A: every class of command) plus the expired events serve relies on.
    await redis.client.config('SET', 'notify-keyspace-events', 'KEA');
    watcher = redis.client.duplicate();
    watcher.on('pmessage', (_pattern: string, channel: string, event: string) => {
      const key = channel.slice(channel.indexOf(':') + 1);
      if (key === MARKER) markerSeen++;
      else if (event !== 'expired') written.push(`${key} (${event})`);
    });
    await watcher.psubscribe('__keyspace@0__:*');
  }, 120_000);

  afterAll(async () => {
    killAll();
    watcher?.disconnect();
    await redis?.stop();
  });

  /** Resolves once every write made before now has been seen by the watcher. */
  let markers = 0;
  async function settled(): Promise<void> {
    const wanted = ++markers;
    await redis.client.set(MARKER, String(wanted));
    await until('the marker write to come back', () => markerSeen >= wanted, 10_000, 2);
  }

  /** Resolves once the workers are done with every accepted turn (a processed entry is deleted from its stream). */
  async function pipelineDrained(): Promise<void> {
    await until('the pipeline streams to drain', async () => {
      const [turns, remember] = await Promise.all([redis.client.xlen('agentmem:stream:turns'), redis.client.xlen('agentmem:stream:remember')]);
      return turns + remember === 0;
    }, 30_000, 5);
  }

  it('answers every case of the corpus below 500, writes nothing for a refused one, and serves a normal turn afterwards', async () => {
    // Cases whose late writes cannot be attributed run last, checked for status only.
    const corpus = hostileCorpus().sort((a, b) => Number(a.mayWriteLate ?? false) - Number(b.mayWriteLate ?? false));
    expect(corpus.length).toBeGreaterThanOrEqual(1000);
    const keysBefore = await redis.client.dbsize();
    await settled();
    written.length = 0;

    const serverErrors: string[] = [];
    const refusedButWrote: string[] = [];
    const timedOut: string[] = [];
    const byCategory = new Map<string, { cases: number; ms: number; byStatus: Map<string, number> }>();
    let successesThatWrote = 0;
    for (const c of corpus) {
      const started = performance.now();
      const result = await sendRaw(port, c.bytes, { halfClose: c.halfClose, responses: c.responses, timeoutMs: 15_000 });
      await pipelineDrained();
      await settled();
      const statusName = result.timedOut ? 'timeout' : result.status === null ? 'closed' : String(result.status);
      const stats = byCategory.get(c.category) ?? { cases: 0, ms: 0, byStatus: new Map<string, number>() };
      stats.cases++;
      stats.ms += performance.now() - started;
      stats.byStatus.set(statusName, (stats.byStatus.get(statusName) ?? 0) + 1);
      byCategory.set(c.category, stats);
      if (result.statuses.some((s) => s >= 500)) serverErrors.push(`${c.category}: ${c.name} -> ${result.statuses.join(',')} ${result.body.slice(0, 200)}`);
      if (result.timedOut) timedOut.push(`${c.category}: ${c.name}`);
      const succeeded = result.statuses.some((s) => s < 400);
      if (written.length > 0 && !c.mayWriteLate) {
        if (succeeded) successesThatWrote++;
        else refusedButWrote.push(`${c.category}: ${c.name} -> ${statusName} wrote ${[...new Set(written)].join(', ')}`);
      }
      written.length = 0;
    }

    const summary = [...byCategory].map(([category, s]) => `${category}: ${s.cases} in ${Math.round(s.ms)} ms (${[...s.byStatus].map(([st, n]) => `${st}×${n}`).join(' ')})`);
    console.info(`hostile corpus: ${corpus.length} distinct cases; ${successesThatWrote} succeeded and wrote; keys ${keysBefore} -> ${await redis.client.dbsize()}\n  ${summary.join('\n  ')}`);
    expect({ serverErrors, refusedButWrote, timedOut }).toEqual({ serverErrors: [], refusedButWrote: [], timedOut: [] });

    expect(serve.child.exitCode).toBeNull();
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const normal = await fetch(`${base}/v1/threads/after-the-corpus/turns?wait=20000`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'Still here after all that.' }),
    });
    expect(normal.status).toBe(200);
    expect(await normal.json()).toMatchObject({ status: 'done', thread_id: 'after-the-corpus' });
    expect(serve.logs.filter((l) => l.level === 'error').map((l) => `${String(l.event)} ${JSON.stringify(l.error ?? '')}`)).toEqual([]);
  }, 180_000);

  it('names what was wrong: 400 for bad escapes and repeated fields (legacy routes included, never the default scope), 415 for a Content-Encoding', async () => {
    const form: [string, string] = ['Content-Type', 'application/x-www-form-urlencoded'];
    const json: [string, string] = ['Content-Type', 'application/json'];
    const turn = JSON.stringify({ content: 'hello' });
    const cases: [string, Buffer, number, string][] = [
      ['bad escape in a path id', httpRequest({ method: 'POST', path: '/v1/threads/%ff/turns', headers: [json], body: turn }), 400, 'path'],
      ['overlong UTF-8 in a path id', httpRequest({ method: 'GET', path: '/v1/threads/%c0%af' }), 400, 'path'],
      ['a lone % in a path id', httpRequest({ method: 'DELETE', path: '/v1/memories/%' }), 400, 'path'],
      ['bad escape in a query value', httpRequest({ method: 'GET', path: '/v1/memories?user=%zz' }), 400, 'user'],
      ['gzip on a plain body', httpRequest({ method: 'POST', path: '/v1/threads/t1/turns', headers: [json, ['Content-Encoding', 'gzip']], body: turn }), 415, 'Content-Encoding'],
      ['br on a legacy form', httpRequest({ method: 'POST', path: '/turn', headers: [form, ['Content-Encoding', 'br']], body: 'text=hi' }), 415, 'Content-Encoding'],
      ['?since twice', httpRequest({ method: 'GET', path: '/v1/memories/events?since=0&since=0' }), 400, 'since'],
      ['?wait twice', httpRequest({ method: 'POST', path: '/v1/threads/t1/turns?wait=1&wait=2', headers: [json], body: turn }), 400, 'wait'],
      ['/reset with user twice', httpRequest({ method: 'POST', path: '/reset', headers: [form], body: 'user=alice&user=bob' }), 400, 'user'],
      ['/turn with user twice, same value', httpRequest({ method: 'POST', path: '/turn', headers: [form], body: 'text=hello&user=alice&user=alice' }), 400, 'user'],
      ['/turn with user in the query and the body', httpRequest({ method: 'POST', path: '/turn?user=alice', headers: [form], body: 'text=hello&user=bob' }), 400, 'user'],
      ['/turn with a bad escape in the form', httpRequest({ method: 'POST', path: '/turn', headers: [form], body: 'text=100%&user=alice' }), 400, 'text'],
      ['/turn with user as a JSON list', httpRequest({ method: 'POST', path: '/turn', headers: [json], body: JSON.stringify({ text: 'hello', user: ['alice', 'bob'] }) }), 400, 'user'],
      ['/turn with user as a JSON number', httpRequest({ method: 'POST', path: '/turn', headers: [json], body: JSON.stringify({ text: 'hello', user: 7 }) }), 400, 'user'],
      ['a JSON field given twice', httpRequest({ method: 'POST', path: '/v1/threads/t1/turns', headers: [json], body: '{"content":"hello","user":"alice","user":"bob"}' }), 400, 'user'],
      ['/turn with a JSON field given twice', httpRequest({ method: 'POST', path: '/turn', headers: [json], body: '{"text":"hello","user":"alice", "user" : "alice"}' }), 400, 'user'],
      ['/state with thread_id twice', httpRequest({ method: 'GET', path: '/state?thread_id=a&thread_id=b' }), 400, 'thread_id'],
      ['/drop_memory with memory_id twice', httpRequest({ method: 'POST', path: '/drop_memory', headers: [form], body: 'memory_id=0123456789ab&memory_id=0123456789ab' }), 400, 'memory_id'],
    ];
    const defaultScope = async (): Promise<string[]> =>
      ((await (await fetch(`${base}/v1/memories`)).json()) as { memories: { id: string }[] }).memories.map((m) => m.id).sort();
    const before = await defaultScope();
    expect(before.length).toBeGreaterThan(0);
    for (const [what, bytes, status, field] of cases) {
      const result = await sendRaw(port, bytes);
      expect({ what, status: result.status, field: (JSON.parse(result.body) as { error?: { field?: string } }).error?.field }).toEqual({ what, status, field });
    }
    expect(await defaultScope()).toEqual(before);
  });
});
