import { Validator } from '@seriousme/openapi-schema-validator';
import express, { type Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/log.js';
import { Metrics } from '../src/metrics.js';
import { CLIENT_THREAD_ID, MAX_TEXT_LENGTH } from '../src/validate.js';
import { createApp } from '../server/http/app.js';
import type { ApiDeps } from '../server/http/deps.js';
import { openApiPath } from '../server/http/openapi.js';
import { operationRoutes } from '../server/http/route.js';
import { startTestService, type TestService } from './support/service.js';

interface Layer {
  route?: { path: string; methods: Record<string, boolean> };
  handle: Partial<Router>;
}

/** Every `METHOD /path` the express app answers, the mounted reference router's included. */
function registeredRoutes(stack: Layer[]): string[] {
  return stack.flatMap((layer) => {
    if (layer.route) {
      const { path, methods } = layer.route;
      return Object.keys(methods).filter((m) => methods[m] && m !== '_all').map((m) => `${m.toUpperCase()} ${openApiPath(path)}`);
    }
    return Array.isArray(layer.handle.stack) ? registeredRoutes(layer.handle.stack as Layer[]) : [];
  });
}

type ObjectSchema = { $ref?: string; properties: Record<string, Record<string, unknown>>; required?: string[] };
type Doc = {
  openapi: string;
  paths: Record<string, Record<string, { parameters: { name: string; in: string; schema: Record<string, unknown> }[]; requestBody?: { content: Record<string, { schema: ObjectSchema }> }; responses: Record<string, { content?: Record<string, { schema?: ObjectSchema }> }> }>>;
  components: { schemas: Record<string, ObjectSchema> };
};

/** A schema, or the component its `$ref` names. */
function resolve(schema: ObjectSchema | undefined): ObjectSchema | undefined {
  const name = schema?.$ref?.replace('#/components/schemas/', '');
  return name === undefined ? schema : doc.components.schemas[name];
}

let s: TestService;
let doc: Doc;
beforeAll(async () => {
  s = await startTestService({ auth: 'keys' }, { workers: false });
  const res = await s.get('/openapi.json');
  expect(res.status).toBe(200);
  doc = (await res.json()) as Doc;
});
afterAll(async () => {
  await s.stop();
});

describe('GET /openapi.json', () => {
  it('is served without a key while the API itself asks for one, and is a valid OpenAPI 3.1 document', async () => {
    expect((await s.get('/v1/whoami')).status).toBe(401);
    expect(doc.openapi).toBe('3.1.0');
    const result = await new Validator().validate(doc);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('documents every route the app registers, and nothing it does not', () => {
    // Built only to read its routes: it never serves a request, so what only requests use is left out.
    const unused = {} as Pick<ApiDeps, 'embedder' | 'waiter' | 'fanout' | 'durability'>;
    const app = createApp({ ...s, ...unused, config: s.config, log: silentLogger, metrics: new Metrics() });
    const registered = registeredRoutes((app as unknown as { router: { stack: Layer[] } }).router.stack).sort();
    const documented = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect(registered.length).toBeGreaterThan(20);
    expect(documented).toEqual(registered);
  });

  it('describes the requests from the schemas the routes validate with, the event streams as text/event-stream', () => {
    const turns = doc.paths['/v1/threads/{thread_id}/turns']?.post;
    expect(turns?.parameters.find((p) => p.name === 'thread_id')).toMatchObject({ in: 'path', schema: { type: 'string', pattern: CLIENT_THREAD_ID.source } });
    const body = resolve(turns?.requestBody?.content['application/json']?.schema);
    expect(body?.required).toEqual(['content']);
    expect(body?.properties.content).toMatchObject({ type: 'string', maxLength: MAX_TEXT_LENGTH });
    expect(Object.keys(turns?.responses ?? {})).toEqual(expect.arrayContaining(['200', '202', '400', '401', '429', '503']));
    expect(doc.paths['/v1/threads/{thread_id}/events']?.get?.responses['200']?.content).toHaveProperty('text/event-stream');
    expect(doc.paths['/v1/memories/events']?.get?.responses['200']?.content).toHaveProperty('text/event-stream');
  });

  it('names the answers\' schemas under components, with the fields the server sends', () => {
    const answer = (path: string, method: string, status: string) => doc.paths[path]?.[method]?.responses[status]?.content?.['application/json']?.schema;
    expect(answer('/v1/threads/{thread_id}/turns', 'post', '202')).toEqual({ $ref: '#/components/schemas/TurnAccepted' });
    expect(answer('/v1/turns/{turn_id}', 'get', '200')).toEqual({ $ref: '#/components/schemas/TurnResult' });
    expect(answer('/v1/turns/{turn_id}', 'get', '404')).toEqual({ $ref: '#/components/schemas/ErrorBody' });
    expect(resolve(answer('/v1/turns/{turn_id}', 'get', '200'))?.required).toEqual(['turn_id', 'thread_id', 'status', 'turn_count', 'recall', 'memory', 'timings']);
    expect(doc.components.schemas.TurnResult?.properties.recall).toEqual({ anyOf: [{ type: 'array', items: { $ref: '#/components/schemas/MemoryRecord' } }, { type: 'null' }], description: 'Null until recall is ready.' });
    // Every JSON success answer but the document itself has a schema.
    const untyped = Object.entries(doc.paths).flatMap(([path, ops]) => Object.entries(ops).flatMap(([method, op]) =>
      Object.entries(op.responses).filter(([, r]) => r.content?.['application/json']?.schema?.$ref === undefined && r.content?.['application/json'] !== undefined).map(([status]) => `${method} ${path} ${status}`)));
    expect(untyped).toEqual(['get /openapi.json 200', 'post /mcp 200', 'post /mcp 202']);
  });
});

describe('routes registered from the OPERATIONS table', () => {
  it('register each row once, at its method and path, and refuse a row left without a handler', () => {
    const router = express.Router();
    const routes = operationRoutes(router, 'reference');
    const handler = async (): Promise<void> => undefined;
    routes.legacyState(handler);
    expect(() => routes.legacyState(handler)).toThrow('operation legacyState was given a second handler');
    expect(() => routes.done()).toThrow('operations without a handler: legacyTurn, legacyNewThread, legacyReset, legacyDropMemory');
    expect(registeredRoutes(router.stack as unknown as Layer[])).toEqual(['GET /state']);
  });
});
