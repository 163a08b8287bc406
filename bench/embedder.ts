/**
 * Embedder throughput and latency by pool shape (sessions × ONNX Runtime threads per session) and
 * batch size, measured side by side: rounds alternate between every shape and batch size so
 * machine noise hits each alike. Batches of more than one text keep every session of the shape
 * busy (throughput); batch 1 runs one call at a time (the latency a lone turn pays). Prints a
 * table, writes bench/results/embedder.json.
 *
 *   npm run bench:embedder [-- --seconds 3 --rounds 3 --shapes 1x2,2x1 --batch-sizes 1,16,32]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadConfig, modelDirOf } from '../src/config.js';
import { EmbedderPool, poolShape } from '../src/embedder/pool.js';
import { createLogger } from '../src/log.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { ensureModel } from '../src/provision/model.js';
import { percentile } from './stats.js';
import { sampleTexts } from './texts.js';

const auto = poolShape(0, 0);
const cores = availableParallelism();
const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '3' },
    rounds: { type: 'string', default: '3' },
    // One session with every core against the service's default shape.
    shapes: { type: 'string', default: [...new Set([`1x${cores}`, `${auto.sessions}x${auto.threads}`])].join(',') },
    'batch-sizes': { type: 'string', default: '1,16,32' },
  },
});
const secondsPerRound = Number(values.seconds);
const rounds = Number(values.rounds);
const batchSizes = String(values['batch-sizes']).split(',').map(Number);
const shapes = String(values.shapes).split(',').map((raw) => {
  const match = /^(\d+)x(\d+)$/.exec(raw.trim());
  if (!match) throw new Error(`--shapes: expected <sessions>x<threads>, got ${JSON.stringify(raw)}`);
  return { name: raw.trim(), sessions: Number(match[1]), threads: Number(match[2]) };
});
if (!(secondsPerRound > 0) || !(rounds >= 1) || batchSizes.some((b) => !Number.isInteger(b) || b < 1)) {
  throw new Error('--seconds, --rounds and --batch-sizes take positive numbers');
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const config = loadConfig();
  const modelDir = modelDirOf(config);
  await ensureModel(modelDir, log);
  const texts = sampleTexts(4096);
  let cursor = 0;
  const next = (): string => texts[cursor++ % texts.length] as string;

  const pools = new Map<string, EmbedderPool>();
  try {
    for (const shape of shapes) {
      const pool = await EmbedderPool.load(modelDir, shape.sessions, shape.threads);
      pools.set(shape.name, pool);
      await Promise.all(Array.from({ length: pool.parallelism }, () => pool.embed(texts.slice(0, 32)))); // warm-up
    }
    const key = (shape: string, batch: number): string => `${shape}/${batch}`;
    const stats = new Map<string, { texts: number; seconds: number; callMs: number[] }>();
    for (let round = 1; round <= rounds; round++) {
      for (const shape of shapes) {
        const pool = pools.get(shape.name) as EmbedderPool;
        for (const batch of batchSizes) {
          const s = stats.get(key(shape.name, batch)) ?? { texts: 0, seconds: 0, callMs: [] };
          stats.set(key(shape.name, batch), s);
          const started = performance.now();
          const end = started + secondsPerRound * 1000;
          await Promise.all(Array.from({ length: batch === 1 ? 1 : pool.parallelism }, async () => {
            while (performance.now() < end) {
              const slice = Array.from({ length: batch }, next);
              const t0 = performance.now();
              await pool.embed(slice);
              s.callMs.push(performance.now() - t0);
              s.texts += batch;
            }
          }));
          s.seconds += (performance.now() - started) / 1000;
          process.stderr.write(`round ${round}/${rounds} shape ${shape.name} batch ${batch}: ${(s.texts / s.seconds).toFixed(1)} texts/s so far\n`);
        }
      }
    }

    const rows = shapes.flatMap((shape) => batchSizes.map((batch) => {
      const s = stats.get(key(shape.name, batch))!;
      return { shape: shape.name, sessions: shape.sessions, threads: shape.threads, batch, texts: s.texts, texts_per_second: s.texts / s.seconds, call_ms_p50: percentile(s.callMs, 50), call_ms_p95: percentile(s.callMs, 95) };
    }));
    const first = shapes[0]!.name;
    console.log(`\nshape  batch  texts/s   call p50 ms  call p95 ms  vs ${first} (same batch)`);
    for (const r of rows) {
      const base = rows.find((b) => b.shape === first && b.batch === r.batch)!.texts_per_second;
      console.log(
        `${r.shape.padStart(5)}  ${String(r.batch).padStart(5)}  ${r.texts_per_second.toFixed(1).padStart(7)}  ${r.call_ms_p50.toFixed(2).padStart(11)}  ${r.call_ms_p95.toFixed(2).padStart(11)}  ${(r.texts_per_second / base).toFixed(2)}x`,
      );
    }
    console.log('(batch 1: one call at a time, the latency of a lone text; larger batches: every session busy)');
    const out = join(PACKAGE_ROOT, 'bench', 'results');
    await mkdir(out, { recursive: true });
    const file = join(out, 'embedder.json');
    await writeFile(file, JSON.stringify({ model: pools.get(first)?.modelId, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, secondsPerRound, rounds, rows }, null, 2));
    console.log(`\nwrote ${file}`);
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
}

await main();
