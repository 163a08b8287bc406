import express, { type ErrorRequestHandler, type Express, type Request } from 'express';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import type { TextEmbedder } from '../embedder/threaded.js';
import { BacklogFullError, SearchIncompleteError, ValidationError } from '../errors.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import type { EventLog } from '../memory/events.js';
import type { LongTermMemory } from '../memory/long-term.js';
import type { WorkingMemory } from '../memory/working.js';
import type { Metrics } from '../metrics.js';
import { parseTurnInput, type Ingest } from '../pipeline/ingest.js';
import { readTurn } from '../pipeline/turns.js';
import type { TurnWaiter } from '../pipeline/waiter.js';
import { listModules, missingModules } from '../redis/connection.js';
import { pairs } from '../redis/reply.js';
import type { StreamFanout } from '../redis/stream-fanout.js';
import { WEB_DIR } from '../paths.js';
import * as v from '../validate.js';
import { clientError, requestGuards, verifyJsonBody } from './guards.js';
import { legacyRoutes } from './legacy.js';
import { route, type Handler } from './route.js';
import { streamEvents } from './sse.js';

export interface ApiDeps {
  redis: Redis;
  keys: Keys;
  working: WorkingMemory;
  longTerm: LongTermMemory;
  events: EventLog;
  embedder: TextEmbedder;
  ingest: Ingest;
  waiter: TurnWaiter;
  fanout: StreamFanout;
  config: Config;
  log: Logger;
  metrics: Metrics;
}

const MAX_WAIT_MS = 30_000;


function body(req: Request): Record<string, unknown> {
  if (typeof req.body !== 'object' || req.body === null || Array.isArray(req.body)) {
    throw new ValidationError('body', 'must be a JSON object (Content-Type: application/json)');
  }
  return req.body as Record<string, unknown>;
}

function queryString(req: Request, name: string, fallback: string): unknown {
  const value = req.query[name];
  return value === undefined ? fallback : value;
}

function queryInt(req: Request, name: string, fallback: number, max: number): number {
  const raw = req.query[name];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(value) || value < 0 || value > max) throw new ValidationError(name, `must be an integer in [0, ${max}]`);
  return value;
}

function param(req: Request, name: string): string {
  return String(req.params[name]);
}

/** The HTTP app, separate from the server that listens, so tests can drive it in process. */
export function createApp(deps: ApiDeps): Express {
  const { redis, keys, working, longTerm, events, embedder, ingest, waiter, fanout, config, log, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  app.use(requestGuards);
  app.use(express.json({ limit: config.maxBodyBytes, inflate: false, verify: verifyJsonBody }));

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  // The app is built only after the model has loaded; it can still lose it (an embedder thread dies).
  app.get('/readyz', route(readiness(redis, longTerm, embedder)));
  app.get('/metrics', route(metricsHandler(metrics)));

  app.post('/v1/threads', route(async (req, res) => {
    const b = req.body === undefined ? {} : body(req);
    const user = v.scopeValue(b.user ?? 'default', 'user');
    const namespace = v.scopeValue(b.namespace ?? 'default', 'namespace');
    const agent = v.scopeValue(b.agent ?? 'default', 'agent');
    const threadId = v.newId();
    await working.start(threadId, { user, agent });
    await events.record(threadId, 'thread_started', `user=${user} namespace=${namespace}`);
    res.status(201).json({ thread_id: threadId });
  }));

  app.post('/v1/threads/:thread_id/turns', route(async (req, res) => {
    const turn = parseTurnInput(param(req, 'thread_id'), body(req), config);
    const waitMs = queryInt(req, 'wait', 0, MAX_WAIT_MS);
    const accepted = await ingest.accept(turn, req.header('Idempotency-Key')).catch((err: unknown) => {
      if (err instanceof BacklogFullError) metrics.turnsIngested.inc({ result: 'rejected' });
      throw err;
    });
    metrics.turnsIngested.inc({ result: accepted.created ? 'accepted' : 'replayed' });
    if (!accepted.created) res.setHeader('Idempotent-Replayed', 'true');
    if (waitMs > 0) {
      const result = await waiter.waitFor(accepted.turnId, waitMs);
      if (result && result.status !== 'queued') {
        res.status(200).json(result);
        return;
      }
    }
    res.status(202).location(`/v1/turns/${accepted.turnId}`).json({ turn_id: accepted.turnId, thread_id: accepted.threadId });
  }));

  app.get('/v1/turns/:turn_id', route(async (req, res) => {
    const turn = await readTurn(redis, keys, longTerm, param(req, 'turn_id'));
    if (!turn) throw new NotFound('turn', param(req, 'turn_id'));
    res.json(turn);
  }));

  app.get('/v1/threads/:thread_id', route(async (req, res) => {
    const threadId = v.threadId(param(req, 'thread_id'));
    const state = await working.load(threadId);
    if (!state) throw new NotFound('thread', threadId);
    res.json(state);
  }));

  app.put('/v1/threads/:thread_id', route(async (req, res) => {
    const threadId = v.threadId(param(req, 'thread_id'));
    const b = body(req);
    if (b.goal === undefined && b.scratchpad === undefined) throw new ValidationError('body', 'give goal, scratchpad or both');
    const goal = b.goal === undefined ? undefined : v.optionalText(b.goal, 'goal');
    const scratchpad = b.scratchpad === undefined ? undefined : v.optionalText(b.scratchpad, 'scratchpad');
    if (goal !== undefined) {
      await working.setGoal(threadId, goal);
      await events.record(threadId, 'goal_set', goal);
    }
    if (scratchpad !== undefined) await working.setScratchpad(threadId, scratchpad);
    res.json(await working.load(threadId));
  }));

  app.get('/v1/threads/:thread_id/events', route(async (req, res) => {
    const threadId = v.threadId(param(req, 'thread_id'));
    await streamEvents(redis, fanout, keys.events(threadId), threadId, req, res);
  }));

  app.get('/v1/memories/events', route(async (req, res) => {
    await streamEvents(redis, fanout, keys.memoryLog, 'memories', req, res);
  }));

  app.get('/v1/memories', route(async (req, res) => {
    const scope = { user: queryString(req, 'user', 'default') as string, namespace: queryString(req, 'namespace', 'default') as string };
    const limit = queryInt(req, 'limit', 200, 10_000);
    res.json({ memories: await longTerm.list(scope, Math.max(limit, 1)) });
  }));

  app.delete('/v1/memories/:memory_id', route(async (req, res) => {
    const memoryId = v.memoryId(param(req, 'memory_id'));
    if (!(await longTerm.delete(memoryId))) throw new NotFound('memory', memoryId);
    res.json({ deleted: true, memory_id: memoryId });
  }));

  app.post('/v1/recall', route(async (req, res) => {
    const b = body(req);
    const text = v.memoryText(b.text, 'text');
    const scope = { user: v.scopeValue(b.user ?? 'default', 'user'), namespace: v.scopeValue(b.namespace ?? 'default', 'namespace') };
    const k = v.positiveInt(b.k ?? config.recallK, 'k', 100);
    const threshold = v.distanceThreshold(b.threshold ?? config.recallThreshold, 'threshold');
    const t0 = performance.now();
    const embedding = await embedder.embedOne(text);
    const t1 = performance.now();
    const recall = await longTerm.recall({ ...scope, embedding, k, threshold });
    res.json({ recall, embed_ms: t1 - t0, recall_ms: performance.now() - t1 });
  }));

  app.get('/v1/deadletter', route(async (req, res) => {
    const count = queryInt(req, 'count', 100, 1000);
    const entries = await redis.xrevrange(keys.deadLetterStream, '+', '-', 'COUNT', Math.max(count, 1));
    res.json({
      entries: entries.map(([id, flat]) => ({ id, ...Object.fromEntries(pairs(flat)) })),
    });
  }));

  app.use(legacyRoutes(deps));
  // After the API: an API request never waits on a file lookup.
  app.use(express.static(WEB_DIR));
  app.use((req, _res, next) => next(new NotFound('route', `${req.method} ${req.path}`)));
  app.use(errorHandler(log, metrics));
  return app;
}

/** /readyz: 200 when Redis answers with both modules, the index exists and the embedder (if any) works, else 503 naming what failed. */
export function readiness(redis: Redis, longTerm: Pick<LongTermMemory, 'indexInfo'>, embedder?: Pick<TextEmbedder, 'broken'>): Handler {
  return async (_req, res) => {
    const checks: Record<string, string> = { redis: 'unknown', index: 'unknown' };
    if (embedder) checks.embedder = embedder.broken ? `failed: ${embedder.broken.message}` : 'ok';
    try {
      const missing = missingModules(await listModules(redis));
      checks.redis = missing.length === 0 ? 'ok' : `missing ${missing.join(', ')}`;
      await longTerm.indexInfo();
      checks.index = 'ok';
    } catch (err) {
      if (checks.redis === 'unknown') checks.redis = `unreachable: ${(err as Error).message}`;
      else checks.index = `missing: ${(err as Error).message}`;
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  };
}

export function metricsHandler(metrics: Metrics): Handler {
  return async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  };
}

/** The small HTTP surface of a worker process: liveness, readiness, metrics. */
export function createOpsApp(redis: Redis, longTerm: Pick<LongTermMemory, 'indexInfo'>, metrics: Metrics, embedder?: Pick<TextEmbedder, 'broken'>): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', route(readiness(redis, longTerm, embedder)));
  app.get('/metrics', route(metricsHandler(metrics)));
  return app;
}

class NotFound extends Error {
  constructor(
    readonly what: string,
    readonly id: string,
  ) {
    super(`${what} ${id} not found`);
  }
}

/** Operational errors become 4xx answers naming the problem (malformed requests: see guards.ts); anything else is a logged 500. */
function errorHandler(log: Logger, metrics: Metrics): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const refused = clientError(err);
    if (err instanceof ValidationError) {
      res.status(400).json({ error: { field: err.field, message: err.message } });
    } else if (err instanceof NotFound) {
      res.status(404).json({ error: { message: err.message } });
    } else if (err instanceof BacklogFullError) {
      res.setHeader('Retry-After', String(err.retryAfterSeconds));
      res.status(429).json({ error: { message: err.message } });
    } else if (err instanceof SearchIncompleteError) {
      log.warn('http.search_incomplete', { method: req.method, path: req.path, error: err });
      res.setHeader('Retry-After', String(err.retryAfterSeconds));
      res.status(503).json({ error: { message: err.message } });
    } else if (refused) {
      res.status(refused.status).json({ error: refused.error });
    } else {
      log.error('http.error', { method: req.method, path: req.path, error: err });
      metrics.errors.inc({ kind: 'http' });
      res.status(500).json({ error: { message: 'internal error' } });
    }
  };
}
