import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import { ScriptGateway } from '../redis/scripts.js';

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
  private readonly scripts: ScriptGateway;

  constructor(redis: Redis, keys: Keys) {
    this.scripts = new ScriptGateway(redis, keys);
  }

  /** Takes a token; refused (nothing taken) when the bucket is empty. */
  async take(bucket: Bucket): Promise<Allowance> {
    return this.scripts.takeToken(bucket);
  }
}
