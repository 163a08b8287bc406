import { z } from 'zod';
import { IDEMPOTENCY_KEY } from '../../src/pipeline/ingest.js';
import { MEMORY_KINDS } from '../../src/validate.js';
import * as r from '../http/responses.js';
import * as s from '../http/schemas.js';

/**
 * The tools' arguments and results. Every field the REST API also takes is the REST schema's own
 * field (same JSON Schema, same rule, same message when refused); the few fields only tools take
 * carry their message in the schema. Descriptions live beside the tools (tools.ts): a described
 * copy of a REST field would be a new schema without its rule.
 */

const ruleMessage = (message: string) => ({ error: message });
function boundedInt(min: number, max: number) {
  const message = `must be an integer in [${min}, ${max}]`;
  return z.int(ruleMessage(message)).min(min, ruleMessage(message)).max(max, ruleMessage(message));
}

export const field = {
  text: s.recallBody.shape.text,
  k: s.recallBody.shape.k,
  threshold: s.recallBody.shape.threshold,
  content: s.turnBody.shape.content,
  role: s.turnBody.shape.role,
  remember: s.turnBody.shape.remember,
  agent: s.createThreadBody.shape.agent,
  threadId: s.threadParams.shape.thread_id,
  memoryId: s.memoryParams.shape.memory_id,
  goal: s.updateThreadBody.shape.goal.unwrap(),
  scratchpad: s.updateThreadBody.shape.scratchpad.unwrap(),
  kind: z.enum(MEMORY_KINDS, ruleMessage(`must be one of ${MEMORY_KINDS.join(', ')}`)),
  /** 10 years, as AGENTMEM_EPISODIC_TTL_SECONDS allows. */
  ttlSeconds: boundedInt(0, 315_360_000),
  limit: boundedInt(1, 10_000),
  turns: boundedInt(0, 1000),
  /** The REST API's Idempotency-Key header, as an argument. */
  idempotencyKey: z.string(ruleMessage('must be 1-255 printable ASCII characters')).regex(IDEMPOTENCY_KEY, ruleMessage('must be 1-255 printable ASCII characters')),
};

/** Results share the REST API's answer schemas (server/http/responses.ts), which a test holds to the server's real answers. */
export const memoryRecord = r.MemoryRecord;
export const recalledMemory = r.MemoryRecord.required({ distance: true });
export const threadState = r.SessionState;

/** The text (JSON) of every failed call: `field` names the refused argument; `retryable` says whether the same call can succeed later. */
export interface ToolErrorBody {
  error: { field?: string; message: string; retryable: boolean; retry_after_seconds?: number };
}
