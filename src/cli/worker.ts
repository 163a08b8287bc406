import type { Server } from 'node:http';
import { openAgentMem, type AgentMem } from '../agentmem.js';
import type { TextEmbedder } from '../embedder/threaded.js';
import { createOpsApp } from '../http/app.js';
import { createLogger } from '../log.js';
import { Metrics } from '../metrics.js';
import { defaultConsumerName } from '../pipeline/consumer.js';
import type { RunningWorker } from '../pipeline/worker.js';
import { EMBED_RECALL_WORKER, startEmbedRecallWorker } from '../../workers/embed-recall.js';
import { REMEMBER_WORKER, startRememberWorker } from '../../workers/remember.js';
import { CONSOLIDATOR_WORKER, startConsolidatorWorker } from '../../workers/consolidator.js';
import type { Command } from './args.js';
import { untilSignal } from './signals.js';

const WORKERS = [EMBED_RECALL_WORKER, REMEMBER_WORKER, CONSOLIDATOR_WORKER] as const;

export const workerCommand: Command = {
  name: 'worker',
  summary: `Run one worker (${WORKERS.join(', ')}) against REDIS_URL, with /metrics, /healthz and /readyz on its metrics port; run as many as you like, anywhere.`,
  usage: `agentmem worker <${WORKERS.join('|')}> [options]`,
  async run(config, positionals) {
    const [name] = positionals;
    if (!(WORKERS as readonly (string | undefined)[]).includes(name)) {
      process.stderr.write(`agentmem worker: name one of ${WORKERS.join(', ')}\n`);
      return 2;
    }
    const log = createLogger(config.logLevel);
    const consumer = config.consumerName ?? defaultConsumerName();
    const metrics = new Metrics();
    const stopRequested = untilSignal();
    let mem: AgentMem;
    let worker: RunningWorker;
    let embedder: TextEmbedder | undefined;
    if (name === EMBED_RECALL_WORKER) {
      const withModel = await openAgentMem(config, log);
      mem = withModel;
      embedder = withModel.embedder;
      worker = await startEmbedRecallWorker({ ...withModel, config, log, metrics }, withModel.embedder, consumer);
    } else {
      mem = await openAgentMem(config, log, { embedder: false });
      worker = name === REMEMBER_WORKER
        ? await startRememberWorker({ ...mem, config, log, metrics }, consumer)
        : await startConsolidatorWorker({ ...mem, config, log, metrics }, consumer);
    }
    metrics.watchStreams(mem.redis, mem.keys);
    mem.longTerm.reportSearchesTo(metrics);
    let ops: Server | undefined;
    if (config.metricsPort > 0) {
      const app = createOpsApp(mem.redis, mem.longTerm, metrics, embedder);
      ops = await new Promise<Server>((resolve, reject) => {
        const server = app.listen(config.metricsPort, config.host, () => resolve(server));
        server.once('error', (err) => reject(new Error(`metrics port ${config.metricsPort}: ${err.message} (set AGENTMEM_METRICS_PORT)`)));
      });
      log.info('worker.ops_listening', { worker: name, url: `http://${config.host}:${config.metricsPort}/metrics` });
    }
    const signal = await stopRequested;
    log.info('worker.stopping', { signal, worker: name, consumer });
    await new Promise<void>((resolve) => (ops ? ops.close(() => resolve()) : resolve()));
    await worker.stop();
    await mem.close();
    return 0;
  },
};
