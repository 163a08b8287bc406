import type { Redis } from 'ioredis';
import { ThreadNotVisible } from '../errors.js';
import type { Keys } from '../keys.js';
import { loadScripts, throwIfScriptError } from '../redis/scripts.js';
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
  windowSize: number;
}

export interface SessionOwner {
  user?: string;
  agent?: string;
  /** Refuse (ThreadNotVisible, nothing written) when the thread exists with another user. */
  exclusive?: boolean;
}

/** Working memory: one Hash per thread, every write one atomic script that also refreshes the TTL. */
export class WorkingMemory {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly options: WorkingMemoryOptions,
  ) {
    loadScripts(redis);
  }

  /** Creates the thread's hash if it is missing (an existing one keeps its fields); refreshes its TTL. */
  async start(threadId: string, owner: SessionOwner = {}): Promise<{ created: boolean }> {
    return { created: (await this.upsert(threadId, owner, [])) === 1 };
  }

  async appendTurn(
    threadId: string,
    turn: { role: string; content: string },
    owner: SessionOwner = {},
  ): Promise<{ turnCount: number; ts: number }> {
    const id = v.threadId(threadId);
    const role = v.role(turn.role);
    const content = v.memoryText(turn.content, 'content');
    const { user, agent } = this.owner(owner);
    const reply = await this.redis.appendTurn(
      this.keys.session(id), id, user, agent, role, content, this.options.windowSize, this.options.sessionTtlSeconds,
    );
    throwIfScriptError('appendTurn', reply);
    const [turnCount, ts] = reply as [number, string];
    return { turnCount, ts: Number(ts) };
  }

  async setGoal(threadId: string, goal: string, owner: SessionOwner = {}): Promise<void> {
    await this.upsert(threadId, owner, ['goal', v.optionalText(goal, 'goal')]);
  }

  async setScratchpad(threadId: string, scratchpad: string, owner: SessionOwner = {}): Promise<void> {
    await this.upsert(threadId, owner, ['scratchpad', v.optionalText(scratchpad, 'scratchpad')]);
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

  private owner(owner: SessionOwner): { user: string; agent: string } {
    return {
      user: v.scopeValue(owner.user ?? 'default', 'user'),
      agent: v.scopeValue(owner.agent ?? 'default', 'agent'),
    };
  }

  private async upsert(threadId: string, owner: SessionOwner, fieldValues: string[]): Promise<number> {
    const id = v.threadId(threadId);
    const { user, agent } = this.owner(owner);
    const reply = await this.redis.upsertSession(this.keys.session(id), id, user, agent, this.options.sessionTtlSeconds, owner.exclusive ? '1' : '', ...fieldValues);
    if (reply === -3) throw new ThreadNotVisible(id);
    return reply;
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
