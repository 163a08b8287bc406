/** Bad input from a caller. `field` names what was wrong so an API can answer 4xx with it. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/** The Redis we were pointed at cannot run agentmem (a module is missing or too old). */
export class RedisCapabilityError extends Error {
  override readonly name = 'RedisCapabilityError';
  constructor(
    readonly url: string,
    readonly missing: readonly string[],
  ) {
    super(
      `Redis at ${url} lacks ${missing.join(' and ')}; agentmem needs Redis 8, or Redis Stack 7.2+ ` +
        `with the Search (vector HNSW) and JSON modules. Unset REDIS_URL to use the embedded server, ` +
        `or start the one in docker-compose.yml.`,
    );
  }
}

/** Redis did not answer at `url` (redacted): refused, unknown host, timed out, closed. */
export class RedisUnreachableError extends Error {
  override readonly name = 'RedisUnreachableError';
  constructor(
    readonly url: string,
    cause: unknown,
  ) {
    super(`cannot reach Redis at ${url}: ${describeConnectionError(cause)}`, { cause });
  }
}

/** `ECONNREFUSED`, `ENOTFOUND redis.example`, or the message: what a connection failure was, briefly. */
function describeConnectionError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const { code, hostname } = err as Error & { code?: unknown; hostname?: unknown };
  if (typeof code === 'string') return typeof hostname === 'string' ? `${code} ${hostname}` : code;
  return err.message;
}

/** Something the project provisions (Redis binaries, model weights) could not be had or verified. */
export class ProvisionError extends Error {
  override readonly name = 'ProvisionError';
}

/** A Lua script refused the operation; `code` is the script's negative return code. */
export class ScriptError extends Error {
  override readonly name = 'ScriptError';
  constructor(
    readonly script: string,
    readonly code: number,
    message: string,
  ) {
    super(`${script}: ${message}`);
  }
}

/** The ingest backlog is over its bound; the caller should retry after `retryAfterSeconds`. */
export class BacklogFullError extends Error {
  override readonly name = 'BacklogFullError';
  constructor(readonly retryAfterSeconds: number) {
    super(`the ingest backlog is full; retry in ${retryAfterSeconds} s`);
  }
}

/**
 * Redis cannot serve the request now (down, restarting, loading, busy, failing over, or slower
 * than the command timeout): an HTTP client gets 503 with Retry-After. `cause` is the error
 * ioredis or Redis gave.
 */
export class RedisUnavailableError extends Error {
  override readonly name = 'RedisUnavailableError';
  constructor(
    message: string,
    readonly retryAfterSeconds: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * The durability setting cannot be honoured: the Redis persistence settings can lose
 * acknowledged writes (at start, with AGENTMEM_DURABILITY=require), or a turn could not be
 * confirmed on disk before its answer.
 */
export class DurabilityError extends Error {
  override readonly name = 'DurabilityError';
}

/**
 * A thread the caller may not see: it belongs to another user. Answered exactly as a thread that
 * does not exist (404, the same message), so that the answer does not confirm it exists.
 */
export class ThreadNotVisible extends Error {
  override readonly name = 'ThreadNotVisible';
  readonly status = 404;
  constructor(readonly threadId: string) {
    super(`thread ${threadId} not found`);
  }
}

/**
 * A vector search came back incomplete (it hit its timeout, or the server warned of partial
 * results) with every strategy tried. Retryable: the caller should try again after
 * `retryAfterSeconds`; an empty answer would have claimed "no memories".
 */
export class SearchIncompleteError extends Error {
  override readonly name = 'SearchIncompleteError';
  readonly retryAfterSeconds = 1;
  constructor(readonly warnings: readonly string[]) {
    super(`vector search incomplete: ${warnings.join('; ')}`);
  }
}
