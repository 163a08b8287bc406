/**
 * The `/v1` wire shapes, as the server sends and accepts them (snake_case, as on the wire). Written
 * by hand from server/http/app.ts, src/pipeline/turns.ts, src/memory/*.ts and src/auth/*.ts; this
 * module imports nothing, so the client stays free of the server's code and dependencies.
 */

export type TurnRole = 'user' | 'assistant' | 'tool' | 'system';
export type MemoryKind = 'episodic' | 'semantic';
/** How a turn is remembered: as an episodic or a semantic memory, or not at all. */
export type RememberMode = MemoryKind | 'skip';
export type Role = 'read' | 'write' | 'admin';
export type TurnStatus = 'queued' | 'done' | 'failed';

/** The body of every 4xx/5xx answer; `field` names the bad input where there is one. */
export interface ErrorBody {
  error: { field?: string; message: string };
}

/** POST /v1/threads. `user`/`namespace` default to `default` (or to the key's only user/namespace). */
export interface CreateThreadRequest {
  user?: string;
  namespace?: string;
  agent?: string;
}

/** 201 from POST /v1/threads. */
export interface CreatedThread {
  thread_id: string;
}

export interface Turn {
  role: string;
  content: string;
  ts: number;
}

/** GET/PUT /v1/threads/:thread_id: a thread's working memory. */
export interface SessionState {
  thread_id: string;
  user: string;
  agent: string;
  goal: string;
  scratchpad: string;
  turn_count: number;
  created_ts: number;
  last_active_ts: number;
  recent_turns: Turn[];
  /** Remaining TTL in seconds; -1 when the hash has no TTL. */
  ttl_seconds: number;
}

/** PUT /v1/threads/:thread_id: at least one of the two. */
export interface UpdateThreadRequest {
  goal?: string;
  scratchpad?: string;
}

/** POST /v1/threads/:thread_id/turns. Only `content` is required. */
export interface TurnRequest {
  content: string;
  role?: TurnRole;
  user?: string;
  namespace?: string;
  agent?: string;
  remember?: RememberMode;
  /** Memories to recall, 1..100. */
  k?: number;
  /** Cosine distance bound for recall, [0, 2]. */
  threshold?: number;
}

/** 202 from POST /v1/threads/:thread_id/turns: accepted, durably queued, not yet processed. */
export interface TurnAccepted {
  turn_id: string;
  thread_id: string;
}

/** A long-term memory as the API lists and recalls it. */
export interface MemoryRecord {
  id: string;
  user: string;
  namespace: string;
  kind: MemoryKind;
  source_thread: string;
  text: string;
  created_ts: number;
  hit_count: number;
  /** Cosine distance to the query; only on recall results. */
  distance?: number;
  /** Remaining TTL; null when the memory never expires. */
  ttl_seconds: number | null;
}

/** What the pipeline recorded about remembering a turn. */
export interface MemoryOutcome {
  id: string;
  deduped: boolean;
  existing_distance: number | null;
  kind: string;
}

/** GET /v1/turns/:turn_id, and 200 from POST .../turns?wait=ms once the turn is done or failed. */
export interface TurnResult {
  turn_id: string;
  thread_id: string;
  status: TurnStatus;
  /** The turn's position in its thread. */
  turn_count: number;
  /** Null until recall is ready. */
  recall: MemoryRecord[] | null;
  memory: MemoryOutcome | null;
  timings: { accepted_ts: number; recall_ts?: number; done_ts?: number; embed_ms?: number; recall_ms?: number; remember_ms?: number };
  error?: string;
}

/** POST /v1/recall. */
export interface RecallRequest {
  text: string;
  user?: string;
  namespace?: string;
  k?: number;
  threshold?: number;
}

export interface RecallResponse {
  recall: MemoryRecord[];
  embed_ms: number;
  recall_ms: number;
}

/** GET /v1/memories query. */
export interface ListMemoriesQuery {
  user?: string;
  namespace?: string;
  /** 1..10000 (default 200). */
  limit?: number;
}

export interface MemoryList {
  memories: MemoryRecord[];
}

/** DELETE /v1/memories/:memory_id. */
export interface DeletedMemory {
  deleted: true;
  memory_id: string;
}

/** GET /v1/deadletter (admin): one entry per turn the pipeline gave up on, its fields as stored. */
export interface DeadLetterEntry {
  id: string;
  [field: string]: string;
}

export interface DeadLetterList {
  entries: DeadLetterEntry[];
}

/** GET /v1/whoami: the credential the request was made with (everything, when auth is off). */
export interface WhoAmI {
  auth: 'off' | 'keys';
  key_id: string | null;
  name: string | null;
  role: Role;
  users: string[];
  namespaces: string[];
  expires_ts: number | null;
}

/** POST /v1/keys (admin). */
export interface CreateKeyRequest {
  users: string[];
  /** Default `['*']`. */
  namespaces?: string[];
  /** Default `admin` for users `['*']`, else `write`. */
  role?: Role;
  /** A duration: `45s`, `90m`, `12h`, `30d`, `2w`. */
  expires?: string;
  name?: string;
}

/** An API key as listed: never its secret. */
export interface ApiKeyInfo {
  key_id: string;
  name: string | null;
  role: Role;
  users: string[];
  namespaces: string[];
  created_ts: number;
  expires_ts: number | null;
  revoked: boolean;
  revoked_ts: number | null;
}

/** 201 from POST /v1/keys: `key` is the token, shown this once. */
export interface CreatedKey extends ApiKeyInfo {
  key: string;
}

export interface KeyList {
  keys: ApiKeyInfo[];
}

export interface RevokedKey {
  key_id: string;
  revoked: true;
}

/**
 * One entry of an event stream (a thread's log, or the memory log where `thread_id` is
 * `memories` and `detail` is JSON). `event_id` is the Stream entry id, also the SSE id.
 */
export interface EventRecord {
  event_id: string;
  thread_id: string;
  action: string;
  detail: string;
  ts: number;
}
