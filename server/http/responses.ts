import { z } from 'zod';
import { ROLES } from '../../src/auth/principal.js';
import { MEMORY_KINDS } from '../../src/validate.js';

/**
 * The HTTP API's success answers as zod schemas. The OpenAPI document (openapi.ts) names them
 * under components.schemas, the client's types (src/client/wire.ts) are generated from them
 * (client-types.ts), and test/responses.test.ts checks every route's real answers against them:
 * a field the server adds, drops or retypes fails that test before it reaches either. Closed
 * shapes are strict objects so that an extra field fails too.
 */

const unixSeconds = (what: string) => z.number().meta({ description: `${what}, in Unix seconds (with a fraction).` });

/** Every 4xx/5xx answer: `field` names the refused field when there is one. */
export const ErrorBody = z.object({ error: z.strictObject({ field: z.string().optional(), message: z.string() }) });

export const Health = z.strictObject({ status: z.literal('ok') });

const check = z.union([z.string(), z.record(z.string(), z.string())]);
export const Readiness = z.strictObject({
  status: z.enum(['ready', 'degraded', 'not ready']),
  checks: z.record(z.string(), check).meta({ description: 'Each check: `ok`, or what is wrong; `workers` and `stages` name each worker or stage.' }),
});

export const WhoAmI = z.strictObject({
  auth: z.enum(['off', 'keys']),
  key_id: z.string().nullable(),
  name: z.string().nullable(),
  role: z.enum(ROLES),
  users: z.array(z.string()),
  namespaces: z.array(z.string()),
  expires_ts: z.number().nullable(),
}).meta({ description: 'The credential the request was made with (everything, when auth is off).' });

export const CreatedThread = z.strictObject({ thread_id: z.string() });

export const TurnAccepted = z.strictObject({ turn_id: z.string(), thread_id: z.string() })
  .meta({ description: 'Accepted, durably queued, not yet processed; Location: /v1/turns/{turn_id}.' });

export const Turn = z.strictObject({ role: z.string(), content: z.string(), ts: unixSeconds('When it was appended') });

export const SessionState = z.strictObject({
  thread_id: z.string(),
  user: z.string(),
  agent: z.string(),
  goal: z.string(),
  scratchpad: z.string(),
  turn_count: z.int(),
  created_ts: z.number(),
  last_active_ts: z.number(),
  recent_turns: z.array(Turn),
  ttl_seconds: z.int().meta({ description: 'Remaining TTL in seconds; -1 when the hash has no TTL.' }),
}).meta({ description: 'A thread\'s working memory.' });

export const MemoryRecord = z.strictObject({
  id: z.string(),
  user: z.string(),
  namespace: z.string(),
  kind: z.enum(MEMORY_KINDS),
  source_thread: z.string(),
  text: z.string(),
  created_ts: z.number(),
  hit_count: z.int(),
  distance: z.number().optional().meta({ description: 'Cosine distance to the query; only on recall results.' }),
  ttl_seconds: z.int().nullable().meta({ description: 'Remaining TTL in seconds; null when the memory never expires.' }),
}).meta({ description: 'A long-term memory as the API lists and recalls it.' });

export const MemoryOutcome = z.strictObject({
  id: z.string(),
  deduped: z.boolean(),
  existing_distance: z.number().nullable(),
  kind: z.string(),
}).meta({ description: 'What the pipeline recorded about remembering a turn.' });

export const TurnResult = z.strictObject({
  turn_id: z.string(),
  thread_id: z.string(),
  status: z.enum(['queued', 'done', 'failed']),
  turn_count: z.int().meta({ description: 'The turn\'s position in its thread.' }),
  recall: z.array(MemoryRecord).nullable().meta({ description: 'Null until recall is ready.' }),
  memory: MemoryOutcome.nullable(),
  timings: z.strictObject({
    accepted_ts: z.number(),
    recall_ts: z.number().optional(),
    done_ts: z.number().optional(),
    embed_ms: z.number().optional(),
    recall_ms: z.number().optional(),
    remember_ms: z.number().optional(),
  }),
  error: z.string().optional(),
}).meta({ description: 'A turn: status, recall, memory written, timings.' });

export const MemoryList = z.strictObject({ memories: z.array(MemoryRecord) });

export const DeletedMemory = z.strictObject({ deleted: z.literal(true), memory_id: z.string() });

export const RecallResponse = z.strictObject({ recall: z.array(MemoryRecord), embed_ms: z.number(), recall_ms: z.number() });

export const DeadLetterEntry = z.object({
  id: z.string(),
  source_id: z.string(),
  stage: z.string(),
  reason: z.string(),
  deliveries: z.string(),
}).catchall(z.string()).meta({ description: 'A turn the pipeline gave up on: why, plus its stream entry\'s fields as stored (the embedding left out).' });

export const DeadLetterList = z.strictObject({ entries: z.array(DeadLetterEntry) });

export const ApiKeyInfo = z.strictObject({
  key_id: z.string(),
  name: z.string().nullable(),
  role: z.enum(ROLES),
  users: z.array(z.string()),
  namespaces: z.array(z.string()),
  created_ts: z.number(),
  expires_ts: z.number().nullable(),
  revoked: z.boolean(),
  revoked_ts: z.number().nullable(),
}).meta({ description: 'An API key as listed: never its secret.' });

export const CreatedKey = z.strictObject({ ...ApiKeyInfo.shape, key: z.string().meta({ description: 'The token, shown this once.' }) });

export const KeyList = z.strictObject({ keys: z.array(ApiKeyInfo) });

export const RevokedKey = z.strictObject({ key_id: z.string(), revoked: z.literal(true) });

export const EventRecord = z.strictObject({
  event_id: z.string().meta({ description: 'The Stream entry id, also the SSE id.' }),
  thread_id: z.string().meta({ description: 'The thread; `memories` on the memory log.' }),
  action: z.string(),
  detail: z.string().meta({ description: 'Free text on a thread\'s log; JSON on the memory log.' }),
  ts: z.number(),
}).meta({ description: 'One event of a thread\'s log or of the memory log: the data of each Server-Sent Event.' });

/** The reference demos' shapes (/work/shared/spec/wire-compat.md, "The reference demo's HTTP surface"). */
export const LegacyState = z.strictObject({
  index: z.strictObject({
    num_docs: z.number(),
    indexing_failures: z.number(),
    index_name: z.string(),
    model: z.string(),
    session_ttl_seconds: z.number(),
    dedup_threshold: z.number(),
    default_recall_threshold: z.number(),
    stack_label: z.string(),
  }),
  thread_id: z.string(),
  session: SessionState.nullable(),
  memories: z.array(MemoryRecord),
  events: z.array(EventRecord),
  recalled: z.array(MemoryRecord),
});

export const LegacyTurnDone = z.strictObject({
  thread_id: z.string(),
  write_skipped: z.boolean(),
  memory_id: z.string().nullable(),
  deduped: z.boolean(),
  existing_distance: z.number().nullable(),
  kind: z.enum([...MEMORY_KINDS, 'skip']),
  recalled: z.array(MemoryRecord),
  embed_ms: z.number().nullable(),
  recall_ms: z.number().nullable(),
  write_ms: z.number().nullable(),
  turn_id: z.string(),
});
export const LegacyGoalSet = z.strictObject({ thread_id: z.string(), goal: z.string() });
export const LegacyTurn = z.union([LegacyTurnDone, LegacyGoalSet]).meta({ description: 'A processed turn, or (action=goal) the goal set.' });
export const LegacyTurnQueued = z.strictObject({ thread_id: z.string(), turn_id: z.string(), status: z.literal('queued') });
export const LegacyReset = z.strictObject({ seeded: z.int() });
export const LegacyDropped = z.strictObject({ deleted: z.boolean(), memory_id: z.string() });
