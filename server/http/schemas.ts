import { z } from 'zod';
import { boundList, ROLES } from '../../src/auth/principal.js';
import { parseDuration } from '../../src/auth/key-store.js';
import { ValidationError } from '../../src/errors.js';
import { REMEMBER_MODES } from '../../src/pipeline/ingest.js';
import * as v from '../../src/validate.js';

/**
 * The HTTP API's requests as zod schemas: the routes validate through them (parse below) and the
 * OpenAPI document (openapi.ts) is generated from them, so the two cannot drift. Each field is a
 * JSON-Schema-expressible shape built from the constants in src/validate.ts plus, as a refinement,
 * the rule in src/validate.ts itself: that rule stays the one place a field's check and its message
 * live (a refused field is answered with the rule's own ValidationError, as before the schemas).
 */

type Rule = (value: unknown, field: string) => unknown;
const rules = new WeakMap<z.ZodType, Rule>();

function ruled<T extends z.ZodType>(shape: T, rule: Rule): T {
  const schema = shape.superRefine((value, ctx) => {
    try {
      rule(value, 'value');
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message });
    }
  });
  rules.set(schema, rule);
  return schema;
}

const scope = (field: 'user' | 'namespace' | 'agent') =>
  ruled(z.string().min(1).max(v.MAX_SCOPE_LENGTH).meta({ description: `${field === 'agent' ? 'An' : 'A'} ${field}: no comma, no control characters, no surrounding whitespace; matched case-insensitively.` }), (x) => v.scopeValue(x, field));
const threadId = () => ruled(z.string().regex(v.CLIENT_THREAD_ID), v.threadId);
const generatedId = () => ruled(z.string().regex(v.GENERATED_ID), v.memoryId);
const text = () => ruled(z.string().min(1).max(v.MAX_TEXT_LENGTH), v.memoryText);
const optionalText = () => ruled(z.string().max(v.MAX_TEXT_LENGTH), v.optionalText);
const k = () => ruled(z.int().min(1).max(100).meta({ description: 'How many memories to recall.' }), (x, f) => v.positiveInt(x, f, 100));
const threshold = () => ruled(z.number().min(0).max(2).meta({ description: 'Cosine distance: smaller is closer.' }), v.distanceThreshold);
const queryInt = (max: number, description: string) => ruled(z.string().regex(/^\d+$/).meta({ description: `${description} An integer in [0, ${max}].` }), (x, f) => v.queryInt(x, f, max));
const streamId = () =>
  ruled(z.string().meta({ description: 'A stream entry id <ms>-<seq> or <ms>; 0 replays the whole capped log.' }), v.streamId);

function rememberMode(value: unknown, field: string): void {
  if (!(REMEMBER_MODES as readonly unknown[]).includes(value)) throw new ValidationError(field, `must be one of ${REMEMBER_MODES.join(', ')}`);
}

export const threadParams = z.object({ thread_id: threadId() });
export const turnParams = z.object({ turn_id: generatedId() });
export const memoryParams = z.object({ memory_id: generatedId() });
export const keyParams = z.object({ key_id: z.string() });

export const createThreadBody = z.object({ user: scope('user').optional(), namespace: scope('namespace').optional(), agent: scope('agent').optional() })
  .meta({ description: 'user and namespace default to `default` (or to the key\'s only user or namespace).' });

export const turnBody = z.object({
  content: ruled(z.string().min(1).max(v.MAX_TEXT_LENGTH), v.memoryText),
  role: ruled(z.enum(v.TURN_ROLES), v.role).optional(),
  remember: ruled(z.enum(REMEMBER_MODES), rememberMode).optional(),
  user: scope('user').optional(),
  namespace: scope('namespace').optional(),
  agent: scope('agent').optional(),
  k: k().optional(),
  threshold: threshold().optional(),
});
export const turnQuery = z.object({ wait: queryInt(30_000, 'Milliseconds to wait for the turn to finish before answering 202.').optional() });

export const updateThreadBody = z
  .object({ goal: optionalText().optional(), scratchpad: optionalText().optional() })
  .superRefine((b, ctx) => {
    if (b.goal === undefined && b.scratchpad === undefined) ctx.addIssue({ code: 'custom', message: 'give goal, scratchpad or both' });
  });

export const eventsQuery = z.object({ since: streamId().optional() });
/** The SSE resume header (EventSource sends it on reconnect); the same rule as ?since. */
export const eventsHeaders = z.object({ 'Last-Event-ID': streamId().optional() });

export const memoriesQuery = z.object({ user: scope('user').optional(), namespace: scope('namespace').optional(), limit: queryInt(10_000, 'At most this many memories (default 200).').optional() });

export const recallBody = z.object({ text: text(), user: scope('user').optional(), namespace: scope('namespace').optional(), k: k().optional(), threshold: threshold().optional() });

export const deadletterQuery = z.object({ count: queryInt(1000, 'At most this many entries, newest first (default 100).').optional() });

const boundListOf = (field: 'users' | 'namespaces', more = '') => ruled(z.array(z.string()).min(1).max(100).meta({ description: `Scope values, or ["*"] alone for every one.${more}` }), (x) => boundList(x, field));
export const newKeyBody = z.object({
  users: boundListOf('users'),
  namespaces: boundListOf('namespaces', ' Default ["*"].').optional(),
  role: ruled(z.enum(ROLES).meta({ description: 'Default admin for users ["*"], else write.' }), (x, f) => {
    if (!(ROLES as readonly unknown[]).includes(x)) throw new ValidationError(f, `must be one of ${ROLES.join(', ')}`);
  }).optional(),
  expires: ruled(z.string().meta({ description: 'A duration like 45s, 90m, 12h, 30d or 2w.' }), parseDuration).optional(),
  name: z.string().max(128).optional(),
});

/** The reference demos' form fields (given in the query string or an x-www-form-urlencoded body; empty means absent). */
const form = {
  thread_id: threadId().optional(),
  user: scope('user').optional(),
  namespace: scope('namespace').optional(),
};
export const legacyStateForm = z.object(form);
export const legacyTurnForm = z.object({
  ...form,
  action: z.string().meta({ description: '`goal` sets the thread\'s goal to text; anything else (default) is a turn.' }).optional(),
  text: optionalText().meta({ description: 'The turn\'s content (not blank), or the goal (may be empty).' }).optional(),
  role: ruled(z.enum(v.TURN_ROLES), v.role).optional(),
  // The demos call it kind; the turn's field (and the answer naming it) is remember.
  kind: ruled(z.enum(REMEMBER_MODES), (x) => rememberMode(x, 'remember')).optional(),
  threshold: ruled(z.string().meta({ description: 'A number, clamped to [0, 2].' }), (x, f) => {
    if (!Number.isFinite(Number(x))) throw new ValidationError(f, 'must be a number');
  }).optional(),
});
export const legacyScopeForm = z.object({ user: form.user, namespace: form.namespace });
export const legacyDropForm = z.object({ memory_id: generatedId() });

function unwrap(schema: z.ZodType | undefined): z.ZodType | undefined {
  return schema instanceof z.ZodOptional ? unwrap(schema.unwrap() as z.ZodType) : schema;
}

/**
 * Checks `value` (a body, query or params object) against `schema`. The first refused field is a
 * ValidationError naming it, with its rule's message; a value that is not an object at all is
 * refused as `whole`.
 */
export function parse<S extends z.ZodType>(schema: S, value: unknown, whole: { field: string; message: string } = { field: 'body', message: 'must be a JSON object (Content-Type: application/json)' }): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0] as z.core.$ZodIssue;
  const name = issue.path[0];
  if (name === undefined) {
    throw issue.code === 'invalid_type' ? new ValidationError(whole.field, whole.message) : new ValidationError(whole.field, issue.message);
  }
  const field = String(name);
  const shape = schema instanceof z.ZodObject ? (schema.shape as Record<string, z.ZodType>) : {};
  const rule = rules.get(unwrap(shape[field]) as z.ZodType);
  // The field's own rule gives the answer (and its exact message); the shape alone only when it has none.
  rule?.((value as Record<string, unknown>)[field], field);
  throw new ValidationError(field, issue.message);
}
