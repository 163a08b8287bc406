import { openAgentMem, type AgentMem } from '../../src/agentmem.js';
import type { Config } from '../../src/config.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import { createLogger, type Logger } from '../../src/log.js';
import { DEFAULT_SCOPE, seedMemories } from '../../src/memory/seed.js';
import { startService, type RunningService } from '../service.js';
import { checkAuthMode } from '../../src/auth/mode.js';
import type { Command } from './args.js';
import { shutDownWithin, untilSignal } from './signals.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'Run agentmem: Redis (embedded unless REDIS_URL), the model, the index, the seed memories, the HTTP API and both pipeline workers.',
  usage: 'agentmem serve [options]',
  async run(config) {
    // Before Redis and the model: a listener that must not start fails at once.
    checkAuthMode(config);
    const log = createLogger(config.logLevel);
    const stopRequested = untilSignal(log);
    // Without workers the process embeds only /v1/recall queries, one text at a time: one session
    // is quicker at that than several and holds one copy of the weights instead of several.
    const mem = await openAgentMem(config.apiOnly && config.embedSessions === 0 ? { ...config, embedSessions: 1 } : config, log);
    let service: RunningService;
    try {
      service = await start(mem, config, log);
    } catch (err) {
      await mem.close();
      throw err;
    }
    const signal = await stopRequested;
    log.info('serve.stopping', { signal, timeout_ms: config.shutdownTimeoutMs });
    await shutDownWithin(config.shutdownTimeoutMs, log, async () => {
      await service.stop();
      await mem.close();
    });
    return 0;
  },
};

async function start(mem: AgentMem & { embedder: TextEmbedder }, config: Config, log: Logger): Promise<RunningService> {
  if (!config.noReset) {
    const cleared = await mem.longTerm.clearScope(DEFAULT_SCOPE);
    const seeded = await seedMemories(mem.longTerm, mem.embedder);
    log.info('seed.done', { cleared, written: seeded.filter((r) => r.written).length, deduped: seeded.filter((r) => r.deduped).length });
  }
  return startService(mem, config, log, { workers: !config.apiOnly });
}
