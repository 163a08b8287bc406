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
export const KNN_RETURN_FIELDS = [...MEMORY_RETURN_FIELDS, 'distance'] as const;

/**
 * How a filtered KNN runs. `brute-force` (HYBRID_POLICY ADHOC_BF) scores every memory the filter
 * matches: exact, and its cost grows with the scope, not the index. `hnsw` (HYBRID_POLICY BATCHES)
 * walks the HNSW graph in batches with EF_RUNTIME candidates, keeping those the filter matches:
 * cheap when the scope is a large share of the index, and ever slower as that share shrinks (the
 * planner's own choice at 800k memories sent scopes of 20 there, where every query timed out).
 */
export type KnnStrategy = 'brute-force' | 'hnsw';

export interface KnnPlan {
  strategy: KnnStrategy;
  /** HNSW candidate list size; only for `hnsw`. */
  efRuntime?: number;
  /** Per-query TIMEOUT in ms; 0 = the server's default (Search's TIMEOUT setting). */
  timeoutMs?: number;
}

/**
 * Arguments after `FT.SEARCH <index>` for the shared KNN shape (recall, dedup, consolidation):
 * the wire-compat shape, plus the strategy's query attributes inside the KNN clause and, when
 * given, a per-query TIMEOUT. Without a plan it is exactly the reference demos' query. The dedup
 * probe needs only ids and distances and asks for `['distance']`, sparing Redis the document reads.
 */
export function knnSearchArgs(
  filter: string, k: number, vector: Float32Array, returnFields: readonly string[] = KNN_RETURN_FIELDS, plan?: KnnPlan,
): (string | number | Buffer)[] {
  const attributes = plan === undefined ? ''
    : plan.strategy === 'brute-force' ? ' HYBRID_POLICY ADHOC_BF'
    : ` HYBRID_POLICY BATCHES${plan.efRuntime === undefined ? '' : ` EF_RUNTIME ${plan.efRuntime}`}`;
  return [
    `(${filter})=>[KNN ${k} @embedding $vec${attributes} AS distance]`,
    'PARAMS', 2, 'vec', vectorBytes(vector),
    'SORTBY', 'distance',
    'RETURN', returnFields.length, ...returnFields,
    'LIMIT', 0, k,
    ...(plan?.timeoutMs ? ['TIMEOUT', plan.timeoutMs] : []),
    'DIALECT', 2,
  ];
}

/**
 * Arguments after `FT.AGGREGATE <index>` that count the memories `filter` matches, up to `cap`:
 * an aggregate without sorting or grouping stops reading once it has `cap + 1` rows, so this
 * costs at most `cap` index reads however large the scope. The reply's first element is the
 * exact count when it is at most `cap`; a row after it means the scope holds more.
 */
export function scopeSizeArgs(filter: string, cap: number): (string | number)[] {
  return [filter, 'LIMIT', cap, 1, 'DIALECT', 2];
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

/**
 * FT.SEARCH and FT.AGGREGATE replies in RESP3: a map (ioredis hands it over as a flat
 * `[name, value, ...]` array) with `total_results`, `results` and `warning`. Only RESP3 carries
 * the warnings: a query that hit its timeout says so there ("Timeout limit was reached") while
 * handing back whatever it had, often nothing; RESP2 gives the same partial reply with no sign.
 */
export interface SearchReply3 {
  total: number;
  hits: SearchHit[];
  warnings: string[];
}

export function parseSearchReply3(reply: unknown): SearchReply3 {
  const top = flatMap(reply);
  const total = top.get('total_results');
  const results = top.get('results');
  if (typeof total !== 'number' || !Array.isArray(results)) throw new Error('unexpected RESP3 search reply');
  const hits: SearchHit[] = [];
  for (const raw of results) {
    const result = flatMap(raw);
    const id = result.get('id');
    // A timed-out query may hand back a result with no id: it names no memory, so it is not one.
    if (id === undefined) continue;
    const fields: Record<string, string> = {};
    for (const [name, value] of flatMap(result.get('extra_attributes') ?? [])) fields[name] = String(value);
    hits.push({ key: String(id), fields });
  }
  const warning = top.get('warning');
  const warnings = Array.isArray(warning) ? warning.map(String) : [];
  return { total, hits, warnings };
}

function flatMap(value: unknown): Map<string, unknown> {
  const map = new Map<string, unknown>();
  if (!Array.isArray(value)) return map;
  for (let i = 0; i + 1 < value.length; i += 2) map.set(String(value[i]), value[i + 1]);
  return map;
}
