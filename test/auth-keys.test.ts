import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EXPIRED_KEY_GRACE_SECONDS, ApiKeyStore, parseDuration, parseNewKey } from '../src/auth/key-store.js';
import { isLoopback, checkAuthMode } from '../src/auth/mode.js';
import { RateLimiter } from '../src/auth/rate-limit.js';
import { ValidationError } from '../src/errors.js';
import { openTiers, type TestTiers } from './support/redis.js';
import { startTestService, type TestService } from './support/service.js';

// Every timingSafeEqual call the code under test makes is recorded (and still compares for real).
const compared = vi.hoisted(() => [] as [number, number][]);
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return {
    ...real,
    timingSafeEqual: (a: NodeJS.ArrayBufferView, b: NodeJS.ArrayBufferView) => {
      compared.push([a.byteLength, b.byteLength]);
      return real.timingSafeEqual(a, b);
    },
  };
});

let t: TestTiers;
let store: ApiKeyStore;
beforeAll(async () => {
  t = await openTiers();
  store = new ApiKeyStore(t.redis, t.keys);
});
afterAll(async () => {
  await t.cleanup();
});

describe('API key store', () => {
  it('keeps only a hash: the secret is in no field of the record, and no listing shows it or its hash', async () => {
    const { token, key } = await store.create({ users: ['alice'], namespaces: ['default'], role: 'write', name: 'laptop' });
    expect(token).toMatch(/^am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const secret = token.slice(16);
    const record = await t.redis.hgetall(t.keys.apiKey(key.key_id));
    expect(JSON.stringify(record)).not.toContain(secret);
    expect(record.secret_sha256).toMatch(/^[0-9a-f]{64}$/);
    const listed = JSON.stringify(await store.list());
    expect(listed).toContain(key.key_id);
    expect(listed).not.toContain(secret);
    expect(listed).not.toContain(record.secret_sha256);
    // Two creates never hand out the same key.
    expect((await store.create({ users: ['alice'], namespaces: ['default'], role: 'write' })).token).not.toBe(token);
  });

  it('looks keys up by id and compares 32-byte hashes in constant time, whether the id is unknown, the secret wrong or right', async () => {
    const { token, key } = await store.create({ users: ['alice'], namespaces: ['*'], role: 'read' });
    const hgetall = vi.spyOn(t.redis, 'hgetall');
    const cases = {
      right: token,
      wrongSecret: `am_${key.key_id}_${'x'.repeat(43)}`,
      unknownId: `am_0123456789ab_${token.slice(16)}`,
      revokedLater: token,
    };
    try {
      for (const [name, candidate] of Object.entries(cases)) {
        if (name === 'revokedLater') await store.revoke(key.key_id);
        compared.length = 0;
        hgetall.mockClear();
        const principal = await store.verify(candidate);
        expect({ name, valid: principal !== null }).toEqual({ name, valid: name === 'right' });
        expect({ name, compared: [...compared] }).toEqual({ name, compared: [[32, 32]] });
        expect(hgetall.mock.calls.map((c) => c[0])).toEqual([t.keys.apiKey(candidate.slice(3, 15))]);
      }
    } finally {
      hgetall.mockRestore();
    }
  });

  it('refuses expired keys, and drops their record a grace period after expiry; keys without expiry never expire', async () => {
    const lasting = await store.create({ users: ['alice'], namespaces: ['*'], role: 'write' });
    const dated = await store.create({ users: ['alice'], namespaces: ['*'], role: 'write', expiresInSeconds: 3600 });
    expect(await t.redis.ttl(t.keys.apiKey(lasting.key.key_id))).toBe(-1);
    const ttl = await t.redis.ttl(t.keys.apiKey(dated.key.key_id));
    expect(ttl).toBeGreaterThan(3600 + EXPIRED_KEY_GRACE_SECONDS - 10);
    expect(ttl).toBeLessThanOrEqual(3600 + EXPIRED_KEY_GRACE_SECONDS);
    expect(await store.verify(dated.token)).not.toBeNull();
    // Expiry passed (the record still there): refused.
    await t.redis.hset(t.keys.apiKey(dated.key.key_id), 'expires_ts', String(Math.floor(Date.now() / 1000) - 1));
    expect(await store.verify(dated.token)).toBeNull();
  });

  it('revokes at once, says so once, and does not re-create a key that is gone', async () => {
    const { token, key } = await store.create({ users: ['bob'], namespaces: ['*'], role: 'write' });
    expect(await store.revoke(key.key_id)).toBe('revoked');
    expect(await store.revoke(key.key_id)).toBe('already revoked');
    expect(await store.verify(token)).toBeNull();
    expect(await store.revoke('abcdefabcdef')).toBe('not found');
    expect(await t.redis.exists(t.keys.apiKey('abcdefabcdef'))).toBe(0);
  });

  it('installs a bootstrap key once, keeps a revoked one revoked, and refuses another secret under its id', async () => {
    const token = `am_b00700000001_${'b'.repeat(43)}`;
    expect(await store.installBootstrap(token)).toEqual({ keyId: 'b00700000001', outcome: 'installed' });
    expect(await store.installBootstrap(token)).toEqual({ keyId: 'b00700000001', outcome: 'present' });
    expect(await store.verify(token)).toMatchObject({ role: 'admin', users: ['*'], namespaces: ['*'] });
    expect(await store.installBootstrap(`am_b00700000001_${'c'.repeat(43)}`)).toEqual({ keyId: 'b00700000001', outcome: 'conflict' });
    await store.revoke('b00700000001');
    expect(await store.installBootstrap(token)).toEqual({ keyId: 'b00700000001', outcome: 'revoked' });
    expect(await store.verify(token)).toBeNull();
    await expect(store.installBootstrap('letmein')).rejects.toBeInstanceOf(ValidationError);
  });

  it('checks new keys: * only alone and only for admin; namespaces default to every one; durations', () => {
    expect(parseNewKey({ users: ['alice'] })).toEqual({ users: ['alice'], namespaces: ['*'], role: 'write' });
    expect(parseNewKey({ users: ['*'] })).toMatchObject({ role: 'admin' });
    expect(parseNewKey({ users: ['a', 'b'], namespaces: ['x'], role: 'read', expires: '12h', name: 'n' })).toEqual({ users: ['a', 'b'], namespaces: ['x'], role: 'read', expiresInSeconds: 43_200, name: 'n' });
    for (const bad of [{}, { users: 'alice' }, { users: ['alice'], role: 'owner' }, { users: ['*'], role: 'read' }, { users: ['alice'], role: 'admin' }, { users: ['a,b'] }, { users: [' alice'] }, { users: ['*'], namespaces: ['x'] }]) {
      expect(() => parseNewKey(bad)).toThrow(ValidationError);
    }
    expect(parseDuration('30d', 'expires')).toBe(2_592_000);
    for (const bad of ['0s', '30', 'd', '1y', '-1d', 30]) expect(() => parseDuration(bad, 'expires')).toThrow(ValidationError);
  });
});

describe('listen address and auth mode', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) expect({ host, loopback: isLoopback(host) }).toEqual({ host, loopback: true });
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '128.0.0.1', '::2']) expect({ host, loopback: isLoopback(host) }).toEqual({ host, loopback: false });
  });

  it('refuses auth off on a non-loopback address unless it is off-insecure', () => {
    expect(() => checkAuthMode({ auth: 'off', host: '0.0.0.0' })).toThrow(/AGENTMEM_AUTH/);
    expect(() => checkAuthMode({ auth: 'off', host: '127.0.0.1' })).not.toThrow();
    expect(() => checkAuthMode({ auth: 'off-insecure', host: '0.0.0.0' })).not.toThrow();
    expect(() => checkAuthMode({ auth: 'keys', host: '0.0.0.0' })).not.toThrow();
  });
});

describe('rate limits', () => {
  it('a token bucket: the burst passes, then refusals with the wait, taking nothing', async () => {
    const limiter = new RateLimiter(t.redis, t.keys);
    const bucket = { kind: 'key' as const, subject: 'bucket-test', capacity: 3, ratePerSecond: 0.5 };
    for (let i = 0; i < 3; i++) expect(await limiter.take(bucket)).toEqual({ allowed: true, retryAfterMs: 0 });
    for (let i = 0; i < 2; i++) {
      const refused = await limiter.take(bucket);
      expect(refused.allowed).toBe(false);
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      expect(refused.retryAfterMs).toBeLessThanOrEqual(2000);
    }
    expect(await t.redis.pttl(t.keys.rateBucket('key', 'bucket-test'))).toBeGreaterThan(0);
  });

  describe('over HTTP', () => {
    let s: TestService;
    let token: string;
    beforeAll(async () => {
      s = await startTestService({ auth: 'keys', keyRateBurst: 3, keyRatePerSecond: 0.2, authFailureBurst: 3, authFailuresPerMinute: 1 }, { workers: false });
      token = (await new ApiKeyStore(s.redis, s.keys).create({ users: ['alice'], namespaces: ['*'], role: 'read' })).token;
    });
    afterAll(async () => {
      await s?.stop();
    });

    it('a key over its rate gets 429 with Retry-After', async () => {
      const statuses: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await fetch(`${s.service.url}/v1/whoami`, { headers: { authorization: `Bearer ${token}` } });
        statuses.push(last.status);
      }
      expect(statuses).toEqual([200, 200, 200, 429]);
      expect(Number(last?.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    });

    it('failed authentications from one address: 401 until the bucket is empty, then 429 whatever was wrong; a valid key still passes', async () => {
      const attempt = async (authorization: string) => fetch(`${s.service.url}/v1/whoami`, { headers: { authorization } });
      const wrongSecret = `Bearer am_${token.slice(3, 15)}_${'z'.repeat(43)}`;
      const unknownId = `Bearer am_000000000000_${'q'.repeat(43)}`;
      expect([(await attempt(wrongSecret)).status, (await attempt(unknownId)).status, (await attempt('Bearer nonsense')).status]).toEqual([401, 401, 401]);
      const limited = await Promise.all([wrongSecret, unknownId, 'Bearer nonsense'].map(async (a) => {
        const res = await attempt(a);
        return { status: res.status, retryAfter: Number(res.headers.get('retry-after')), body: await res.json() };
      }));
      expect(new Set(limited.map((l) => JSON.stringify(l.body))).size).toBe(1);
      for (const l of limited) {
        expect(l.status).toBe(429);
        expect(l.retryAfter).toBeGreaterThanOrEqual(1);
      }
      // Another client behind the same address (NAT, a proxy) is not locked out by them.
      const other = (await new ApiKeyStore(s.redis, s.keys).create({ users: ['bob'], namespaces: ['*'], role: 'read' })).token;
      expect((await attempt(`Bearer ${other}`)).status).toBe(200);
      expect((await fetch(`${s.service.url}/healthz`)).status).toBe(200);
    });
  });
});
