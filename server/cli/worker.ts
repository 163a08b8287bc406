import { openAgentMem, type AgentMem } from '../../src/agentmem.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import { createOpsApp } from '../http/app.js';
import { HttpFront } from '../http/front.js';
import { Releasers } from '../../src/lifecycle.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';
import { defaultConsumerName } from '../../src/pipeline/consumer.js';
import type { RunningWorker } from '../../src/pipeline/worker.js';
import { EMBED_RECALL_WORKER, startEmbedRecallWorker } from '../../src/pipeline/embed-recall-worker.js';
import { REMEMBER_WORKER, startRememberWorker } from '../../src/pipeline/remember-worker.js';
import { CONSOLIDATOR_WORKER, startConsolidatorWorker } from '../../src/consolidation/worker.js';
import type { Command } from './args.js';
import { shutDownWithin, untilSignal } from './signals.js';

const WORKERS = [EMBED_RECALL_WORKER, REMEMBER_WORKER, CONSOLIDATOR_WORKER] as const;
type WorkerName = (typeof WORKERS)[number];
const isWorkerName = (name: string | undefined): name is WorkerName => (WORKERS as readonly (string | undefined)[]).includes(name);

export const workerCommand: Command = {
  name: 'worker',
  summary: `Run one worker (${WORKERS.join(', ')}) against REDIS_URL, with /metrics, /healthz and /readyz on its metrics port; run as many as you like, anywhere.`,
  usage: `agentmem worker <${WORKERS.join('|')}> [options]`,
  async run(config, positionals) {
    const [name] = positionals;
    if (!isWorkerName(name)) {
      process.stderr.write(`agentmem worker: name one of ${WORKERS.join(', ')}\n`);
      return 2;
    }
    const log = createLogger(config.logLevel);
    const consumer = config.consumerName ?? defaultConsumerName();
    const metrics = new Metrics();
    const stopRequested = untilSignal(log);
    // Released in reverse at shutdown, or as soon as a start-up step fails: the worker stops
    // consuming before its metrics port closes, and both before Redis and the model go.
    const acquired = new Releasers(log);
    try {
      let mem: AgentMem;
      let embedder: TextEmbedder | undefined;
      if (name === EMBED_RECALL_WORKER) {
        const withModel = await openAgentMem(config, log);
        [mem, embedder] = [withModel, withModel.embedder];
      } else {
        mem = await openAgentMem(config, log, { embedder: false });
      }
      acquired.add('redis and model', () => mem.close());
      metrics.watchStreams(mem.redis, mem.keys);
      mem.longTerm.reportSearchesTo(metrics);
      // The port first: a worker that cannot report must not take work it would process unseen.
      // Until the worker runs, /readyz says it is starting.
      const running: Pick<RunningWorker, 'name' | 'health'>[] = [{ name, health: () => 'starting' }];
      if (config.metricsPort > 0) {
        const ops = new HttpFront(createOpsApp({ redis: mem.redis, keys: mem.keys, longTerm: mem.longTerm, embedder, workers: running }, metrics), config.shutdownTimeoutMs / 2);
        await ops.listen(config.metricsPort, config.host, 'metrics port', 'AGENTMEM_METRICS_PORT');
        acquired.add('metrics port', () => ops.close());
        log.info('worker.ops_listening', { worker: name, url: `http://${config.host}:${config.metricsPort}/metrics` });
      }
      const deps = { ...mem, config, log, metrics };
      let worker: RunningWorker;
      if (name === EMBED_RECALL_WORKER) worker = await startEmbedRecallWorker(deps, embedder as TextEmbedder, consumer);
      else if (name === REMEMBER_WORKER) worker = await startRememberWorker(deps, consumer);
      else worker = await startConsolidatorWorker(deps, consumer);
      running[0] = worker;
      acquired.add(`${name} worker`, () => worker.stop());
    } catch (err) {
      await acquired.releaseAll();
      throw err;
    }
    const signal = await stopRequested;
    log.info('worker.stopping', { signal, worker: name, consumer, timeout_ms: config.shutdownTimeoutMs });
    await shutDownWithin(config.shutdownTimeoutMs, log, () => acquired.releaseAll());
    return 0;
  },
};
