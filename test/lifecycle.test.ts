import { createHash, randomUUID } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { EMBED_RECALL_GROUP, REMEMBER_GROUP } from '../src/pipeline/groups.js';
import { agentmemEnv, keysEnv, killAll, spawnAgentmem, until, untilStatus, type AgentmemProcess } from './support/fleet.js';
import { freePort } from './support/ports.js';
import { openTiers, type TestTiers } from './support/redis.js';
import { startTestService } from './support/service.js';

/**
 * Shutdown and start-up of real `agentmem` processes: a SIGTERM under load answers every
 * accepted request and hands back unfinished work, a second signal exits at once and cleanly,
 * a worker that cannot bind its port consumes nothing, an unreachable Redis is named.
 */

const SHUTDOWN_TIMEOUT_MS = 10_000;

let t: TestTiers;
beforeAll(async () => {
  t = await openTiers();
});
afterAll(async () => {
  killAll();
  await t.cleanup();
});

/** Environment for an agentmem process on this file's keys (the suite's Redis, unique prefixes). */
function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return agentmemEnv(inject('redisUrl'), {
    ...keysEnv(t.config), AGENTMEM_NO_RESET: 'true', AGENTMEM_WINDOW_SIZE: '1000', AGENTMEM_SHUTDOWN_TIMEOUT_MS: String(SHUTDOWN_TIMEOUT_MS),
    ...extra,
  });
}

async function serve(extra: Record<string, string> = {}): Promise<{ proc: AgentmemProcess; base: string }> {
  const port = await freePort();
  const proc = spawnAgentmem(['serve'], env({ AGENTMEM_PORT: String(port), ...extra }));
  const base = `http://127.0.0.1:${port}`;
  await untilStatus(`${base}/readyz`);
  return { proc, base };
}

async function pending(): Promise<number> {
  const counts = await Promise.all([
    t.redis.xpending(t.keys.ingestStream, EMBED_RECALL_GROUP).catch(() => [0]),
    t.redis.xpending(t.keys.rememberStream, REMEMBER_GROUP).catch(() => [0]),
  ]);
  return counts.reduce<number>((sum, c) => sum + Number((c as [number])[0]), 0);
}

const TOPICS = ['the deploy pipeline', 'quarterly invoices', 'the warehouse move', 'hiring a designer', 'the roadmap review', 'on-call rotations'];
/** A turn long enough that embedding a batch of them keeps the embedder busy for a while. */
function turnText(client: number, n: number): string {
  return `Client ${client}, turn ${n}: the user keeps coming back to ${TOPICS[(client + n) % TOPICS.length]}. ` + 'They want every detail written down, checked twice and shared with the team before Friday. '.repeat(6);
}

interface Attempt {
  thread: string;
  key: string | undefined;
  /** HTTP status, or the error code the request failed with (ECONNRESET, ECONNREFUSED, ...). */
  outcome: number | string;
  body?: Record<string, unknown>;
}

/** Clients posting turns in a closed loop until `stop()`; each attempt recorded. */
function load(base: string, clients: number, options: { legacyClients?: number } = {}) {
  const attempts: Attempt[] = [];
  let stopped = false;
  const run = async (client: number, legacy: boolean): Promise<void> => {
    const thread = `${legacy ? 'legacy' : 'wait'}-${client}-${randomUUID().slice(0, 8)}`;
    for (let n = 0; !stopped; n++) {
      const key = legacy ? undefined : randomUUID();
      const attempt: Attempt = { thread, key, outcome: 'pending' };
      attempts.push(attempt);
      try {
        const res = legacy
          ? await fetch(`${base}/turn`, { method: 'POST', body: new URLSearchParams({ thread_id: thread, text: turnText(client, n), user: 'lifecycle' }) })
          : await fetch(`${base}/v1/threads/${thread}/turns?wait=20000`, {
              method: 'POST', headers: { 'content-type': 'application/json', 'idempotency-key': key as string },
              body: JSON.stringify({ content: turnText(client, n), user: 'lifecycle' }),
            });
        attempt.outcome = res.status;
        attempt.body = (await res.json()) as Record<string, unknown>;
      } catch (err) {
        const cause = (err as { cause?: { code?: string } }).cause;
        attempt.outcome = cause?.code ?? (err as Error).message;
        // The server is gone (or going): no point in hammering it.
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };
  const running = [
    ...Array.from({ length: clients }, (_, i) => run(i, false)),
    ...Array.from({ length: options.legacyClients ?? 0 }, (_, i) => run(i, true)),
  ];
  return {
    attempts,
    answered: () => attempts.filter((a) => typeof a.outcome === 'number').length,
    stop: async () => {
      stopped = true;
      await Promise.all(running);
    },
  };
}

/** Whether the API accepted the turn of a /v1 attempt: its Idempotency-Key maps to a turn id. */
async function acceptedTurnOf(a: Attempt): Promise<string | null> {
  const keyHash = createHash('sha256').update(a.key as string).digest('hex').slice(0, 32);
  return t.redis.get(t.keys.idempotency(a.thread, keyHash));
}

describe('agentmem serve on SIGTERM under load', () => {
  it('answers every accepted ?wait request (result or 202 with turn_id), ends event streams, exits within the bound, and leaves nothing pending for a restart to wait on', async () => {
    const first = await serve();
    const events = await fetch(`${first.base}/v1/memories/events`);
    expect(events.status).toBe(200);
    const eventStreamEnd = (async () => {
      const reader = (events.body as ReadableStream<Uint8Array>).getReader();
      for (;;) if ((await reader.read()).done) return 'ended';
    })().catch((err: unknown) => `failed: ${String(err)}`);

    const traffic = load(first.base, 12, { legacyClients: 2 });
    await until('turns to flow', () => traffic.answered() >= 30, 60_000);
    const signalled = Date.now();
    first.proc.kill('SIGTERM');
    const exit = await first.proc.exited;
    const shutdownMs = Date.now() - signalled;
    await traffic.stop();

    // Exit 0 means the graceful path finished before the deadline (which forces exit code 1).
    expect(exit, first.proc.stderr()).toEqual({ code: 0, signal: null });
    expect(shutdownMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + 2000);
    expect(first.proc.logs.some((l) => l.event === 'shutdown.done')).toBe(true);
    expect(await eventStreamEnd).toBe('ended');

    const v1 = traffic.attempts.filter((a) => a.key !== undefined);
    const resetAfterAcceptance: Attempt[] = [];
    for (const a of v1.filter((x) => typeof x.outcome !== 'number')) if (await acceptedTurnOf(a)) resetAfterAcceptance.push(a);
    expect(resetAfterAcceptance).toEqual([]);
    for (const a of v1.filter((x) => typeof x.outcome === 'number')) {
      if (a.outcome === 200) expect(a.body?.status).toBe('done');
      else if (a.outcome === 202) expect(a.body?.turn_id).toMatch(/^[0-9a-f]{12}$/);
      else {
        // Anything else is a refusal that came before acceptance: 503 (with Retry-After), and nothing stored.
        expect(a.outcome).toBe(503);
        expect(await acceptedTurnOf(a)).toBeNull();
      }
    }
    const queuedAtExit = v1.filter((a) => a.outcome === 202).length;
    expect(queuedAtExit).toBeGreaterThan(0);

    // Legacy clients carry no key: each accepted turn is in its thread, and each must have had an answer.
    for (const thread of new Set(traffic.attempts.filter((a) => a.key === undefined).map((a) => a.thread))) {
      const answered = traffic.attempts.filter((a) => a.thread === thread && (a.outcome === 200 || a.outcome === 202)).length;
      expect(Number(await t.redis.hget(t.keys.session(thread), 'turn_count') ?? 0)).toBe(answered);
    }

    // A restart finishes everything accepted at once: entries the old process held were handed
    // back, not left to age past AGENTMEM_CLAIM_IDLE_MS (30 s, longer than this wait).
    const accepted = (await Promise.all(v1.map(acceptedTurnOf))).filter((id): id is string => id !== null);
    const second = await serve();
    const restarted = Date.now();
    await until('every accepted turn done and nothing pending', async () => {
      const statuses = await Promise.all(accepted.map((id) => t.redis.hget(t.keys.turn(id), 'status')));
      return statuses.every((s) => s === 'done') && (await pending()) === 0;
    }, 20_000);
    expect(Date.now() - restarted).toBeLessThan(20_000);
    second.proc.kill('SIGTERM');
    expect((await second.proc.exited).code).toBe(0);
  }, 120_000);
});

/** Everything the server sends on `socket` until it closes the connection. */
function readUntilClosed(socket: Socket): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    socket.once('close', () => resolve(text));
    socket.once('error', reject);
  });
}

describe('the API while it stops (in process)', () => {
  it('answers a waiting request with 202 and its turn_id at once, and a request still arriving on an open connection with 503 and Retry-After', async () => {
    // No workers: the turn stays queued, so only the shutdown can end the wait.
    const s = await startTestService({}, { workers: false });
    let stopped = false;
    try {
      const port = new URL(s.service.url).port;
      const waiting = s.post('/v1/threads/stopping-1/turns?wait=30000', { content: 'Waiting when the server stops.' });
      await until('the turn to be accepted', async () => (await s.redis.xlen(s.keys.ingestStream)) === 1, 10_000);
      // A request whose headers are on their way when the shutdown starts.
      const late = connect(Number(port), '127.0.0.1');
      await new Promise((resolve) => late.once('connect', resolve));
      const lateAnswer = readUntilClosed(late);
      late.write('GET /v1/memories HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      // The server (this process) reads those bytes on its next turn; then the connection is busy, not idle.
      await new Promise((r) => setTimeout(r, 100));
      const stopping = s.service.stop().then(() => (stopped = true));
      const answer = await waiting;
      expect(answer.status).toBe(202);
      expect(answer.headers.get('connection')).toBe('close');
      expect(((await answer.json()) as { turn_id: string }).turn_id).toMatch(/^[0-9a-f]{12}$/);
      late.write('\r\n');
      const raw = await lateAnswer;
      expect(raw).toMatch(/^HTTP\/1\.1 503 /);
      expect(raw).toMatch(/^Retry-After: 1\r$/im);
      expect(raw).toMatch(/^Connection: close\r$/im);
      await stopping;
      expect(stopped).toBe(true);
    } finally {
      await s.stop();
    }
  }, 30_000);
});

describe('a second signal', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`during a graceful shutdown with the embedder busy exits at once and cleanly (${signal}: ${signal === 'SIGINT' ? 130 : 143}, no abort)`, async () => {
      // A long deadline, and a request whose body never finishes: the graceful shutdown waits for
      // it, so the second signal surely lands while the first is still being honoured.
      const { proc, base } = await serve({ AGENTMEM_SHUTDOWN_TIMEOUT_MS: '60000' });
      const traffic = load(base, 16);
      await until('the embedder to be busy', () => traffic.answered() >= 10, 60_000);
      const stalled = connect(Number(new URL(base).port), '127.0.0.1');
      stalled.on('error', () => undefined);
      await new Promise<void>((resolve) => stalled.once('connect', () => resolve()));
      stalled.write('POST /v1/threads/stalled-1/turns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"content":');
      proc.kill(signal);
      await until('the graceful shutdown to start', () => proc.logs.some((l) => l.event === 'serve.stopping'), 30_000, 20);
      proc.kill(signal);
      const exit = await proc.exited;
      stalled.destroy();
      await traffic.stop();
      expect(proc.stderr()).not.toMatch(/terminate called|Napi::Error|Aborted/);
      expect(exit).toEqual({ code: signal === 'SIGINT' ? 130 : 143, signal: null });
      expect(proc.logs.some((l) => l.event === 'shutdown.forced')).toBe(true);
    }, 90_000);
  }
});

describe('a graceful shutdown past AGENTMEM_SHUTDOWN_TIMEOUT_MS', () => {
  it('is cut short: exit code 1, saying so', async () => {
    // Streams of its own, empty: the tests above leave entries that would end its read at once.
    const proc = spawnAgentmem(['worker', 'remember'], env({
      AGENTMEM_METRICS_PORT: '0', AGENTMEM_SHUTDOWN_TIMEOUT_MS: '100', AGENTMEM_PIPELINE_PREFIX: `${t.config.pipelinePrefix}deadline:`,
    }));
    // Its first blocking read (2 s) has just begun, and stopping waits for it to return.
    await until('the worker to start', () => proc.logs.some((l) => l.event === 'worker.started'), 30_000, 20);
    proc.kill('SIGTERM');
    expect(await proc.exited).toEqual({ code: 1, signal: null });
    expect(proc.logs.find((l) => l.event === 'shutdown.forced')?.reason).toBe('not done within 100 ms (AGENTMEM_SHUTDOWN_TIMEOUT_MS)');
  }, 60_000);
});

describe('start-up', () => {
  it('a worker whose metrics port is taken exits non-zero, naming the port, without consuming anything', async () => {
    const taken: Server = createServer();
    const port = await new Promise<number>((resolve) => taken.listen(0, '127.0.0.1', () => resolve((taken.address() as { port: number }).port)));
    try {
      const stream = t.keys.rememberStream;
      await t.redis.del(stream);
      await t.redis.xadd(stream, '*', 'turn_id', 'abcabcabcabc', 'thread_id', 'startup-1');
      const proc = spawnAgentmem(['worker', 'remember'], env({ AGENTMEM_METRICS_PORT: String(port), AGENTMEM_CONSUMER_NAME: 'portless' }));
      const exit = await proc.exited;
      expect(exit.code).toBe(1);
      expect(proc.stderr()).toContain(`metrics port 127.0.0.1:${port}`);
      expect(proc.stderr()).toContain('EADDRINUSE');
      // Never joined the group, let alone read from it.
      expect(await t.redis.xinfo('GROUPS', stream)).toEqual([]);
      expect(await t.redis.xlen(stream)).toBe(1);
    } finally {
      taken.close();
      await t.redis.del(t.keys.rememberStream);
    }
  }, 60_000);

  it('an unreachable REDIS_URL is named (password hidden) and the process exits non-zero promptly', async () => {
    const port = await freePort();
    const proc = spawnAgentmem(['worker', 'remember'], { ...env(), REDIS_URL: `redis://:hunter2@127.0.0.1:${port}`, AGENTMEM_METRICS_PORT: '0' });
    const exit = await Promise.race([proc.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 15_000))]);
    expect(exit).toEqual({ code: 1, signal: null });
    expect(proc.stderr()).toContain(`agentmem: cannot reach Redis at redis://:***@127.0.0.1:${port}: ECONNREFUSED`);
    expect(proc.stderr()).not.toContain('hunter2');
  }, 30_000);
});
