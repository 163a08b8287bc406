import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PACKAGE_ROOT } from '../paths.js';
import { MODEL_ID } from './model.js';
import { EMBEDDING_DIMS, type EmbedReply, type EmbedRequest, type StopRequest, type TextEmbedder } from './types.js';

/** The worker script: next to this module once built; under a TypeScript runner, the built copy. */
function workerScript(): string {
  const here = fileURLToPath(new URL('./embed-worker.js', import.meta.url));
  if (existsSync(here)) return here;
  const built = join(PACKAGE_ROOT, 'dist', 'src', 'embedder', 'embed-worker.js');
  if (existsSync(built)) return built;
  throw new Error(`embed-worker.js not found next to ${here} or at ${built}: run 'npm run build'`);
}

/** Every embedder thread of this process that has not exited, for stopEmbedderThreads. */
const live = new Set<ThreadedEmbedder>();

/**
 * Ends every embedder thread between inference calls; resolves once all have exited. A process
 * must do this before process.exit: exiting tears its worker threads down, and a thread torn
 * down while ONNX Runtime is inside a call aborts the whole process (SIGABRT, "terminate called
 * after throwing an instance of 'Napi::Error'").
 */
export async function stopEmbedderThreads(): Promise<void> {
  await Promise.all([...live].map((e) => e.close()));
}

/**
 * The embedder on a worker thread, so inference never blocks the event loop. Requests queue in
 * the thread and run one after another; if the thread dies, pending and later calls fail.
 */
export class ThreadedEmbedder implements TextEmbedder {
  readonly modelId = MODEL_ID;
  readonly dims = EMBEDDING_DIMS;
  readonly parallelism = 1;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve(v: Float32Array[]): void; reject(e: Error): void }>();
  private failure: Error | undefined;
  private readonly exited: Promise<void>;

  private constructor(private readonly worker: Worker) {
    live.add(this);
    this.exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    worker.on('message', (reply: EmbedReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(`embedder: ${reply.error}`));
      else waiting.resolve(reply.vectors);
    });
    const fail = (err: Error): void => {
      this.failure ??= err;
      for (const waiting of this.pending.values()) waiting.reject(err);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => {
      live.delete(this);
      fail(new Error(`embedder thread exited with code ${code}`));
    });
  }

  static async load(modelDir: string, threads = 0): Promise<ThreadedEmbedder> {
    const worker = new Worker(workerScript(), { workerData: { modelDir, threads } });
    await new Promise<void>((resolve, reject) => {
      const onMessage = (): void => {
        worker.off('error', reject);
        resolve();
      };
      worker.once('message', onMessage);
      worker.once('error', reject);
    });
    return new ThreadedEmbedder(worker);
  }

  embed(texts: readonly string[]): Promise<Float32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    if (texts.length === 0) return Promise.resolve([]);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, texts: [...texts] } satisfies EmbedRequest);
    });
  }

  async embedOne(text: string): Promise<Float32Array> {
    const [vector] = await this.embed([text]);
    return vector as Float32Array;
  }

  get broken(): Error | undefined {
    return this.failure;
  }

  /**
   * Asks the thread to end and waits until it has: it ends after the inference call in progress,
   * if any. Worker.terminate() would not wait for that call, and a thread stopped inside ONNX
   * Runtime takes the process down with SIGABRT (its binding throws a C++ exception it cannot
   * deliver once the thread's JavaScript is gone). Calls not yet started fail.
   */
  async close(): Promise<void> {
    this.failure ??= new Error('embedder closed');
    this.worker.postMessage('stop' satisfies StopRequest);
    await this.exited;
  }
}
