import type { Server } from 'node:http';
import { openAgentMem, type AgentMem } from '../agentmem.js';
import type { Config } from '../config.js';
import { createApp } from '../http/app.js';
import { createLogger, type Logger } from '../log.js';
import { DEFAULT_SCOPE, seedMemories } from '../memory/seed.js';
import type { Command } from './args.js';
import { untilSignal } from './signals.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run agentmem: Redis (embedded unless REDIS_URL), the model, the index, the seed memories and the HTTP service.',
  usage: 'agentmem serve [options]',
  async run(config) {
    const log = createLogger(config.logLevel);
    const mem = await openAgentMem(config, log);
    try {
      return await serve(mem, config, log);
    } finally {
      await mem.close();
    }
  },
};

async function serve(mem: AgentMem, config: Config, log: Logger): Promise<number> {
  if (!config.noReset) {
    const cleared = await mem.longTerm.clearScope(DEFAULT_SCOPE);
    const seeded = await seedMemories(mem.longTerm, mem.embedder);
    log.info('seed.done', { cleared, written: seeded.filter((r) => r.written).length, deduped: seeded.filter((r) => r.deduped).length });
  }
  const stopRequested = untilSignal();
  const server = await new Promise<Server>((resolve, reject) => {
    const s = createApp(mem).listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  log.info('serve.listening', { url: `http://${config.host}:${port}/`, redis: mem.server.origin });

  const signal = await stopRequested;
  log.info('serve.stopping', { signal });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return 0;
}
