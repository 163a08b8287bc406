import { createLogger } from '../../src/log.js';
import { resolveRedis } from '../../src/redis/resolve.js';
import type { Command } from './args.js';
import { untilSignal } from './signals.js';

export const redisCommand: Command = {
  name: 'redis',
  summary: 'Start (or reuse) a local Redis with Search and JSON, print its URL, and stay in the foreground until interrupted.',
  usage: 'agentmem redis [options]',
  settings: ['redisUrl', 'redisTlsCa', 'redisTlsCert', 'redisTlsKey', 'embeddedRedisPort', 'cacheDir', 'logLevel'],
  async run(config) {
    // Listen first: whoever reads the URL may signal us at once, and a signal during start-up
    // must still stop a server we started.
    const log = createLogger(config.logLevel);
    const stopRequested = untilSignal(log);
    const server = await resolveRedis(config, log);
    process.stdout.write(server.url + '\n');
    // Signal listeners do not keep Node running; a reused server leaves nothing else that would.
    const stayUp = setInterval(() => undefined, 2 ** 31 - 1);
    const signal = await stopRequested;
    clearInterval(stayUp);
    log.info('redis.stopping', { signal, origin: server.origin });
    await server.stop();
    return 0;
  },
};
