import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { BacklogFullError, ScriptError, ThreadNotVisible } from '../errors.js';
import type { Keys } from '../keys.js';
import { LUA_DIR } from '../paths.js';

type Arg = string | number | Buffer;

/**
 * The Lua scripts, each in its own file named `<command>-<numberOfKeys>.lua`, registered once per
 * connection with ioredis `defineCommand` (EVALSHA with the NOSCRIPT fallback handled by ioredis)
 * and called only through {@link ScriptGateway}. A line `-- @include <name>` is replaced by
 * `includes/<name>.lua` when the script is loaded; `-- @include errors` by {@link ScriptErrorCode}.
 */
export const SCRIPT_NAMES = ['upsertSession', 'acceptTurn', 'finishRecall', 'applyMemory', 'deadLetter', 'recordError', 'mergeMemories', 'releaseLock', 'createKey', 'revokeKey', 'takeToken'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/**
 * Every negative return code of every script: one meaning per number. The Lua scripts read the
 * same table (as `ERR.RECENT_TURNS_NOT_ARRAY`, ...), generated from this enum when they load.
 */
export enum ScriptErrorCode {
  /** The session's recent_turns holds something that is not a JSON array; nothing was written. */
  RecentTurnsNotArray = -1,
  /** The ingest backlog is at its bound; nothing was written. */
  BacklogFull = -2,
  /** The thread exists with another user; nothing was written. */
  ThreadNotVisible = -3,
  /** A memory the script was to change (bump, merge) no longer exists; nothing was written. */
  MemoryGone = -4,
  /** A memory with the id to write already exists; nothing was written. */
  MemoryExists = -5,
}

const ERROR_MESSAGES: Record<ScriptErrorCode, string> = {
  [ScriptErrorCode.RecentTurnsNotArray]: 'recent_turns is not a JSON array; the session was left untouched',
  [ScriptErrorCode.BacklogFull]: 'ingest backlog is full',
  [ScriptErrorCode.ThreadNotVisible]: 'the thread belongs to another user',
  [ScriptErrorCode.MemoryGone]: 'the memory no longer exists',
  [ScriptErrorCode.MemoryExists]: 'a memory with that id already exists',
};

/** True when `err` is a script's refusal with `code`. */
export function isScriptError(err: unknown, code: ScriptErrorCode): err is ScriptError {
  return err instanceof ScriptError && err.code === (code as number);
}

/** The one translation of a negative script reply to a typed error. */
function scriptFailure(script: ScriptName, code: number, threadId?: string): Error {
  const known = code as ScriptErrorCode;
  if (known === ScriptErrorCode.BacklogFull) return new BacklogFullError(1);
  if (known === ScriptErrorCode.ThreadNotVisible && threadId !== undefined) return new ThreadNotVisible(threadId);
  const message = (ERROR_MESSAGES as Record<number, string | undefined>)[code] ?? `failed with code ${code}`;
  return new ScriptError(script, code, message);
}

/** `local ERR = { RECENT_TURNS_NOT_ARRAY = -1, ... }` from {@link ScriptErrorCode}. */
function luaErrorTable(): string {
  const entries = Object.entries(ScriptErrorCode)
    .filter((entry): entry is [string, number] => typeof entry[1] === 'number')
    .map(([name, code]) => `${name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()} = ${code}`);
  return `local ERR = { ${entries.join(', ')} }\n`;
}

const INCLUDE = /^-- @include (\w+)$/gm;

function scriptFile(name: ScriptName): string {
  const file = readdirSync(LUA_DIR).find((f) => f.startsWith(`${name}-`) && f.endsWith('.lua'));
  if (!file) throw new Error(`no Lua file for script ${name} in ${LUA_DIR}`);
  return file;
}

export function scriptSource(name: ScriptName): { lua: string; numberOfKeys: number } {
  const file = scriptFile(name);
  const lua = readFileSync(join(LUA_DIR, file), 'utf8').replace(INCLUDE, (_, include: string) =>
    include === 'errors' ? luaErrorTable() : readFileSync(join(LUA_DIR, 'includes', `${include}.lua`), 'utf8'),
  );
  return { lua, numberOfKeys: Number(/-(\d+)\.lua$/.exec(file)?.[1]) };
}

const loaded = new WeakSet<Redis>();

/** Registers every script on `redis` (once per connection object). */
function loadScripts(redis: Redis): void {
  if (loaded.has(redis)) return;
  for (const name of SCRIPT_NAMES) redis.defineCommand(name, scriptSource(name));
  loaded.add(redis);
}

/** Caps of the streams the scripts trim, in one place. */
export const STREAM_CAPS = {
  /** The memory log: every change to long-term memory (GET /v1/memories/events). */
  memoryLog: 10_000,
  /** The dead-letter stream. */
  deadLetter: 10_000,
} as const;

/** What the remember stage records as a turn's memory. */
export interface MemoryOutcome {
  id: string;
  deduped: boolean;
  existing_distance: number | null;
  kind: string;
}

export interface AcceptTurnParams {
  threadId: string;
  turnId: string;
  user: string;
  agent: string;
  namespace: string;
  role: string;
  content: string;
  remember: string;
  k: number;
  threshold: number;
  /** sha256 prefix of the Idempotency-Key, or null when none was given. */
  idempotencyKeyHash: string | null;
  /** Refuse (ThreadNotVisible) a thread that exists with another user. */
  exclusive: boolean;
  /** The API key that sent the turn (provenance), or null. */
  keyId: string | null;
  windowSize: number;
  sessionTtlSeconds: number;
  turnTtlSeconds: number;
  eventsMaxLen: number;
  maxBacklog: number;
}

export type AcceptTurnReply =
  | { created: true; turnId: string; turnCount: number; streamId: string }
  | { created: false; turnId: string };

export interface UpsertSessionParams {
  threadId: string;
  user: string;
  agent: string;
  /** Named in thread_started when this creates the thread. */
  namespace: string;
  exclusive: boolean;
  keyId: string | null;
  /** Set (and log goal_set) when given. */
  goal?: string;
  scratchpad?: string;
  sessionTtlSeconds: number;
  eventsMaxLen: number;
}

/** The turn a stage finishes: its entry, identity and the stream settings. */
export interface TurnEntry {
  group: string;
  entryId: string;
  turnId: string;
  threadId: string;
  role: string;
  eventsMaxLen: number;
  turnTtlSeconds: number;
  sessionTtlSeconds: number;
}

export interface FinishRecallParams extends TurnEntry {
  user: string;
  namespace: string;
  content: string;
  remember: string;
  /** JSON of the recall results, and of the recall_ready event detail. */
  recallJson: string;
  eventDetailJson: string;
  embedMs: number;
  recallMs: number;
  embedding: Buffer;
}

/** The write: bump an existing near-duplicate, or write a new document. */
export type MemoryWrite =
  | { mode: 'bump'; memoryId: string }
  | { mode: 'write'; memoryId: string; documentJson: string; ttlSeconds: number };

export interface ApplyMemoryParams {
  write: MemoryWrite;
  /** The memory log entry's detail (scope, ids). */
  logDetail: Record<string, unknown>;
  /** The turn whose remember entry this completes; absent for writes of no turn (seeding). */
  turn?: TurnEntry & { outcome: MemoryOutcome; rememberMs: number; eventDetail: string };
}

export interface DeadLetterParams {
  stream: string;
  group: string;
  entryId: string;
  stage: string;
  /** Why, when known ('' otherwise; the error recorded on the turn wins). */
  cause: string;
  deliveries: number;
  /** The turn and thread the entry names, when both are usable. */
  turn: { turnId: string; threadId: string } | null;
  eventsMaxLen: number;
  sessionTtlSeconds: number;
}

export interface MergeMemoriesParams {
  survivorId: string;
  duplicateId: string;
  distance: number;
}

/**
 * The one way to run a script: one typed method per state change, with named parameters turned
 * into KEYS and ARGV in that method alone (so swapped arguments do not compile), and negative
 * replies turned into typed errors in one place ({@link ScriptErrorCode}).
 */
export class ScriptGateway {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    loadScripts(redis);
  }

  /**
   * Accepts a turn: appends it to working memory (starting the thread if new), queues it and logs
   * it, atomically. Throws BacklogFullError, ThreadNotVisible, or ScriptError(RecentTurnsNotArray).
   */
  async acceptTurn(p: AcceptTurnParams): Promise<AcceptTurnReply> {
    const k = this.keys;
    const reply = await this.run('acceptTurn', p.threadId,
      [k.session(p.threadId), k.ingestStream, k.events(p.threadId), k.turn(p.turnId), k.idempotency(p.threadId, p.idempotencyKeyHash ?? ''), k.rememberStream],
      [p.threadId, p.user, p.agent, p.role, p.content, p.windowSize, p.sessionTtlSeconds, p.turnId, p.namespace, p.remember, p.k, p.threshold,
        p.eventsMaxLen, p.turnTtlSeconds, p.idempotencyKeyHash === null ? '0' : '1', p.maxBacklog, p.exclusive ? '1' : '', p.keyId ?? ''],
    );
    const [created, turnId, turnCount, streamId] = reply as [number, string, number?, string?];
    return created === 1 ? { created: true, turnId, turnCount: Number(turnCount), streamId: String(streamId) } : { created: false, turnId };
  }

  /** Starts a thread and/or sets its goal (logged as goal_set) and scratchpad. Throws ThreadNotVisible. */
  async upsertSession(p: UpsertSessionParams): Promise<{ created: boolean }> {
    const reply = await this.run('upsertSession', p.threadId,
      [this.keys.session(p.threadId), this.keys.events(p.threadId)],
      [p.threadId, p.user, p.agent, p.namespace, p.sessionTtlSeconds, p.exclusive ? '1' : '', p.keyId ?? '', p.eventsMaxLen,
        p.goal === undefined ? '' : '1', p.goal ?? '', p.scratchpad === undefined ? '' : '1', p.scratchpad ?? ''],
    );
    return { created: reply === 1 };
  }

  /** Stores a turn's recall and hands it on; false when it was already stored (only acknowledged). */
  async finishRecall(p: FinishRecallParams): Promise<boolean> {
    const k = this.keys;
    const reply = await this.run('finishRecall', p.threadId,
      [k.turn(p.turnId), k.events(p.threadId), k.rememberStream, k.ingestStream],
      [p.group, p.entryId, p.recallJson, p.eventDetailJson, p.embedMs, p.recallMs, p.remember, p.embedding, p.turnId, p.threadId,
        p.user, p.namespace, p.role, p.content, p.eventsMaxLen, k.turnDoneChannel, p.turnTtlSeconds, p.sessionTtlSeconds],
    );
    return reply === 1;
  }

  /**
   * Writes or bumps a memory and logs it on the memory log; with `turn`, also completes that
   * turn's remember entry exactly once. False when the turn's outcome was already recorded.
   * Throws ScriptError(MemoryGone) when the bump target is gone, ScriptError(MemoryExists) when
   * the id to write is taken.
   */
  async applyMemory(p: ApplyMemoryParams): Promise<boolean> {
    const k = this.keys;
    const memoryKey = k.memory(p.write.memoryId);
    const t = p.turn;
    const doc = p.write.mode === 'write' ? [p.write.documentJson, p.write.ttlSeconds] : ['', 0];
    const reply = await this.run('applyMemory', t?.threadId,
      [t ? k.turn(t.turnId) : memoryKey, memoryKey, t ? k.events(t.threadId) : memoryKey, k.rememberStream, k.memoryLog],
      [t?.group ?? '', t?.entryId ?? '', p.write.mode, ...doc, t ? JSON.stringify(t.outcome) : '', t?.rememberMs ?? 0, t?.role ?? '',
        t?.eventDetail ?? '', t?.eventsMaxLen ?? 0, k.turnDoneChannel, t?.turnId ?? '', t?.turnTtlSeconds ?? 0,
        JSON.stringify(p.logDetail), t?.sessionTtlSeconds ?? 0, STREAM_CAPS.memoryLog],
    );
    return reply === 1;
  }

  /** Moves a failing entry to the dead-letter stream, failing its turn; false when it was already gone. */
  async deadLetter(p: DeadLetterParams): Promise<boolean> {
    const k = this.keys;
    const reply = await this.run('deadLetter', undefined,
      [p.stream, k.deadLetterStream, p.turn ? k.turn(p.turn.turnId) : k.deadLetterStream, p.turn ? k.events(p.turn.threadId) : k.deadLetterStream],
      [p.group, p.entryId, p.stage, p.cause, p.deliveries, p.turn?.turnId ?? '', p.eventsMaxLen, k.turnDoneChannel, STREAM_CAPS.deadLetter, p.sessionTtlSeconds],
    );
    return reply === 1;
  }

  /** Keeps why a stage failed a turn's entry; false when the turn hash is gone. */
  async recordError(p: { turnId: string; group: string; message: string }): Promise<boolean> {
    return (await this.run('recordError', undefined, [this.keys.turn(p.turnId)], [p.group, p.message])) === 1;
  }

  /** Folds a duplicate into its survivor; the survivor's hit_count. Throws ScriptError(MemoryGone). */
  async mergeMemories(p: MergeMemoriesParams): Promise<number> {
    const k = this.keys;
    return Number(await this.run('mergeMemories', undefined,
      [k.memory(p.survivorId), k.memory(p.duplicateId), k.memoryLog],
      [p.survivorId, p.duplicateId, p.distance, STREAM_CAPS.memoryLog],
    ));
  }

  /** Releases the lock (`extendMs` absent) or extends it, only for the holder of `token`; false when not held. */
  async releaseLock(p: { lockKey: string; token: string; extendMs?: number }): Promise<boolean> {
    return (await this.run('releaseLock', undefined, [p.lockKey], [p.token, p.extendMs ?? ''])) === 1;
  }

  /** Stores an API key record unless its id exists; false when it did. */
  async createKey(p: { keyId: string; record: Record<string, string>; dropAtSeconds: number | null }): Promise<boolean> {
    const reply = await this.run('createKey', undefined,
      [this.keys.apiKey(p.keyId), this.keys.apiKeyIndex],
      [p.keyId, p.dropAtSeconds ?? '', ...Object.entries(p.record).flat()],
    );
    return reply === 1;
  }

  /** Marks an API key revoked. */
  async revokeKey(p: { keyId: string; revokedTs: string }): Promise<'revoked' | 'already revoked' | 'not found'> {
    const reply = await this.run('revokeKey', undefined, [this.keys.apiKey(p.keyId)], [p.revokedTs]);
    return reply === 1 ? 'revoked' : reply === 2 ? 'already revoked' : 'not found';
  }

  /** Takes a token from a bucket; refused (nothing taken) when none is there. */
  async takeToken(p: { kind: 'key' | 'authfail'; subject: string; capacity: number; ratePerSecond: number }): Promise<{ allowed: boolean; retryAfterMs: number }> {
    const reply = await this.run('takeToken', undefined, [this.keys.rateBucket(p.kind, p.subject)], [p.capacity, p.ratePerSecond]);
    const [allowed, retryAfterMs] = reply as [number, number];
    return { allowed: allowed === 1, retryAfterMs };
  }

  /** Runs a script; a negative integer reply becomes its typed error (`threadId` names the thread in ThreadNotVisible). */
  private async run(name: ScriptName, threadId: string | undefined, keys: string[], args: Arg[]): Promise<unknown> {
    // defineCommand adds the commands at run time; they are kept off ioredis's types so that
    // nothing calls a script except through this class.
    const command = (this.redis as unknown as Record<ScriptName, (...keysThenArgs: Arg[]) => Promise<unknown>>)[name];
    const reply = await command.call(this.redis, ...keys, ...args);
    if (typeof reply === 'number' && reply < 0) throw scriptFailure(name, reply, threadId);
    return reply;
  }
}
