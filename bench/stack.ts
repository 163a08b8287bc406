import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { freePort } from '../src/net.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { findOrProvisionRedis, startRedis, type RunningRedis } from '../src/provision/redis-server.js';

export interface Stack {
  /** The API's base URL. */
  url: string;
  redis: RunningRedis;
  server: ChildProcess;
  stop(): Promise<void>;
}

/**
 * A Redis of its own (on a free port, throwaway data) and `agentmem serve` on it as a child
 * process, with both workers and the default scope seeded; `env` adds settings. Resolves once
 * /readyz answers 200.
 */
export async function startStack(name: string, env: Record<string, string> = {}): Promise<Stack> {
  const config = loadConfig();
  const log = createLogger('warn');
  const dataDir = await mkdtemp(join(tmpdir(), `agentmem-${name}-`));
  const redis = await startRedis(await findOrProvisionRedis(config.cacheDir, log), { port: await freePort(), dataDir, persist: false, log });
  const port = await freePort();
  const server = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'serve'], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, REDIS_URL: redis.url, AGENTMEM_PORT: String(port), AGENTMEM_HOST: '127.0.0.1', AGENTMEM_LOG_LEVEL: 'warn', ...env },
  });
  const stop = async (): Promise<void> => {
    if (server.exitCode === null) {
      const exited = new Promise((r) => server.once('exit', r));
      server.kill('SIGTERM');
      await exited;
    }
    await redis.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (await fetch(`${url}/readyz`).then((r) => r.ok, () => false)) return { url, redis, server, stop };
    if (server.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error('agentmem serve did not become ready');
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** POST a JSON body, failing on any status but `expected`; the parsed answer. */
export async function postJson<T>(url: string, body: unknown, expected = 200): Promise<T> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== expected) throw new Error(`POST ${url} answered ${res.status}: ${text}`);
  return JSON.parse(text) as T;
}
