import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * API key tokens: `am_<id>_<secret>`. The id (12 hex characters, 6 random bytes) names the key in
 * Redis, in logs and in `keys list`; it is not secret. The secret is 32 random bytes in base64url
 * (43 characters) and is never stored: Redis holds its sha256.
 *
 * Why a plain sha256 and not a slow password hash (bcrypt, scrypt, argon2): those slow down
 * guessing a low-entropy password from a leaked hash. A 256-bit random secret cannot be guessed
 * either way (2^256 candidates), so a fast hash loses nothing, and it keeps authentication to
 * microseconds per request instead of the tens of milliseconds a KDF would add to every call.
 */
export const KEY_ID = /^[0-9a-f]{12}$/;
/** Secrets of 32-128 base64url characters are accepted, so an operator can bring their own (AGENTMEM_BOOTSTRAP_ADMIN_KEY). */
const TOKEN = /^am_([0-9a-f]{12})_([A-Za-z0-9_-]{32,128})$/;

export interface ParsedToken {
  id: string;
  secret: string;
}

export function parseToken(raw: string): ParsedToken | undefined {
  const match = TOKEN.exec(raw);
  return match ? { id: match[1] as string, secret: match[2] as string } : undefined;
}

export function newToken(): { id: string; token: string; secret: string } {
  const id = randomBytes(6).toString('hex');
  const secret = randomBytes(32).toString('base64url');
  return { id, token: `am_${id}_${secret}`, secret };
}

/** sha256 of a secret: always 32 bytes. */
export function hashSecret(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

/** What a missing or malformed stored hash is compared against, so that every lookup compares 32 bytes with 32 bytes. */
export const NO_HASH: Buffer = Buffer.alloc(32);

/**
 * Compares two secret hashes in constant time. Both are always 32 bytes (the caller substitutes
 * NO_HASH for a missing one); timingSafeEqual throws on unequal lengths, which would itself leak.
 */
export function sameHash(presented: Buffer, stored: Buffer): boolean {
  const other = stored.length === presented.length ? stored : NO_HASH;
  return timingSafeEqual(presented, other) && other !== NO_HASH;
}
