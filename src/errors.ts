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
