import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { isMissingGroup } from '../redis/missing.js';
import { pairs } from '../redis/reply.js';

export interface StreamEntry {
  id: string;
  fields: Record<string, string>;
  /** Binary field values (the embedding), read without string decoding. */
  raw: Record<string, Buffer>;
}

export interface ConsumerOptions {
  stream: string;
  group: string;
  consumer: string;
  batchSize: number;
  /** How long one XREADGROUP blocks; also bounds how late a stop is noticed. */
  blockMs: number;
  claimIdleMs: number;
  maxDeliveries: number;
  /** Processes a batch. Each entry it completes it acknowledges itself (atomically with its writes); any entry left unacknowledged is retried after claimIdleMs. */
  handle(entries: StreamEntry[]): Promise<void>;
  /** Moves an entry delivered maxDeliveries times out of the stream. */
  deadLetter(entry: StreamEntry | undefined, entryId: string, deliveries: number): Promise<void>;
  log: Logger;
}

const HAND_BACK_PAGE = 100;

export function defaultConsumerName(): string {
  return `${hostname()}-${process.pid}-${randomBytes(2).toString('hex')}`;
}

/**
 * One consumer of one consumer group: reads new entries with a blocking XREADGROUP, and on a
 * timer reclaims entries that other consumers left pending longer than claimIdleMs (they died,
 * or their handler failed), sending those delivered maxDeliveries times to the dead-letter path.
 * Delivery is at least once; the handlers make the effects exactly once.
 *
 * When Redis answers NOGROUP (it restarted without its data, was flushed, or failed over to an
 * empty replica) the group is recreated at id 0 and reading goes on. That is safe because every
 * stage script deletes the entries it finishes (ackDelete, deadLetter): what a stream still holds
 * is unfinished work, which the new group delivers again, and a stage that finds its outcome
 * already recorded on the turn only acknowledges.
 */
export class StreamConsumer {
  private stopping = false;
  private loop: Promise<void> | undefined;
  private lastSweep = 0;
  /** When the last XREADGROUP returned (entries or a timeout): the loop's heartbeat. */
  private lastReadAt = Date.now();
  private lastError: Error | undefined;

  constructor(
    private readonly redis: Redis,
    /** A connection of its own: a blocking read holds it. */
    private readonly blocking: Redis,
    private readonly options: ConsumerOptions,
  ) {}

  async start(): Promise<void> {
    await ensureGroup(this.redis, this.options.stream, this.options.group);
    // Listed in the group from the start, not only from its first read.
    await this.redis.xgroup('CREATECONSUMER', this.options.stream, this.options.group, this.options.consumer);
    this.loop = this.run();
  }

  /** 'ok' while the loop keeps reading (its last read ended within `withinMs`), else what is wrong. */
  health(withinMs: number): string {
    if (this.stopping) return 'stopped';
    const quietMs = Date.now() - this.lastReadAt;
    if (quietMs <= withinMs) return 'ok';
    return `stalled: no read for ${quietMs} ms${this.lastError ? ` (last error: ${this.lastError.message})` : ''}`;
  }

  /**
   * Stops reading and returns once the loop has, with the batch in hand handled. The blocking
   * read in progress is left to return by itself (within blockMs): cut off, it could leave
   * entries Redis had already delivered pending for a consumer that never saw them. Entries it
   * returns are handed back unhandled.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.loop;
    await this.blocking.quit().catch(() => this.blocking.disconnect());
  }

  /**
   * Makes every entry still pending for this consumer claimable by any other at once (idle past
   * claimIdleMs), instead of after claimIdleMs: for a consumer that is going away, once its
   * handler has finished.
   */
  async handBackPending(): Promise<void> {
    const { stream, group, consumer, log } = this.options;
    const handedBack: string[] = [];
    try {
      for (let after = '-'; ;) {
        const page = (await this.redis.xpending(stream, group, after, '+', HAND_BACK_PAGE, consumer)) as [string, string, number, number][];
        const ids = page.map(([id]) => id);
        await this.handBack(ids, 'keep');
        handedBack.push(...ids);
        if (page.length < HAND_BACK_PAGE) break;
        after = `(${ids[ids.length - 1]}`;
      }
      if (handedBack.length > 0) log.info('consumer.handed_back', { stream, group, consumer, count: handedBack.length, ids: handedBack.slice(0, 100) });
    } catch (err) {
      log.warn('consumer.hand_back_failed', { stream, group, consumer, error: err });
    }
  }

  /**
   * XCLAIM to ourselves with IDLE set to claimIdleMs: the entries stay pending (nothing is lost
   * if we die now) but the next sweep of any consumer takes them. JUSTID leaves the delivery
   * count alone; entries never handled get back the delivery that brought them here, so a
   * shutdown does not bring an entry closer to the dead-letter stream.
   */
  private async handBack(ids: string[], deliveries: 'keep' | 'undo'): Promise<void> {
    if (ids.length === 0) return;
    const { stream, group, consumer, claimIdleMs } = this.options;
    await this.redis.call('XCLAIM', stream, group, consumer, 0, ...ids, 'IDLE', claimIdleMs, ...(deliveries === 'undo' ? ['RETRYCOUNT', 0] : []), 'JUSTID');
  }

  private async run(): Promise<void> {
    const { log } = this.options;
    while (!this.stopping) {
      try {
        if (Date.now() - this.lastSweep >= this.options.claimIdleMs / 2) {
          this.lastSweep = Date.now();
          const reclaimed = await this.reclaim();
          await this.forgetIdleConsumers();
          if (reclaimed.length > 0) await this.options.handle(reclaimed);
        }
        const entries = await this.readNew();
        this.lastReadAt = Date.now();
        this.lastError = undefined;
        if (this.stopping) {
          await this.handBack(entries.map((e) => e.id), 'undo');
          break;
        }
        if (entries.length > 0) await this.options.handle(entries);
      } catch (err) {
        if (this.stopping) break;
        const failure = isMissingGroup(err) ? await this.recreateGroup(err as Error) : (err as Error);
        if (!failure) continue;
        this.lastError = failure;
        log.error('consumer.error', { stream: this.options.stream, group: this.options.group, error: failure });
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }

  /** The group (and stream) vanished: recreates it at id 0 (see the class comment). Returns why that failed, if it did. */
  private async recreateGroup(cause: Error): Promise<Error | undefined> {
    const { stream, group, log } = this.options;
    try {
      const created = await ensureGroup(this.redis, stream, group);
      log.warn('consumer.group_recreated', { stream, group, created, cause: cause.message });
      return undefined;
    } catch (err) {
      return new Error(`recreating the consumer group after "${cause.message}" failed: ${(err as Error).message}`, { cause: err });
    }
  }

  private async readNew(): Promise<StreamEntry[]> {
    const { group, consumer, batchSize, blockMs, stream } = this.options;
    const reply = (await this.blocking.xreadgroupBuffer(
      'GROUP', group, consumer, 'COUNT', batchSize, 'BLOCK', blockMs, 'STREAMS', stream, '>',
    )) as [Buffer, [Buffer, Buffer[]][]][] | null;
    return reply?.[0]?.[1].map(toEntry) ?? [];
  }

  /** Pending entries idle past claimIdleMs: dead-lettered when out of deliveries, else claimed for us. */
  private async reclaim(): Promise<StreamEntry[]> {
    const { stream, group, consumer, claimIdleMs, maxDeliveries, batchSize, log } = this.options;
    const pending = (await this.redis.xpending(stream, group, 'IDLE', claimIdleMs, '-', '+', batchSize)) as [string, string, number, number][];
    const claimable: string[] = [];
    for (const [id, owner, , deliveries] of pending) {
      if (deliveries >= maxDeliveries) {
        const [entry] = await this.readById(id);
        log.warn('consumer.dead_letter', { stream, group, entry_id: id, deliveries, last_consumer: owner, turn_id: entry?.fields.turn_id });
        await this.options.deadLetter(entry, id, deliveries);
      } else {
        claimable.push(id);
      }
    }
    if (claimable.length === 0) return [];
    // XCLAIM re-checks the idle time, so of several consumers sweeping at once only one gets each entry.
    const claimed = (await this.redis.callBuffer('XCLAIM', stream, group, consumer, claimIdleMs, ...claimable)) as [Buffer, Buffer[] | null][];
    const entries = claimed.filter(([, fields]) => fields !== null).map(toEntry);
    if (entries.length > 0) log.info('consumer.reclaimed', { stream, group, consumer, count: entries.length, ids: entries.map((e) => e.id) });
    return entries;
  }

  /**
   * Removes consumers that own nothing and have not read for ten claim-idle periods (processes
   * that exited, each leaving its name in the group). One with pending entries is kept: those are
   * reclaimed first, and it goes on a later sweep.
   */
  private async forgetIdleConsumers(): Promise<void> {
    const { stream, group, consumer, claimIdleMs, log } = this.options;
    const forgetAfterMs = claimIdleMs * 10;
    const consumers = (await this.redis.xinfo('CONSUMERS', stream, group)) as unknown[][];
    for (const raw of consumers) {
      const info = pairs(raw);
      const name = String(info.get('name'));
      // 'inactive' (Redis 7.2+) counts from the last successful read, -1 if it never read; 'idle'
      // from the last attempt.
      const inactive = Number(info.get('inactive') ?? -1);
      const quietMs = inactive >= 0 ? inactive : Number(info.get('idle'));
      if (name === consumer || Number(info.get('pending')) > 0 || !(quietMs > forgetAfterMs)) continue;
      await this.redis.xgroup('DELCONSUMER', stream, group, name);
      log.info('consumer.forgotten', { stream, group, forgotten: name, quiet_ms: quietMs });
    }
  }

  private async readById(id: string): Promise<StreamEntry[]> {
    const entries = (await this.redis.xrangeBuffer(this.options.stream, id, id)) as [Buffer, Buffer[]][];
    return entries.map(toEntry);
  }
}

/** Creates the group at id 0 (and the stream) unless it exists; returns whether it was created. */
export async function ensureGroup(redis: Redis, stream: string, group: string): Promise<boolean> {
  try {
    await redis.xgroup('CREATE', stream, group, '0', 'MKSTREAM');
    return true;
  } catch (err) {
    if (!(err instanceof Error && err.message.includes('BUSYGROUP'))) throw err;
    return false;
  }
}

function toEntry([id, flat]: [Buffer, Buffer[] | null]): StreamEntry {
  const fields: Record<string, string> = {};
  const raw: Record<string, Buffer> = {};
  const values = flat ?? [];
  for (let i = 0; i + 1 < values.length; i += 2) {
    const name = (values[i] as Buffer).toString();
    raw[name] = values[i + 1] as Buffer;
    fields[name] = (values[i + 1] as Buffer).toString();
  }
  return { id: id.toString(), fields, raw };
}
