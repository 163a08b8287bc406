import { z } from 'zod';
import * as r from './responses.js';
import * as s from './schemas.js';

export type JsonSchema = Record<string, unknown>;

/**
 * The named schemas of the HTTP API: the JSON request bodies (as a client sends them) and every
 * answer in responses.ts (as the server sends it, under its export name). The OpenAPI document
 * lists them under components.schemas and the client's generated types (client-types.ts) carry
 * the same names.
 */
const REQUESTS: Readonly<Record<string, z.ZodType>> = {
  CreateKeyRequest: s.newKeyBody,
  CreateThreadRequest: s.createThreadBody,
  RecallRequest: s.recallBody,
  TurnRequest: s.turnBody,
  UpdateThreadRequest: s.updateThreadBody,
};
// responses.ts exports schemas only: each under its name.
const RESPONSES: Readonly<Record<string, z.ZodType>> = { ...r };

const names = new Map<z.ZodType, string>([...Object.entries(REQUESTS), ...Object.entries(RESPONSES)].map(([name, schema]) => [schema, name]));

function componentName(schema: z.ZodType): string | undefined {
  return names.get(schema);
}

function generate(schemas: Readonly<Record<string, z.ZodType>>, io: 'input' | 'output', refBase: string): Record<string, JsonSchema> {
  const registry = z.registry<{ id: string }>();
  for (const [id, schema] of Object.entries(schemas)) registry.add(schema, { id });
  // Refinements (the field rules) have no JSON Schema: the shapes they refine say what is sent.
  const generated = z.toJSONSchema(registry, { io, unrepresentable: 'any', uri: (id) => refBase + id }).schemas as Record<string, JsonSchema>;
  for (const schema of Object.values(generated)) {
    // Each sits inside a document whose dialect is already 2020-12, found by its $ref.
    delete schema.$schema;
    delete schema.$id;
  }
  return generated;
}

/** Every named schema as JSON Schema 2020-12, by name (sorted); `$ref`s between them start with refBase. */
export function componentSchemas(refBase: string): Record<string, JsonSchema> {
  const all = { ...generate(REQUESTS, 'input', refBase), ...generate(RESPONSES, 'output', refBase) };
  return Object.fromEntries(Object.keys(all).sort().map((name) => [name, all[name] as JsonSchema]));
}

/** A schema as the document uses it: a `$ref` to its component when it has a name, else inline. */
export function schemaOrRef(schema: z.ZodType, io: 'input' | 'output', refBase: string): JsonSchema {
  const name = componentName(schema);
  return name !== undefined ? { $ref: refBase + name } : inlineSchema(schema, io);
}

/** A schema as JSON Schema 2020-12 on its own, inside a document of that dialect. */
export function inlineSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const generated = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  delete generated.$schema;
  return generated;
}
