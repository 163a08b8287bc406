import { randomBytes } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../src/config.js';
import { seedMemories } from '../src/memory/seed.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { CHROMIUM_ARGS, ensureChromium } from './support/chromium.js';
import { testEmbedder } from './support/embedder.js';
import { startTestService, type TestService } from './support/service.js';

/**
 * The demo page in Debian's Chromium, twice: with auth off (the quick start), and with API keys
 * on (AGENTMEM_AUTH=keys), where the page asks for a key, keeps it in the tab's sessionStorage,
 * sends it on every request and event stream, and shows its scope.
 */

// The functions given to page.evaluate and page.waitForFunction run in the page. The tests are
// type-checked with Node's globals only (the DOM library would retype fetch for every test), so
// the few page globals they use are declared here.
interface PageElement {
  textContent: string | null;
  value: string;
}
declare const document: { getElementById(id: string): PageElement | null; body: { dataset: Record<string, string | undefined> } };
declare const sessionStorage: { getItem(key: string): string | null };

/** A bootstrap admin key in the documented format (am_<12 hex>_<secret>), made up for this run. */
const ADMIN_KEY = `am_${randomBytes(6).toString('hex')}_${randomBytes(32).toString('base64url')}`;

interface Variant {
  title: string;
  keyed: boolean;
}

for (const variant of [{ title: 'auth off', keyed: false }, { title: 'API keys on, with a key', keyed: true }] satisfies Variant[]) {
  describe(`the demo page (${variant.title})`, () => {
    let s: TestService;
    let browser: Browser;
    /** The key the page is given: bound to user default, namespace default, role write (keyed run only). */
    let key: string | undefined;
    let keyId: string | undefined;

    const authHeaders = (token = key): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

    beforeAll(async () => {
      const executablePath = ensureChromium();
      // The page makes many small requests: the per-key rate is raised out of the way.
      const authConfig: Partial<Config> = { auth: 'keys', bootstrapAdminKey: ADMIN_KEY, keyRatePerSecond: 10_000, keyRateBurst: 10_000 };
      s = await startTestService(variant.keyed ? authConfig : {});
      await seedMemories(s.longTerm, await testEmbedder());
      if (variant.keyed) {
        const created = await fetch(`${s.service.url}/v1/keys`, {
          method: 'POST', headers: { 'content-type': 'application/json', ...authHeaders(ADMIN_KEY) },
          body: JSON.stringify({ users: ['default'], namespaces: ['default'], role: 'write', name: 'browser test' }),
        });
        expect(created.status).toBe(201);
        ({ key, key_id: keyId } = (await created.json()) as { key: string; key_id: string });
      }
      browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
    }, 600_000);
    afterAll(async () => {
      await browser?.close();
      await s?.stop();
    });

    const live = (page: Page) => page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');

    /** Enters `token` in the page's key form (shown because the server asked for a key). */
    async function enterKey(page: Page, token: string): Promise<void> {
      await page.locator('#key-form').waitFor({ state: 'visible' });
      await page.fill('#api-key', token);
      await page.click('#key-form button[type=submit]');
    }

    /** A new tab (its own sessionStorage), live; in the keyed run it is given the key first. */
    async function openPage(path = '/'): Promise<Page> {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(s.service.url + path);
      if (key) await enterKey(page, key);
      await live(page);
      // With auth off the page looks as it always did: no key form, no scope.
      expect(await page.locator('#key-form').isHidden()).toBe(true);
      expect(await page.locator('#key-scope').isVisible()).toBe(variant.keyed);
      return page;
    }

    async function sendTurn(page: Page, text: string, kind = 'episodic'): Promise<void> {
      await page.selectOption('#kind', kind);
      await page.fill('#text', text);
      await page.click('#send');
      await page.waitForFunction(() => (document.getElementById('text') as PageElement).value === '');
    }

    function memoryRow(page: Page, text: string) {
      return page.locator('#memories tr', { hasText: text });
    }

    it('shows a turn in working memory, the event log and recalled memories; dedups a paraphrase; drops; starts threads; and a second tab follows live', async () => {
      const page = await openPage();
      await sendTurn(page, 'What time zone is the user in?');
      await expect.poll(() => page.locator('#wm-recent li').allTextContents()).toEqual(['user: What time zone is the user in?']);
      await expect.poll(() => page.locator('#events li').allTextContents()).toEqual(expect.arrayContaining([expect.stringMatching(/turn_appended:user\s+wrote [0-9a-f]{12} as episodic/)]));
      await expect.poll(() => page.locator('#recalled tr').first().textContent()).toContain('Europe/Berlin');
      expect(await page.locator('#recalled tr td').first().textContent()).toMatch(/^\d\.\d{3}$/);

      const thread = new URL(page.url()).searchParams.get('thread');
      expect(thread).toMatch(/^[0-9a-f]{12}$/);
      const second = await openPage(`/?thread=${thread}`);
      await expect.poll(() => second.locator('#wm-turns').textContent()).toBe('1');

      // A semantic paraphrase of a seed memory folds onto it: its hit count goes up, in both tabs.
      const seed = 'The user prefers concise answers without filler phrases.';
      expect(await memoryRow(page, seed).locator('td').nth(3).textContent()).toBe('0');
      await sendTurn(page, 'I prefer concise answers without filler phrases.', 'semantic');
      await expect.poll(() => page.locator('#last-write').textContent()).toMatch(/^deduped onto [0-9a-f]{12}/);
      await expect.poll(() => memoryRow(page, seed).locator('td').nth(3).textContent()).toBe('1');
      await expect.poll(() => memoryRow(second, seed).locator('td').nth(3).textContent()).toBe('1');
      await expect.poll(() => second.locator('#wm-turns').textContent()).toBe('2');

      // A memory written from another thread (another client) appears without a reload.
      await s.post('/v1/threads/another-client/turns?wait=10000', { content: 'The user collects vintage stamps.', remember: 'semantic' }, authHeaders());
      await expect.poll(() => memoryRow(second, 'The user collects vintage stamps.').count()).toBe(1);

      // Dropped in one tab, gone from the other without a reload.
      const peanuts = 'The user is allergic to peanuts';
      await memoryRow(page, peanuts).locator('button').click();
      await expect.poll(() => memoryRow(second, peanuts).count()).toBe(0);

      const dir = join(PACKAGE_ROOT, 'test-output');
      await mkdir(dir, { recursive: true });
      const shot = join(dir, variant.keyed ? 'demo-page-keyed.png' : 'demo-page.png');
      await page.screenshot({ path: shot, fullPage: true });
      // A blank page of this size compresses to a few kilobytes; panels of text do not.
      expect((await stat(shot)).size).toBeGreaterThan(50_000);

      await page.click('#new-thread');
      await expect.poll(() => new URL(page.url()).searchParams.get('thread')).not.toBe(thread);
      await expect.poll(() => page.locator('#wm-turns').textContent()).toBe('0');
      await expect.poll(() => page.locator('#wm-thread').textContent()).toBe(new URL(page.url()).searchParams.get('thread'));

      // A reload keeps the thread and, in the keyed run, the key (the tab's sessionStorage).
      await page.reload();
      await live(page);
      expect(await page.locator('#wm-thread').textContent()).toBe(new URL(page.url()).searchParams.get('thread'));
    }, 120_000);

    it('escapes what users type', async () => {
      const page = await openPage();
      await sendTurn(page, '<img src=x onerror="document.body.dataset.pwned=1"> <b>bold</b>');
      await expect.poll(() => page.locator('#wm-recent li').last().textContent()).toContain('<b>bold</b>');
      expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();
      expect(await page.locator('#wm-recent b').count()).toBe(0);
    }, 60_000);

    // The key form exists only with keys on.
    if (variant.keyed) it('asks for a key, refuses a wrong one, shows the scope of the right one, forgets it, and asks again once it is revoked', async () => {
      const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
      await page.goto(s.service.url + '/');
      await page.locator('#key-form').waitFor({ state: 'visible' });
      expect(await page.locator('#status').textContent()).toBe('API key needed');
      expect(await page.locator('#app').isHidden()).toBe(true);

      await enterKey(page, `am_${'0'.repeat(12)}_${'x'.repeat(43)}`);
      await expect.poll(() => page.locator('#key-error').textContent()).toMatch(/refused this key/);
      expect(await page.evaluate(() => sessionStorage.getItem('agentmem.apiKey'))).toBeNull();

      await enterKey(page, key as string);
      await live(page);
      expect(await page.locator('#key-scope-text').textContent()).toBe('browser test: write, users default, namespaces default');
      expect(await page.locator('#user').getAttribute('readonly')).not.toBeNull();
      expect(await page.evaluate(() => sessionStorage.getItem('agentmem.apiKey'))).toBe(key);
      // The event streams carry the key in the URL (EventSource cannot set headers); the page's own URL never does.
      expect(page.url()).not.toContain('access_token');

      await page.click('#forget-key');
      await page.locator('#key-form').waitFor({ state: 'visible' });
      expect(await page.evaluate(() => sessionStorage.getItem('agentmem.apiKey'))).toBeNull();
      await page.reload();
      await page.locator('#key-form').waitFor({ state: 'visible' });

      // Revoked while the page is open: the next request is refused and the page asks for a key again.
      await enterKey(page, key as string);
      await live(page);
      const revoked = await fetch(`${s.service.url}/v1/keys/${keyId}`, { method: 'DELETE', headers: authHeaders(ADMIN_KEY) });
      expect(revoked.status).toBe(200);
      await page.fill('#text', 'Anyone there?');
      await page.click('#send');
      await page.locator('#key-form').waitFor({ state: 'visible' });
      expect(await page.locator('#key-error').textContent()).toMatch(/refused this key/);
    }, 60_000);
  });
}
