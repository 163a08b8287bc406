/**
 * What MCP costs over the REST API, in one run against one running service: its own Redis and
 * `agentmem serve` (both workers, default scope seeded with the 8 seed memories, and one thread
 * with a few turns). Each iteration times, in an order that rotates, one call of each:
 *   recall         MCP tools/call `recall`           vs  POST /v1/recall
 *   memory_prompt  MCP tools/call `memory_prompt`    vs  GET /v1/threads/:id and POST /v1/recall, side by side
 * The MCP client is the SDK's own (Streamable HTTP, stateless: one POST per call after its one
 * initialize); the REST client is plain fetch. Queries rotate through a fixed list, so every
 * call embeds. Prints p50/p95/mean per operation and the MCP/REST ratios; writes
 * bench/results/mcp.json.
 *
 *   npm run bench:mcp [-- --calls 200 --warmup 20]
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { sampleTexts } from './texts.js';
import { percentile } from './stats.js';
import { postJson, startStack } from './stack.js';

const { values } = parseArgs({ options: { calls: { type: 'string', default: '200' }, warmup: { type: 'string', default: '20' } } });
const positive = (name: keyof typeof values): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: expected a positive integer, got ${JSON.stringify(values[name])}`);
  return n;
};
const calls = positive('calls');
const warmup = positive('warmup');
const say = (line: string): void => void process.stderr.write(line + '\n');

type Op = 'recall' | 'memory_prompt';
type Via = 'mcp' | 'rest';
const CASES: readonly { op: Op; via: Via }[] = [
  { op: 'recall', via: 'mcp' }, { op: 'recall', via: 'rest' }, { op: 'memory_prompt', via: 'mcp' }, { op: 'memory_prompt', via: 'rest' },
];

async function main(): Promise<void> {
  const stack = await startStack('bench-mcp');
  const client = new Client({ name: 'bench-mcp', version: '1.0.0' });
  try {
    const threadId = 'bench-mcp-thread';
    for (const content of ['I need to plan the Q3 warehouse migration.', 'The Berlin office move is also coming up.', 'What did we decide about the release?']) {
      await postJson(`${stack.url}/v1/threads/${threadId}/turns?wait=30000`, { content, remember: 'skip' });
    }
    await client.connect(new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp`)));
    const queries = sampleTexts(64);
    const run = async (op: Op, via: Via, query: string): Promise<number> => {
      const t0 = performance.now();
      if (via === 'mcp') {
        const result = await client.callTool({ name: op, arguments: op === 'recall' ? { text: query } : { thread_id: threadId, query } });
        if (result.isError) throw new Error(`${op} over MCP failed: ${JSON.stringify(result.content)}`);
      } else if (op === 'recall') {
        await postJson(`${stack.url}/v1/recall`, { text: query });
      } else {
        const [thread] = await Promise.all([fetch(`${stack.url}/v1/threads/${threadId}`), postJson(`${stack.url}/v1/recall`, { text: query })]);
        if (thread.status !== 200) throw new Error(`GET /v1/threads answered ${thread.status}`);
        await thread.json();
      }
      return performance.now() - t0;
    };
    say(`service ${stack.url}; warming up (${warmup} calls each, not counted)`);
    for (let i = 0; i < warmup; i++) for (const c of CASES) await run(c.op, c.via, queries[i % queries.length] as string);
    const samples = new Map<string, number[]>(CASES.map((c) => [`${c.op}/${c.via}`, []]));
    for (let i = 0; i < calls; i++) {
      // The order rotates, so no case always follows the same one.
      for (let j = 0; j < CASES.length; j++) {
        const c = CASES[(i + j) % CASES.length] as (typeof CASES)[number];
        samples.get(`${c.op}/${c.via}`)?.push(await run(c.op, c.via, queries[i % queries.length] as string));
      }
      if ((i + 1) % 50 === 0) say(`  ${i + 1}/${calls} iterations`);
    }
    const stats = (op: Op, via: Via) => {
      const xs = samples.get(`${op}/${via}`) ?? [];
      return { p50_ms: percentile(xs, 50), p95_ms: percentile(xs, 95), mean_ms: xs.reduce((a, b) => a + b, 0) / xs.length };
    };
    const f = (n: number, w: number, d = 2): string => n.toFixed(d).padStart(w);
    const results = (['recall', 'memory_prompt'] as const).map((op) => {
      const mcp = stats(op, 'mcp');
      const rest = stats(op, 'rest');
      return { op, mcp, rest, ratio: { p50: mcp.p50_ms / rest.p50_ms, p95: mcp.p95_ms / rest.p95_ms, mean: mcp.mean_ms / rest.mean_ms } };
    });
    console.log(`\n${calls} calls each, interleaved; REST memory_prompt = GET /v1/threads/:id and POST /v1/recall side by side`);
    console.log('operation      via    p50 ms  p95 ms  mean ms');
    for (const r of results) {
      for (const via of ['mcp', 'rest'] as const) console.log(`${r.op.padEnd(13)}  ${via.padEnd(4)}  ${f(r[via].p50_ms, 7)} ${f(r[via].p95_ms, 7)} ${f(r[via].mean_ms, 8)}`);
      console.log(`${r.op.padEnd(13)}  MCP/REST  p50 ×${r.ratio.p50.toFixed(2)}  p95 ×${r.ratio.p95.toFixed(2)}  mean ×${r.ratio.mean.toFixed(2)}`);
    }
    await mkdir(join(PACKAGE_ROOT, 'bench/results'), { recursive: true });
    await writeFile(join(PACKAGE_ROOT, 'bench/results/mcp.json'), JSON.stringify({ calls, warmup, results }, null, 2) + '\n');
  } finally {
    await client.close();
    await stack.stop();
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
