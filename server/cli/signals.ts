import { stopEmbedderThreads } from '../../src/embedder/threaded.js';
import type { Logger } from '../../src/log.js';

const SIGNAL_EXIT_CODES: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 130, SIGTERM: 143 };
/** A forced exit waits this long at most for the embedder threads to leave ONNX Runtime. */
const EMBEDDER_EXIT_WAIT_MS = 5000;

/**
 * Exits now. The embedder threads are ended first, each after its inference call in progress:
 * process.exit tears worker threads down, and one torn down inside ONNX Runtime aborts the
 * process (SIGABRT) instead of exiting with `code`.
 */
export async function exitNow(code: number): Promise<never> {
  await Promise.race([stopEmbedderThreads(), new Promise((resolve) => setTimeout(resolve, EMBEDDER_EXIT_WAIT_MS))]);
  process.exit(code);
}

/**
 * Resolves on the first SIGINT or SIGTERM, so the caller can shut down in order; a further signal
 * exits at once (130 for SIGINT, 143 for SIGTERM), for when a graceful shutdown takes too long.
 * The listeners stay installed from the first call on: removing and re-adding them would leave a
 * moment in which a signal kills the process.
 */
export function untilSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      received += 1;
      if (received === 1) {
        resolve(signal);
      } else if (received === 2) {
        log.warn('shutdown.forced', { reason: `second ${signal}` });
        void exitNow(SIGNAL_EXIT_CODES[signal] ?? 1);
      }
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}

/** Runs a graceful shutdown; one still running after `timeoutMs` is cut short by exiting with code 1. */
export async function shutDownWithin(timeoutMs: number, log: Logger, shutDown: () => Promise<void>): Promise<void> {
  const started = Date.now();
  const deadline = setTimeout(() => {
    log.error('shutdown.forced', { reason: `not done within ${timeoutMs} ms (AGENTMEM_SHUTDOWN_TIMEOUT_MS)` });
    void exitNow(1);
  }, timeoutMs);
  try {
    await shutDown();
  } finally {
    clearTimeout(deadline);
  }
  log.info('shutdown.done', { ms: Date.now() - started });
}
