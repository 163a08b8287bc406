import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentmemEnv, canOwnRedis, killAll, ownRedis, spawnAgentmem, until, untilStatus, type AgentmemProcess, type OwnRedis } from './support/fleet.js';
import { freePort } from './support/ports.js';

/**
 * Redis dies under agentmem: `agentmem serve` runs against a Redis of the test's own, started the
 * way agentmem starts its embedded one, which the test SIGKILLs and starts again.
 */

interface Answer {
  status: number;
  ms: number;
  retryAfter: string | null;
  body: string;
}

async function send(url: string, init: RequestInit = {}): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(20_000) });
  // An event stream that opened would never end: its status and headers are the answer.
  const body = res.headers.get('content-type')?.startsWith('text/event-stream') ? (void res.body?.cancel(), '') : await res.text();
  return { status: res.status, ms: performance.now() - t0, retryAfter: res.headers.get('retry-after'), body };
}

const json = (payload: unknown): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
const form = (fields: Record<string, string>): RequestInit => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() });

describe.skipIf(!canOwnRedis())('Redis crashes under agentmem', () => {
  let redis: OwnRedis;
  let app: AgentmemProcess;
  let base: string;

  beforeAll(async () => {
    redis = await ownRedis();
    const port = await freePort();
    app = spawnAgentmem(['serve', '--no-reset'], agentmemEnv(redis.url, {
      AGENTMEM_PORT: String(port),
      AGENTMEM_EMBED_SESSIONS: '1',
      // Entries a worker held when Redis died are reclaimed soon; working memory keeps every turn of a thread.
      AGENTMEM_CLAIM_IDLE_MS: '1000',
      AGENTMEM_WINDOW_SIZE: '1000',
    }));
    base = `http://127.0.0.1:${port}`;
    await untilStatus(`${base}/readyz`);
  });

  afterAll(async () => {
    killAll();
    await redis?.stop();
  });

  it('confirms it: the server it was given persists every write before replying', async () => {
    expect(app.logs.find((l) => l.event === 'durability.confirmed')).toMatchObject({ mode: 'auto', confirmation: 'reply' });
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { checks: Record<string, string> };
    expect(ready.checks.durability).toBe('ok');
  });

  it('keeps every turn it acknowledged (202 or a ?wait result) through a SIGKILL, and answers 503, never 500, meanwhile', async () => {
    const CLIENTS = 6;
    const acknowledged: { turnId: string; thread: string; content: string }[] = [];
    const statuses = new Map<number, number>();
    const without503RetryAfter: Answer[] = [];
    let phase: 'before' | 'down' | 'after' = 'before';
    let ackedAfterRestart = 0;
    let stop = false;

    const clients = Array.from({ length: CLIENTS }, async (_, c) => {
      const thread = `crash-${c}`;
      for (let i = 0; !stop; i++) {
        const content = `Client ${c} turn ${i}: the user mentioned item ${c * 1000 + i}.`;
        const wait = i % 2 === 1 ? '?wait=5000' : '';
        const sentIn = phase;
        const answer = await send(`${base}/v1/threads/${thread}/turns${wait}`, json({ content }));
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status === 202 || answer.status === 200) {
          acknowledged.push({ turnId: (JSON.parse(answer.body) as { turn_id: string }).turn_id, thread, content });
          if (sentIn === 'after') ackedAfterRestart++;
        } else if (answer.status === 503) {
          if (answer.retryAfter === null) without503RetryAfter.push(answer);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    });

    await until('40 turns acknowledged before the crash', () => acknowledged.length >= 40, 60_000, 20);
    const acknowledgedBeforeKill = acknowledged.length;
    await redis.kill('SIGKILL');
    phase = 'down';
    await until('503s while Redis is down', () => (statuses.get(503) ?? 0) >= CLIENTS, 30_000, 20);
    await redis.restart();
    phase = 'after';
    await until('20 more turns acknowledged after the restart', () => ackedAfterRestart >= 20, 60_000, 50);
    stop = true;
    await Promise.all(clients);

    expect(acknowledgedBeforeKill).toBeGreaterThanOrEqual(40);
    expect(statuses.get(500) ?? 0).toBe(0);
    expect([...statuses.keys()].filter((s) => ![200, 202, 503].includes(s))).toEqual([]);
    expect(statuses.get(503)).toBeGreaterThanOrEqual(CLIENTS);
    expect(without503RetryAfter).toEqual([]);

    // Every acknowledged turn is there, in its thread's working memory, and finishes.
    const lost: string[] = [];
    for (const { turnId } of acknowledged) if ((await fetch(`${base}/v1/turns/${turnId}`)).status === 404) lost.push(turnId);
    expect({ lost: lost.length, of: acknowledged.length }).toEqual({ lost: 0, of: acknowledged.length });
    for (let c = 0; c < CLIENTS; c++) {
      const state = (await (await fetch(`${base}/v1/threads/crash-${c}`)).json()) as { recent_turns: { content: string }[] };
      const stored = new Set(state.recent_turns.map((t) => t.content));
      const missing = acknowledged.filter((a) => a.thread === `crash-${c}` && !stored.has(a.content));
      expect(missing).toEqual([]);
    }
    const unfinished = new Set(acknowledged.map((a) => a.turnId));
    await until(`all ${acknowledged.length} acknowledged turns done`, async () => {
      for (const id of [...unfinished]) {
        const turn = (await (await fetch(`${base}/v1/turns/${id}`)).json()) as { status?: string };
        if (turn.status === 'done') unfinished.delete(id);
      }
      return unfinished.size === 0;
    }, 45_000, 250);
  }, 120_000);

  it('answers every route 503 with Retry-After within about 2 s while Redis is down, /readyz 503 within 1 s, and recovers by itself', async () => {
    const done = (await send(`${base}/v1/threads/down-1/turns?wait=10000`, json({ content: 'Before the outage.' })));
    expect(done.status).toBe(200);
    const turnId = (JSON.parse(done.body) as { turn_id: string }).turn_id;
    const memoryId = (JSON.parse(done.body) as { memory: { id: string } }).memory.id;
    await redis.kill('SIGKILL');

    const ready = await send(`${base}/readyz`);
    expect(ready.status).toBe(503);
    expect(ready.ms).toBeLessThan(1500);
    expect((JSON.parse(ready.body) as { checks: { redis: string } }).checks.redis).toMatch(/^unreachable/);

    const routes: [string, string, RequestInit?][] = [
      ['POST /v1/threads/:id/turns', '/v1/threads/down-1/turns', json({ content: 'During the outage.' })],
      ['POST /v1/threads/:id/turns?wait', '/v1/threads/down-1/turns?wait=5000', json({ content: 'During the outage, waiting.' })],
      ['GET /v1/turns/:id', `/v1/turns/${turnId}`],
      ['GET /v1/threads/:id', '/v1/threads/down-1'],
      ['PUT /v1/threads/:id', '/v1/threads/down-1', { ...json({ goal: 'g' }), method: 'PUT' }],
      ['POST /v1/threads', '/v1/threads', json({})],
      ['GET /v1/threads/:id/events', '/v1/threads/down-1/events'],
      ['GET /v1/memories/events', '/v1/memories/events'],
      ['GET /v1/memories', '/v1/memories'],
      ['DELETE /v1/memories/:id', `/v1/memories/${memoryId}`, { method: 'DELETE' }],
      ['POST /v1/recall', '/v1/recall', json({ text: 'outage' })],
      ['GET /v1/deadletter', '/v1/deadletter'],
      ['GET /state', '/state'],
      ['POST /turn', '/turn', form({ text: 'Legacy turn during the outage.', thread_id: 'down-2' })],
      ['POST /new_thread', '/new_thread', form({})],
      ['POST /reset', '/reset', form({ user: 'outage' })],
      ['POST /drop_memory', '/drop_memory', form({ memory_id: memoryId })],
    ];
    const answers = await Promise.all(routes.map(async ([name, path, init]) => [name, await send(base + path, init)] as const));
    for (const [name, answer] of answers) {
      expect({ name, status: answer.status, retryAfter: answer.retryAfter }).toEqual({ name, status: 503, retryAfter: expect.stringMatching(/^\d+$/) });
      // ~2 s is the promise; the margin is for a busy machine.
      expect({ name, slow: answer.ms > 3000 }).toEqual({ name, slow: false });
    }

    await redis.restart();
    await untilStatus(`${base}/readyz`, 200, 30_000);
    const after = await send(`${base}/v1/threads/down-1/turns?wait=10000`, json({ content: 'After the outage.' }));
    expect(after.status).toBe(200);
    expect((JSON.parse(after.body) as { status: string }).status).toBe('done');
    expect(app.child.exitCode).toBeNull();
  });
});
