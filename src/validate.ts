import { randomBytes } from 'node:crypto';
import { ValidationError } from './errors.js';

export const MEMORY_KINDS = ['episodic', 'semantic'] as const;
export type MemoryKind = (typeof MEMORY_KINDS)[number];

export const TURN_ROLES = ['user', 'assistant', 'tool', 'system'] as const;
export type TurnRole = (typeof TURN_ROLES)[number];

/** Generated ids (threads and memories), as the reference demos make them: 6 random bytes in hex. */
export const GENERATED_ID = /^[0-9a-f]{12}$/;

/**
 * Client-chosen thread ids: 1-64 characters of letters, digits, `_` and `-`, starting with a
 * letter or digit. They end up in key names and in a TAG field, so nothing that needs escaping or
 * could be read as a key pattern (`*`, `:`, `{`) is allowed.
 */
export const CLIENT_THREAD_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export const MAX_SCOPE_LENGTH = 128;
export const MAX_TEXT_LENGTH = 16_384;

export function newId(): string {
  return randomBytes(6).toString('hex');
}

export function threadId(value: unknown, field = 'thread_id'): string {
  if (typeof value !== 'string' || !CLIENT_THREAD_ID.test(value)) {
    throw new ValidationError(field, 'must be 1-64 characters of A-Z a-z 0-9 _ -, starting with a letter or digit');
  }
  return value;
}

export function memoryId(value: unknown, field = 'memory_id'): string {
  if (typeof value !== 'string' || !GENERATED_ID.test(value)) {
    throw new ValidationError(field, 'must be 12 lowercase hex characters');
  }
  return value;
}

/**
 * A user or namespace. It is a TAG value in the index, and TAG indexing splits on `,` and trims
 * surrounding blanks (the shared index sets no SEPARATOR), so such values would silently merge
 * scopes: they are refused instead. Everything else is allowed and escaped in queries.
 * Matching is case-insensitive (the shared index is), so `Bob` and `bob` are one scope.
 */
export function scopeValue(value: unknown, field: 'user' | 'namespace' | 'agent'): string {
  if (typeof value !== 'string') throw new ValidationError(field, 'must be a string');
  if (value.length === 0) throw new ValidationError(field, 'must not be empty');
  if (value.length > MAX_SCOPE_LENGTH) throw new ValidationError(field, `must be at most ${MAX_SCOPE_LENGTH} characters`);
  if (value !== value.trim()) throw new ValidationError(field, 'must not start or end with whitespace');
  if (value.includes(',')) throw new ValidationError(field, 'must not contain a comma');
  // The index and the demos' pages cannot show control characters.
  // eslint-disable-next-line no-control-regex -- control characters are what this refuses
  if (/[\u0000-\u001f\u007f]/.test(value)) throw new ValidationError(field, 'must not contain control characters');
  return value;
}

export function kind(value: unknown, field = 'kind'): MemoryKind {
  if (typeof value !== 'string' || !(MEMORY_KINDS as readonly string[]).includes(value)) {
    throw new ValidationError(field, `must be one of ${MEMORY_KINDS.join(', ')}`);
  }
  return value as MemoryKind;
}

export function role(value: unknown, field = 'role'): TurnRole {
  if (typeof value !== 'string' || !(TURN_ROLES as readonly string[]).includes(value)) {
    throw new ValidationError(field, `must be one of ${TURN_ROLES.join(', ')}`);
  }
  return value as TurnRole;
}

export function memoryText(value: unknown, field = 'text'): string {
  if (typeof value !== 'string') throw new ValidationError(field, 'must be a string');
  if (value.trim().length === 0) throw new ValidationError(field, 'must not be blank');
  if (value.length > MAX_TEXT_LENGTH) throw new ValidationError(field, `must be at most ${MAX_TEXT_LENGTH} characters`);
  return value;
}

/** Free text that may be empty (a goal or scratchpad can be cleared). */
export function optionalText(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ValidationError(field, 'must be a string');
  if (value.length > MAX_TEXT_LENGTH) throw new ValidationError(field, `must be at most ${MAX_TEXT_LENGTH} characters`);
  return value;
}

export function distanceThreshold(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > 2) {
    throw new ValidationError(field, 'must be a cosine distance in [0, 2]');
  }
  return value;
}

export function positiveInt(value: unknown, field: string, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw new ValidationError(field, `must be an integer in [1, ${max}]`);
  }
  return value;
}

/** A non-negative integer given as a query-string parameter (digits only), at most `max`. */
export function queryInt(value: unknown, field: string, max: number): number {
  const parsed = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(parsed) || parsed < 0 || parsed > max) throw new ValidationError(field, `must be an integer in [0, ${max}]`);
  return parsed;
}

const MAX_STREAM_ID_PART = 2n ** 64n - 1n;
const STREAM_ID = /^(\d{1,20})(?:-(\d{1,20}))?$/;

/**
 * A Stream entry id a client hands back (SSE Last-Event-ID, ?since): `<ms>-<seq>`, or `<ms>`
 * alone (sequence 0, as XREAD reads it), each part a decimal integer up to 2^64-1; `0` is the
 * start of the stream. Returned canonical (`<ms>-<seq>`, no leading zeros), so ids compare as
 * digit strings. Anything else is refused here: an id Redis rejects would fail the read the
 * process shares among all its event-stream clients.
 */
export function streamId(value: unknown, field: string): string {
  const match = typeof value === 'string' ? STREAM_ID.exec(value) : null;
  const ms = match ? BigInt(match[1] as string) : -1n;
  const seq = match?.[2] === undefined ? 0n : BigInt(match[2]);
  if (ms < 0n || ms > MAX_STREAM_ID_PART || seq > MAX_STREAM_ID_PART) {
    throw new ValidationError(field, `must be a stream entry id <ms>-<seq> or <ms>, each a decimal integer up to ${MAX_STREAM_ID_PART}`);
  }
  return `${ms}-${seq}`;
}

export function embedding(value: unknown, dims: number, field = 'embedding'): Float32Array {
  if (!(value instanceof Float32Array) || value.length !== dims) {
    throw new ValidationError(field, `must be a Float32Array of ${dims} numbers`);
  }
  for (const x of value) if (!Number.isFinite(x)) throw new ValidationError(field, 'must hold finite numbers only');
  return value;
}
