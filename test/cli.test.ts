import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { loadConfig, SETTINGS } from '../src/config.js';
import { ValidationError } from '../src/errors.js';
import { PACKAGE_ROOT } from '../src/paths.js';

const CLI = join(PACKAGE_ROOT, 'dist/server/cli/main.js');
const run = (args: string[]) =>
  promisify(execFile)(process.execPath, [CLI, ...args]).then(
    ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
    (err: { code: number; stdout: string; stderr: string }) => ({ code: err.code, stdout: err.stdout, stderr: err.stderr }),
  );

describe('agentmem CLI', () => {
  it('lists its commands', async () => {
    const { code, stdout } = await run(['--help']);
    expect(code).toBe(0);
    for (const command of ['serve', 'mcp', 'worker', 'redis', 'embed', 'provision']) expect(stdout).toContain(command);
  });

  it.each(['serve', 'mcp', 'worker', 'redis', 'embed', 'provision'])('%s --help documents its options', async (command) => {
    const { code, stdout } = await run([command, '--help']);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^Usage: agentmem ${command}`));
    expect(stdout).toContain('--help');
  });

  it('serve --help lists every setting with its variable and default', async () => {
    const { stdout } = await run(['serve', '--help']);
    for (const s of SETTINGS) {
      expect(stdout).toContain(`--${s.flag}`);
      expect(stdout).toContain(s.env);
    }
    expect(stdout).toContain('(default: 8094)');
  });

  it('rejects an unknown command or flag, and a bad value, with exit code 2 and a message', async () => {
    expect(await run(['fly'])).toMatchObject({ code: 2, stderr: expect.stringContaining("unknown command 'fly'") });
    expect(await run(['serve', '--bogus'])).toMatchObject({ code: 2, stderr: expect.stringContaining('bogus') });
    expect(await run(['serve', '--dedup-threshold', '3'])).toMatchObject({ code: 2, stderr: expect.stringContaining('--dedup-threshold') });
  });
});

describe('config', () => {
  it('takes defaults, then environment, then flags', () => {
    expect(loadConfig({}).port).toBe(8094);
    expect(loadConfig({ AGENTMEM_PORT: '9000' }).port).toBe(9000);
    expect(loadConfig({ AGENTMEM_PORT: '9000' }, { port: '9100' }).port).toBe(9100);
    expect(loadConfig({}, { 'no-reset': true }).noReset).toBe(true);
    expect(loadConfig({ REDIS_URL: '' }).redisUrl).toBeUndefined();
  });

  it('names the variable or flag that holds a bad value', () => {
    expect(() => loadConfig({ AGENTMEM_RECALL_THRESHOLD: 'high' })).toThrow(ValidationError);
    expect(() => loadConfig({ AGENTMEM_RECALL_THRESHOLD: 'high' })).toThrow(/AGENTMEM_RECALL_THRESHOLD/);
    expect(() => loadConfig({}, { 'window-size': '0' })).toThrow(/--window-size/);
  });
});

describe('agentmem worker', () => {
  it('refuses an unknown worker name', async () => {
    expect(await run(['worker', 'juggler'])).toMatchObject({ code: 2, stderr: expect.stringContaining('embed-recall, remember') });
  });
});
