import type { Redis } from 'ioredis';
import { DurabilityError } from '../errors.js';
import type { Logger } from '../log.js';
import { pairs } from './reply.js';
import { asRedisUnavailable } from './unavailable.js';

/**
 * AGENTMEM_DURABILITY. auto: confirm every acknowledgement on disk when the server keeps an
 * append-only file, warn when it cannot; require: refuse to start against a server that can lose
 * acknowledged writes, and answer 503 when a confirmation fails; off: never wait for the disk.
 */
export const DURABILITY_MODES = ['auto', 'require', 'off'] as const;
export type DurabilityMode = (typeof DURABILITY_MODES)[number];

/** A Redis server's persistence settings, as far as it lets us read them. */
export interface Persistence {
  appendonly: boolean;
  /** Undefined when CONFIG is denied (managed Redis) and only INFO could be read. */
  appendfsync: 'always' | 'everysec' | 'no' | undefined;
  /** Major version: WAITAOF under everysec waits for the fsync only from Redis 8 on (redis/redis#13793). */
  major: number;
  source: 'CONFIG GET' | 'INFO';
}

/**
 * How an acknowledgement is known to be on disk. reply: the server fsyncs before it sends any
 * reply (appendfsync always), so every answer — including a read of what a worker wrote — is
 * durable as it arrives. waitaof: WAITAOF 1 0 on the connection that wrote. none: not at all.
 */
export type Confirmation = 'reply' | 'waitaof' | 'none';

export interface Assessment {
  confirmation: Confirmation;
  /** Why an acknowledged write could be lost when Redis crashes; undefined when it cannot. */
  risk: string | undefined;
  /** The policy in a few words, for logs and /readyz. */
  summary: string;
}

/** WAITAOF's own bound: under everysec the next fsync is at most a second away (plus the fsync itself). */
const WAITAOF_TIMEOUT_MS = 1500;
/** The durable writer's command timeout: above WAITAOF's, so a timed-out WAITAOF still answers. */
const WRITER_COMMAND_TIMEOUT_MS = 2000;
const FENCE_TTL_MS = 60_000;

export async function readPersistence(redis: Redis): Promise<Persistence> {
  const major = Number(/^redis_version:(\d+)/m.exec(await redis.info('server'))?.[1] ?? 0);
  try {
    const config = pairs((await redis.call('CONFIG', 'GET', 'appendonly', 'appendfsync')) as unknown[]);
    const fsync = String(config.get('appendfsync'));
    return {
      appendonly: config.get('appendonly') === 'yes',
      appendfsync: fsync === 'always' || fsync === 'everysec' || fsync === 'no' ? fsync : undefined,
      major,
      source: 'CONFIG GET',
    };
  } catch (err) {
    if (asRedisUnavailable(err)) throw err;
    // Managed Redis often denies CONFIG; INFO still says whether the append-only file is on.
    const info = await redis.info('persistence');
    return { appendonly: /^aof_enabled:1/m.test(info), appendfsync: undefined, major, source: 'INFO' };
  }
}

/** What `mode` makes of a server with persistence `p`. */
export function assess(p: Persistence, mode: DurabilityMode): Assessment {
  if (!p.appendonly) {
    return {
      confirmation: 'none',
      risk: 'Redis runs without an append-only file (appendonly no): a crash loses every write since its last snapshot, acknowledged turns included; set appendonly yes on the server',
      summary: 'appendonly no',
    };
  }
  if (p.appendfsync === 'no') {
    return {
      confirmation: 'none',
      risk: 'Redis leaves fsync to the OS (appendfsync no): a crash can lose acknowledged turns and WAITAOF cannot confirm them; set appendfsync always (or everysec) on the server',
      summary: 'appendfsync no',
    };
  }
  if (p.appendfsync === 'always') {
    return { confirmation: 'reply', risk: undefined, summary: 'appendfsync always: Redis fsyncs before it replies' };
  }
  const policy = p.appendfsync === 'everysec' ? 'appendfsync everysec' : `append-only file on (appendfsync unreadable: ${p.source})`;
  if (mode === 'off') {
    return {
      confirmation: 'none',
      risk: `${policy} and AGENTMEM_DURABILITY=off: answers do not wait for the fsync, so a crash can lose the last second of acknowledged turns`,
      summary: `${policy}, unconfirmed`,
    };
  }
  const caveat = p.major > 0 && p.major < 8 ? ' (Redis < 8 confirms the write reached the file, not the disk: safe from a Redis crash, not a machine crash)' : '';
  return { confirmation: 'waitaof', risk: undefined, summary: `${policy}: each acknowledgement waits for WAITAOF${caveat}` };
}

/**
 * Makes an acknowledgement mean what it says: a turn answered 202 (or a finished turn answered
 * to ?wait) survives a Redis crash. Reads the server's persistence settings at start, refuses
 * (require) or warns loudly (auto) when acknowledged writes could be lost, and confirms writes
 * the way the server allows (see Confirmation).
 */
export class Durability {
  private pending: Promise<void> | undefined;
  /** Acknowledgements given without confirmation because WAITAOF timed out (auto mode). */
  unconfirmed = 0;

  private constructor(
    readonly mode: DurabilityMode,
    private current: Assessment,
    /** The connection acknowledged writes go through: WAITAOF covers only its own connection's writes. */
    readonly writer: Redis,
    private readonly redis: Redis,
    private readonly fenceKey: string,
    private readonly log: Logger,
  ) {}

  static async open(redis: Redis, options: { mode: DurabilityMode; fenceKey: string; log: Logger }): Promise<Durability> {
    const { mode, fenceKey, log } = options;
    let assessment = assess(await readPersistence(redis), mode);
    // A WAITAOF blocks its connection until the fsync: it gets one of its own, so that nothing else queues behind it.
    const writer = assessment.confirmation === 'waitaof' ? redis.duplicate({ connectionName: 'agentmem-durable-writes', commandTimeout: WRITER_COMMAND_TIMEOUT_MS }) : redis;
    if (writer !== redis) writer.on('error', () => undefined);
    const durability = new Durability(mode, assessment, writer, redis, fenceKey, log);
    if (assessment.confirmation === 'waitaof') {
      try {
        await durability.confirmRead();
      } catch (err) {
        if (asRedisUnavailable(err)) throw err;
        // An ACL without WAITAOF (or a server without it): nothing can be confirmed.
        assessment = { confirmation: 'none', risk: `Redis refused WAITAOF (${(err as Error).message}): acknowledged turns cannot be confirmed on disk`, summary: 'WAITAOF refused' };
        durability.current = assessment;
      }
    }
    if (assessment.risk !== undefined && mode === 'require') {
      await durability.close();
      throw new DurabilityError(`AGENTMEM_DURABILITY=require: ${assessment.risk}. Fix the server, or set AGENTMEM_DURABILITY=auto to run anyway.`);
    }
    if (assessment.risk !== undefined) {
      log.warn('durability.at_risk', { mode, risk: assessment.risk, fix: 'configure Redis as the risk says; AGENTMEM_DURABILITY=require refuses such a server' });
    } else {
      log.info('durability.confirmed', { mode, confirmation: assessment.confirmation, policy: assessment.summary });
    }
    return durability;
  }

  /** Why acknowledged writes could be lost right now, or undefined. */
  get risk(): string | undefined {
    return this.current.risk;
  }

  get confirmation(): Confirmation {
    return this.current.confirmation;
  }

  /** Resolves once every write `writer` has answered so far is on disk. */
  confirmWrites(): Promise<void> {
    if (this.current.confirmation !== 'waitaof') return Promise.resolve();
    // One WAITAOF covers every write its connection sent before it: the confirmations asked for
    // in one turn of the event loop share the next one.
    this.pending ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => {
      this.pending = undefined;
      return this.waitAof();
    });
    return this.pending;
  }

  /**
   * Resolves once what this process has read so far is on disk, whichever connection wrote it
   * (a finished turn is written by a worker): a write of our own after the read, confirmed,
   * orders the disk past it, since the append-only file is one sequence.
   */
  async confirmRead(): Promise<void> {
    if (this.current.confirmation !== 'waitaof') return;
    await this.writer.set(this.fenceKey, '1', 'PX', FENCE_TTL_MS);
    await this.confirmWrites();
  }

  /**
   * Reads the server's settings again (for /readyz): 'ok', or why acknowledged writes are at risk,
   * including a server reconfigured since start so that the confirmation in use no longer holds.
   */
  async check(): Promise<{ atRisk: boolean; detail: string }> {
    const now = assess(await readPersistence(this.redis), this.mode);
    if (now.risk !== undefined) return { atRisk: true, detail: now.risk };
    if (now.confirmation === 'waitaof' && this.current.confirmation !== 'waitaof') {
      return { atRisk: true, detail: `Redis changed to ${now.summary} after agentmem started without WAITAOF; restart agentmem so that it confirms acknowledgements` };
    }
    if (this.current.risk !== undefined) return { atRisk: true, detail: this.current.risk };
    return { atRisk: false, detail: now.summary };
  }

  async close(): Promise<void> {
    if (this.writer !== this.redis) await this.writer.quit().catch(() => undefined);
  }

  private async waitAof(): Promise<void> {
    const [local] = (await this.writer.call('WAITAOF', 1, 0, WAITAOF_TIMEOUT_MS)) as [number, number];
    if (local >= 1) return;
    const err = new DurabilityError(`Redis did not confirm the write on disk within ${WAITAOF_TIMEOUT_MS} ms (WAITAOF)`);
    if (this.mode === 'require') throw err;
    this.unconfirmed++;
    this.log.warn('durability.unconfirmed', { error: err });
  }
}
