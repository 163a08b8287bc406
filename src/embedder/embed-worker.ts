/**
 * The embedder's thread. ONNX Runtime's Node binding runs inference synchronously on the calling
 * thread, so on the main thread every batch would freeze HTTP, SSE and Redis replies for its
 * whole duration; here it blocks only this thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { Embedder } from './embedder.js';
import type { EmbedReply, EmbedRequest, StopRequest } from './types.js';

const port = parentPort;
if (!port) throw new Error('embed-worker must run as a worker thread');
const { modelDir, threads } = workerData as { modelDir: string; threads: number };
const embedder = await Embedder.load(modelDir, threads);
port.on('message', (request: EmbedRequest | StopRequest) => {
  // Ending from here, in JavaScript, means no inference call is running on this thread.
  if (request === 'stop') process.exit(0);
  embedder.embed(request.texts).then(
    (vectors) => port.postMessage({ id: request.id, vectors } satisfies EmbedReply, vectors.map((v) => v.buffer as ArrayBuffer)),
    (err: unknown) => port.postMessage({ id: request.id, error: err instanceof Error ? err.message : String(err) } satisfies EmbedReply),
  );
});
port.postMessage({ ready: true });
