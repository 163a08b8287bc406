import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CONFIG, SETTINGS } from '../src/config.js';
import { RedisUnreachableError, ValidationError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { connectRedis } from '../src/redis/connection.js';
import { resolveRedis } from '../src/redis/resolve.js';
import { agentmemEnv, canOwnRedis, killAll, ownRedis, spawnAgentmem, until, untilStatus, type AgentmemProcess, type OwnRedis } from './support/fleet.js';
import { freePort } from './support/ports.js';
import { REDIS_ACL_RULES } from './support/redis-acl.js';
import { openSse } from './support/sse.js';

/**
 * agentmem against a Redis that asks who is calling: a password (`requirepass`), TLS with a
 * private CA and client certificates (`--tls-port`, `tls-auth-clients yes`), and an ACL user with
 * exactly the rules the README documents. Each runs real processes (the API and every worker) and
 * takes a turn through to done, with its event stream open.
 */

const PASSWORD = 'pw-for-the-default-user';
const ACL_PASSWORD = 'pw-for-the-agentmem-user';

interface Certs {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A throwaway CA, a server certificate for 127.0.0.1 and a client certificate, made with openssl. */
async function makeCerts(): Promise<Certs> {
  const dir = await mkdtemp(join(tmpdir(), 'agentmem-tls-'));
  const file = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('/usr/bin/openssl', args, { stdio: 'pipe' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl('req', '-x509', ...ec, '-keyout', file('ca.key'), '-out', file('ca.crt'), '-days', '2', '-subj', '/CN=agentmem test CA');
  await writeFile(file('server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  await writeFile(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  for (const who of ['server', 'client']) {
    openssl('req', ...ec, '-keyout', file(`${who}.key`), '-out', file(`${who}.csr`), '-subj', `/CN=agentmem test ${who}`);
    openssl('x509', '-req', '-in', file(`${who}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'), '-CAcreateserial',
      '-out', file(`${who}.crt`), '-days', '2', '-extfile', file(`${who}.ext`));
  }
  return { dir, ca: file('ca.crt'), serverCert: file('server.crt'), serverKey: file('server.key'), clientCert: file('client.crt'), clientKey: file('client.key') };
}

interface Fleet {
  base: string;
  processes: AgentmemProcess[];
  /** The metrics ports of the separate workers. */
  workerPorts: number[];
}

/**
 * `serve --no-reset` and, as processes of their own, the workers agentmem has: with `apiOnly`
 * every pipeline worker (the API alone), otherwise the consolidator only (serve runs the others).
 */
async function startFleet(redisUrl: string, env: Record<string, string>, apiOnly: boolean): Promise<Fleet> {
  const port = await freePort();
  const common = { AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_CONSOLIDATE_INTERVAL_MS: '1000', ...env };
  const processes = [spawnAgentmem(['serve', '--no-reset', ...(apiOnly ? ['--api-only'] : [])], agentmemEnv(redisUrl, { ...common, AGENTMEM_PORT: String(port) }))];
  const workerPorts: number[] = [];
  for (const worker of apiOnly ? ['embed-recall', 'remember', 'consolidator'] : ['consolidator']) {
    const metricsPort = await freePort();
    workerPorts.push(metricsPort);
    processes.push(spawnAgentmem(['worker', worker], agentmemEnv(redisUrl, { ...common, AGENTMEM_METRICS_PORT: String(metricsPort) })));
  }
  const base = `http://127.0.0.1:${port}`;
  // A process that cannot start (refused by Redis) exits: fail with its log rather than wait.
  // (Promise.race handles each of these, so their rejections at the final SIGTERM go unnoticed.)
  const exited = processes.map(async (p) => {
    const { code, signal } = await p.exited;
    throw new Error(`an agentmem process exited (${code ?? signal}) while starting:\n${p.stderr()}`);
  });
  await Promise.race([Promise.all([base, ...workerPorts.map((p) => `http://127.0.0.1:${p}`)].map((url) => untilStatus(`${url}/readyz`, 200, 120_000))), ...exited]);
  return { base, processes, workerPorts };
}

async function stopFleet(fleet: Fleet | undefined): Promise<void> {
  if (!fleet) return;
  for (const p of fleet.processes) p.kill('SIGTERM');
  await Promise.all(fleet.processes.map((p) => p.exited));
}

/**
 * With #11's API keys in the build, the ACL run also has keys on (their records and rate buckets
 * live in Redis too), and every request carries the bootstrap admin key.
 */
const HAS_API_KEYS = SETTINGS.some((s) => (s.key as string) === 'auth');
const ADMIN_KEY = `am_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;
let token: string | undefined;
const authorization = (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});
const get = (url: string, init: RequestInit = {}): Promise<Response> => fetch(url, { ...init, headers: { ...authorization(), ...(init.headers as Record<string, string>) } });
const post = (url: string, body: unknown): Promise<Response> =>
  get(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(60_000) });
const sse = (url: string) => openSse(token ? `${url}?access_token=${token}` : url);

interface Turn {
  status: string;
  recall: { text: string }[] | null;
  memory: { id: string; deduped: boolean } | null;
}

/**
 * A thread's event stream open while two turns go through to done: the second recalls what the
 * first remembered. Also the memory-event stream and the routes that read and delete memories.
 */
async function exercise(fleet: Fleet, thread: string): Promise<void> {
  const { base } = fleet;
  const events = await sse(`${base}/v1/threads/${thread}/events`);
  const memoryEvents = await sse(`${base}/v1/memories/events`);
  try {
    const first = await post(`${base}/v1/threads/${thread}/turns?wait=30000`, { content: 'My favourite tea is a smoky lapsang souchong.', remember: 'semantic' });
    expect(first.status).toBe(200);
    const remembered = (await first.json()) as Turn;
    expect(remembered).toMatchObject({ status: 'done', memory: { deduped: false } });
    await events.until((e) => e.some((x) => x.action === 'turn_appended:user'));
    await memoryEvents.until((e) => e.length > 0);

    const second = (await (await post(`${base}/v1/threads/${thread}/turns?wait=30000`, { content: 'Which tea do I like?', remember: 'skip' })).json()) as Turn;
    expect(second.status).toBe('done');
    expect(second.recall?.map((m) => m.text)).toContain('My favourite tea is a smoky lapsang souchong.');
    // A paraphrase folds onto the memory (the dedup write bumps its hit count).
    const third = (await (await post(`${base}/v1/threads/${thread}/turns?wait=30000`, { content: 'My favourite tea is smoky lapsang souchong.', remember: 'semantic' })).json()) as Turn;
    expect(third).toMatchObject({ status: 'done', memory: { id: remembered.memory?.id, deduped: true } });
    await events.until((e) => e.filter((x) => x.action === 'recall_ready').length === 3);

    const listed = (await (await get(`${base}/v1/memories`)).json()) as { memories: { id: string }[] };
    expect(listed.memories.map((m) => m.id)).toContain(remembered.memory?.id);
    const deleted = await get(`${base}/v1/memories/${remembered.memory?.id}`, { method: 'DELETE' });
    expect(await deleted.json()).toEqual({ deleted: true, memory_id: remembered.memory?.id });
    const ready = (await (await fetch(`${base}/readyz`)).json()) as { status: string; checks: Record<string, unknown> };
    expect(ready.status).toBe('ready');
  } finally {
    events.close();
    memoryEvents.close();
  }
}

describe.skipIf(!canOwnRedis())('Redis that requires credentials', () => {
  let certs: Certs;
  const servers: OwnRedis[] = [];

  beforeAll(async () => {
    certs = await makeCerts();
  });
  afterAll(async () => {
    killAll();
    for (const server of servers) await server.stop();
    if (certs) await rm(certs.dir, { recursive: true, force: true });
  });

  it('a password (requirepass): serve and a consolidator worker take a turn through to done, with its event stream open', async () => {
    const redis = await ownRedis((port) => ({ extraArgs: ['--requirepass', PASSWORD], url: `redis://:${PASSWORD}@127.0.0.1:${port}` }));
    servers.push(redis);
    let fleet: Fleet | undefined;
    try {
      fleet = await startFleet(redis.url, {}, false);
      await exercise(fleet, 'password-thread');
      // The consolidator's BullMQ connections authenticated too: it ran passes.
      await untilLogged(fleet.processes[1] as AgentmemProcess, 'consolidate.pass_done');
    } finally {
      await stopFleet(fleet);
    }
    // Nothing it logged carries the password.
    for (const p of fleet?.processes ?? []) expect(p.stderr()).not.toContain(PASSWORD);
  }, 180_000);

  it('TLS (rediss://) with a private CA and client certificates: serve and a consolidator worker take a turn through to done', async () => {
    const tlsArgs = ['--tls-cert-file', certs.serverCert, '--tls-key-file', certs.serverKey, '--tls-ca-cert-file', certs.ca, '--tls-auth-clients', 'yes'];
    const tlsOptions = { tls: { ca: readFileSync(certs.ca), cert: readFileSync(certs.clientCert), key: readFileSync(certs.clientKey) } };
    // The plain port off: nothing but TLS reaches this server.
    const redis = await ownRedis((port) => ({ extraArgs: ['--port', '0', '--tls-port', String(port), ...tlsArgs], url: `rediss://127.0.0.1:${port}`, options: tlsOptions }));
    servers.push(redis);
    const tlsEnv = { AGENTMEM_REDIS_TLS_CA: certs.ca, AGENTMEM_REDIS_TLS_CERT: certs.clientCert, AGENTMEM_REDIS_TLS_KEY: certs.clientKey };
    let fleet: Fleet | undefined;
    try {
      fleet = await startFleet(redis.url, tlsEnv, false);
      await exercise(fleet, 'tls-thread');
      await untilLogged(fleet.processes[1] as AgentmemProcess, 'consolidate.pass_done');
    } finally {
      await stopFleet(fleet);
    }

    // Without the CA the server's certificate is not trusted, and start-up says so.
    const resolve = (overrides: Partial<typeof DEFAULT_CONFIG>) => resolveRedis({ ...DEFAULT_CONFIG, redisUrl: redis.url, ...overrides }, silentLogger);
    await expect(resolve({ redisTlsCert: certs.clientCert, redisTlsKey: certs.clientKey })).rejects.toThrow(
      new RegExp(`cannot reach Redis at rediss://127\\.0\\.0\\.1:${redis.port}: (UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)`),
    );
    // Without a client certificate the server refuses the handshake.
    await expect(resolve({ redisTlsCa: certs.ca })).rejects.toThrow(RedisUnreachableError);
    // TLS files for a plain redis:// URL are a mistake, not something to ignore; so is half a client certificate.
    await expect(resolve({ redisUrl: `redis://127.0.0.1:${redis.port}`, redisTlsCa: certs.ca })).rejects.toThrow(
      new ValidationError('AGENTMEM_REDIS_TLS_CA', 'is only used with a rediss:// REDIS_URL (TLS)'),
    );
    await expect(resolve({ redisTlsCa: certs.ca, redisTlsCert: certs.clientCert })).rejects.toThrow(/AGENTMEM_REDIS_TLS_KEY/);
    await expect(resolve({ redisTlsCa: join(certs.dir, 'missing.pem') })).rejects.toThrow(/AGENTMEM_REDIS_TLS_CA: cannot read .*missing\.pem: ENOENT/);
  }, 180_000);

  it('an ACL user with exactly the documented rules runs the API and every worker as processes of their own: nothing it does is denied but CONFIG', async () => {
    // The user defined on the command line, as docker-compose.yml does it; the default user keeps a password of its own.
    const userArgs = ['--user', 'agentmem', 'on', `>${ACL_PASSWORD}`, ...REDIS_ACL_RULES];
    const redis = await ownRedis((port) => ({ extraArgs: ['--requirepass', PASSWORD, ...userArgs], url: `redis://:${PASSWORD}@127.0.0.1:${port}` }));
    servers.push(redis);
    const url = `redis://agentmem:${ACL_PASSWORD}@127.0.0.1:${redis.port}`;
    let fleet: Fleet | undefined;
    try {
      fleet = await startFleet(url, HAS_API_KEYS ? { AGENTMEM_AUTH: 'keys', AGENTMEM_BOOTSTRAP_ADMIN_KEY: ADMIN_KEY } : {}, true);
      token = HAS_API_KEYS ? ADMIN_KEY : undefined;
      if (HAS_API_KEYS) {
        // Key management goes through the same rules: create, list, revoke.
        const created = (await (await post(`${fleet.base}/v1/keys`, { users: ['default'], namespaces: ['default'], role: 'write' })).json()) as { key: string; key_id: string };
        expect((await (await get(`${fleet.base}/v1/keys`)).json()) as { keys: { key_id: string }[] }).toMatchObject({ keys: expect.arrayContaining([expect.objectContaining({ key_id: created.key_id })]) });
        token = created.key;
        expect((await get(`${fleet.base}/v1/whoami`)).status).toBe(200);
        token = ADMIN_KEY;
        expect((await get(`${fleet.base}/v1/keys/${created.key_id}`, { method: 'DELETE' })).status).toBe(200);
      }
      await exercise(fleet, 'acl-thread');
      for (const port of fleet.workerPorts) expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      // A near-duplicate that slipped past dedup (copied here by the admin) is merged by the consolidator.
      const consolidator = fleet.processes[3] as AgentmemProcess;
      const kept = (await (await post(`${fleet.base}/v1/threads/acl-thread/turns?wait=30000`, { content: 'The user keeps bees on the roof.', remember: 'semantic' })).json()) as Turn;
      const original = JSON.parse((await redis.client.call('JSON.GET', `agent:mem:${kept.memory?.id}`, '$')) as string) as Record<string, unknown>[];
      await redis.client.call('JSON.SET', 'agent:mem:0000deadbeef', '$', JSON.stringify({ ...original[0], id: '0000deadbeef' }));
      await untilLogged(consolidator, 'consolidate.merged');
      expect(await redis.client.exists('agent:mem:0000deadbeef') + await redis.client.exists(`agent:mem:${kept.memory?.id}`)).toBe(1);
      // The legacy routes and a scope reset (clear + re-seed) go through the same rules.
      const reset = await get(`${fleet.base}/reset`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'user=default&namespace=default' });
      expect(reset.status).toBe(200);
      expect((await get(`${fleet.base}/state?thread_id=acl-thread`)).status).toBe(200);
    } finally {
      token = undefined;
      await stopFleet(fleet);
    }

    // What Redis refused, over the whole run: only CONFIG GET (durability then reads INFO).
    const denied = ((await redis.client.call('ACL', 'LOG')) as unknown[][]).map((entry) => {
      const fields = new Map<string, unknown>();
      for (let i = 0; i < entry.length; i += 2) fields.set(String(entry[i]), entry[i + 1]);
      return `${String(fields.get('username'))} ${String(fields.get('reason'))} ${String(fields.get('object'))}`;
    });
    expect(new Set(denied)).toEqual(new Set(denied.length > 0 ? ['agentmem command config|get'] : []));

    // And what the rules keep from it: other keys, other channels, server administration.
    const asAgentmem = connectRedis(url, { maxRetriesPerRequest: 0 });
    try {
      await expect(asAgentmem.get('someone-else:secret')).rejects.toThrow(/NOPERM/);
      await expect(asAgentmem.set('someone-else:secret', 'x')).rejects.toThrow(/NOPERM/);
      await expect(asAgentmem.publish('someone-else', 'x')).rejects.toThrow(/NOPERM/);
      for (const command of [['FLUSHALL'], ['KEYS', '*'], ['CONFIG', 'GET', 'requirepass'], ['ACL', 'LIST'], ['CLIENT', 'KILL', 'TYPE', 'normal'], ['SCRIPT', 'FLUSH'], ['FUNCTION', 'FLUSH'], ['SCAN', '0'], ['RANDOMKEY'], ['SHUTDOWN']]) {
        await expect(asAgentmem.call(command[0] as string, ...command.slice(1))).rejects.toThrow(/NOPERM/);
      }
      // BullMQ's wider rule set is confined to its own keys.
      await expect(asAgentmem.lpush('agent:mem:not-a-list', 'x')).rejects.toThrow(/NOPERM/);
    } finally {
      asAgentmem.disconnect();
    }
  }, 240_000);
});

function untilLogged(p: AgentmemProcess, event: string): Promise<void> {
  return until(`${event} in the logs`, () => p.logs.some((l) => l.event === event), 60_000);
}
