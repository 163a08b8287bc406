/**
 * What the client throws. Every error is an AgentmemError: `status` is the HTTP status (null
 * when no answer came), `field` the input the server named as wrong (null when none), and
 * `retryable` whether the same request may succeed later (429, 503, a lost connection).
 */
export class AgentmemError extends Error {
  override readonly name: string = 'AgentmemError';
  constructor(
    message: string,
    readonly status: number | null,
    readonly field: string | null,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The server answered with an error status; `message` and `field` are the server's own. */
export class AgentmemApiError extends AgentmemError {
  override readonly name: string = 'AgentmemApiError';
  constructor(
    status: number,
    field: string | null,
    message: string,
    /** The server's Retry-After, in seconds, when it sent one. */
    readonly retryAfterSeconds: number | null,
  ) {
    super(message, status, field, status === 429 || status === 503, {});
  }
}

/** No answer: the connection was refused, reset or dropped before a response arrived. */
export class AgentmemNetworkError extends AgentmemError {
  override readonly name: string = 'AgentmemNetworkError';
  constructor(message: string, cause: unknown) {
    super(message, null, null, true, { cause });
  }
}

/** The server ended an event stream with `event: stream_error` (it cannot read that stream). */
export class AgentmemStreamError extends AgentmemError {
  override readonly name: string = 'AgentmemStreamError';
  constructor(message: string) {
    super(message, null, null, false);
  }
}

/** A wait (waitForTurn) reached its deadline; the turn may still finish later. */
export class AgentmemTimeoutError extends AgentmemError {
  override readonly name: string = 'AgentmemTimeoutError';
  constructor(message: string) {
    super(message, null, null, true);
  }
}
