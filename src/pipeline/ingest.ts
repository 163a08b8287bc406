import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Config } from '../config.js';
import { ValidationError } from '../errors.js';
import type { Keys } from '../keys.js';
import type { Durability } from '../redis/durability.js';
import { ScriptGateway } from '../redis/scripts.js';
import * as v from '../validate.js';
import type { MemoryKind, TurnRole } from '../validate.js';

export const REMEMBER_MODES = ['episodic', 'semantic', 'skip'] as const;
export type RememberMode = MemoryKind | 'skip';

export interface TurnInput {
  threadId: string;
  role: TurnRole;
  content: string;
  user: string;
  namespace: string;
  agent: string;
  remember: RememberMode;
  k: number;
  threshold: number;
}

export interface Accepted {
  turnId: string;
  threadId: string;
  /** False when an Idempotency-Key matched an earlier turn: nothing new was queued. */
  created: boolean;
  /** The turn's position in the thread (turn_count right after it); absent on a replay. */
  turnCount?: number;
}

/** What an Idempotency-Key may be: 1-255 printable ASCII characters without spaces. */
export const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** Validates a turn's fields (defaults as in the reference demos) and names the first bad one. */
export function parseTurnInput(threadId: string, body: Record<string, unknown>, defaults: Pick<Config, 'recallK' | 'recallThreshold'>): TurnInput {
  const remember = body.remember ?? 'episodic';
  if (typeof remember !== 'string' || !(REMEMBER_MODES as readonly string[]).includes(remember)) {
    throw new ValidationError('remember', `must be one of ${REMEMBER_MODES.join(', ')}`);
  }
  return {
    threadId: v.threadId(threadId),
    role: v.role(body.role ?? 'user'),
    content: v.memoryText(body.content, 'content'),
    user: v.scopeValue(body.user ?? 'default', 'user'),
    namespace: v.scopeValue(body.namespace ?? 'default', 'namespace'),
    agent: v.scopeValue(body.agent ?? 'default', 'agent'),
    remember: remember as RememberMode,
    k: v.positiveInt(body.k ?? defaults.recallK, 'k', 100),
    threshold: v.distanceThreshold(body.threshold ?? defaults.recallThreshold, 'threshold'),
  };
}

/**
 * The API's half of the pipeline: one script appends the turn to working memory, queues it for
 * the workers and logs it — atomically, so acceptance order is working-memory order. accept()
 * resolves only once the turn is confirmed on disk as `durability` allows, so the 202 that
 * follows means the turn survives a Redis crash.
 */
export class Ingest {
  private readonly scripts: ScriptGateway;

  constructor(
    redis: Redis,
    keys: Keys,
    private readonly config: Pick<Config, 'windowSize' | 'sessionTtlSeconds' | 'eventsMaxLen' | 'turnTtlSeconds' | 'maxBacklog'>,
    /** Without it, Redis's reply to the script is the only confirmation (tests on a Redis without persistence). */
    private readonly durability: Pick<Durability, 'writer' | 'confirmWrites' | 'confirmRead'> = { writer: redis, confirmWrites: async () => undefined, confirmRead: async () => undefined },
  ) {
    this.scripts = new ScriptGateway(durability.writer, keys);
  }

  /**
   * `exclusive`: refuse (ThreadNotVisible) a thread that exists with another user. `keyId`: the
   * API key that sent the turn, recorded as its provenance.
   */
  async accept(turn: TurnInput, idempotencyKey?: string, by: { exclusive?: boolean; keyId?: string | null } = {}): Promise<Accepted> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw new ValidationError('Idempotency-Key', 'must be 1-255 printable ASCII characters');
    }
    const turnId = v.newId();
    const keyHash = createHash('sha256').update(idempotencyKey ?? '').digest('hex').slice(0, 32);
    const reply = await this.scripts.acceptTurn({
      ...turn, turnId, idempotencyKeyHash: idempotencyKey === undefined ? null : keyHash,
      exclusive: by.exclusive ?? false, keyId: by.keyId ?? null,
      windowSize: this.config.windowSize, sessionTtlSeconds: this.config.sessionTtlSeconds, turnTtlSeconds: this.config.turnTtlSeconds,
      eventsMaxLen: this.config.eventsMaxLen, maxBacklog: this.config.maxBacklog,
    });
    // A replay writes nothing, but the turn it found may be another connection's write not yet on disk.
    await (reply.created ? this.durability.confirmWrites() : this.durability.confirmRead());
    return reply.created
      ? { turnId: reply.turnId, threadId: turn.threadId, created: true, turnCount: reply.turnCount }
      : { turnId: reply.turnId, threadId: turn.threadId, created: false };
  }
}
