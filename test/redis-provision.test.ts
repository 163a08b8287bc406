import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { DEFAULT_CONFIG } from '../src/config.js';
import { RedisCapabilityError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { startRedis } from '../src/provision/redis-server.js';
import { resolveRedis } from '../src/redis/resolve.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { freePort } from './support/ports.js';

describe('Redis resolution', () => {
  it('accepts a REDIS_URL with Search and JSON', async () => {
    const server = await resolveRedis({ ...DEFAULT_CONFIG, redisUrl: inject('redisUrl') }, silentLogger);
    expect(server.origin).toBe('REDIS_URL');
  });

  it('refuses a REDIS_URL without the modules, naming both', async (ctx) => {
    const installation = inject('redisInstallation');
    if (!installation) return ctx.skip(); // needs the provisioned binary to start a module-less server
    const dataDir = await mkdtemp(join(tmpdir(), 'agentmem-plain-redis-'));
    const plain = await startRedis({ ...installation, modules: [] }, { port: await freePort(), dataDir, persist: false, log: silentLogger }).catch(
      (err: unknown) => err,
    );
    // startRedis itself insists on the modules, so it must refuse this server too.
    expect(String(plain)).toMatch(/lacks the Search module .* and the JSON module/);
    const port = await freePort();
    const child = spawn(installation.server, ['--port', String(port), '--save', '', '--dir', dataDir], { stdio: 'ignore' });
    try {
      let error: unknown;
      for (let i = 0; i < 50; i++) {
        error = await resolveRedis({ ...DEFAULT_CONFIG, redisUrl: `redis://127.0.0.1:${port}` }, silentLogger).catch((e: unknown) => e);
        if (error instanceof RedisCapabilityError) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(error).toBeInstanceOf(RedisCapabilityError);
      expect((error as RedisCapabilityError).missing).toEqual(['the Search module (2.4+)', 'the JSON module (2.0+)']);
      expect((error as Error).message).toContain('docker-compose.yml');
    } finally {
      child.kill();
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('agentmem redis reuses a suitable server on its port, prints the URL and exits cleanly on SIGTERM', async () => {
    const port = new URL(inject('redisUrl')).port;
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'redis', '--redis-port', port], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, REDIS_URL: '' },
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const firstLine = await new Promise<string>((resolve, reject) => {
      child.stdout.once('data', (chunk: Buffer) => resolve(chunk.toString().trim()));
      child.once('exit', (code) => reject(new Error(`exited ${code}`)));
    });
    expect(firstLine).toBe(`redis://127.0.0.1:${port}`);
    let exit: string | undefined;
    const exited = new Promise<string>((resolve) => child.once('exit', (code, signal) => resolve((exit = `code ${code} signal ${signal}`))));
    // It stays in the foreground (it once exited at once here, nothing holding its event loop open).
    await new Promise((r) => setTimeout(r, 300));
    expect(exit).toBeUndefined();
    child.kill('SIGTERM');
    expect(await exited).toBe('code 0 signal null');
    expect(stderr).toContain('"event":"redis.reused"');
    expect(stderr).toContain('"event":"redis.stopping"');
  });
});
