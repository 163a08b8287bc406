import type { Server } from 'node:http';
import type { AgentMem } from './agentmem.js';
import type { Config } from './config.js';
import type { TextEmbedder } from './embedder/threaded.js';
import { createApp } from './http/app.js';
import type { Logger } from './log.js';
import { watchExpiries } from './memory/expiries.js';
import { Metrics } from './metrics.js';
import { defaultConsumerName } from './pipeline/consumer.js';
import { Ingest } from './pipeline/ingest.js';
import { TurnWaiter } from './pipeline/waiter.js';
import { StreamFanout } from './redis/stream-fanout.js';
import type { RunningWorker } from './pipeline/worker.js';
import { startEmbedRecallWorker } from '../workers/embed-recall.js';
import { startRememberWorker } from '../workers/remember.js';

export interface RunningService {
  url: string;
  workers: RunningWorker[];
  /** Stops accepting requests, stops the workers (finishing their batches), closes connections. */
  stop(): Promise<void>;
}

const SHUTDOWN_GRACE_MS = 2000;

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
  const workers = options.workers === false ? [] : [
    await startEmbedRecallWorker(deps, mem.embedder, consumer),
    await startRememberWorker(deps, consumer),
  ];
  const stopWatchingExpiries = await watchExpiries(mem.redis, mem.keys, mem.longTerm, log);
  const ingest = new Ingest(mem.redis, mem.keys, config);
  const waiter = new TurnWaiter(mem.redis, mem.keys, mem.longTerm);
  const fanout = new StreamFanout(mem.redis, log, { connectionName: `agentmem-events-${consumer}`, wakeKey: mem.keys.eventsWake(consumer) });
  metrics.watchEventStreams(fanout);
  const app = createApp({ ...deps, ingest, waiter, fanout });
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  const url = `http://${config.host}:${port}`;
  log.info('serve.listening', { url: `${url}/`, redis: mem.server.origin, workers: workers.map((w) => w.name) });

  let stopping: Promise<void> | undefined;
  return {
    url,
    workers,
    stop: () =>
      (stopping ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        // Event streams never end on their own; give plain requests a moment, then cut the rest.
        const cut = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
        await closed;
        clearTimeout(cut);
        await Promise.all(workers.map((w) => w.stop()));
        await waiter.close();
        await fanout.close();
        await stopWatchingExpiries();
      })()),
  };
}
