import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../src/auth/key-store.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { CHROMIUM_ARGS, ensureChromium } from './support/chromium.js';
import { startTestService, type TestService } from './support/service.js';

const CLIENT_JS = join(PACKAGE_ROOT, 'dist', 'src', 'client');

/**
 * The client as a browser runs it: its built ES modules, as they ship, loaded by Chromium from the
 * server's origin (served by the page's router), against the real API with a key.
 */
describe('AgentmemClient in a browser', () => {
  let s: TestService;
  let browser: Browser;
  let key: string;
  beforeAll(async () => {
    const executablePath = ensureChromium();
    s = await startTestService({ auth: 'keys' });
    key = (await new ApiKeyStore(s.redis, s.keys).create({ users: ['bea'], namespaces: ['*'], role: 'write' })).token;
    browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
  }, 600_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('runs every kind of call: a turn and its wait, an event stream with its key, a typed error', async () => {
    const page = await browser.newPage();
    try {
      await page.route(`${s.service.url}/__client/**`, async (route) => {
        const name = new URL(route.request().url()).pathname.slice('/__client/'.length);
        if (name === 'blank.html') return route.fulfill({ contentType: 'text/html', body: '<!doctype html><title>client</title>' });
        return route.fulfill({ contentType: 'text/javascript', body: await readFile(join(CLIENT_JS, name), 'utf8') });
      });
      await page.goto(`${s.service.url}/__client/blank.html`);
      // A string, not a function: the test runner rewrites dynamic imports in functions it compiles.
      const result = await page.evaluate(`(async () => {
        const { AgentmemClient, AgentmemApiError } = await import('/__client/index.js');
        const client = new AgentmemClient({ baseUrl: location.origin, apiKey: ${JSON.stringify(key)} });
        const who = await client.whoami();
        const { thread_id } = await client.createThread();
        const controller = new AbortController();
        const actions = [];
        const reading = (async () => {
          for await (const event of client.events(thread_id, { since: '0', signal: controller.signal })) {
            actions.push(event.action);
            if (event.action === 'recall_ready') controller.abort();
          }
        })();
        const posted = await client.postTurn(thread_id, { content: 'Bea reads on the train.', remember: 'skip' });
        const turn = await client.waitForTurn(posted.turn_id);
        await reading;
        let error = null;
        try { await client.postTurn(thread_id, { content: 'x', remember: 'sometimes' }); }
        catch (err) { error = { isApiError: err instanceof AgentmemApiError, status: err.status, field: err.field }; }
        return { users: who.users, status: turn.status, keyLength: posted.idempotency_key.length, actions, error };
      })()`);
      expect(result).toEqual({
        users: ['bea'], status: 'done', keyLength: 32,
        actions: expect.arrayContaining(['thread_started', 'turn_accepted', 'recall_ready']),
        error: { isApiError: true, status: 400, field: 'remember' },
      });
    } finally {
      await page.close();
    }
  });
});
