import { openAgentMem } from '../agentmem.js';
import { createLogger } from '../log.js';
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
  summary: `Run one pipeline worker (${WORKERS.join(' or ')}) against REDIS_URL; run as many as you like, anywhere.`,
  usage: `agentmem worker <${WORKERS.join('|')}> [options]`,
  async run(config, positionals) {
    const [name] = positionals;
    if (!(WORKERS as readonly (string | undefined)[]).includes(name)) {
      process.stderr.write(`agentmem worker: name one of ${WORKERS.join(', ')}\n`);
      return 2;
    }
    const log = createLogger(config.logLevel);
    const consumer = config.consumerName ?? defaultConsumerName();
    const stopRequested = untilSignal();
    let worker: RunningWorker;
    let close: () => Promise<void>;
    if (name === EMBED_RECALL_WORKER) {
      const mem = await openAgentMem(config, log);
      close = mem.close;
      worker = await startEmbedRecallWorker({ ...mem, config, log }, mem.embedder, consumer);
    } else {
      const mem = await openAgentMem(config, log, { embedder: false });
      close = mem.close;
      worker = name === REMEMBER_WORKER
        ? await startRememberWorker({ ...mem, config, log }, consumer)
        : await startConsolidatorWorker({ ...mem, config, log }, consumer);
    }
    const signal = await stopRequested;
    log.info('worker.stopping', { signal, worker: name, consumer });
    await worker.stop();
    await close();
    return 0;
  },
};
