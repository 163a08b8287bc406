import type { Redis } from 'ioredis';
import { ValidationError } from '../errors.js';
import type { Keys } from '../keys.js';
import { ScriptGateway } from '../redis/scripts.js';
import { ALL, ROLES, boundList, type Principal, type Role } from './principal.js';
import { KEY_ID, NO_HASH, hashSecret, newToken, parseToken, sameHash } from './token.js';

/** An API key as listed: never its secret, nor the secret's hash. */
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

export interface NewKey {
  users: string[];
  namespaces: string[];
  role: Role;
  /** Seconds from now; undefined = never expires. */
  expiresInSeconds?: number;
  name?: string;
}

/** How long an expired key's record stays (listed as expired) before Redis drops it. */
export const EXPIRED_KEY_GRACE_SECONDS = 7 * 86_400;
const MAX_EXPIRY_SECONDS = 10 * 365 * 86_400;
const DURATION = /^(\d{1,9})([smhdw])$/;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400, w: 604_800 };

/** `30d`, `12h`, `90m`, `45s`, `2w` → seconds. */
export function parseDuration(raw: unknown, field: string): number {
  const match = typeof raw === 'string' ? DURATION.exec(raw) : null;
  const seconds = match ? Number(match[1]) * (UNIT_SECONDS[match[2] as string] as number) : NaN;
  if (!(seconds >= 1 && seconds <= MAX_EXPIRY_SECONDS)) {
    throw new ValidationError(field, 'must be a duration like 45s, 90m, 12h, 30d or 2w (at most 10 years)');
  }
  return seconds;
}

/**
 * Checks a new key's fields (from the CLI or POST /v1/keys). Users `*` (every user) is for
 * operators: it goes with the admin role and nothing else, and the admin role goes with users `*`
 * (an admin key bound to some users could mint itself a `*` key). Namespaces default to `*`:
 * every namespace of the key's users.
 */
export function parseNewKey(input: { users?: unknown; namespaces?: unknown; role?: unknown; expires?: unknown; name?: unknown }): NewKey {
  const users = boundList(input.users, 'users');
  const namespaces = input.namespaces === undefined ? [ALL] : boundList(input.namespaces, 'namespaces');
  const role = input.role ?? (users.includes(ALL) ? 'admin' : 'write');
  if (typeof role !== 'string' || !(ROLES as readonly string[]).includes(role)) throw new ValidationError('role', `must be one of ${ROLES.join(', ')}`);
  if ((role === 'admin') !== users.includes(ALL)) {
    throw new ValidationError('role', 'admin keys are bound to users * (operators), and keys bound to users * are admin keys');
  }
  if (role === 'admin' && !(namespaces.length === 1 && namespaces[0] === ALL)) throw new ValidationError('namespaces', 'admin keys cover every namespace (*)');
  let name: string | undefined;
  if (input.name !== undefined) {
    // eslint-disable-next-line no-control-regex -- control characters are what this refuses
    if (typeof input.name !== 'string' || input.name.length > 128 || /[\u0000-\u001f\u007f]/.test(input.name)) {
      throw new ValidationError('name', 'must be a string of at most 128 characters without control characters');
    }
    name = input.name;
  }
  return {
    users, namespaces, role: role as Role, ...(name === undefined ? {} : { name }),
    ...(input.expires === undefined ? {} : { expiresInSeconds: parseDuration(input.expires, 'expires') }),
  };
}

/**
 * API keys in Redis: one hash per key (`agentmem:apikey:<id>`) holding its scope, role, expiry,
 * revoked flag and the sha256 of its secret, plus a set of ids for listing. A key is looked up by
 * the id in the token and its secret compared in constant time; an unknown id, a wrong secret, a
 * revoked or an expired key all take that same path and end in the same refusal.
 */
export class ApiKeyStore {
  private readonly scripts: ScriptGateway;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    /** The comparison of secret hashes (tests wrap it to see that every lookup compares). */
    private readonly compare: (presented: Buffer, stored: Buffer) => boolean = sameHash,
  ) {
    this.scripts = new ScriptGateway(redis, keys);
  }

  /** Creates a key; the token is returned here and never again. */
  async create(input: NewKey): Promise<{ token: string; key: ApiKeyInfo }> {
    const { id, token, secret } = newToken();
    const key = await this.store(id, secret, input);
    if (!key) throw new Error(`API key id ${id} collided with an existing one; try again`);
    return { token, key };
  }

  /**
   * Installs `token` (AGENTMEM_BOOTSTRAP_ADMIN_KEY) as an admin key bound to `*`, unless its id
   * exists: then it is left as it is (revoked stays revoked). `conflict` when the id holds
   * another secret.
   */
  async installBootstrap(token: string): Promise<{ keyId: string; outcome: 'installed' | 'present' | 'revoked' | 'conflict' }> {
    const parsed = parseToken(token);
    if (!parsed) {
      throw new ValidationError('AGENTMEM_BOOTSTRAP_ADMIN_KEY', 'must be am_<12 hex>_<32-128 base64url characters>, e.g. am_$(openssl rand -hex 6)_$(openssl rand -base64 32 | tr "+/" "-_" | tr -d "=")');
    }
    const name = 'bootstrap admin (AGENTMEM_BOOTSTRAP_ADMIN_KEY)';
    if (await this.store(parsed.id, parsed.secret, { users: [ALL], namespaces: [ALL], role: 'admin', name })) {
      return { keyId: parsed.id, outcome: 'installed' };
    }
    const hash = await this.redis.hmget(this.keys.apiKey(parsed.id), 'secret_sha256', 'revoked');
    if (!sameHash(hashSecret(parsed.secret), Buffer.from(hash[0] ?? '', 'hex'))) return { keyId: parsed.id, outcome: 'conflict' };
    return { keyId: parsed.id, outcome: hash[1] === '1' ? 'revoked' : 'present' };
  }

  /** The key a token stands for, if it is valid now: known id, matching secret, not revoked, not expired. */
  async verify(token: string): Promise<Principal | null> {
    const parsed = parseToken(token);
    if (!parsed) return null;
    const record = await this.redis.hgetall(this.keys.apiKey(parsed.id));
    const stored = /^[0-9a-f]{64}$/.test(record.secret_sha256 ?? '') ? Buffer.from(record.secret_sha256 as string, 'hex') : NO_HASH;
    const matches = this.compare(hashSecret(parsed.secret), stored);
    const info = matches ? toInfo(record) : null;
    if (!info || info.revoked || (info.expires_ts !== null && info.expires_ts <= Date.now() / 1000)) return null;
    return { auth: 'keys', keyId: info.key_id, name: info.name, role: info.role, users: info.users, namespaces: info.namespaces, expiresTs: info.expires_ts };
  }

  /** Every key, newest first; ids whose record has gone (expired past its grace) are pruned. */
  async list(): Promise<ApiKeyInfo[]> {
    const ids = await this.redis.smembers(this.keys.apiKeyIndex);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hgetall(this.keys.apiKey(id));
    const replies = (await pipeline.exec()) ?? [];
    const found: ApiKeyInfo[] = [];
    const gone: string[] = [];
    ids.forEach((id, i) => {
      const info = toInfo((replies[i]?.[1] ?? {}) as Record<string, string>);
      if (info) found.push(info);
      else gone.push(id);
    });
    if (gone.length > 0) await this.redis.srem(this.keys.apiKeyIndex, ...gone);
    return found.sort((a, b) => b.created_ts - a.created_ts);
  }

  /** Revokes a key at once (every process checks each request against Redis). */
  async revoke(keyId: string): Promise<'revoked' | 'already revoked' | 'not found'> {
    if (!KEY_ID.test(keyId)) throw new ValidationError('key_id', 'must be 12 lowercase hex characters');
    return this.scripts.revokeKey({ keyId, revokedTs: (Date.now() / 1000).toFixed(3) });
  }

  /** Writes a new key record unless the id exists; null when it did. */
  private async store(id: string, secret: string, input: NewKey): Promise<ApiKeyInfo | null> {
    const now = Date.now() / 1000;
    const expiresTs = input.expiresInSeconds === undefined ? null : Math.floor(now) + input.expiresInSeconds;
    const record: Record<string, string> = {
      id, name: input.name ?? '', role: input.role, users: JSON.stringify(input.users), namespaces: JSON.stringify(input.namespaces),
      created_ts: now.toFixed(3), expires_ts: expiresTs === null ? '' : String(expiresTs), revoked: '0', secret_sha256: hashSecret(secret).toString('hex'),
    };
    const dropAtSeconds = expiresTs === null ? null : expiresTs + EXPIRED_KEY_GRACE_SECONDS;
    if (!(await this.scripts.createKey({ keyId: id, record, dropAtSeconds }))) return null;
    return toInfo(record);
  }
}

/** A record as listed; null when it is not a whole key record (missing or damaged). */
function toInfo(record: Record<string, string>): ApiKeyInfo | null {
  if (!record.id || !record.secret_sha256 || !record.role || !record.users || !record.namespaces) return null;
  return {
    key_id: record.id,
    name: record.name ? record.name : null,
    role: record.role as Role,
    users: JSON.parse(record.users) as string[],
    namespaces: JSON.parse(record.namespaces) as string[],
    created_ts: Number(record.created_ts),
    expires_ts: record.expires_ts ? Number(record.expires_ts) : null,
    revoked: record.revoked === '1',
    revoked_ts: record.revoked_ts ? Number(record.revoked_ts) : null,
  };
}
