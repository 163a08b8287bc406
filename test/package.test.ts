import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentmemClient } from '../src/client/index.js';
import { SETTINGS, type Config } from '../src/config.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startTestService, type TestService } from './support/service.js';

const run = promisify(execFile);
const TSC = join(PACKAGE_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const CLIENT_DIR = join(PACKAGE_ROOT, 'src', 'client');
const EXAMPLES = ['client.ts', 'library.ts'];

describe('agentmem/client stands alone', () => {
  it('imports only its own modules, and compiles with a browser\'s globals and no Node types', async () => {
    for (const file of (await readdir(CLIENT_DIR)).filter((f) => f.endsWith('.ts'))) {
      const { importedFiles } = ts.preProcessFile(await readFile(join(CLIENT_DIR, file), 'utf8'), true, true);
      for (const { fileName } of importedFiles) {
        expect({ file, fileName, inside: fileName.startsWith('./') && !relative(CLIENT_DIR, resolve(CLIENT_DIR, fileName)).startsWith('..') })
          .toEqual({ file, fileName, inside: true });
      }
    }
    await run(process.execPath, [TSC, '-p', join(CLIENT_DIR, 'tsconfig.json')], { cwd: PACKAGE_ROOT });
  });
});

describe('the packed package', () => {
  let s: TestService;
  let dir: string;
  beforeAll(async () => {
    s = await startTestService();
    dir = await mkdtemp(join(tmpdir(), 'agentmem-pack-'));
  });
  afterAll(async () => {
    await s?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('installs from `npm pack` into an empty folder, and both entry points and the README examples work from there', async () => {
    // dist/ is built by `npm test` before the suite; --ignore-scripts skips the prepack rebuild.
    const { stdout: packed } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: PACKAGE_ROOT });
    const [{ filename, files }] = JSON.parse(packed) as [{ filename: string; files: { path: string }[] }];
    const paths = files.map((f) => f.path);
    for (const expected of ['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/client/index.js', 'dist/src/client/index.d.ts', 'dist/server/cli/main.js', 'src/lua/acceptTurn-6.lua', 'web/index.html', 'README.md']) {
      expect(paths).toContain(expected);
    }
    expect(paths.filter((p) => p.startsWith('test/') || p.startsWith('dist/test/') || p.startsWith('dist/bench/') || p.endsWith('.map') || p.startsWith('node_modules/'))).toEqual([]);

    // The app depends on the dependencies already installed here (file: links), so the install
    // needs no registry: npm installs the tarball itself, links its bin, and resolves its deps.
    const app = join(dir, 'app');
    await mkdir(app);
    const modules = await realpath(join(PACKAGE_ROOT, 'node_modules'));
    const { dependencies } = JSON.parse(await readFile(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
    const links = Object.fromEntries(Object.keys(dependencies).map((name) => [name, `file:${join(modules, name)}`]));
    await writeFile(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies: links }));
    await run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--no-package-lock', join(dir, filename)], { cwd: app });
    expect(existsSync(join(app, 'node_modules', 'agentmem', 'src', 'lua', 'acceptTurn-6.lua'))).toBe(true);

    // The examples, compiled against the installed package's declarations (a type error fails here), then run.
    for (const example of EXAMPLES) await writeFile(join(app, example), await readFile(join(PACKAGE_ROOT, 'docs', 'examples', example), 'utf8'));
    await writeFile(join(app, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', skipLibCheck: true,
        types: ['node'], typeRoots: [join(modules, '@types')],
      },
      files: EXAMPLES,
    }));
    await run(process.execPath, [TSC, '-p', 'tsconfig.json'], { cwd: app });

    const env = { ...process.env, ...isolationEnv(s.config), REDIS_URL: s.config.redisUrl ?? '', AGENTMEM_URL: s.service.url };
    const library = await run(process.execPath, ['out/library.js'], { cwd: app, env, timeout: 30_000 });
    const queued = JSON.parse(library.stdout.trim()) as { turn_id: string; turn_count: number };
    expect(queued.turn_count).toBe(1);
    // The turn the library queued is processed by the server's workers, as a turn sent over HTTP.
    const client = new AgentmemClient({ baseUrl: s.service.url });
    expect(await client.waitForTurn(queued.turn_id)).toMatchObject({ status: 'done', thread_id: 'trip-42', memory: { kind: 'episodic' } });

    const { stdout } = await run(process.execPath, ['out/client.js'], { cwd: app, env, timeout: 30_000 });
    const lines = stdout.trim().split('\n');
    expect(lines[0]).toBe('done semantic');
    expect(lines).toContainEqual(expect.stringMatching(/^\d\.\d{3} I always book an aisle seat on long flights\.$/));
    expect(lines).toEqual(expect.arrayContaining(['thread_started', 'turn_accepted', 'recall_ready']));
    expect(lines.at(-1)).toMatch(/^400 content content: /);

    // The library's files are found where the package is installed.
    const probe = `
      import { LUA_DIR, PACKAGE_ROOT, WEB_DIR, loadConfig, createKeys } from 'agentmem';
      import { AgentmemClient } from 'agentmem/client';
      const who = await new AgentmemClient({ baseUrl: process.env.AGENTMEM_URL }).whoami();
      console.log(JSON.stringify({ root: PACKAGE_ROOT, lua: LUA_DIR, web: WEB_DIR, ingest: createKeys(loadConfig()).ingestStream, auth: who.auth }));`;
    await writeFile(join(app, 'probe.mjs'), probe);
    const found = JSON.parse((await run(process.execPath, ['probe.mjs'], { cwd: app, env, timeout: 30_000 })).stdout) as Record<string, string>;
    const installed = join(await realpath(app), 'node_modules', 'agentmem');
    expect(found).toEqual({ root: installed, lua: join(installed, 'src', 'lua'), web: join(installed, 'web'), ingest: `${s.config.pipelinePrefix}stream:turns`, auth: 'off' });
    expect((await run(join(app, 'node_modules', '.bin', 'agentmem'), ['--help'], { cwd: app, timeout: 30_000 })).stdout).toContain('serve');
  });
});

describe('"Use from TypeScript"', () => {
  it('quotes every example exactly as the file a test runs', async () => {
    const docs = [join(PACKAGE_ROOT, 'README.md')];
    const quoted = new Set<string>();
    for (const doc of docs) {
      const text = await readFile(doc, 'utf8');
      for (const [, path, block] of text.matchAll(/<!-- example: (\S+) -->\n```ts\n([\s\S]*?)```/g)) {
        expect({ doc, path, block }).toEqual({ doc, path, block: await readFile(join(PACKAGE_ROOT, path as string), 'utf8') });
        quoted.add(path as string);
      }
    }
    expect([...quoted].sort()).toEqual(EXAMPLES.map((e) => `docs/examples/${e}`));
  });
});

/** The environment that gives a process this test's keys (the same settings the server runs with). */
function isolationEnv(config: Config): Record<string, string> {
  const keys = ['indexName', 'sessionPrefix', 'memoryPrefix', 'eventsPrefix', 'pipelinePrefix'] as const;
  return Object.fromEntries(SETTINGS.filter((s) => (keys as readonly string[]).includes(s.key)).map((s) => [s.env, String(config[s.key])]));
}
