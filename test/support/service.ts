import type { Config } from '../../src/config.js';
import type { Embedder } from '../../src/embedder/embedder.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import { silentLogger } from '../../src/log.js';
import { Ingest } from '../../src/pipeline/ingest.js';
import { Durability } from '../../src/redis/durability.js';
import { startService, type RunningService } from '../../server/service.js';
import { testEmbedder } from './embedder.js';
import { openTiers, type TestTiers } from './redis.js';

export interface TestService extends TestTiers {
  service: RunningService;
  ingest: Ingest;
  post(path: string, body: unknown, headers?: Record<string, string>): Promise<Response>;
  get(path: string): Promise<Response>;
  stop(): Promise<void>;
}

/** The API (and, unless workers: false, both workers) in this process, on isolated keys and a free port. */
export async function startTestService(
  overrides: Partial<Config> = {},
  options: { workers?: boolean; /** Stands in for the model (to make embedding fail on purpose). */ embedder?: (real: Embedder) => TextEmbedder } = {},
): Promise<TestService> {
  const [tiers, real] = await Promise.all([openTiers({ port: 0, claimIdleMs: 1000, ...overrides }), testEmbedder()]);
  const embedder = options.embedder ? options.embedder(real) : real;
  const durability = await Durability.open(tiers.redis, { mode: 'auto', fenceKey: tiers.keys.durabilityFence, log: silentLogger });
  const mem = { ...tiers, embedder, durability, server: { url: '', options: {}, origin: 'test', stop: async () => undefined }, close: async () => undefined };
  const service = await startService(mem, tiers.config, silentLogger, options);
  return {
    ...tiers,
    service,
    ingest: new Ingest(tiers.redis, tiers.keys, tiers.config),
    post: (path, body, headers = {}) =>
      fetch(service.url + path, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) }),
    get: (path) => fetch(service.url + path),
    stop: async () => {
      await service.stop();
      await tiers.cleanup();
    },
  };
}

/** Polls a turn until it leaves `queued` (tests only: the API itself offers ?wait). */
export async function waitForTurn(s: TestService, turnId: string, timeoutMs = 30_000): Promise<{ status: string } & Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await s.get(`/v1/turns/${turnId}`);
    const turn = (await res.json()) as { status: string } & Record<string, unknown>;
    if (turn.status !== 'queued' || Date.now() > deadline) return turn;
    await new Promise((r) => setTimeout(r, 50));
  }
}
