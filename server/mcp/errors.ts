import { Forbidden } from '../../src/auth/principal.js';
import { BacklogFullError, DurabilityError, SearchIncompleteError, ThreadNotVisible, ValidationError } from '../../src/errors.js';
import type { Logger } from '../../src/log.js';
import type { Metrics } from '../../src/metrics.js';
import { asRedisUnavailable, REDIS_RETRY_AFTER_SECONDS } from '../../src/redis/unavailable.js';
import { NotFound } from '../http/not-found.js';
import type { ToolErrorBody } from './schemas.js';

/**
 * A failed tool call as the caller gets it, in the categories of the REST API's error handler: a
 * refused argument (400 there) names its field; not found and forbidden say so; Redis unavailable,
 * a full backlog, an incomplete search or an unconfirmed write are retryable (503/429 there). Anything
 * else is logged and answered "internal error", as a 500 is.
 */
export function toolError(err: unknown, tool: string, log: Logger, metrics?: Metrics): ToolErrorBody {
  if (err instanceof ValidationError || err instanceof Forbidden) return { error: { field: err.field, message: err.message, retryable: false } };
  if (err instanceof NotFound || err instanceof ThreadNotVisible) return { error: { message: err.message, retryable: false } };
  if (err instanceof BacklogFullError || err instanceof SearchIncompleteError) {
    log.warn('mcp.tool_retryable', { tool, error: err });
    return { error: { message: err.message, retryable: true, retry_after_seconds: err.retryAfterSeconds } };
  }
  if (err instanceof DurabilityError) {
    log.warn('mcp.not_durable', { tool, error: err });
    return { error: { message: err.message, retryable: true, retry_after_seconds: REDIS_RETRY_AFTER_SECONDS } };
  }
  const unavailable = asRedisUnavailable(err);
  if (unavailable) {
    log.warn('mcp.redis_unavailable', { tool, error: unavailable });
    metrics?.errors.inc({ kind: 'redis_unavailable' });
    return { error: { message: unavailable.message, retryable: true, retry_after_seconds: unavailable.retryAfterSeconds } };
  }
  log.error('mcp.tool_failed', { tool, error: err });
  metrics?.errors.inc({ kind: 'mcp' });
  return { error: { message: 'internal error', retryable: false } };
}
