import { ApiKeyStore, parseNewKey } from '../../src/auth/key-store.js';
import { createKeys } from '../../src/keys.js';
import { createLogger } from '../../src/log.js';
import { connectRedis } from '../../src/redis/connection.js';
import { resolveRedis } from '../../src/redis/resolve.js';
import type { Command } from './args.js';

const USAGE = `agentmem keys create --user <user> [--user ...] [--namespace <ns> ...] [--role read|write|admin] [--expires <30d|12h|...>] [--name <label>]
       agentmem keys list
       agentmem keys revoke <key_id>`;

/**
 * API key management against the Redis the API uses. `create` prints the new key alone on one
 * line of stdout (its only appearance: agentmem keeps a hash), its metadata as a JSON log line on
 * stderr; `list` prints one JSON object per key (never a secret); `revoke` takes effect at once.
 */
export const keysCommand: Command = {
  name: 'keys',
  summary: 'Create, list and revoke API keys (for AGENTMEM_AUTH=keys).',
  usage: USAGE,
  settings: ['redisUrl', 'redisTlsCa', 'redisTlsCert', 'redisTlsKey', 'embeddedRedisPort', 'cacheDir', 'pipelinePrefix', 'logLevel'],
  options: {
    user: { help: 'create: a user the key acts for; * (with --role admin) = every user', multiple: true },
    namespace: { help: 'create: a namespace the key may use; none = every namespace of its users', multiple: true },
    role: { help: 'create: read (reads, recall), write (also turns, deletes, resets) or admin (also keys, dead letters, metrics); default write, admin for users *' },
    expires: { help: 'create: lifetime, e.g. 30d, 12h, 90m; default never' },
    name: { help: 'create: a label shown by list' },
  },
  async run(config, positionals, _switches, options) {
    const [action, ...rest] = positionals;
    const usage = (why: string): number => {
      process.stderr.write(`agentmem keys: ${why}\n\nUsage: ${USAGE}\n`);
      return 2;
    };
    if (action !== 'create' && action !== 'list' && action !== 'revoke') return usage('give create, list or revoke');
    if (action !== 'create' && Object.keys(options).length > 0) return usage(`--${Object.keys(options)[0]} is for create`);
    if (action === 'revoke' ? rest.length !== 1 : rest.length !== 0) return usage(action === 'revoke' ? 'give the key id to revoke' : `unexpected ${rest[0]}`);
    const input = action === 'create'
      ? parseNewKey({
        users: options.user, namespaces: options.namespace, role: options.role?.[0], expires: options.expires?.[0], name: options.name?.[0],
      })
      : undefined;
    const log = createLogger(config.logLevel);
    const server = await resolveRedis(config, log);
    const redis = connectRedis(server.url, server.options);
    redis.on('error', () => undefined);
    try {
      const store = new ApiKeyStore(redis, createKeys(config));
      if (input) {
        const { token, key } = await store.create(input);
        process.stdout.write(token + '\n');
        log.info('keys.created', { ...key });
        return 0;
      }
      if (action === 'list') {
        for (const key of await store.list()) process.stdout.write(JSON.stringify(key) + '\n');
        return 0;
      }
      const outcome = await store.revoke(rest[0] as string);
      log.info('keys.revoke', { key_id: rest[0], outcome });
      return outcome === 'not found' ? 1 : 0;
    } finally {
      await redis.quit().catch(() => undefined);
      await server.stop();
    }
  },
};
