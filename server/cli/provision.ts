import { modelDirOf } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { ensureModel } from '../../src/provision/model.js';
import { provisionStack } from '../../src/provision/redis-server.js';
import type { Command } from './args.js';

export const provisionCommand: Command = {
  name: 'provision',
  summary: 'Download and verify the embedded Redis Stack and the model into the cache (done on demand otherwise).',
  usage: 'agentmem provision [options]',
  settings: ['cacheDir', 'modelDir', 'logLevel'],
  async run(config) {
    const log = createLogger(config.logLevel);
    const [redis, model] = await Promise.all([provisionStack(config.cacheDir, log), ensureModel(modelDirOf(config), log)]);
    process.stdout.write(`redis-server: ${redis.server}\nmodel: ${model}\n`);
    return 0;
  },
};
