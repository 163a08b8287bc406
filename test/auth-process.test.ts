import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { PACKAGE_ROOT } from '../src/paths.js';
import { agentmemEnv, keysEnv, killAll, spawnAgentmem, untilStatus } from './support/fleet.js';
import { freePort } from './support/ports.js';
import { openTiers, type TestTiers } from './support/redis.js';
import { openSse } from './support/sse.js';

/**
 * Authentication in real `agentmem` processes: an unauthenticated listener on a non-loopback
 * address refuses to start, `agentmem keys` prints a key once and never lists it, and no log line
 * of a serving process ever carries a key, whichever way it was sent.
 */

let t: TestTiers;
beforeAll(async () => {
  t = await openTiers();
});
afterAll(async () => {
  killAll();
  await t.cleanup();
});

function env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return agentmemEnv(inject('redisUrl'), { ...keysEnv(t.config), AGENTMEM_NO_RESET: 'true', ...extra });
}

/** `agentmem <args>` to completion: exit code, stdout, stderr. */
function run(args: string[], extra: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), ...args], { env: env(extra) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('auth off on a reachable address', () => {
  it('refuses to start, naming the setting, with auth off by default or said outright', async () => {
    const unsetOrOff: Record<string, string>[] = [{}, { AGENTMEM_AUTH: 'off' }];
    for (const extra of unsetOrOff) {
      const port = await freePort();
      const { code, stderr } = await run(['serve', '--host', '0.0.0.0', '--port', String(port)], extra);
      expect(code).toBe(2);
      expect(stderr).toMatch(/AGENTMEM_AUTH: authentication is off and the API would listen on 0\.0\.0\.0/);
      expect(stderr).toContain('off-insecure');
    }
  });

  it('starts when asked for explicitly (off-insecure), and says so in its log', async () => {
    const port = await freePort();
    const proc = spawnAgentmem(['serve'], env({ AGENTMEM_HOST: '0.0.0.0', AGENTMEM_PORT: String(port), AGENTMEM_AUTH: 'off-insecure', AGENTMEM_EMBED_SESSIONS: '1' }));
    await untilStatus(`http://127.0.0.1:${port}/readyz`);
    expect(proc.logs.filter((l) => l.event === 'auth.insecure')).toHaveLength(1);
    const whoami = await (await fetch(`http://127.0.0.1:${port}/v1/whoami`)).json();
    expect(whoami).toEqual({ auth: 'off', key_id: null, name: null, role: 'admin', users: ['*'], namespaces: ['*'], expires_ts: null });
    proc.kill();
    await proc.exited;
  });
});

describe('agentmem keys', () => {
  it('create prints the key alone, once; list never shows it; revoke takes effect', async () => {
    const created = await run(['keys', 'create', '--user', 'alice', '--user', 'Bob', '--namespace', 'default', '--role', 'read', '--expires', '30d', '--name', 'ci']);
    expect(created.code).toBe(0);
    expect(created.stdout).toMatch(/^am_[0-9a-f]{12}_[A-Za-z0-9_-]{43}\n$/);
    const token = created.stdout.trim();
    const keyId = token.slice(3, 15);
    const logLine = created.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === 'keys.created');
    expect(logLine).toMatchObject({ key_id: keyId, users: ['alice', 'Bob'], namespaces: ['default'], role: 'read', name: 'ci' });
    expect(created.stderr).not.toContain(token.slice(16));

    const listed = await run(['keys', 'list']);
    expect(listed.code).toBe(0);
    const keys = listed.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(keys).toContainEqual(expect.objectContaining({ key_id: keyId, revoked: false, expires_ts: expect.any(Number) }));
    expect(listed.stdout + listed.stderr).not.toContain(token.slice(16));

    expect((await run(['keys', 'revoke', keyId])).code).toBe(0);
    expect((await run(['keys', 'revoke', 'ffffffffffff'])).code).toBe(1);
    const after = (await run(['keys', 'list'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(after).toContainEqual(expect.objectContaining({ key_id: keyId, revoked: true }));
  });

  it('refuses a bad request with exit code 2 and a message naming the field', async () => {
    const noUser = await run(['keys', 'create']);
    expect(noUser.code).toBe(2);
    expect(noUser.stderr).toMatch(/users/);
    const adminForSome = await run(['keys', 'create', '--user', 'alice', '--role', 'admin']);
    expect(adminForSome.code).toBe(2);
    expect(adminForSome.stdout).toBe('');
    expect((await run(['keys', 'list', '--user', 'alice'])).code).toBe(2);
  });
});

describe('a serving process with keys on', () => {
  it('never logs a key: not the bootstrap key, not one sent as a header or as ?access_token, not a wrong one', async () => {
    const bootstrap = `am_b0075a4b1e00_${'S3cr3t-b00tstrap'.repeat(3)}`;
    const port = await freePort();
    const proc = spawnAgentmem(['serve'], env({
      AGENTMEM_PORT: String(port), AGENTMEM_AUTH: 'keys', AGENTMEM_BOOTSTRAP_ADMIN_KEY: bootstrap, AGENTMEM_LOG_LEVEL: 'debug', AGENTMEM_EMBED_SESSIONS: '1',
    }));
    const base = `http://127.0.0.1:${port}`;
    await untilStatus(`${base}/readyz`);
    const admin = { authorization: `Bearer ${bootstrap}` };
    expect(await (await fetch(`${base}/v1/whoami`, { headers: admin })).json()).toMatchObject({ key_id: 'b0075a4b1e00', role: 'admin', users: ['*'] });
    const created = (await (await fetch(`${base}/v1/keys`, { method: 'POST', headers: { ...admin, 'content-type': 'application/json' }, body: JSON.stringify({ users: ['alice'] }) })).json()) as { key: string; key_id: string };
    const alice = { authorization: `Bearer ${created.key}` };
    const thread = (await (await fetch(`${base}/v1/threads`, { method: 'POST', headers: alice })).json()) as { thread_id: string };
    const stream = await openSse(`${base}/v1/threads/${thread.thread_id}/events?access_token=${encodeURIComponent(created.key)}`);
    const turn = await fetch(`${base}/v1/threads/${thread.thread_id}/turns`, { method: 'POST', headers: { ...alice, 'content-type': 'application/json' }, body: JSON.stringify({ content: 'hello' }) });
    expect(turn.status).toBe(202);
    await stream.until((events) => events.some((e) => e.action === 'turn_accepted'));
    stream.close();
    const wrong = `am_${created.key_id}_${'w'.repeat(43)}`;
    expect((await fetch(`${base}/v1/memories`, { headers: { authorization: `Bearer ${wrong}` } })).status).toBe(401);
    expect((await fetch(`${base}/v1/memories/events?access_token=${wrong}`)).status).toBe(401);
    proc.kill('SIGTERM');
    await proc.exited;
    const logs = proc.stderr();
    expect(logs).toContain('auth.refused');
    expect(logs).toContain(created.key_id);
    for (const secret of [bootstrap, bootstrap.slice(16), created.key, created.key.slice(16), wrong.slice(16)]) expect(logs).not.toContain(secret);
  });
});
