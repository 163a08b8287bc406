import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { ScriptGateway } from '../redis/scripts.js';
import * as v from '../validate.js';

export interface Turn {
  role: string;
  content: string;
  ts: number;
}

/** A thread's working memory as clients see it (the reference demos' SessionState). */
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
  /** Remaining TTL in seconds; -1 when the hash has no TTL (written by someone else). */
  ttl_seconds: number;
}

export interface WorkingMemoryOptions {
  sessionTtlSeconds: number;
  /** MAXLEN ~ of the thread's event stream (thread_started and goal_set are logged there). */
  eventsMaxLen: number;
}

export interface SessionOwner {
  user?: string;
  agent?: string;
  /** Named in thread_started when the write starts the thread. */
  namespace?: string;
  /** Refuse (ThreadNotVisible, nothing written) when the thread exists with another user. */
  exclusive?: boolean;
  /** The API key acting, named in thread_started (provenance). */
  keyId?: string | null;
}

/**
 * Working memory: one Hash per thread, every write one atomic script that also refreshes the TTL.
 * Turns are appended by the pipeline's ingest (acceptTurn), which starts a thread the same way.
 */
export class WorkingMemory {
  private readonly scripts: ScriptGateway;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: WorkingMemoryOptions,
  ) {
    this.scripts = new ScriptGateway(redis, keys);
  }

  /**
   * Starts the thread (logging thread_started) unless it exists (an existing one keeps its
   * fields); refreshes its TTL.
   */
  async start(threadId: string, owner: SessionOwner = {}): Promise<{ created: boolean }> {
    return this.update(threadId, {}, owner);
  }

  /** Sets the goal and logs goal_set, in one step. */
  async setGoal(threadId: string, goal: string, owner: SessionOwner = {}): Promise<void> {
    await this.update(threadId, { goal }, owner);
  }

  async setScratchpad(threadId: string, scratchpad: string, owner: SessionOwner = {}): Promise<void> {
    await this.update(threadId, { scratchpad }, owner);
  }

  /**
   * Sets the given fields (a goal is logged as goal_set), starting the thread if it is new, in
   * one atomic write. Throws ThreadNotVisible when `owner.exclusive` and another user owns it.
   */
  async update(threadId: string, fields: { goal?: string | undefined; scratchpad?: string | undefined }, owner: SessionOwner = {}): Promise<{ created: boolean }> {
    const id = v.threadId(threadId);
    return this.scripts.upsertSession({
      threadId: id,
      user: v.scopeValue(owner.user ?? 'default', 'user'),
      agent: v.scopeValue(owner.agent ?? 'default', 'agent'),
      namespace: v.scopeValue(owner.namespace ?? 'default', 'namespace'),
      exclusive: owner.exclusive ?? false,
      keyId: owner.keyId ?? null,
      ...(fields.goal === undefined ? {} : { goal: v.optionalText(fields.goal, 'goal') }),
      ...(fields.scratchpad === undefined ? {} : { scratchpad: v.optionalText(fields.scratchpad, 'scratchpad') }),
      sessionTtlSeconds: this.options.sessionTtlSeconds,
      eventsMaxLen: this.options.eventsMaxLen,
    });
  }

  /** The thread's state with its remaining TTL, or null when it does not exist (or expired). */
  async load(threadId: string): Promise<SessionState | null> {
    const key = this.keys.session(v.threadId(threadId));
    const replies = await this.redis.multi().hgetall(key).ttl(key).exec();
    if (!replies) throw new Error('working memory read was aborted');
    const [[hashErr, hash], [ttlErr, ttl]] = replies as [[Error | null, Record<string, string>], [Error | null, number]];
    if (hashErr) throw hashErr;
    if (ttlErr) throw ttlErr;
    if (Object.keys(hash).length === 0) return null;
    return toSessionState(hash, ttl);
  }
}

/** Hash fields are strings, and other writers format recent_turns differently: always parse. */
export function toSessionState(hash: Record<string, string>, ttlSeconds: number): SessionState {
  return {
    thread_id: hash.thread_id ?? '',
    user: hash.user ?? 'default',
    agent: hash.agent ?? 'default',
    goal: hash.goal ?? '',
    scratchpad: hash.scratchpad ?? '',
    turn_count: Number(hash.turn_count ?? 0),
    created_ts: Number(hash.created_ts ?? 0),
    last_active_ts: Number(hash.last_active_ts ?? 0),
    recent_turns: parseTurns(hash.recent_turns),
    ttl_seconds: ttlSeconds,
  };
}

function parseTurns(raw: string | undefined): Turn[] {
  if (!raw) return [];
  try {
    const parsed: unknown = JSON.parse(raw);
    if (!Array.isArray(parsed)) return [];
    return parsed.map((t: Partial<Turn>) => ({ role: String(t.role ?? ''), content: String(t.content ?? ''), ts: Number(t.ts ?? 0) }));
  } catch {
    return [];
  }
}
