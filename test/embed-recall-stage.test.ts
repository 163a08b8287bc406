import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TextEmbedder } from '../src/embedder/types.js';
import { silentLogger } from '../src/log.js';
import { ensureGroup, type StreamEntry } from '../src/pipeline/consumer.js';
import { EMBED_RECALL_GROUP } from '../src/pipeline/groups.js';
import { EmbedRecallStage } from '../src/pipeline/stages.js';
import type { TurnResult } from '../src/pipeline/turns.js';
import { testEmbedder } from './support/embedder.js';
import { startTestService, type TestService } from './support/service.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The real embedder behind a gate: each call waits until the test releases it. */
function gatedEmbedder(real: TextEmbedder, parallelism: number) {
  const calls: { texts: readonly string[]; release(): void }[] = [];
  const embedder: TextEmbedder = {
    modelId: real.modelId,
    dims: real.dims,
    parallelism,
    get broken() {
      return real.broken;
    },
    embed: (texts) => new Promise((resolve, reject) => calls.push({ texts, release: () => void real.embed(texts).then(resolve, reject) })),
    embedOne: async (text) => (await embedder.embed([text]))[0] as Float32Array,
  };
  return { embedder, calls };
}

describe('embed-and-recall stage', () => {
  let s: TestService;
  beforeAll(async () => {
    s = await startTestService({}, { workers: false });
    await ensureGroup(s.redis, s.keys.ingestStream, EMBED_RECALL_GROUP);
  });
  afterAll(async () => {
    await s.stop();
  });

  /** Accepts `count` turns and reads them as one consumer, as the worker would. */
  async function readBatch(count: number, tag: string): Promise<StreamEntry[]> {
    for (let i = 0; i < count; i++) {
      await s.ingest.accept({ threadId: 'stage-1', role: 'user', content: `${tag} turn ${i}`, user: 'stage', namespace: 'default', agent: 'default', remember: 'skip', k: 5, threshold: 0.55 });
    }
    const reply = (await s.redis.xreadgroup('GROUP', EMBED_RECALL_GROUP, 'consumer-a', 'COUNT', count, 'STREAMS', s.keys.ingestStream, '>')) as [string, [string, string[]][]][];
    return reply[0]![1].map(([id, flat]) => {
      const fields: Record<string, string> = {};
      for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i]!] = flat[i + 1]!;
      return { id, fields, raw: {} };
    });
  }

  it('keeps one batch embedding per embedder session, and takes the next batch only once a session is free', async () => {
    const { embedder, calls } = gatedEmbedder(await testEmbedder(), 2);
    const stage = new EmbedRecallStage({ ...s, log: silentLogger }, embedder);
    const batches = [await readBatch(2, 'first'), await readBatch(3, 'second'), await readBatch(1, 'third')];

    await stage.handle(batches[0]!); // a session is free: returns while the batch embeds
    let secondTaken = false;
    const second = stage.handle(batches[1]!).then(() => (secondTaken = true));
    expect(calls.map((c) => c.texts.length)).toEqual([2, 3]); // both sessions busy at once
    await sleep(100);
    expect(secondTaken).toBe(false); // no session free: the worker does not read on

    calls[0]!.release();
    await second;
    const third = stage.handle(batches[2]!);
    expect(calls.map((c) => c.texts.length)).toEqual([2, 3, 1]);
    calls[1]!.release();
    await third;
    calls[2]!.release();
    await stage.drain();

    const turnIds = batches.flat().map((e) => e.fields.turn_id!);
    const turns = await Promise.all(turnIds.map(async (id) => (await (await s.get(`/v1/turns/${id}`)).json()) as TurnResult));
    expect(turns.map((t) => t.status)).toEqual(Array(6).fill('done'));
    const pending = (await s.redis.xpending(s.keys.ingestStream, EMBED_RECALL_GROUP)) as [number, ...unknown[]];
    expect(pending[0]).toBe(0);
  });
});
