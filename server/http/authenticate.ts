import type { NextFunction, Request, RequestHandler, Response } from 'express';
import type { Config } from '../../src/config.js';
import type { Logger } from '../../src/log.js';
import type { ApiKeyStore } from '../../src/auth/key-store.js';
import { OPEN_PRINCIPAL, type Principal } from '../../src/auth/principal.js';
import type { RateLimiter } from '../../src/auth/rate-limit.js';
import { parseToken } from '../../src/auth/token.js';

export interface AuthDeps {
  config: Pick<Config, 'auth' | 'keyRatePerSecond' | 'keyRateBurst' | 'authFailuresPerMinute' | 'authFailureBurst'>;
  store: ApiKeyStore;
  limiter: RateLimiter;
  log: Logger;
}

/** The routes that are Server-Sent Event streams: EventSource cannot set headers, so these also take `?access_token=`. */
function isEventStream(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.path === '/v1/memories/events' || /^\/v1\/threads\/[^/]+\/events$/.test(req.path));
}

/** The principal `authenticate` attached to this request. */
export function principalOf(res: Response): Principal {
  const principal = res.locals.principal as Principal | undefined;
  if (!principal) throw new Error('no principal on this request: authenticate() must run before its route');
  return principal;
}

const REFUSED = { error: { message: 'missing or invalid API key' } };

/**
 * Authenticates every request that is not `open` (health, readiness, the page's static files):
 * `Authorization: Bearer <key>`, or on event streams `?access_token=<key>`. A missing, malformed,
 * unknown, wrong, revoked or expired key gets one and the same 401; which it was is logged
 * (with the key id, never the key), not answered.
 *
 * Two token buckets: failed authentications per client address (once it is empty, a failed
 * authentication from that address is 429 instead of 401, whatever was wrong with the key, and is
 * no longer logged; the bucket bounds what failures cost and how much they log), and requests per
 * valid key. A valid key is let through even from an address whose failure bucket is empty: many
 * clients share one address behind NAT or a proxy, and one of them sending bad keys must not lock
 * the others out. This does not help guessing: secrets are 256-bit random values.
 *
 * With authentication off, every request acts with OPEN_PRINCIPAL (every user, admin).
 */
export function authenticate(deps: AuthDeps, open: (req: Request) => boolean): RequestHandler {
  const { config, store, limiter, log } = deps;
  if (config.auth !== 'keys') {
    return (_req, res, next) => {
      res.locals.principal = OPEN_PRINCIPAL;
      next();
    };
  }
  const failures = (address: string) => ({ kind: 'authfail' as const, subject: address, capacity: config.authFailureBurst, ratePerSecond: config.authFailuresPerMinute / 60 });
  return (req: Request, res: Response, next: NextFunction): void => {
    if (open(req)) return next();
    const token = presentedToken(req);
    if (token === undefined) return refuse(res);
    const address = req.socket.remoteAddress ?? 'unknown';
    void (async () => {
      const principal = await store.verify(token);
      if (!principal) {
        const counted = await limiter.take(failures(address));
        if (!counted.allowed) return tooMany(res, counted.retryAfterMs, 'too many failed authentications from this address');
        log.warn('auth.refused', { address, key_id: parseToken(token)?.id ?? null, method: req.method, path: req.path });
        return refuse(res);
      }
      const allowance = await limiter.take({ kind: 'key', subject: principal.keyId as string, capacity: config.keyRateBurst, ratePerSecond: config.keyRatePerSecond });
      if (!allowance.allowed) return tooMany(res, allowance.retryAfterMs, 'rate limit of this API key exceeded');
      res.locals.principal = principal;
      next();
    })().catch(next);
  };
}

/** The key from the Authorization header, or on an event stream from ?access_token (header first). */
function presentedToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header !== undefined) {
    const match = /^Bearer +(\S+) *$/i.exec(header);
    return match ? match[1] : '';
  }
  if (!isEventStream(req)) return undefined;
  const fromQuery = req.query.access_token;
  return typeof fromQuery === 'string' ? fromQuery : undefined;
}

function refuse(res: Response): void {
  res.setHeader('WWW-Authenticate', 'Bearer');
  res.status(401).json(REFUSED);
}

function tooMany(res: Response, retryAfterMs: number, message: string): void {
  res.setHeader('Retry-After', String(Math.max(1, Math.ceil(retryAfterMs / 1000))));
  res.status(429).json({ error: { message } });
}
