import type { Config } from '../config.js';
import { blockingConnection } from '../redis/connection.js';
import { ScriptGateway } from '../redis/scripts.js';
import { StreamConsumer, type StreamEntry } from './consumer.js';
import { BLOCK_MS, CONSUMER_LIVE_MS } from './groups.js';
import { deadLetter, type StageDeps } from './stages.js';

export interface RunningWorker {
  name: string;
  consumer: string;
  /** 'ok' while the worker's loop is healthy, else what is wrong (for /readyz). */
  health(): string;
  /** Stops reading, finishes the batch in hand, hands back what it read but did not finish, closes its blocking connection. Safe to call twice. */
  stop(): Promise<void>;
}

/** Runs one stage as a consumer of its stream and group, with reclaiming and dead-lettering. */
export async function startStageWorker(
  name: string,
  deps: StageDeps & { config: StageDeps['config'] & Pick<Config, 'batchSize' | 'claimIdleMs' | 'maxDeliveries'> },
  stream: string,
  group: string,
  consumerName: string,
  handle: (entries: StreamEntry[]) => Promise<void>,
  /** Waits for work `handle` left running in the background (none unless the stage overlaps batches). */
  drain: () => Promise<void> = async () => undefined,
): Promise<RunningWorker> {
  const blocking = blockingConnection(deps.redis);
  blocking.on('error', () => undefined);
  const log = deps.log.child({ worker: name, consumer: consumerName });
  const scripts = new ScriptGateway(deps.redis, deps.keys);
  const consumer = new StreamConsumer(deps.redis, blocking, {
    stream, group, consumer: consumerName, log,
    batchSize: deps.config.batchSize,
    // Sweeps for stale entries happen between reads, so a read must not block past half the idle time.
    blockMs: Math.min(BLOCK_MS, Math.ceil(deps.config.claimIdleMs / 2)), claimIdleMs: deps.config.claimIdleMs, maxDeliveries: deps.config.maxDeliveries,
    handle,
    deadLetter: (entry, entryId, deliveries) => deadLetter(scripts, deps.config, stream, group, name, entry, entryId, deliveries),
  });
  await consumer.start();
  log.info('worker.started', { stream, group });
  let stopping: Promise<void> | undefined;
  return {
    name,
    consumer: consumerName,
    health: () => consumer.health(CONSUMER_LIVE_MS),
    stop: () =>
      (stopping ??= (async () => {
        await consumer.stop();
        await drain();
        await consumer.handBackPending();
        log.info('worker.stopped', { stream, group });
      })()),
  };
}
