import { RedisUnavailableError } from '../errors.js';

/** Seconds a client is told to wait (Retry-After) while Redis is unavailable: reconnects are attempted every second at most. */
export const REDIS_RETRY_AFTER_SECONDS = 1;

/** Error replies that mean "not now" rather than "never": the same command can succeed once Redis recovers. */
const TRANSIENT_REPLIES = ['LOADING', 'BUSY', 'MASTERDOWN', 'TRYAGAIN', 'CLUSTERDOWN', 'READONLY', 'MISCONF', 'NOREPLICAS', 'OOM'];
/** Socket errors of a connection that is down or cannot be made. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** What ioredis rejects a command with when the connection is closed, the command timed out or could not be queued. */
const CLIENT_MESSAGES = ['Connection is closed.', 'Command timed out', "Stream isn't writeable", 'Socket timeout'];

/**
 * The one place that tells "Redis is unavailable" from every other failure: connection errors,
 * ioredis giving up on a command (MaxRetriesPerRequestError, command timeout, closed
 * connection), and Redis replies that say to retry later. Returns the error as a
 * RedisUnavailableError (cause kept), or undefined when it is something else.
 */
export function asRedisUnavailable(err: unknown): RedisUnavailableError | undefined {
  if (err instanceof RedisUnavailableError) return err;
  if (!(err instanceof Error)) return undefined;
  const code = (err as { code?: unknown }).code;
  const transient =
    err.name === 'MaxRetriesPerRequestError' ||
    (typeof code === 'string' && SOCKET_CODES.has(code)) ||
    CLIENT_MESSAGES.some((m) => err.message.startsWith(m)) ||
    (err.name === 'ReplyError' && TRANSIENT_REPLIES.some((r) => err.message.startsWith(`${r} `) || err.message === r));
  return transient ? new RedisUnavailableError(`Redis is unavailable: ${err.message}`, REDIS_RETRY_AFTER_SECONDS, { cause: err }) : undefined;
}

/** `work`, or a RedisUnavailableError once `ms` have passed without an answer (the work itself is not cancelled). */
export async function withinMs<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RedisUnavailableError(`${what}: no answer from Redis within ${ms} ms`, REDIS_RETRY_AFTER_SECONDS)), ms);
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
