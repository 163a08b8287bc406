import { inject } from 'vitest';
import { Embedder } from '../../src/embedder/embedder.js';

let shared: Promise<Embedder> | undefined;

/** One embedder per test worker: loading the model costs about half a second. */
export function testEmbedder(): Promise<Embedder> {
  return (shared ??= Embedder.load(inject('modelDir')));
}
