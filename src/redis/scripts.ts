import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis, Result } from 'ioredis';
import { ScriptError } from '../errors.js';
import { LUA_DIR } from '../paths.js';

type Arg = string | number | Buffer;

/**
 * The Lua scripts, each in its own file named `<command>-<numberOfKeys>.lua`, registered once per
 * connection with ioredis `defineCommand` (EVALSHA with the NOSCRIPT fallback handled by ioredis).
 * A line `-- @include <name>` is replaced by `includes/<name>.lua` when the script is loaded.
 */
declare module 'ioredis' {
  interface RedisCommander<Context> {
    appendTurn(
      sessionKey: string, threadId: string, user: string, agent: string,
      role: string, content: string, window: number, ttlSeconds: number,
    ): Result<[number, string] | number, Context>;
    upsertSession(
      sessionKey: string, threadId: string, user: string, agent: string, ttlSeconds: number,
      ...fieldValues: string[]
    ): Result<number, Context>;
    writeMemory(memoryKey: string, documentJson: string, ttlSeconds: number): Result<number, Context>;
    acceptTurn(...keysThenArgs: Arg[]): Result<[1, string, number, string] | [0, string] | number, Context>;
    finishRecall(...keysThenArgs: Arg[]): Result<number, Context>;
    applyMemory(...keysThenArgs: Arg[]): Result<number, Context>;
    deadLetter(...keysThenArgs: Arg[]): Result<number, Context>;
    recordError(turnKey: string, group: string, message: string): Result<number, Context>;
    mergeMemories(survivorKey: string, duplicateKey: string, logKey: string, survivorId: string, duplicateId: string, distance: number, maxLen: number): Result<number, Context>;
    releaseLock(lockKey: string, token: string, extendMs: number | ''): Result<number, Context>;
    createKey(keyRecord: string, index: string, keyId: string, dropAt: number | '', ...fieldValues: string[]): Result<0 | 1, Context>;
    revokeKey(keyRecord: string, revokedTs: string): Result<0 | 1 | 2, Context>;
    takeToken(bucket: string, capacity: number, ratePerSecond: number): Result<[0 | 1, number], Context>;
  }
}

export const SCRIPT_NAMES = ['appendTurn', 'upsertSession', 'writeMemory', 'acceptTurn', 'finishRecall', 'applyMemory', 'deadLetter', 'recordError', 'mergeMemories', 'releaseLock', 'createKey', 'revokeKey', 'takeToken'] as const;
export type ScriptName = (typeof SCRIPT_NAMES)[number];

/** Negative return codes of the scripts, translated to errors in one place. */
export const SCRIPT_ERRORS: Record<ScriptName, Record<number, string>> = {
  appendTurn: { [-1]: 'recent_turns is not a JSON array; the session was left untouched' },
  upsertSession: {},
  writeMemory: {},
  acceptTurn: { [-1]: 'recent_turns is not a JSON array; the session was left untouched', [-2]: 'ingest backlog is full' },
  finishRecall: {},
  applyMemory: { [-1]: 'the memory to bump no longer exists', [-2]: 'a memory with that id already exists' },
  deadLetter: {},
  recordError: {},
  mergeMemories: { [-1]: 'one of the memories no longer exists' },
  releaseLock: {},
  createKey: {},
  revokeKey: {},
  takeToken: {},
};

const INCLUDE = /^-- @include (\w+)$/gm;

function scriptFile(name: ScriptName): string {
  const file = readdirSync(LUA_DIR).find((f) => f.startsWith(`${name}-`) && f.endsWith('.lua'));
  if (!file) throw new Error(`no Lua file for script ${name} in ${LUA_DIR}`);
  return file;
}

export function scriptSource(name: ScriptName): { lua: string; numberOfKeys: number } {
  const file = scriptFile(name);
  const lua = readFileSync(join(LUA_DIR, file), 'utf8').replace(INCLUDE, (_, include: string) =>
    readFileSync(join(LUA_DIR, 'includes', `${include}.lua`), 'utf8'),
  );
  return { lua, numberOfKeys: Number(/-(\d+)\.lua$/.exec(file)?.[1]) };
}

const loaded = new WeakSet<Redis>();

/** Registers every script on `redis` (once per connection object). */
export function loadScripts(redis: Redis): Redis {
  if (loaded.has(redis)) return redis;
  for (const name of SCRIPT_NAMES) redis.defineCommand(name, scriptSource(name));
  loaded.add(redis);
  return redis;
}

export function throwIfScriptError(name: ScriptName, reply: unknown): void {
  if (typeof reply === 'number' && reply < 0) {
    throw new ScriptError(name, reply, SCRIPT_ERRORS[name][reply] ?? `failed with code ${reply}`);
  }
}
