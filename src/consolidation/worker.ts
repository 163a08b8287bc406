import { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { knnTuningOf, type Config } from '../config.js';
import { Consolidator } from './consolidator.js';
import type { Keys } from '../keys.js';
import type { Logger } from '../log.js';
import { blockingConnection } from '../redis/connection.js';
import type { Metrics } from '../metrics.js';
import type { RunningWorker } from '../pipeline/worker.js';

export const CONSOLIDATOR_WORKER = 'consolidator';
const QUEUE = 'consolidate';
const SCHEDULER_ID = 'consolidate-every';
/** How often the worker checks that its schedule still exists (Redis may have lost it: empty restart, FLUSHALL). */
const SCHEDULE_CHECK_MS = 5000;

export function consolidatorFor(redis: Redis, keys: Keys, config: Config, log: Logger, metrics?: Metrics): Consolidator {
  return new Consolidator(redis, keys, { threshold: config.consolidateThreshold ?? config.dedupThreshold, knn: knnTuningOf(config) }, log, metrics);
}

/**
 * Schedules a consolidation pass every consolidateIntervalMs with a BullMQ job scheduler (one
 * schedule however many consolidator processes upsert it) and runs the passes one at a time.
 * Should two processes pick up jobs at once, the pass lock lets only one of them work. A schedule
 * that vanished with Redis's data is put back within SCHEDULE_CHECK_MS.
 */
export async function startConsolidatorWorker(
  deps: { redis: Redis; keys: Keys; config: Config; log: Logger; metrics?: Metrics }, consumerName: string,
): Promise<RunningWorker> {
  const { redis, keys, config } = deps;
  const log = deps.log.child({ worker: CONSOLIDATOR_WORKER, consumer: consumerName });
  const consolidator = consolidatorFor(redis, keys, config, log, deps.metrics);
  // BullMQ blocks on its connections and wants commands retried forever across reconnects. It
  // does not close connections it was given, so stop() quits them.
  const queueConnection = blockingConnection(redis, { maxRetriesPerRequest: null });
  const workerConnection = blockingConnection(redis, { maxRetriesPerRequest: null });
  const queue = new Queue(QUEUE, { connection: queueConnection, prefix: keys.bullPrefix });
  const schedule = () => queue.upsertJobScheduler(SCHEDULER_ID, { every: config.consolidateIntervalMs }, { name: 'pass', opts: { removeOnComplete: 100, removeOnFail: 100 } });
  await schedule();
  let scheduleHealth = 'ok';
  // The queue connection retries forever, so while Redis is down a check waits: one at a time.
  let checking = false;
  const scheduleCheck = setInterval(() => {
    if (checking) return;
    checking = true;
    void (async () => {
      if (await queue.getJobScheduler(SCHEDULER_ID)) return;
      await schedule();
      log.warn('consolidate.schedule_recreated', { scheduler: SCHEDULER_ID, every_ms: config.consolidateIntervalMs });
    })().then(
      () => (scheduleHealth = 'ok'),
      (err: unknown) => (scheduleHealth = `schedule check failed: ${(err as Error).message}`),
    ).finally(() => (checking = false));
  }, SCHEDULE_CHECK_MS);
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
    health: () => (worker.isRunning() ? scheduleHealth : 'stopped'),
    stop: () =>
      (stopping ??= (async () => {
        clearInterval(scheduleCheck);
        await worker.close();
        await queue.close();
        await Promise.all([queueConnection.quit(), workerConnection.quit()].map((p) => p.catch(() => undefined)));
        log.info('worker.stopped', { queue: QUEUE });
      })()),
  };
}
