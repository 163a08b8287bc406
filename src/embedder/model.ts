/**
 * Facts about the model, apart from the code that runs it: importing the embedder loads ONNX
 * Runtime's native addon, which processes that never embed (the CLI's redis command, the remember
 * worker) should not carry — onnxruntime-node is known to crash in its exit-time teardown.
 */
export const MODEL_ID = 'sentence-transformers/all-MiniLM-L6-v2';
/** sentence-transformers' max_seq_length for this model. */
export const MAX_TOKENS = 256;
