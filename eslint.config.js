// @ts-check
import eslint from '@eslint/js';
import { defineConfig } from 'eslint/config';
import tseslint from 'typescript-eslint';

export default defineConfig(
  // docs/examples import the published package ('agentmem'): test/package.test.ts compiles and runs
  // them against the packed declarations.
  { ignores: ['dist/', 'node_modules/', '.cache/', 'test-output/', 'web/', 'docs/', 'eslint.config.js'] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      // One program for every file (tsconfig.test.json covers src, server, bench and test):
      // faster than a program per tsconfig, and the tests are linted with full types too.
      parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    rules: {
      // Express tells error handlers by their four parameters, so an unused one is named _next.
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      // An async function is how this codebase implements a Promise-returning interface without
      // awaiting anything (no-op stops, synchronous confirmations): its throws become rejections.
      '@typescript-eslint/require-await': 'off',
      // String() here turns Redis replies (typed unknown: strings, numbers, null) and thrown values
      // into text on purpose; \`reply ?? ''\` widens unknown to {}, which the rule takes for an object.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // vitest's asymmetric matchers (expect.any, expect.stringContaining, ...) are typed any.
      '@typescript-eslint/no-unsafe-assignment': 'off',
    },
  },
  {
    // The library never depends on the application built on it (see README, Architecture).
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        paths: [{ name: 'express', message: 'HTTP lives in server/http/, not in the library.' }],
        patterns: [{ group: ['**/server/**', '**/bench/**', '**/test/**'], message: 'src/ is the library: it never imports the application, benchmarks or tests.' }],
      }],
    },
  },
);
