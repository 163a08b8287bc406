import { AutoModel, AutoTokenizer, env, type PreTrainedModel, type PreTrainedTokenizer, type Tensor } from '@huggingface/transformers';
import { LOCAL_MODEL_NAME } from '../provision/model.js';
import { MAX_TOKENS, MODEL_ID } from './model.js';
import { EMBEDDING_DIMS, type TextEmbedder } from './types.js';

/** Bounds the activations of one inference call (batch × tokens × 384 floats per layer). */
export const MAX_BATCH = 64;

/**
 * all-MiniLM-L6-v2 on ONNX Runtime, fp32: WordPiece tokens (truncated at 256), the BERT encoder,
 * mean pooling over the attention mask, L2 normalisation — the sentence-transformers pipeline.
 * Many texts go through one inference call; padding is masked out of the pooling, so a text's
 * vector does not depend on the batch it travelled in.
 */
export class Embedder implements TextEmbedder {
  readonly modelId = MODEL_ID;
  readonly dims = EMBEDDING_DIMS;
  readonly parallelism = 1;
  readonly broken = undefined;

  private constructor(
    private readonly tokenizer: PreTrainedTokenizer,
    private readonly model: PreTrainedModel,
  ) {}

  /**
   * Loads from `<modelDir>/all-MiniLM-L6-v2/`; never from the network. `threads`: ONNX Runtime's
   * intra-op threads, 0 = its default (one per physical core).
   */
  static async load(modelDir: string, threads = 0): Promise<Embedder> {
    env.allowRemoteModels = false;
    env.allowLocalModels = true;
    env.localModelPath = modelDir.endsWith('/') ? modelDir : modelDir + '/';
    const tokenizer = await AutoTokenizer.from_pretrained(LOCAL_MODEL_NAME);
    const model = await AutoModel.from_pretrained(LOCAL_MODEL_NAME, {
      dtype: 'fp32',
      device: 'cpu',
      // ONNX Runtime's threads busy-wait between runs by default; on a small machine that burns
      // the cores Redis and the event loop need, and the pipeline's latency suffers for it.
      session_options: {
        ...(threads > 0 ? { intraOpNumThreads: threads } : {}),
        extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
      },
    });
    return new Embedder(tokenizer, model);
  }

  async embedOne(text: string): Promise<Float32Array> {
    const [vector] = await this.embed([text]);
    return vector as Float32Array;
  }

  /** One vector per text, in input order. */
  async embed(texts: readonly string[]): Promise<Float32Array[]> {
    // Texts of similar length share a batch, so little compute goes into padding.
    const order = texts.map((_, i) => i).sort((a, b) => (texts[a] as string).length - (texts[b] as string).length);
    const out = new Array<Float32Array>(texts.length);
    for (let start = 0; start < order.length; start += MAX_BATCH) {
      const slice = order.slice(start, start + MAX_BATCH);
      const vectors = await this.embedBatch(slice.map((i) => texts[i] as string));
      slice.forEach((i, j) => (out[i] = vectors[j] as Float32Array));
    }
    return out;
  }

  /** Token ids of each text as the model sees them: truncated, [CLS] first and [SEP] last. */
  tokenIds(texts: readonly string[]): number[][] {
    return texts.map((t) => {
      const inputs = this.tokenizer(t, { truncation: true, max_length: MAX_TOKENS });
      this.restoreFinalSep(inputs.input_ids, inputs.attention_mask);
      return Array.from(inputs.input_ids.data as BigInt64Array, Number);
    });
  }

  private async embedBatch(texts: string[]): Promise<Float32Array[]> {
    const inputs = this.tokenizer(texts, { padding: true, truncation: true, max_length: MAX_TOKENS });
    this.restoreFinalSep(inputs.input_ids, inputs.attention_mask);
    const { last_hidden_state: hidden } = (await this.model(inputs)) as { last_hidden_state: Tensor };
    const [batch, tokens, dims] = hidden.dims as [number, number, number];
    const states = hidden.data as Float32Array;
    const mask = inputs.attention_mask.data as BigInt64Array;
    const vectors: Float32Array[] = [];
    for (let b = 0; b < batch; b++) {
      const sum = new Float64Array(dims);
      let count = 0;
      for (let t = 0; t < tokens; t++) {
        if (mask[b * tokens + t] === 0n) continue;
        count++;
        const offset = (b * tokens + t) * dims;
        for (let d = 0; d < dims; d++) sum[d] = (sum[d] as number) + (states[offset + d] as number);
      }
      let norm = 0;
      for (let d = 0; d < dims; d++) {
        sum[d] = (sum[d] as number) / Math.max(count, 1);
        norm += (sum[d] as number) ** 2;
      }
      const scale = 1 / Math.max(Math.sqrt(norm), 1e-12);
      vectors.push(Float32Array.from(sum, (x) => x * scale));
    }
    return vectors;
  }

  /**
   * transformers.js truncates after adding the special tokens, so a text longer than 256 tokens
   * loses its closing [SEP]; sentence-transformers (HF tokenizers) truncates the text and keeps
   * [CLS] … [SEP]. Putting [SEP] back in the last real position gives the canonical ids.
   */
  private restoreFinalSep(ids: Tensor, mask: Tensor): void {
    const [batch, tokens] = ids.dims as [number, number];
    if (tokens < MAX_TOKENS) return;
    const idData = ids.data as BigInt64Array;
    const maskData = mask.data as BigInt64Array;
    const sep = BigInt(this.tokenizer.sep_token_id);
    for (let b = 0; b < batch; b++) {
      const last = b * tokens + MAX_TOKENS - 1;
      if (maskData[last] === 1n) idData[last] = sep;
    }
  }
}
