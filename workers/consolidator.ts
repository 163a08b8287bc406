import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { knnTuningOf, type Config } from '../src/config.js';
import { Consolidator } from '../src/consolidation/consolidator.js';
import type { Keys } from '../src/keys.js';
import type { Logger } from '../src/log.js';
import type { Metrics } from '../src/metrics.js';
import type { RunningWorker } from '../src/pipeline/worker.js';

export const CONSOLIDATOR_WORKER = 'consolidator';
const QUEUE = 'consolidate';

export function consolidatorFor(redis: Redis, keys: Keys, config: Config, log: Logger, metrics?: Metrics): Consolidator {
  return new Consolidator(redis, keys, { threshold: config.consolidateThreshold ?? config.dedupThreshold, knn: knnTuningOf(config) }, log, metrics);
}

/**
 * Schedules a consolidation pass every consolidateIntervalMs with a BullMQ job scheduler (one
 * schedule however many consolidator processes upsert it) and runs the passes one at a time.
 * Should two processes pick up jobs at once, the pass lock lets only one of them work.
 */
export async function startConsolidatorWorker(
  deps: { redis: Redis; keys: Keys; config: Config; log: Logger; metrics?: Metrics }, consumerName: string,
): Promise<RunningWorker> {
  const { redis, keys, config } = deps;
  const log = deps.log.child({ worker: CONSOLIDATOR_WORKER, consumer: consumerName });
  const consolidator = consolidatorFor(redis, keys, config, log, deps.metrics);
  // BullMQ blocks on its connections and wants commands retried forever across reconnects. It
  // does not close connections it was given, so stop() quits them.
  const queueConnection = redis.duplicate({ maxRetriesPerRequest: null });
  const workerConnection = redis.duplicate({ maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection: queueConnection, prefix: keys.bullPrefix });
  await queue.upsertJobScheduler('consolidate-every', { every: config.consolidateIntervalMs }, { name: 'pass', opts: { removeOnComplete: 100, removeOnFail: 100 } });
  const worker = new Worker(
    QUEUE,
    async () => consolidator.runPass((progress) => log.info('consolidate.progress', { ...progress })),
    { connection: workerConnection, prefix: keys.bullPrefix, concurrency: 1, name: consumerName },
  );
  worker.on('failed', (job, err) => log.error('consolidate.failed', { job_id: job?.id, error: err }));
  worker.on('error', (err) => log.error('consolidate.error', { error: err }));
  log.info('worker.started', { queue: QUEUE, every_ms: config.consolidateIntervalMs });
  let stopping: Promise<void> | undefined;
  return {
    name: CONSOLIDATOR_WORKER,
    consumer: consumerName,
    stop: () =>
      (stopping ??= (async () => {
        await worker.close();
        await queue.close();
        await Promise.all([queueConnection.quit(), workerConnection.quit()].map((p) => p.catch(() => undefined)));
        log.info('worker.stopped', { queue: QUEUE });
      })()),
  };
}
