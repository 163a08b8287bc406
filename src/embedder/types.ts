/**
 * What the rest of agentmem knows of an embedder, apart from any implementation: the library,
 * the pipeline and the HTTP layer depend on this module, never on the thread or model code.
 */

/** Dimensions of all-MiniLM-L6-v2's sentence vectors; the search index's vector field has as many. */
export const EMBEDDING_DIMS = 384;

/** What the pipeline needs of an embedder, wherever it runs. */
export interface TextEmbedder {
  readonly modelId: string;
  readonly dims: number;
  /** Calls that run side by side; more in flight only queue. */
  readonly parallelism: number;
  /** Why this embedder can no longer embed, once it cannot (its thread died, or it was closed). */
  readonly broken: Error | undefined;
  embed(texts: readonly string[]): Promise<Float32Array[]>;
  embedOne(text: string): Promise<Float32Array>;
}

/** The messages between ThreadedEmbedder and its thread (embed-worker.ts). */
export interface EmbedRequest {
  id: number;
  texts: string[];
}
export type EmbedReply = { id: number; vectors: Float32Array[] } | { id: number; error: string };
/** Asks the thread to end between inference calls (see ThreadedEmbedder.close). */
export type StopRequest = 'stop';
