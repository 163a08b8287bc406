import { z } from 'zod';
import { componentSchemas, inlineSchema, schemaOrRef, type JsonSchema } from './components.js';
import * as r from './responses.js';
import * as s from './schemas.js';

type Method = 'get' | 'post' | 'put' | 'delete';

/**
 * One route as the document describes it; the request parts are the schemas the route validates
 * with. The app registers each route from its row (route.ts, registerOperations), with the
 * handler named by its id.
 */
export interface Operation {
  /** The document's operationId, and the key of the route's handler. */
  id: string;
  method: Method;
  /** Express syntax (`/v1/threads/:thread_id`). */
  path: string;
  summary: string;
  tag: 'v1' | 'events' | 'operations' | 'keys' | 'reference';
  /** Served without an API key. */
  open?: boolean;
  params?: z.ZodObject;
  query?: z.ZodObject;
  /** Request headers the route reads; `schema` when it checks one with a request schema. */
  headers?: readonly { name: string; description: string; schema?: z.ZodType }[];
  body?: z.ZodType;
  /** The reference routes take form fields (or JSON); the /v1 API JSON only. */
  form?: boolean;
  /**
   * Success answers: status → description, or description and the schema of the JSON body; `sse`
   * marks an event stream (each event's data an EventRecord), `text` a text body.
   */
  responses: Record<string, string | Answer>;
  sse?: boolean;
  text?: boolean;
  /** Which error answers apply, beyond 401/403/5xx that every keyed route may give. */
  errors?: readonly ('400' | '404' | '429' | '503' | '504')[];
}

interface Answer {
  description: string;
  body: z.ZodType;
}

const anyObject: JsonSchema = { type: 'object' };
const lastEventId = {
  name: 'Last-Event-ID', description: 'The last event id seen (EventSource sends it on reconnect); resumes right after it. Wins over ?since.', schema: s.eventsHeaders.shape['Last-Event-ID'],
};

const TABLE = [
  { id: 'health', method: 'get', path: '/healthz', summary: 'Liveness', tag: 'operations', open: true, responses: { 200: { description: 'The process lives', body: r.Health } } },
  { id: 'readiness', method: 'get', path: '/readyz', summary: 'Readiness: Redis, modules, index, embedder, workers, durability', tag: 'operations', open: true, responses: { 200: { description: 'Ready or degraded (checks name the stage without a consumer)', body: r.Readiness }, 503: { description: 'Not ready: checks say why', body: r.Readiness } } },
  { id: 'metrics', method: 'get', path: '/metrics', summary: 'Prometheus metrics (admin key unless AGENTMEM_METRICS_PUBLIC)', tag: 'operations', text: true, responses: { 200: 'Prometheus text format' } },
  { id: 'openApi', method: 'get', path: '/openapi.json', summary: 'This document', tag: 'operations', open: true, responses: { 200: 'The OpenAPI 3.1 document' } },
  { id: 'whoami', method: 'get', path: '/v1/whoami', summary: 'The calling key: id, role, users, namespaces, expiry', tag: 'keys', responses: { 200: { description: 'The principal', body: r.WhoAmI } } },
  { id: 'createThread', method: 'post', path: '/v1/threads', summary: 'Start a thread', tag: 'v1', body: s.createThreadBody, responses: { 201: { description: 'Started', body: r.CreatedThread } }, errors: ['400'] },
  {
    id: 'postTurn', method: 'post', path: '/v1/threads/:thread_id/turns', summary: 'Submit a turn (accepted durably, processed by the pipeline)', tag: 'v1',
    params: s.threadParams, query: s.turnQuery, body: s.turnBody,
    headers: [{ name: 'Idempotency-Key', description: 'A retry with the same key answers the first turn (Idempotent-Replayed: true) instead of adding one.' }],
    responses: { 200: { description: 'Finished within ?wait: the turn result', body: r.TurnResult }, 202: { description: 'Accepted; Location: /v1/turns/{turn_id}', body: r.TurnAccepted } }, errors: ['400', '404', '429', '503'],
  },
  { id: 'getTurn', method: 'get', path: '/v1/turns/:turn_id', summary: 'A turn: status, recall, memory written, timings', tag: 'v1', params: s.turnParams, responses: { 200: { description: 'The turn', body: r.TurnResult } }, errors: ['400', '404'] },
  { id: 'getThread', method: 'get', path: '/v1/threads/:thread_id', summary: 'A thread\'s working memory', tag: 'v1', params: s.threadParams, responses: { 200: { description: 'The thread', body: r.SessionState } }, errors: ['400', '404'] },
  { id: 'updateThread', method: 'put', path: '/v1/threads/:thread_id', summary: 'Set a thread\'s goal and/or scratchpad', tag: 'v1', params: s.threadParams, body: s.updateThreadBody, responses: { 200: { description: 'The updated thread', body: r.SessionState } }, errors: ['400', '404'] },
  { id: 'threadEvents', method: 'get', path: '/v1/threads/:thread_id/events', summary: 'A thread\'s events as Server-Sent Events, resumable', tag: 'events', params: s.threadParams, query: s.eventsQuery, headers: [lastEventId], sse: true, responses: { 200: 'text/event-stream; each event\'s id is its stream entry id' }, errors: ['400', '404'] },
  { id: 'memoryEvents', method: 'get', path: '/v1/memories/events', summary: 'The memory log (written, bumped, deleted) as Server-Sent Events, resumable', tag: 'events', query: s.eventsQuery, headers: [lastEventId], sse: true, responses: { 200: 'text/event-stream' }, errors: ['400'] },
  { id: 'listMemories', method: 'get', path: '/v1/memories', summary: 'Long-term memories of a scope', tag: 'v1', query: s.memoriesQuery, responses: { 200: { description: 'The scope\'s memories, newest first', body: r.MemoryList } }, errors: ['400', '503'] },
  { id: 'deleteMemory', method: 'delete', path: '/v1/memories/:memory_id', summary: 'Delete a memory', tag: 'v1', params: s.memoryParams, responses: { 200: { description: 'Deleted', body: r.DeletedMemory } }, errors: ['400', '404'] },
  { id: 'recall', method: 'post', path: '/v1/recall', summary: 'Recall memories close to a text', tag: 'v1', body: s.recallBody, responses: { 200: { description: 'The memories within the threshold, closest first', body: r.RecallResponse } }, errors: ['400', '503'] },
  { id: 'deadLetter', method: 'get', path: '/v1/deadletter', summary: 'Turns the pipeline gave up on (admin)', tag: 'operations', query: s.deadletterQuery, responses: { 200: { description: 'The entries, newest first', body: r.DeadLetterList } }, errors: ['400'] },
  { id: 'createKey', method: 'post', path: '/v1/keys', summary: 'Create an API key (admin); the token is shown once', tag: 'keys', body: s.newKeyBody, responses: { 201: { description: 'The key and its token', body: r.CreatedKey } }, errors: ['400'] },
  { id: 'listKeys', method: 'get', path: '/v1/keys', summary: 'List API keys (admin)', tag: 'keys', responses: { 200: { description: 'Every key, newest first', body: r.KeyList } } },
  { id: 'revokeKey', method: 'delete', path: '/v1/keys/:key_id', summary: 'Revoke an API key (admin)', tag: 'keys', params: s.keyParams, responses: { 200: { description: 'Revoked', body: r.RevokedKey } }, errors: ['404'] },
  { id: 'mcp', method: 'post', path: '/mcp', summary: 'Model Context Protocol (Streamable HTTP, stateless, JSON answers): memory tools and resources for MCP clients; ?user= and ?namespace= as on the other routes', tag: 'v1', query: s.createThreadBody.pick({ user: true, namespace: true }), body: z.object({ jsonrpc: z.literal('2.0'), method: z.string() }).loose(), responses: { 200: 'A JSON-RPC answer', 202: 'A notification, accepted' }, errors: ['400'] },
  { id: 'legacyState', method: 'get', path: '/state', summary: 'Reference demos: index info, session, memories and recent events of the current thread', tag: 'reference', query: s.legacyStateForm, responses: { 200: { description: 'The demos\' state shape', body: r.LegacyState } }, errors: ['400'] },
  { id: 'legacyTurn', method: 'post', path: '/turn', summary: 'Reference demos: a turn, answered once processed (or action=goal)', tag: 'reference', body: s.legacyTurnForm, form: true, responses: { 200: { description: 'The turn result in the demos\' shape', body: r.LegacyTurn }, 202: { description: 'Accepted while shutting down', body: r.LegacyTurnQueued } }, errors: ['400', '429', '503', '504'] },
  { id: 'legacyNewThread', method: 'post', path: '/new_thread', summary: 'Reference demos: start a new current thread', tag: 'reference', body: s.legacyScopeForm, form: true, responses: { 200: { description: 'The new current thread', body: r.CreatedThread } }, errors: ['400'] },
  { id: 'legacyReset', method: 'post', path: '/reset', summary: 'Reference demos: clear a scope\'s memories and seed it again', tag: 'reference', body: s.legacyScopeForm, form: true, responses: { 200: { description: 'How many seed memories were written', body: r.LegacyReset } }, errors: ['400'] },
  { id: 'legacyDropMemory', method: 'post', path: '/drop_memory', summary: 'Reference demos: delete a memory', tag: 'reference', body: s.legacyDropForm, form: true, responses: { 200: { description: 'Whether it was deleted', body: r.LegacyDropped } }, errors: ['400'] },
] as const satisfies readonly Operation[];

export const OPERATIONS: readonly Operation[] = TABLE;
type Row = (typeof TABLE)[number];
/** The reference demos' routes (legacy.ts registers them on its router). */
export type ReferenceOperationId = Extract<Row, { tag: 'reference' }>['id'];
/** Every other route (app.ts registers them). */
export type ApiOperationId = Exclude<Row['id'], ReferenceOperationId>;

const ERRORS: Record<string, string> = {
  400: 'A refused field: error.field names it',
  401: 'No key, or an unknown, revoked or expired one',
  403: 'The key\'s role or scope does not allow this',
  404: 'Not found (or not visible to this key)',
  429: 'Too many requests or a full backlog: retry after Retry-After seconds',
  503: 'Redis unavailable, search incomplete or not durable: retry after Retry-After seconds',
  504: 'Not processed in time',
};

const COMPONENTS = '#/components/schemas/';
const ref = (name: string): JsonSchema => ({ $ref: COMPONENTS + name });

function parameters(where: 'path' | 'query', schema: z.ZodObject | undefined): JsonSchema[] {
  if (!schema) return [];
  const shape = inlineSchema(schema, 'input') as { properties?: Record<string, JsonSchema>; required?: string[] };
  return Object.entries(shape.properties ?? {}).map(([name, field]) => ({ name, in: where, required: where === 'path' || (shape.required ?? []).includes(name), schema: field }));
}

/** `/v1/threads/:thread_id` → `/v1/threads/{thread_id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

function operation(op: Operation): JsonSchema {
  const content = (answer: string | Answer): JsonSchema => {
    if (op.sse) return { 'text/event-stream': { schema: { type: 'string', description: 'Server-Sent Events: each event\'s data is one EventRecord as JSON.' }, 'x-event-data': ref('EventRecord') } };
    if (op.text) return { 'text/plain': { schema: { type: 'string' } } };
    return { 'application/json': { schema: typeof answer === 'string' ? anyObject : schemaOrRef(answer.body, 'output', COMPONENTS) } };
  };
  const responses: Record<string, JsonSchema> = Object.fromEntries(
    Object.entries(op.responses).map(([status, answer]) => [status, { description: typeof answer === 'string' ? answer : answer.description, content: content(answer) }]),
  );
  const errorStatuses = [...(op.errors ?? []), ...(op.open ? [] : ['401', '403', '429', '503'])];
  for (const status of errorStatuses) {
    responses[status] ??= { description: ERRORS[status], content: { 'application/json': { schema: ref('ErrorBody') } } };
  }
  const body = op.body ? schemaOrRef(op.body, 'input', COMPONENTS) : undefined;
  return {
    summary: op.summary,
    tags: [op.tag],
    operationId: op.id,
    ...(op.open ? { security: [] } : {}),
    parameters: [
      ...parameters('path', op.params),
      ...parameters('query', op.query),
      ...(op.headers ?? []).map((h) => ({ name: h.name, in: 'header', required: false, description: h.description, schema: h.schema ? inlineSchema(h.schema, 'input') : { type: 'string' } })),
    ],
    ...(body
      ? { requestBody: { required: !op.form, content: op.form ? { 'application/x-www-form-urlencoded': { schema: body }, 'application/json': { schema: body } } : { 'application/json': { schema: body } } } }
      : {}),
    responses,
  };
}

/** The OpenAPI 3.1 document of every route, built from the schemas the routes validate with. */
export function openApiDocument(version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) (paths[openApiPath(op.path)] ??= {})[op.method] = operation(op);
  return {
    openapi: '3.1.0',
    info: {
      title: 'agentmem',
      version,
      description: 'Redis-backed memory for AI agents. With AGENTMEM_AUTH=keys every route but the open ones takes `Authorization: Bearer <key>`.',
    },
    security: [{ bearer: [] }],
    tags: [{ name: 'v1' }, { name: 'events' }, { name: 'keys' }, { name: 'operations' }, { name: 'reference' }],
    paths,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'An API key, agentmem_<id>_<secret>' } },
      schemas: componentSchemas(COMPONENTS),
    },
  };
}
