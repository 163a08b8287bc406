import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Stream } from 'node:stream';
import type { Redis, RedisOptions } from 'ioredis';
import { inject } from 'vitest';
import type { Config } from '../../src/config.js';
import { silentLogger } from '../../src/log.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { startRedis, type RunningRedis, type StartOptions } from '../../src/provision/redis-server.js';
import { connectRedis } from '../../src/redis/connection.js';
import { freePort } from './ports.js';

/**
 * Fault tests need a Redis of their own (they kill, flush and restart it) and agentmem as real
 * processes pointed at it. This module gives both: `ownRedis()` starts the provisioned server
 * the way `agentmem serve` starts its embedded one, on a free port with a throwaway data folder;
 * `spawnAgentmem()` runs `node dist/server/cli/main.js <args>` against it.
 */

export interface OwnRedis {
  url: string;
  port: number;
  dataDir: string;
  /** A client of the test's own (retries while the server is down). */
  client: Redis;
  /** SIGKILL (or another signal) to the server process; resolves once it has exited. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts the server again on the same port; `empty` removes its data folder first. */
  restart(options?: { empty?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/** True when the suite runs against the provisioned server (not a REDIS_URL it cannot restart). */
export function canOwnRedis(): boolean {
  return inject('redisInstallation') !== null;
}

/**
 * How a test configures its server beyond agentmem's defaults (a password, TLS): more redis-server
 * arguments for the port it got, and the URL and connection options that reach it then.
 */
export type ConfigureRedis = (port: number) => { extraArgs: string[]; url: string; options?: RedisOptions };

export async function ownRedis(configure?: ConfigureRedis): Promise<OwnRedis> {
  const installation = inject('redisInstallation');
  if (!installation) throw new Error('ownRedis needs the provisioned Redis (the suite runs against REDIS_URL)');
  const port = await freePort();
  const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-fault-'));
  const custom = configure?.(port);
  const startOptions: StartOptions = {
    port, dataDir, persist: true, log: silentLogger,
    ...(custom ? { extraArgs: custom.extraArgs, client: { url: custom.url, options: custom.options ?? {} } } : {}),
  };
  let server: RunningRedis = await startRedis(installation, startOptions);
  const client = connectRedis(server.url, { ...custom?.options, maxRetriesPerRequest: null, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  const kill = async (signal: NodeJS.Signals = 'SIGKILL'): Promise<void> => {
    const child = server.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill(signal);
    await exited;
  };
  return {
    url: server.url,
    port,
    dataDir,
    client,
    kill,
    restart: async (options = {}) => {
      await kill('SIGKILL');
      if (options.empty) {
        await rm(dataDir, { recursive: true, force: true });
      }
      server = await startRedis(installation, startOptions);
    },
    stop: async () => {
      client.disconnect();
      await server.stop();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export interface AgentmemProcess {
  child: ChildProcess;
  /** Every JSON log line the process wrote to stderr so far, parsed. */
  logs: Record<string, unknown>[];
  /** Raw stderr, for failure messages. */
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

/** The environment that points an agentmem process at `redisUrl` and the suite's model. */
export function agentmemEnv(redisUrl: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    REDIS_URL: redisUrl,
    AGENTMEM_MODEL_DIR: inject('modelDir'),
    AGENTMEM_LOG_LEVEL: 'info',
    AGENTMEM_HOST: '127.0.0.1',
    ...extra,
  };
}

/** The variables that put an agentmem process on `config`'s index and key prefixes (a test's isolated keys). */
export function keysEnv(config: Pick<Config, 'indexName' | 'sessionPrefix' | 'memoryPrefix' | 'eventsPrefix' | 'pipelinePrefix'>): Record<string, string> {
  return {
    AGENTMEM_INDEX_NAME: config.indexName, AGENTMEM_SESSION_PREFIX: config.sessionPrefix, AGENTMEM_MEMORY_PREFIX: config.memoryPrefix,
    AGENTMEM_EVENTS_PREFIX: config.eventsPrefix, AGENTMEM_PIPELINE_PREFIX: config.pipelinePrefix,
  };
}

/**
 * The JSON log lines `stream` carries, parsed as they arrive (the array grows); a line that is not
 * JSON (a crash message, or anything that should not be on a log stream) becomes `{ raw: line }`.
 */
export function jsonLines(stream: Stream): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let partial = '';
  stream.on('data', (chunk: Buffer) => {
    partial += chunk.toString();
    let end: number;
    while ((end = partial.indexOf('\n')) >= 0) {
      const line = partial.slice(0, end);
      partial = partial.slice(end + 1);
      try {
        lines.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        lines.push({ raw: line });
      }
    }
  });
  return lines;
}

const running = new Set<ChildProcess>();

/** `agentmem <args>` as a child process. Call `killAll()` in afterAll. */
export function spawnAgentmem(args: string[], env: NodeJS.ProcessEnv): AgentmemProcess {
  const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  running.add(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const logs = child.stderr ? jsonLines(child.stderr) : [];
  child.stdout?.resume();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => {
      running.delete(child);
      resolve({ code, signal });
    }),
  );
  return { child, logs, stderr: () => stderr, exited, kill: (signal = 'SIGTERM') => void child.kill(signal) };
}

/** SIGKILLs every process spawnAgentmem started that is still running. */
export function killAll(): void {
  for (const child of running) child.kill('SIGKILL');
}

/** Resolves once `check` holds, checking every `everyMs`; fails after `timeoutMs` with `what`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000, everyMs = 100): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Waits until GET `url` answers `status` (a process that is starting refuses connections). */
export async function untilStatus(url: string, status = 200, timeoutMs = 60_000): Promise<void> {
  await until(`${url} to answer ${status}`, async () => (await fetch(url, { signal: AbortSignal.timeout(2000) }).catch(() => undefined))?.status === status, timeoutMs, 200);
}
