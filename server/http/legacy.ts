import express, { type Request, type Response, type Router } from 'express';
import type { z } from 'zod';
import { principalOf } from './authenticate.js';
import { allUsers, inScope, mayActAs, requireRole, resolveScope, type Principal } from '../../src/auth/principal.js';
import { keyField } from './visibility.js';
import { ValidationError } from '../../src/errors.js';
import { seedMemories } from '../../src/memory/seed.js';
import { parseTurnInput } from '../../src/pipeline/ingest.js';
import * as v from '../../src/validate.js';
import type { ApiDeps } from './deps.js';
import { verifyFormBody } from './guards.js';
import { operationRoutes } from './route.js';
import * as s from './schemas.js';

const STACK_LABEL = 'agentmem (TypeScript, Redis Streams pipeline)';
const SYNC_WAIT_MS = 30_000;


/**
 * A form field (body or query string) as a string, or the fallback when absent or empty (the
 * demos' forms send empty strings). A field given twice, as a list or not as a string is a 400
 * naming it, never the fallback: falling back would act on another scope or thread.
 */
function field(req: Request, name: string, fallback: string): string {
  const body = formBody(req);
  const inBody = body[name] ?? undefined;
  const inQuery = req.query[name];
  if (inBody !== undefined && inQuery !== undefined) throw new ValidationError(name, 'given in both the query string and the body; give it once');
  const value = inBody ?? inQuery;
  if (value === undefined) return fallback;
  if (Array.isArray(value)) throw new ValidationError(name, 'must be given once');
  if (typeof value !== 'string') throw new ValidationError(name, 'must be a string');
  return value === '' ? fallback : value;
}

/** A route's form fields (each given once, in the query string or the body; empty ones left out), checked by its schema. */
function formOf<S extends z.ZodObject>(req: Request, schema: S): z.output<S> {
  const given: Record<string, string> = {};
  for (const name of Object.keys(schema.shape)) {
    const value = field(req, name, '');
    if (value !== '') given[name] = value;
  }
  return s.parse(schema, given);
}

function formBody(req: Request): Record<string, unknown> {
  const body: unknown = req.body ?? {};
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new ValidationError('body', 'must be form fields or a JSON object');
  return body as Record<string, unknown>;
}

/**
 * The reference demos' routes (GET /state, POST /turn, /new_thread, /reset, /drop_memory), with
 * their form fields and response shapes, so a client written for them works unchanged. Turns go
 * through the pipeline and are answered once done.
 *
 * Legacy behaviour, kept on purpose: a request without `thread_id` uses one default thread per
 * process, which /new_thread replaces — shared by every such client, as in the demos. The /v1 API
 * never keeps a current thread. With API keys, each key has its own default thread (created on
 * first use, owned by the key's user), and every route acts within the key's scope.
 */
export function legacyRoutes(deps: ApiDeps): Router {
  const { keys, working, longTerm, events, embedder, ingest, waiter, config } = deps;
  /** Default thread per key id ('' without keys); bounded by the number of keys. */
  const defaultThreads = new Map<string, string>();
  const principalKey = (p: Principal): string => p.keyId ?? '';
  const defaultThreadOf = (p: Principal): string => {
    let id = defaultThreads.get(principalKey(p));
    if (id === undefined) defaultThreads.set(principalKey(p), (id = v.newId()));
    return id;
  };
  const threadOf = (f: { thread_id?: string | undefined }, p: Principal): string => f.thread_id ?? defaultThreadOf(p);
  const scopeOf = (f: { user?: string | undefined; namespace?: string | undefined }, p: Principal) => resolveScope(p, { user: f.user, namespace: f.namespace });
  /** Starts a thread owned by `user` and logs it (thread_started is what ends another user's open stream of a reused id). */
  const startThread = async (threadId: string, p: Principal, scope: { user: string; namespace: string }): Promise<void> => {
    await working.start(threadId, { ...scope, exclusive: !allUsers(p), keyId: p.keyId });
  };
  const writer = (res: Response): Principal => {
    const p = principalOf(res);
    requireRole(p, 'write');
    return p;
  };

  const router = express.Router();
  router.use(express.urlencoded({ extended: false, limit: config.maxBodyBytes, inflate: false, verify: verifyFormBody }));

  const routes = operationRoutes(router, 'reference');
  routes.legacyState(async (req, res) => {
    const p = principalOf(res);
    const f = formOf(req, s.legacyStateForm);
    const scope = scopeOf(f, p);
    const threadId = threadOf(f, p);
    // With keys, the key's default thread exists from the start, so the page can follow its events.
    if (!allUsers(p) && f.thread_id === undefined && p.role !== 'read') await startThread(threadId, p, scope);
    const [info, loaded, memories, recent] = await Promise.all([
      longTerm.indexInfo(), working.load(threadId), longTerm.list(scope, 200), events.recent(threadId, 20),
    ]);
    // Another user's thread reads as a missing one: no session, no events.
    const visible = loaded !== null && mayActAs(p, loaded.user);
    const session = visible ? loaded : null;
    res.json({
      index: {
        num_docs: info.numDocs, indexing_failures: info.indexingFailures, index_name: keys.indexName, model: embedder.modelId,
        session_ttl_seconds: config.sessionTtlSeconds, dedup_threshold: config.dedupThreshold,
        default_recall_threshold: config.recallThreshold, stack_label: STACK_LABEL,
      },
      thread_id: threadId, session, memories, events: visible || allUsers(p) ? recent : [], recalled: [],
    });
  });

  routes.legacyTurn(async (req, res) => {
    const p = writer(res);
    const f = formOf(req, s.legacyTurnForm);
    const threadId = threadOf(f, p);
    const scope = scopeOf(f, p);
    if (f.action === 'goal') {
      const goal = f.text ?? '';
      await working.setGoal(threadId, goal, { user: scope.user, exclusive: !allUsers(p), keyId: p.keyId });
      res.json({ thread_id: threadId, goal });
      return;
    }
    const rawThreshold = f.threshold === undefined ? config.recallThreshold : Number(f.threshold);
    const turn = parseTurnInput(threadId, {
      content: f.text ?? '', role: f.role ?? 'user', remember: f.kind ?? 'episodic',
      user: scope.user, namespace: scope.namespace, threshold: Math.min(2, Math.max(0, rawThreshold)),
    }, config);
    const accepted = await ingest.accept(turn, undefined, { exclusive: !allUsers(p), keyId: p.keyId });
    const result = await waiter.waitFor(accepted.turnId, SYNC_WAIT_MS);
    if (result?.status === 'queued' && waiter.isDraining) {
      // Shutting down: the turn is accepted and will finish; an error here would invite a duplicate retry.
      res.status(202).location(`/v1/turns/${accepted.turnId}`).json({ thread_id: threadId, turn_id: accepted.turnId, status: 'queued' });
      return;
    }
    if (!result || result.status !== 'done') {
      res.status(result?.status === 'failed' ? 500 : 504).json({ error: { message: result?.error ?? `turn ${accepted.turnId} not done in time` }, turn_id: accepted.turnId });
      return;
    }
    res.json({
      thread_id: threadId,
      write_skipped: result.memory === null,
      memory_id: result.memory?.id ?? null,
      deduped: result.memory?.deduped ?? false,
      existing_distance: result.memory?.existing_distance ?? null,
      kind: turn.remember,
      recalled: result.recall ?? [],
      embed_ms: result.timings.embed_ms ?? null,
      recall_ms: result.timings.recall_ms ?? null,
      write_ms: result.timings.remember_ms ?? null,
      turn_id: result.turn_id,
    });
  });

  routes.legacyNewThread(async (req, res) => {
    const p = writer(res);
    const scope = scopeOf(formOf(req, s.legacyScopeForm), p);
    const threadId = v.newId();
    defaultThreads.set(principalKey(p), threadId);
    await startThread(threadId, p, scope);
    res.json({ thread_id: threadId });
  });

  routes.legacyReset(async (req, res) => {
    const p = writer(res);
    const scope = scopeOf(formOf(req, s.legacyScopeForm), p);
    await longTerm.clearScope(scope, keyField(p));
    const seeded = await seedMemories(longTerm, embedder, scope);
    res.json({ seeded: seeded.filter((r) => r.written).length });
  });

  routes.legacyDropMemory(async (req, res) => {
    const p = writer(res);
    const { memory_id: memoryId } = formOf(req, s.legacyDropForm);
    // Another tenant's memory is answered as a missing one.
    const memory = await longTerm.get(memoryId);
    const deleted = memory !== null && inScope(p, memory) && (await longTerm.delete(memoryId, { user: memory.user, namespace: memory.namespace, ...keyField(p) }));
    res.json({ deleted, memory_id: memoryId });
  });

  routes.done();
  return router;
}
