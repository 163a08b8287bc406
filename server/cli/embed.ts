import { loadEmbedder } from '../../src/agentmem.js';
import { createLogger } from '../../src/log.js';
import type { Command } from './args.js';

export const embedCommand: Command = {
  name: 'embed',
  summary: 'Print the embedding of each text argument, one JSON array of 384 numbers per line, in order.',
  usage: 'agentmem embed [options] <text...>',
  settings: ['cacheDir', 'modelDir', 'logLevel'],
  async run(config, texts) {
    if (texts.length === 0) {
      process.stderr.write('agentmem embed: give at least one text\n');
      return 2;
    }
    const embedder = await loadEmbedder(config, createLogger(config.logLevel));
    const vectors = await embedder.embed(texts);
    process.stdout.write(vectors.map((v) => JSON.stringify(Array.from(v))).join('\n') + '\n');
    return 0;
  },
};
