import express, { type Express } from 'express';
import type { AgentMem } from '../agentmem.js';
import { listModules, missingModules } from '../redis/connection.js';

/** The HTTP app, separate from the server that listens, so tests can drive it in process. */
export function createApp(mem: AgentMem): Express {
  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  app.get('/readyz', async (_req, res) => {
    const checks: Record<string, string> = {};
    try {
      const missing = missingModules(await listModules(mem.redis));
      checks.redis = missing.length === 0 ? 'ok' : `missing ${missing.join(', ')}`;
      await mem.longTerm.indexInfo();
      checks.index = 'ok';
    } catch (err) {
      checks.redis ??= `unreachable: ${(err as Error).message}`;
      checks.index ??= 'unknown';
    }
    checks.model = mem.embedder ? 'ok' : 'not loaded';
    const ready = Object.values(checks).every((c) => c === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not ready', checks });
  });

  return app;
}
