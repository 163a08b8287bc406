import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import express, { type ErrorRequestHandler, type Express, type Request } from 'express';
import type { Redis } from 'ioredis';
import { authenticate, principalOf } from './authenticate.js';
import { ApiKeyStore, parseNewKey } from '../../src/auth/key-store.js';
import { allUsers, inScope, mayActAs, requireRole, resolveScope, type Principal } from '../../src/auth/principal.js';
import { RateLimiter } from '../../src/auth/rate-limit.js';
import { keyField, memoryEventFilter, threadEventFilter, turnVisible } from './visibility.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import { BacklogFullError, DurabilityError, SearchIncompleteError, ValidationError } from '../../src/errors.js';
import type { Keys } from '../../src/keys.js';
import type { Logger } from '../../src/log.js';
import type { LongTermMemory } from '../../src/memory/long-term.js';
import type { Metrics } from '../../src/metrics.js';
import { parseTurnInput } from '../../src/pipeline/ingest.js';
import { readTurn } from '../../src/pipeline/turns.js';
import { stageLiveness } from '../../src/pipeline/liveness.js';
import type { RunningWorker } from '../../src/pipeline/worker.js';
import { listModules, missingModules } from '../../src/redis/connection.js';
import { pairs } from '../../src/redis/reply.js';
import { asRedisUnavailable, REDIS_RETRY_AFTER_SECONDS, withinMs } from '../../src/redis/unavailable.js';
import type { Durability } from '../../src/redis/durability.js';
import { PACKAGE_ROOT, WEB_DIR } from '../../src/paths.js';
import * as v from '../../src/validate.js';
import { OPERATIONS, openApiDocument } from './openapi.js';
import * as s from './schemas.js';
import { clientError, requestGuards, verifyJsonBody } from './guards.js';
import { legacyRoutes } from './legacy.js';
import { mcpOtherMethods, mcpRoute } from '../mcp/http.js';
import { NotFound } from './not-found.js';
import { operationRoutes, route, type Handler } from './route.js';
import type { ApiDeps } from './deps.js';
import { streamEvents } from './sse.js';

/** Built once: the document only depends on the schemas and the package version. */
const OPENAPI = openApiDocument((JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version);

/** Served without a key: the rows of OPERATIONS marked open. */
const OPEN_PATHS = new Set(OPERATIONS.filter((op) => op.open).map((op) => op.path));

const queryNumber = (raw: string | undefined, fallback: number): number => (raw === undefined ? fallback : Number(raw));

/** The HTTP app, separate from the server that listens, so tests can drive it in process. */
export function createApp(deps: ApiDeps): Express {
  const { redis, keys, working, longTerm, embedder, ingest, waiter, fanout, durability, config, log, metrics } = deps;
  const app = express();
  app.disable('x-powered-by');
  const apiKeys = new ApiKeyStore(redis, keys);
  const metricsOpen = config.auth !== 'keys' || config.metricsPublic;
  const staticFiles = webFiles();
  // Open without a key: liveness, readiness, the page (it asks for a key), /metrics if so configured.
  const open = (req: Request): boolean =>
    OPEN_PATHS.has(req.path) || (metricsOpen && req.path === '/metrics') ||
    ((req.method === 'GET' || req.method === 'HEAD') && staticFiles.has(req.path));
  app.use(requestGuards);
  app.use(authenticate({ config, store: apiKeys, limiter: new RateLimiter(redis, keys), log }, open));
  app.use(express.json({ limit: config.maxBodyBytes, inflate: false, verify: verifyJsonBody }));

  const routes = operationRoutes(app, 'api');
  routes.health(async (_req, res) => {
    res.json({ status: 'ok' });
  });
  routes.openApi(async (_req, res) => {
    res.json(OPENAPI);
  });

  // The app is built only after the model has loaded; it can still lose it (an embedder thread dies).
  routes.readiness(readiness({ redis, keys, longTerm, embedder, workers: deps.workers, durability }));
  const serveMetrics = metricsHandler(metrics);
  routes.metrics(async (req, res) => {
    if (!metricsOpen) requireRole(principalOf(res), 'admin');
    await serveMetrics(req, res);
  });

  routes.whoami(async (_req, res) => {
    const p = principalOf(res);
    res.json({ auth: p.auth, key_id: p.keyId, name: p.name, role: p.role, users: p.users, namespaces: p.namespaces, expires_ts: p.expiresTs });
  });

  routes.createThread(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'write');
    const b = s.parse(s.createThreadBody, req.body ?? {});
    const { user, namespace } = resolveScope(p, b);
    const agent = b.agent ?? 'default';
    const threadId = v.newId();
    await working.start(threadId, { user, agent, namespace, keyId: p.keyId });
    res.status(201).json({ thread_id: threadId });
  });

  routes.postTurn(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'write');
    const { thread_id: threadId } = s.parse(s.threadParams, req.params);
    const b = s.parse(s.turnBody, req.body);
    const turn = { ...parseTurnInput(threadId, b, config), ...resolveScope(p, b) };
    const waitMs = queryNumber(s.parse(s.turnQuery, req.query).wait, 0);
    const accepted = await ingest.accept(turn, req.header('Idempotency-Key'), { exclusive: !allUsers(p), keyId: p.keyId }).catch((err: unknown) => {
      if (err instanceof BacklogFullError) metrics.turnsIngested.inc({ result: 'rejected' });
      throw err;
    });
    metrics.turnsIngested.inc({ result: accepted.created ? 'accepted' : 'replayed' });
    if (!accepted.created) res.setHeader('Idempotent-Replayed', 'true');
    if (waitMs > 0) {
      // The turn is accepted and on disk: Redis failing during the wait still answers its id (202), never an error a client would retry.
      const result = await waiter.waitFor(accepted.turnId, waitMs).catch((err: unknown) => {
        if (!asRedisUnavailable(err) && !(err instanceof DurabilityError)) throw err;
        log.warn('http.wait_failed', { turn_id: accepted.turnId, error: err });
        return null;
      });
      if (result && result.status !== 'queued') {
        res.status(200).json(result);
        return;
      }
    }
    res.status(202).location(`/v1/turns/${accepted.turnId}`).json({ turn_id: accepted.turnId, thread_id: accepted.threadId });
  });

  routes.getTurn(async (req, res) => {
    const { turn_id: turnId } = s.parse(s.turnParams, req.params);
    const turn = (await turnVisible(redis, keys, principalOf(res), turnId)) ? await readTurn(redis, keys, longTerm, turnId) : null;
    if (!turn) throw new NotFound('turn', turnId);
    res.json(turn);
  });

  /** A thread's state if the principal may see it (its owner is one of the key's users); else, as for a missing thread, 404. */
  const visibleThread = async (req: Request, p: Principal) => {
    const { thread_id: threadId } = s.parse(s.threadParams, req.params);
    const state = await working.load(threadId);
    if (!state || !mayActAs(p, state.user)) throw new NotFound('thread', threadId);
    return state;
  };

  routes.getThread(async (req, res) => {
    res.json(await visibleThread(req, principalOf(res)));
  });

  routes.updateThread(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'write');
    const { thread_id: threadId } = s.parse(s.threadParams, req.params);
    const { goal, scratchpad } = s.parse(s.updateThreadBody, req.body);
    // With a key, only an existing thread of the key's users (checked again, atomically, by the write).
    const owner = allUsers(p) ? { keyId: p.keyId } : { user: (await visibleThread(req, p)).user, exclusive: true, keyId: p.keyId };
    await working.update(threadId, { goal, scratchpad }, owner);
    res.json(await working.load(threadId));
  });

  routes.threadEvents(async (req, res) => {
    const p = principalOf(res);
    const { thread_id: threadId } = s.parse(s.threadParams, req.params);
    // With a key, a thread that does not exist (yet) is a 404 as another user's is: following an
    // id before it exists would show whoever creates it.
    if (!allUsers(p)) await visibleThread(req, p);
    await streamEvents(redis, fanout, keys.events(threadId), threadId, req, res, threadEventFilter(p));
  });

  routes.memoryEvents(async (req, res) => {
    await streamEvents(redis, fanout, keys.memoryLog, 'memories', req, res, memoryEventFilter(principalOf(res)));
  });

  routes.listMemories(async (req, res) => {
    const q = s.parse(s.memoriesQuery, req.query);
    const scope = resolveScope(principalOf(res), q);
    const limit = queryNumber(q.limit, 200);
    res.json({ memories: await longTerm.list(scope, Math.max(limit, 1)) });
  });

  routes.deleteMemory(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'write');
    const { memory_id: memoryId } = s.parse(s.memoryParams, req.params);
    // Another tenant's memory is answered as a missing one: 404, never a 403 that confirms it exists.
    const memory = await longTerm.get(memoryId);
    if (!memory || !inScope(p, memory)) throw new NotFound('memory', memoryId);
    if (!(await longTerm.delete(memoryId, { user: memory.user, namespace: memory.namespace, ...keyField(p) }))) throw new NotFound('memory', memoryId);
    res.json({ deleted: true, memory_id: memoryId });
  });

  routes.recall(async (req, res) => {
    const { text, k = config.recallK, threshold = config.recallThreshold, ...requested } = s.parse(s.recallBody, req.body);
    const scope = resolveScope(principalOf(res), requested);
    const t0 = performance.now();
    const embedding = await embedder.embedOne(text);
    const t1 = performance.now();
    const recall = await longTerm.recall({ ...scope, embedding, k, threshold });
    res.json({ recall, embed_ms: t1 - t0, recall_ms: performance.now() - t1 });
  });

  routes.deadLetter(async (req, res) => {
    requireRole(principalOf(res), 'admin');
    const count = queryNumber(s.parse(s.deadletterQuery, req.query).count, 100);
    const entries = await redis.xrevrange(keys.deadLetterStream, '+', '-', 'COUNT', Math.max(count, 1));
    res.json({
      entries: entries.map(([id, flat]) => ({ id, ...Object.fromEntries(pairs(flat)) })),
    });
  });

  routes.createKey(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'admin');
    const { token, key } = await apiKeys.create(parseNewKey(s.parse(s.newKeyBody, req.body)));
    log.info('keys.created', { ...key, by_key_id: p.keyId });
    res.status(201).json({ key: token, ...key });
  });

  routes.listKeys(async (_req, res) => {
    requireRole(principalOf(res), 'admin');
    res.json({ keys: await apiKeys.list() });
  });

  routes.revokeKey(async (req, res) => {
    const p = principalOf(res);
    requireRole(p, 'admin');
    const { key_id: keyId } = s.parse(s.keyParams, req.params);
    const outcome = await apiKeys.revoke(keyId);
    if (outcome === 'not found') throw new NotFound('key', keyId);
    log.info('keys.revoked', { key_id: keyId, by_key_id: p.keyId, outcome });
    res.json({ key_id: keyId, revoked: true });
  });

  routes.mcp(mcpRoute(deps));
  routes.done();
  app.use('/mcp', mcpOtherMethods);
  app.use(legacyRoutes(deps));
  // After the API: an API request never waits on a file lookup.
  app.use(express.static(WEB_DIR));
  app.use((req, _res, next) => next(new NotFound('route', `${req.method} ${req.path}`)));
  app.use(errorHandler(log, metrics));
  return app;
}

/** The page's files as request paths (`/`, `/app.js`, ...): served without a key, so the page can ask for one. */
function webFiles(): Set<string> {
  const files = new Set<string>(['/']);
  for (const entry of readdirSync(WEB_DIR, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.add('/' + join(entry.parentPath, entry.name).slice(WEB_DIR.length + 1).split(sep).join('/'));
  }
  return files;
}

/** What /readyz looks at. */
export interface ReadinessDeps {
  redis: Redis;
  keys: Keys;
  longTerm: Pick<LongTermMemory, 'indexInfo'>;
  /** The process's embedder, where it has one. */
  embedder?: Pick<TextEmbedder, 'broken'> | undefined;
  /** The pipeline workers running in this process (serve, `agentmem worker`). */
  workers?: readonly Pick<RunningWorker, 'name' | 'health'>[] | undefined;
  /** The API's acknowledgement policy: whether a Redis crash could lose acknowledged turns. */
  durability?: Pick<Durability, 'check' | 'mode'> | undefined;
}

type Check = string | Record<string, string>;

/** /readyz answers within a second, Redis up or not: its Redis reads run side by side within this. */
const READINESS_BUDGET_MS = 800;

/**
 * /readyz. 503 "not ready" unless Redis answers with both modules, the index exists (a missing
 * one is recreated by the check, as by every Search command), the embedder (if any) works and
 * each of this process's own workers keeps reading. Otherwise 200: "ready" when every pipeline
 * stage has a live consumer somewhere, "degraded" when one has none. A stage without workers
 * does not make this process unfit for traffic (turns are still accepted, durably, and wait for
 * the stage; reads and recall work), and every API process shares the same workers: answering
 * 503 would take the whole API out of its load balancer because workers are restarting. The
 * operator sees the stage named under checks.stages instead. `durability` (the API) adds whether
 * a Redis crash could lose acknowledged turns: 'at risk: why' leaves the process ready, unless
 * AGENTMEM_DURABILITY=require.
 */
export function readiness(deps: ReadinessDeps): Handler {
  const { redis, keys, longTerm, embedder, workers = [], durability } = deps;
  return async (_req, res) => {
    const checks: Record<string, Check> = {};
    const within = <T>(work: Promise<T>, what: string): Promise<T> => withinMs(work, READINESS_BUDGET_MS, what);
    const [modules, index, stages, persistence] = await Promise.allSettled([
      within(listModules(redis), 'MODULE LIST'), within(longTerm.indexInfo(), 'FT.INFO'), within(stageLiveness(redis, keys), 'XINFO CONSUMERS'),
      durability ? within(durability.check(), 'CONFIG GET appendonly') : Promise.resolve(undefined),
    ]);
    if (modules.status === 'rejected') {
      checks.redis = `unreachable: ${(modules.reason as Error).message}`;
      checks.index = 'unknown';
      checks.stages = 'unknown';
    } else {
      const missing = missingModules(modules.value);
      checks.redis = missing.length === 0 ? 'ok' : `missing ${missing.join(', ')}`;
      checks.index = index.status === 'fulfilled' ? 'ok' : `missing: ${(index.reason as Error).message}`;
      checks.stages = stages.status === 'fulfilled' ? stages.value : `unknown: ${(stages.reason as Error).message}`;
      if (durability) {
        const found = persistence.status === 'fulfilled' && persistence.value ? persistence.value : { atRisk: true, detail: `unknown: ${(persistence.status === 'rejected' ? (persistence.reason as Error) : new Error('no answer')).message}` };
        checks.durability = !found.atRisk ? 'ok' : `${durability.mode === 'require' ? 'failed' : 'at risk'}: ${found.detail}`;
      }
    }
    if (embedder) checks.embedder = embedder.broken ? `failed: ${embedder.broken.message}` : 'ok';
    if (workers.length > 0) checks.workers = Object.fromEntries(workers.map((w) => [w.name, w.health()]));
    const isOk = (check: Check | undefined): boolean => check === undefined || (typeof check === 'string' ? check === 'ok' : Object.values(check).every((c) => c === 'ok'));
    const durable = checks.durability === undefined || checks.durability === 'ok' || String(checks.durability).startsWith('at risk');
    const ready = durable && ['redis', 'index', 'embedder', 'workers'].every((name) => isOk(checks[name]));
    const status = !ready ? 'not ready' : isOk(checks.stages) ? 'ready' : 'degraded';
    res.status(ready ? 200 : 503).json({ status, checks });
  };
}

export function metricsHandler(metrics: Metrics): Handler {
  return async (_req, res) => {
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.send(await metrics.registry.metrics());
  };
}

/** The small HTTP surface of a worker process: liveness, readiness, metrics. */
export function createOpsApp(deps: ReadinessDeps, metrics: Metrics): Express {
  const app = express();
  app.disable('x-powered-by');
  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', route(readiness(deps)));
  app.get('/metrics', route(metricsHandler(metrics)));
  return app;
}

/** Operational errors become 4xx answers naming the problem (malformed requests: see guards.ts), Redis being unavailable a 503 with Retry-After; anything else is a logged 500. */
function errorHandler(log: Logger, metrics: Metrics): ErrorRequestHandler {
  return (err: unknown, req, res, _next) => {
    const refused = clientError(err);
    const unavailable = asRedisUnavailable(err);
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
    } else if (err instanceof DurabilityError) {
      log.warn('http.not_durable', { method: req.method, path: req.path, error: err });
      res.setHeader('Retry-After', String(REDIS_RETRY_AFTER_SECONDS));
      res.status(503).json({ error: { message: err.message } });
    } else if (unavailable) {
      log.warn('http.redis_unavailable', { method: req.method, path: req.path, error: unavailable });
      metrics.errors.inc({ kind: 'redis_unavailable' });
      res.setHeader('Retry-After', String(unavailable.retryAfterSeconds));
      res.status(503).json({ error: { message: unavailable.message } });
    } else {
      log.error('http.error', { method: req.method, path: req.path, error: err });
      metrics.errors.inc({ kind: 'http' });
      res.status(500).json({ error: { message: 'internal error' } });
    }
  };
}
