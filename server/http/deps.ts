import type { Redis } from 'ioredis';
import type { Config } from '../../src/config.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import type { Keys } from '../../src/keys.js';
import type { Logger } from '../../src/log.js';
import type { EventLog } from '../../src/memory/events.js';
import type { LongTermMemory } from '../../src/memory/long-term.js';
import type { WorkingMemory } from '../../src/memory/working.js';
import type { Metrics } from '../../src/metrics.js';
import type { Ingest } from '../../src/pipeline/ingest.js';
import type { TurnWaiter } from '../../src/pipeline/waiter.js';
import type { RunningWorker } from '../../src/pipeline/worker.js';
import type { Durability } from '../../src/redis/durability.js';
import type { StreamFanout } from '../../src/redis/stream-fanout.js';

/** What the API's routes (app.ts and the reference routes in legacy.ts) are built from. */
export interface ApiDeps {
  redis: Redis;
  keys: Keys;
  working: WorkingMemory;
  longTerm: LongTermMemory;
  events: EventLog;
  embedder: TextEmbedder;
  ingest: Ingest;
  waiter: TurnWaiter;
  fanout: StreamFanout;
  durability: Durability;
  config: Config;
  log: Logger;
  metrics: Metrics;
  /** The pipeline workers running in this process, for /readyz. */
  workers?: readonly Pick<RunningWorker, 'name' | 'health'>[];
}
