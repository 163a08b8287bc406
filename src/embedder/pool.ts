import { availableParallelism } from 'node:os';
import { MODEL_ID } from './model.js';
import { ThreadedEmbedder } from './threaded.js';
import { EMBEDDING_DIMS, type TextEmbedder } from './types.js';

/** Sessions and threads per session when the configuration leaves them at 0 (auto). */
export function poolShape(sessions: number, threads: number, cores = availableParallelism()): { sessions: number; threads: number } {
  // Each session holds its own copy of the weights (~90 MB fp32), so auto stops at four.
  const n = sessions > 0 ? sessions : Math.max(1, Math.min(cores, 4));
  return { sessions: n, threads: threads > 0 ? threads : Math.max(1, Math.floor(cores / n)) };
}

/**
 * Several embedder threads, each with its own ONNX Runtime session, taking whole batches side by
 * side. On a small machine, one-thread sessions running separate batches keep every core busy,
 * where one session's threads idle at each synchronisation point of every layer: on two cores,
 * two one-thread sessions embed 5% more texts per second than one two-thread session at batch 16
 * and 20% more at batch 32 (`npm run bench:embedder`). A lone text is slower (~15 ms against
 * ~11.5 ms back to back), but its latency no longer depends on waking a sleeping thread pool.
 */
export class EmbedderPool implements TextEmbedder {
  readonly modelId = MODEL_ID;
  readonly dims = EMBEDDING_DIMS;
  private readonly outstanding: number[];

  constructor(private readonly members: readonly ThreadedEmbedder[]) {
    if (members.length === 0) throw new Error('an embedder pool needs at least one session');
    this.outstanding = members.map(() => 0);
  }

  get parallelism(): number {
    return this.members.length;
  }

  /** Broken only when every session is: a pool that lost a session embeds on with the rest. */
  get broken(): Error | undefined {
    return this.members.every((m) => m.broken) ? this.members[0]?.broken : undefined;
  }

  static async load(modelDir: string, sessions: number, threads: number): Promise<EmbedderPool> {
    const loading = Array.from({ length: sessions }, () => ThreadedEmbedder.load(modelDir, threads));
    const settled = await Promise.allSettled(loading);
    const loaded = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) {
      await Promise.all(loaded.map((m) => m.close()));
      throw failed.reason;
    }
    return new EmbedderPool(loaded);
  }

  /** The whole call goes to the least busy working session: a batch is never split across sessions. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    let pick = -1;
    for (const [i, member] of this.members.entries()) {
      if (member.broken) continue;
      if (pick < 0 || (this.outstanding[i] as number) < (this.outstanding[pick] as number)) pick = i;
    }
    if (pick < 0) throw this.broken as Error;
    this.outstanding[pick]!++;
    try {
      return await (this.members[pick] as ThreadedEmbedder).embed(texts);
    } finally {
      this.outstanding[pick]!--;
    }
  }

  async embedOne(text: string): Promise<Float32Array> {
    const [vector] = await this.embed([text]);
    return vector as Float32Array;
  }

  async close(): Promise<void> {
    await Promise.all(this.members.map((m) => m.close()));
  }
}
