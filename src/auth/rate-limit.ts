import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { loadScripts } from '../redis/scripts.js';

export interface Bucket {
  kind: 'key' | 'authfail';
  subject: string;
  capacity: number;
  ratePerSecond: number;
}

export interface Allowance {
  allowed: boolean;
  /** When refused: how long until a token is there again. */
  retryAfterMs: number;
}

/** Token buckets in Redis (takeToken-1.lua), shared by every API process. */
export class RateLimiter {
  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
  ) {
    loadScripts(redis);
  }

  /** Takes a token; refused (nothing taken) when the bucket is empty. */
  async take(bucket: Bucket): Promise<Allowance> {
    const [allowed, retryAfterMs] = await this.redis.takeToken(this.keys.rateBucket(bucket.kind, bucket.subject), bucket.capacity, bucket.ratePerSecond);
    return { allowed: allowed === 1, retryAfterMs };
  }
}
