import { AgentmemApiError, AgentmemError, AgentmemNetworkError, AgentmemStreamError, AgentmemTimeoutError } from './errors.js';
import { SseParser } from './sse.js';
import type {
  CreatedKey, CreatedThread, CreateKeyRequest, CreateThreadRequest, DeadLetterList, DeletedMemory, ErrorBody, EventRecord,
  KeyList, ListMemoriesQuery, MemoryList, RecallRequest, RecallResponse, RevokedKey, SessionState, TurnAccepted, TurnRequest, TurnResult,
  UpdateThreadRequest, WhoAmI,
} from './types.js';

/** How postTurn retries a turn the server could not take yet (429, 503) or never answered. */
export interface RetryOptions {
  /** Attempts in all, the first included (default 5; 1 = never retry). */
  attempts?: number;
  /** No retry starts later than this after the first attempt (default 30 000 ms). */
  maxElapsedMs?: number;
  /** Backoff when the server gave no Retry-After: doubles from this (default 250 ms)... */
  minDelayMs?: number;
  /** ...up to this (default 5 000 ms). A Retry-After is honoured as given. */
  maxDelayMs?: number;
}

/** How an event stream reconnects after its connection drops or cannot be made. */
export interface ReconnectOptions {
  /** Consecutive failed connection attempts before the iterator throws (default 10). */
  attempts?: number;
  minDelayMs?: number;
  maxDelayMs?: number;
}

export interface RetryInfo {
  /** The attempt that failed (1 = the first). */
  attempt: number;
  /** How long the client waits before the next one. */
  delayMs: number;
  error: AgentmemError;
}

export interface ClientOptions {
  /** The server's origin, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** An API key (`am_...`), sent as `Authorization: Bearer` on every request, event streams included. */
  apiKey?: string;
  retry?: RetryOptions;
  reconnect?: ReconnectOptions;
  /** Called before each retry or reconnect wait (logging, metrics). */
  onRetry?: (info: RetryInfo) => void;
  /** A fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
}

export interface PostTurnOptions extends CallOptions {
  /** Wait up to this long (ms, at most 30 000) for the turn to be processed before answering. */
  waitMs?: number;
  /** The Idempotency-Key; by default a random one, reused across this call's retries. */
  idempotencyKey?: string;
}

/** What postTurn returns: the accepted turn, and its result when `waitMs` saw it finish. */
export interface PostedTurn {
  turn_id: string;
  thread_id: string;
  /** True when the Idempotency-Key matched an earlier turn: nothing new was queued. */
  replayed: boolean;
  idempotency_key: string;
  /** The processed turn (status done or failed) when the wait saw it finish, else null. */
  result: TurnResult | null;
}

export interface WaitOptions extends CallOptions {
  /** Give up (AgentmemTimeoutError) after this long (default 30 000 ms). */
  timeoutMs?: number;
}

export interface StreamOptions extends CallOptions {
  /**
   * Start after this event id (`0` = the whole retained log). Without it the stream starts with
   * events newer than the connection.
   */
  since?: string;
}

interface Request extends CallOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  headers?: Record<string, string>;
}

const DEFAULT_RETRY: Required<RetryOptions> = { attempts: 5, maxElapsedMs: 30_000, minDelayMs: 250, maxDelayMs: 5_000 };
const DEFAULT_RECONNECT: Required<ReconnectOptions> = { attempts: 10, minDelayMs: 250, maxDelayMs: 5_000 };
const POLL_MIN_MS = 50;
const POLL_MAX_MS = 1_000;

/**
 * A client of the agentmem HTTP API (`/v1`). It depends on nothing but `fetch`, streams and
 * `crypto.getRandomValues`, so it runs on Node 20+ and in browsers. Each method returns the
 * server's JSON as typed in ./types.ts and throws an AgentmemError for anything else.
 */
export class AgentmemClient {
  private readonly baseUrl: string;
  private readonly retry: Required<RetryOptions>;
  private readonly reconnect: Required<ReconnectOptions>;
  private readonly fetchImpl: typeof fetch;

  constructor(private readonly options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.reconnect = { ...DEFAULT_RECONNECT, ...options.reconnect };
    // Called unbound, a browser's fetch throws "Illegal invocation".
    this.fetchImpl = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  /** POST /v1/threads: a new thread (working memory) for a user. */
  createThread(body: CreateThreadRequest = {}, options: CallOptions = {}): Promise<CreatedThread> {
    return this.json('POST', '/v1/threads', { ...options, body });
  }

  /** GET /v1/threads/:id: the thread's working memory. */
  getThread(threadId: string, options: CallOptions = {}): Promise<SessionState> {
    return this.json('GET', `/v1/threads/${enc(threadId)}`, options);
  }

  /** PUT /v1/threads/:id: sets the goal, the scratchpad or both; returns the thread as it is then. */
  updateThread(threadId: string, body: UpdateThreadRequest, options: CallOptions = {}): Promise<SessionState> {
    return this.json('PUT', `/v1/threads/${enc(threadId)}`, { ...options, body });
  }

  /**
   * POST /v1/threads/:id/turns. Sends an Idempotency-Key (random unless given) and retries a
   * 429, a 503 or a lost connection with that same key, waiting as Retry-After says (else
   * backing off), within `retry`: the turn is queued once however often it is sent.
   */
  async postTurn(threadId: string, turn: TurnRequest, options: PostTurnOptions = {}): Promise<PostedTurn> {
    const idempotencyKey = options.idempotencyKey ?? randomKey();
    const { attempts, maxElapsedMs } = this.retry;
    const started = Date.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await this.send('POST', `/v1/threads/${enc(threadId)}/turns`, {
          body: turn,
          query: { wait: options.waitMs },
          headers: { 'Idempotency-Key': idempotencyKey },
          ...(options.signal ? { signal: options.signal } : {}),
        });
        const replayed = response.headers.get('Idempotent-Replayed') === 'true';
        if (response.status === 200) {
          const result = (await response.json()) as TurnResult;
          return { turn_id: result.turn_id, thread_id: result.thread_id, replayed, idempotency_key: idempotencyKey, result };
        }
        const accepted = (await response.json()) as TurnAccepted;
        return { turn_id: accepted.turn_id, thread_id: accepted.thread_id, replayed, idempotency_key: idempotencyKey, result: null };
      } catch (err) {
        if (!(err instanceof AgentmemError) || !err.retryable || attempt >= attempts) throw err;
        const delayMs = this.delayAfter(err, attempt, this.retry);
        if (Date.now() - started + delayMs > maxElapsedMs) throw err;
        this.options.onRetry?.({ attempt, delayMs, error: err });
        await sleep(delayMs, options.signal);
      }
    }
  }

  /** GET /v1/turns/:id: a turn's status and, once processed, its recall and memory outcome. */
  getTurn(turnId: string, options: CallOptions = {}): Promise<TurnResult> {
    return this.json('GET', `/v1/turns/${enc(turnId)}`, options);
  }

  /**
   * Resolves once the turn is processed (status `done` or `failed`). Polls GET /v1/turns/:id,
   * from every 50 ms up to every second: one request a second at most, through any proxy, and a
   * restart of the server or Redis in between is only a poll that fails (retryable errors are
   * polled through). Throws AgentmemTimeoutError after `timeoutMs`.
   */
  async waitForTurn(turnId: string, options: WaitOptions = {}): Promise<TurnResult> {
    const deadline = Date.now() + (options.timeoutMs ?? 30_000);
    const call = options.signal ? { signal: options.signal } : {};
    for (let delay = POLL_MIN_MS; ; delay = Math.min(delay * 2, POLL_MAX_MS)) {
      try {
        const turn = await this.getTurn(turnId, call);
        if (turn.status !== 'queued') return turn;
      } catch (err) {
        if (!(err instanceof AgentmemError) || !err.retryable) throw err;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new AgentmemTimeoutError(`turn ${turnId} was not processed within ${options.timeoutMs ?? 30_000} ms`);
      await sleep(Math.min(delay, left), options.signal);
    }
  }

  /** POST /v1/recall: the memories nearest to a text, in the caller's scope. */
  recall(body: RecallRequest, options: CallOptions = {}): Promise<RecallResponse> {
    return this.json('POST', '/v1/recall', { ...options, body });
  }

  /** GET /v1/memories: long-term memories of a scope, newest first. */
  listMemories(query: ListMemoriesQuery = {}, options: CallOptions = {}): Promise<MemoryList> {
    return this.json('GET', '/v1/memories', { ...options, query: { ...query } });
  }

  /** DELETE /v1/memories/:id. A memory outside the key's scope is a 404, as a missing one. */
  deleteMemory(memoryId: string, options: CallOptions = {}): Promise<DeletedMemory> {
    return this.json('DELETE', `/v1/memories/${enc(memoryId)}`, options);
  }

  /** GET /v1/deadletter (admin): the turns the pipeline gave up on, newest first. */
  deadLetter(query: { count?: number } = {}, options: CallOptions = {}): Promise<DeadLetterList> {
    return this.json('GET', '/v1/deadletter', { ...options, query: { ...query } });
  }

  /** GET /v1/whoami: the credential this client uses, its role and scope. */
  whoami(options: CallOptions = {}): Promise<WhoAmI> {
    return this.json('GET', '/v1/whoami', options);
  }

  /** POST /v1/keys (admin): a new API key; its token (`key`) is shown only in this answer. */
  createKey(body: CreateKeyRequest, options: CallOptions = {}): Promise<CreatedKey> {
    return this.json('POST', '/v1/keys', { ...options, body });
  }

  /** GET /v1/keys (admin). */
  listKeys(options: CallOptions = {}): Promise<KeyList> {
    return this.json('GET', '/v1/keys', options);
  }

  /** DELETE /v1/keys/:id (admin). */
  revokeKey(keyId: string, options: CallOptions = {}): Promise<RevokedKey> {
    return this.json('DELETE', `/v1/keys/${enc(keyId)}`, options);
  }

  /**
   * A thread's events (GET /v1/threads/:id/events), in order, as an async iterator. A dropped
   * connection is reopened with Last-Event-ID set to the last event delivered, so no event is
   * missed or repeated. Ends when `signal` aborts or the loop breaks; throws AgentmemStreamError
   * when the server sends `stream_error`, an AgentmemApiError for a refusal (401, 403, 404), and
   * the last error after `reconnect.attempts` consecutive failures to connect.
   */
  events(threadId: string, options: StreamOptions = {}): AsyncGenerator<EventRecord, void, undefined> {
    return this.stream(`/v1/threads/${enc(threadId)}/events`, options);
  }

  /** The memory log (GET /v1/memories/events): writes, dedup bumps, drops, merges; as events(). */
  memoryEvents(options: StreamOptions = {}): AsyncGenerator<EventRecord, void, undefined> {
    return this.stream('/v1/memories/events', options);
  }

  private async *stream(path: string, options: StreamOptions): AsyncGenerator<EventRecord, void, undefined> {
    const { signal } = options;
    let lastId = options.since;
    let failures = 0;
    for (;;) {
      if (signal?.aborted) return;
      // One controller per connection: breaking out of the loop or a parent abort closes it.
      const connection = new AbortController();
      const abort = (): void => connection.abort();
      signal?.addEventListener('abort', abort, { once: true });
      let failure: AgentmemError | undefined;
      try {
        const response = await this.send('GET', path, {
          signal: connection.signal,
          headers: { Accept: 'text/event-stream', ...(lastId === undefined ? {} : { 'Last-Event-ID': lastId }) },
        });
        failures = 0;
        const body = response.body;
        if (!body) throw new AgentmemNetworkError(`GET ${path}: the answer had no body`, undefined);
        const reader = (body as ReadableStream<Uint8Array>).getReader();
        const decoder = new TextDecoder();
        const parser = new SseParser();
        for (;;) {
          const { done, value } = await reader.read();
          if (done) break;
          for (const message of parser.push(decoder.decode(value, { stream: true }))) {
            if (message.event === 'stream_error') throw new AgentmemStreamError(streamErrorMessage(message.data));
            if (message.event !== 'message') continue;
            const event = JSON.parse(message.data) as EventRecord;
            lastId = message.id ?? event.event_id;
            yield event;
          }
          lastId = parser.lastEventId ?? lastId;
        }
      } catch (err) {
        if (signal?.aborted) return;
        if (err instanceof AgentmemError && !err.retryable) throw err;
        failure = err instanceof AgentmemError ? err : new AgentmemNetworkError(`GET ${path}: the event stream dropped`, err);
      } finally {
        signal?.removeEventListener('abort', abort);
        connection.abort();
      }
      // The server ended the stream or it dropped: resume after the last event delivered.
      failure ??= new AgentmemNetworkError(`GET ${path}: the server ended the event stream`, undefined);
      failures++;
      if (failures > this.reconnect.attempts) throw failure;
      const delayMs = this.delayAfter(failure, failures, this.reconnect);
      this.options.onRetry?.({ attempt: failures, delayMs, error: failure });
      try {
        await sleep(delayMs, signal);
      } catch {
        return;
      }
    }
  }

  /** Retry-After when the server gave one; else exponential backoff with jitter (clients spread out). */
  private delayAfter(err: AgentmemError, attempt: number, limits: { minDelayMs: number; maxDelayMs: number }): number {
    if (err instanceof AgentmemApiError && err.retryAfterSeconds !== null) return err.retryAfterSeconds * 1000;
    const ceiling = Math.min(limits.maxDelayMs, limits.minDelayMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  private async json<T>(method: string, path: string, request: Request): Promise<T> {
    return (await (await this.send(method, path, request)).json()) as T;
  }

  /** One request; a non-2xx answer becomes an AgentmemApiError, no answer an AgentmemNetworkError. */
  private async send(method: string, path: string, request: Request): Promise<Response> {
    const url = new URL(this.baseUrl + path);
    for (const [name, value] of Object.entries(request.query ?? {})) if (value !== undefined) url.searchParams.set(name, String(value));
    const headers: Record<string, string> = { ...request.headers };
    if (this.options.apiKey !== undefined) headers.Authorization = `Bearer ${this.options.apiKey}`;
    if (request.body !== undefined) headers['Content-Type'] = 'application/json';
    let response: Response;
    try {
      response = await this.fetchImpl(url, {
        method, headers,
        ...(request.body === undefined ? {} : { body: JSON.stringify(request.body) }),
        ...(request.signal ? { signal: request.signal } : {}),
      });
    } catch (err) {
      if (request.signal?.aborted) throw request.signal.reason;
      throw new AgentmemNetworkError(`${method} ${path}: no answer (${err instanceof Error ? err.message : String(err)})`, err);
    }
    if (response.ok) return response;
    throw await apiError(method, path, response);
  }
}

async function apiError(method: string, path: string, response: Response): Promise<AgentmemApiError> {
  let field: string | null = null;
  let message = `${method} ${path}: HTTP ${response.status}`;
  try {
    const body = (await response.json()) as Partial<ErrorBody>;
    if (typeof body.error?.message === 'string') message = body.error.message;
    if (typeof body.error?.field === 'string') field = body.error.field;
  } catch {
    // Not JSON (a proxy's page): the status says enough.
  }
  return new AgentmemApiError(response.status, field, message, retryAfterSeconds(response.headers.get('Retry-After')));
}

/** Retry-After as seconds: delta-seconds, or an HTTP date. */
function retryAfterSeconds(header: string | null): number | null {
  if (header === null) return null;
  if (/^\d+$/.test(header.trim())) return Number(header.trim());
  const at = Date.parse(header);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function streamErrorMessage(data: string): string {
  try {
    const body = JSON.parse(data) as Partial<ErrorBody>;
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {
    // Fall through to the raw text.
  }
  return data;
}

function enc(id: string): string {
  return encodeURIComponent(id);
}

/** 128 random bits as hex (getRandomValues works where randomUUID does not: plain-http pages). */
function randomKey(): string {
  const bytes = new Uint8Array(16);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Why `signal` was aborted, as an Error (AbortSignal.reason is any value the caller chose; by default an AbortError). */
function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${String(reason)}`);
}
