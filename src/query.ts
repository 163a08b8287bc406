/**
 * Building FT.SEARCH queries. Every value a caller supplies passes through `escapeTag` before it
 * reaches a query string; vectors travel as PARAMS, never inline.
 */

/**
 * Escapes a TAG value. The reference demos escape a fixed list of punctuation and space; this
 * escapes every ASCII character that is not a letter, digit or `_` (a superset of that list), so
 * a value can neither close the `{...}` nor smuggle in operators (`|`, `-`, `*`, `@field:`).
 */
export function escapeTag(value: string): string {
  return value.replace(/[^A-Za-z0-9_\u0080-\uffff]/g, (ch) => '\\' + ch);
}

export interface Scope {
  user: string;
  namespace: string;
}

export function scopeFilter(scope: Scope, kind?: string): string {
  const parts = [`@user:{${escapeTag(scope.user)}}`, `@namespace:{${escapeTag(scope.namespace)}}`];
  if (kind !== undefined) parts.push(`@kind:{${escapeTag(kind)}}`);
  return parts.join(' ');
}

/**
 * Fields FT.SEARCH returns for a memory, in the order the reference demos ask for them. Search
 * formats numbers with about 12 significant digits, so created_ts comes back to 10 ms (whatever
 * path or alias is asked for); JSON.GET (`LongTermMemory.get`) has the exact value.
 */
export const MEMORY_RETURN_FIELDS = ['user', 'namespace', 'kind', 'source_thread', 'text', 'created_ts', 'hit_count'] as const;
const KNN_RETURN_FIELDS = [...MEMORY_RETURN_FIELDS, 'distance'] as const;

/**
 * Arguments after `FT.SEARCH <index>` for the shared KNN shape (recall and dedup). The dedup
 * probe needs only ids and distances and asks for `['distance']`, sparing Redis the document reads.
 */
export function knnSearchArgs(
  filter: string, k: number, vector: Float32Array, returnFields: readonly string[] = KNN_RETURN_FIELDS,
): (string | number | Buffer)[] {
  return [
    `(${filter})=>[KNN ${k} @embedding $vec AS distance]`,
    'PARAMS', 2, 'vec', vectorBytes(vector),
    'SORTBY', 'distance',
    'RETURN', returnFields.length, ...returnFields,
    'LIMIT', 0, k,
    'DIALECT', 2,
  ];
}

/** Raw little-endian float32 bytes, as FT.SEARCH expects a FLOAT32 vector parameter. */
export function vectorBytes(vector: Float32Array): Buffer {
  if (LITTLE_ENDIAN) return Buffer.from(vector.buffer.slice(vector.byteOffset, vector.byteOffset + vector.byteLength));
  const out = Buffer.alloc(vector.length * 4);
  vector.forEach((x, i) => out.writeFloatLE(x, i * 4));
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** FT.SEARCH replies (RESP2) as `[total, key, [field, value, ...], key, [...], ...]`. */
export interface SearchHit {
  key: string;
  fields: Record<string, string>;
}

export function parseSearchReply(reply: unknown): { total: number; hits: SearchHit[] } {
  if (!Array.isArray(reply) || typeof reply[0] !== 'number') throw new Error('unexpected FT.SEARCH reply');
  const hits: SearchHit[] = [];
  for (let i = 1; i < reply.length; i += 2) {
    const key = String(reply[i]);
    const pairs: unknown = reply[i + 1];
    const fields: Record<string, string> = {};
    if (Array.isArray(pairs)) {
      for (let j = 0; j + 1 < pairs.length; j += 2) fields[String(pairs[j])] = String(pairs[j + 1]);
    }
    hits.push({ key, fields });
  }
  return { total: reply[0], hits };
}
