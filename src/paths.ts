import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The package root, found by walking up from this file: the same code runs from `src/` under
 * vitest and from `dist/src/` once built, so a fixed relative path would be wrong in one of them.
 */
function findPackageRoot(start: string): string {
  let dir = start;
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string };
      if (pkg.name === 'agentmem') return dir;
    }
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`agentmem package.json not found above ${start}`);
    dir = parent;
  }
}

export const PACKAGE_ROOT = findPackageRoot(dirname(fileURLToPath(import.meta.url)));
export const LUA_DIR = join(PACKAGE_ROOT, 'src', 'lua');
export const ASSETS_DIR = join(PACKAGE_ROOT, 'assets');
export const WEB_DIR = join(PACKAGE_ROOT, 'web');
export const DEFAULT_CACHE_DIR = join(PACKAGE_ROOT, '.cache', 'agentmem');
