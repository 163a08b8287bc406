import type { AgentMem } from '../src/agentmem.js';
import { prepareAuth } from '../src/auth/startup.js';
import type { Config } from '../src/config.js';
import type { TextEmbedder } from '../src/embedder/types.js';
import { createApp } from './http/app.js';
import { HttpFront } from './http/front.js';
import { Releasers } from '../src/lifecycle.js';
import type { Logger } from '../src/log.js';
import { watchExpiries } from '../src/memory/expiries.js';
import { Metrics } from '../src/metrics.js';
import { defaultConsumerName } from '../src/pipeline/consumer.js';
import { Ingest } from '../src/pipeline/ingest.js';
import { TurnWaiter } from '../src/pipeline/waiter.js';
import { StreamFanout } from '../src/redis/stream-fanout.js';
import type { RunningWorker } from '../src/pipeline/worker.js';
import { startEmbedRecallWorker } from '../src/pipeline/embed-recall-worker.js';
import { startRememberWorker } from '../src/pipeline/remember-worker.js';
import type { StageDeps } from '../src/pipeline/stages.js';

export interface RunningService {
  url: string;
  workers: RunningWorker[];
  /**
   * Shuts down: stops accepting at once, answers waiting requests with what they have, ends
   * event streams, lets the workers finish their batches and hand back what they read but did
   * not start, closes connections. Safe to call twice.
   */
  stop(): Promise<void>;
}

/** The API and, unless `workers` is false, both pipeline workers in this one process. */
export async function startService(
  mem: AgentMem & { embedder: TextEmbedder },
  config: Config,
  log: Logger,
  options: { workers?: boolean } = {},
): Promise<RunningService> {
  const metrics = new Metrics();
  metrics.watchStreams(mem.redis, mem.keys);
  mem.longTerm.reportSearchesTo(metrics);
  const deps = { ...mem, config, log, metrics };
  const consumer = config.consumerName ?? defaultConsumerName();
  const acquired = new Releasers(log);
  try {
    const stopInsecureWarning = await prepareAuth(mem.redis, mem.keys, config, log);
    acquired.add('insecure-mode warning', async () => stopInsecureWarning());
    const { ingest, waiter } = openIngest(mem, config, acquired);
    metrics.watchDurability(mem.durability);
    const fanout = new StreamFanout(mem.redis, log, { connectionName: `agentmem-events-${consumer}`, wakeKey: mem.keys.eventsWake(consumer) });
    acquired.add('event-stream reader', () => fanout.close());
    metrics.watchEventStreams(fanout);
    // Filled as the workers start, after the port is bound; /readyz reads it as it is then.
    const workers: RunningWorker[] = [];
    const http = new HttpFront(createApp({ ...deps, ingest, waiter, fanout, workers }), config.shutdownTimeoutMs / 2);
    // The port before the workers: a process that cannot serve must not take work.
    const port = await http.listen(config.port, config.host, 'API port', 'AGENTMEM_PORT');
    acquired.add('API port', () => http.close());
    const stopWatchingExpiries = await watchExpiries(mem.redis, mem.keys, mem.longTerm, log);
    acquired.add('expiry watch', stopWatchingExpiries);
    if (options.workers !== false) await startWorkers(deps, mem.embedder, consumer, acquired, workers);
    const url = `http://${config.host}:${port}`;
    log.info('serve.listening', { url: `${url}/`, redis: mem.server.origin, workers: workers.map((w) => w.name) });

    let stopping: Promise<void> | undefined;
    return {
      url,
      workers,
      stop: () =>
        (stopping ??= (async () => {
          // Requests and workers side by side: no answer a client waits for depends on the workers.
          waiter.drain();
          await Promise.all([http.close(), ...workers.map((w) => w.stop())]);
          await acquired.releaseAll();
        })()),
    };
  } catch (err) {
    await acquired.releaseAll();
    throw err;
  }
}

/** What a process that takes turns without HTTP (`agentmem mcp` over stdio) runs: ingest, the turn waiter and, unless `workers` is false, both pipeline workers. */
export interface RunningPipeline {
  ingest: Ingest;
  waiter: TurnWaiter;
  workers: RunningWorker[];
  /** Ends waits with what they have, lets the workers finish their batches, closes connections. Safe to call twice. */
  stop(): Promise<void>;
}

/** The pipeline's ends in this process, as startService runs them, without the HTTP API. */
export async function startPipeline(
  mem: AgentMem & { embedder: TextEmbedder },
  config: Config,
  log: Logger,
  options: { workers?: boolean } = {},
): Promise<RunningPipeline> {
  const acquired = new Releasers(log);
  try {
    const { ingest, waiter } = openIngest(mem, config, acquired);
    const workers: RunningWorker[] = [];
    if (options.workers !== false) await startWorkers({ ...mem, config, log }, mem.embedder, config.consumerName ?? defaultConsumerName(), acquired, workers);
    let stopping: Promise<void> | undefined;
    return {
      ingest,
      waiter,
      workers,
      stop: () =>
        (stopping ??= (async () => {
          waiter.drain();
          await Promise.all(workers.map((w) => w.stop()));
          await acquired.releaseAll();
        })()),
    };
  } catch (err) {
    await acquired.releaseAll();
    throw err;
  }
}

/** The API's half of the pipeline: turns accepted durably, and waits on their results. */
function openIngest(mem: AgentMem, config: Config, acquired: Releasers): { ingest: Ingest; waiter: TurnWaiter } {
  const ingest = new Ingest(mem.redis, mem.keys, config, mem.durability);
  const waiter = new TurnWaiter(mem.redis, mem.keys, mem.longTerm, mem.durability);
  acquired.add('turn waiter', () => waiter.close());
  return { ingest, waiter };
}

/** Both pipeline workers, each released (stopped) with `acquired`, pushed onto `workers` as it starts. */
async function startWorkers(deps: StageDeps & { config: Config }, embedder: TextEmbedder, consumer: string, acquired: Releasers, workers: RunningWorker[]): Promise<void> {
  for (const start of [() => startEmbedRecallWorker(deps, embedder, consumer), () => startRememberWorker(deps, consumer)]) {
    const worker = await start();
    acquired.add(`${worker.name} worker`, () => worker.stop());
    workers.push(worker);
  }
}
