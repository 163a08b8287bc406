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
  take(bucket: Bucket): Promise<Allowance> {
    return this.run(bucket, 1);
  }

  /** Whether a token is there, taking none. */
  peek(bucket: Bucket): Promise<Allowance> {
    return this.run(bucket, 0);
  }

  private async run(bucket: Bucket, cost: 0 | 1): Promise<Allowance> {
    const [allowed, retryAfterMs] = await this.redis.takeToken(this.keys.rateBucket(bucket.kind, bucket.subject), bucket.capacity, bucket.ratePerSecond, cost);
    return { allowed: allowed === 1, retryAfterMs };
  }
}
