import type { Redis } from 'ioredis';
import type { Keys } from '../keys.js';
import type { LongTermMemory } from '../memory/long-term.js';
import type { Durability } from '../redis/durability.js';
import { readTurn, type TurnResult } from './turns.js';

/**
 * Lets HTTP requests wait for their turn to finish without polling: one Pub/Sub connection per
 * process hears every finished turn id and wakes whoever waits for it. Pub/Sub may drop a
 * message (a reconnect); the turn hash is read again at the deadline, so a lost wake-up costs
 * latency, never a wrong answer.
 */
export class TurnWaiter {
  private readonly waiting = new Map<string, Set<() => void>>();
  private readonly subscriber: Redis;
  private ready: Promise<unknown> | undefined;
  private draining = false;

  constructor(
    private readonly redis: Redis,
    private readonly keys: Keys,
    private readonly longTerm: Pick<LongTermMemory, 'withTtls'>,
    /** A finished turn was written by a worker: confirmed on disk before it is answered. */
    private readonly durability: Pick<Durability, 'confirmRead'> = { confirmRead: async () => undefined },
  ) {
    this.subscriber = redis.duplicate();
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, turnId: string) => {
      for (const wake of this.waiting.get(turnId) ?? []) wake();
    });
  }

  /** The turn once it is done or failed (and that outcome is on disk), or its state at the deadline (or when the process starts shutting down). */
  async waitFor(turnId: string, timeoutMs: number): Promise<TurnResult | null> {
    const result = await this.read(turnId, timeoutMs);
    if (result && result.status !== 'queued') await this.durability.confirmRead();
    return result;
  }

  private async read(turnId: string, timeoutMs: number): Promise<TurnResult | null> {
    if (this.draining) return readTurn(this.redis, this.keys, this.longTerm, turnId);
    await this.subscribed();
    let wake!: () => void;
    const woken = new Promise<void>((resolve) => (wake = resolve));
    const set = this.waiting.get(turnId) ?? new Set();
    set.add(wake);
    this.waiting.set(turnId, set);
    let timer: NodeJS.Timeout | undefined;
    try {
      const now = await readTurn(this.redis, this.keys, this.longTerm, turnId);
      if (!now || now.status !== 'queued' || this.draining) return now;
      await Promise.race([woken, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      return await readTurn(this.redis, this.keys, this.longTerm, turnId);
    } finally {
      clearTimeout(timer);
      set.delete(wake);
      if (set.size === 0) this.waiting.delete(turnId);
    }
  }

  /** Shutdown: every wait ends now with the turn as it stands, and later ones do not wait. */
  drain(): void {
    this.draining = true;
    for (const wakes of this.waiting.values()) for (const wake of wakes) wake();
  }

  /** True once drain() was called: an answer without the result is due to the shutdown, not a timeout. */
  get isDraining(): boolean {
    return this.draining;
  }

  /**
   * Subscribes once. A failed attempt (Redis was down) is forgotten, so the next wait tries again;
   * once subscribed, ioredis subscribes again by itself after every reconnect.
   */
  private subscribed(): Promise<unknown> {
    this.ready ??= this.subscriber.subscribe(this.keys.turnDoneChannel).catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  async close(): Promise<void> {
    await this.subscriber.quit().catch(() => undefined);
  }
}
