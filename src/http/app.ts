import express, { type Express } from 'express';
import type { MemoryTiers } from '../agentmem.js';
import { listModules, missingModules } from '../redis/connection.js';

/**
 * The HTTP app, separate from the server that listens, so tests can drive it in process.
 * It is built only once the model is loaded, so readiness need not check the model.
 */
export function createApp(mem: Pick<MemoryTiers, 'redis' | 'longTerm'>): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = { redis: 'unknown', index: 'unknown' };
    try {
      const missing = missingModules(await listModules(mem.redis));
      checks.redis = missing.length === 0 ? 'ok' : `missing ${missing.join(', ')}`;
      await mem.longTerm.indexInfo();
      checks.index = 'ok';
    } catch (err) {
      if (checks.redis === 'unknown') checks.redis = `unreachable: ${(err as Error).message}`;
      else checks.index = `missing: ${(err as Error).message}`;
    }
    const ready = Object.values(checks).every((c) => c === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  return app;
}
