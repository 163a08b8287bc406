import { openAgentMem } from '../../src/agentmem.js';
import { createLogger } from '../../src/log.js';
import { consolidatorFor } from '../../src/consolidation/worker.js';
import type { Command } from './args.js';

export const consolidateCommand: Command = {
  name: 'consolidate',
  summary: 'Run one consolidation pass now (merging near-duplicate memories), with progress, and print a JSON summary.',
  usage: 'agentmem consolidate --once [options]',
  switches: { once: 'run one pass and exit (required; the scheduled form is `agentmem worker consolidator`)' },
  async run(config, positionals, switches) {
    if (positionals.length > 0 || !switches.once) {
      process.stderr.write('agentmem consolidate: give --once (for scheduled passes run `agentmem worker consolidator`)\n');
      return 2;
    }
    const log = createLogger(config.logLevel);
    const mem = await openAgentMem(config, log, { embedder: false });
    try {
      const summary = await consolidatorFor(mem.redis, mem.keys, config, log).runPass((p) =>
        process.stderr.write(`consolidating: scope ${p.scopesDone + 1}/${p.scopes}, ${p.scanned} memories scanned, ${p.merged} merged\n`),
      );
      process.stdout.write(JSON.stringify(summary) + '\n');
      return 0;
    } finally {
      await mem.close();
    }
  },
};
