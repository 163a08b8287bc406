/**
 * Embedder throughput by batch size, measured side by side: rounds alternate between the batch
 * sizes so machine noise hits each alike. Prints a table, writes bench/results/embedder.json.
 *
 *   npm run bench [-- --seconds 5 --rounds 3 --batch-sizes 1,8,32,64]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { loadEmbedder } from '../src/agentmem.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { sampleTexts } from './texts.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '3' },
    'batch-sizes': { type: 'string', default: '1,32' },
  },
});
const secondsPerRound = Number(values.seconds);
const rounds = Number(values.rounds);
const batchSizes = String(values['batch-sizes']).split(',').map(Number);


function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function main(): Promise<void> {
  const log = createLogger('warn');
  const embedder = await loadEmbedder(loadConfig(), log);
  const texts = sampleTexts(4096);
  await embedder.embed(texts.slice(0, 64));

  const stats = new Map(batchSizes.map((b) => [b, { texts: 0, seconds: 0, callMs: [] as number[] }]));
  let cursor = 0;
  for (let round = 1; round <= rounds; round++) {
    for (const batch of batchSizes) {
      const s = stats.get(batch)!;
      const end = performance.now() + secondsPerRound * 1000;
      const started = performance.now();
      while (performance.now() < end) {
        const slice = Array.from({ length: batch }, () => texts[cursor++ % texts.length] as string);
        const t0 = performance.now();
        await embedder.embed(slice);
        s.callMs.push(performance.now() - t0);
        s.texts += batch;
      }
      s.seconds += (performance.now() - started) / 1000;
      process.stderr.write(`round ${round}/${rounds} batch ${batch}: ${(s.texts / s.seconds).toFixed(1)} texts/s so far\n`);
    }
  }

  const rows = batchSizes.map((batch) => {
    const s = stats.get(batch)!;
    const sorted = [...s.callMs].sort((a, b) => a - b);
    return { batch, texts: s.texts, texts_per_second: s.texts / s.seconds, call_ms_p50: percentile(sorted, 50), call_ms_p95: percentile(sorted, 95) };
  });
  const base = rows[0]!.texts_per_second;
  console.log('\nbatch  texts/s   call p50 ms  call p95 ms  vs batch ' + rows[0]!.batch);
  for (const r of rows) {
    console.log(
      `${String(r.batch).padStart(5)}  ${r.texts_per_second.toFixed(1).padStart(7)}  ${r.call_ms_p50.toFixed(2).padStart(11)}  ${r.call_ms_p95.toFixed(2).padStart(11)}  ${(r.texts_per_second / base).toFixed(2)}x`,
    );
  }
  const out = join(PACKAGE_ROOT, 'bench', 'results');
  await mkdir(out, { recursive: true });
  const file = join(out, 'embedder.json');
  await writeFile(file, JSON.stringify({ model: embedder.modelId, cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version, secondsPerRound, rounds, rows }, null, 2));
  console.log(`\nwrote ${file}`);
}

await main();
