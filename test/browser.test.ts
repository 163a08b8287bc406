import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedMemories } from '../src/memory/seed.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { CHROMIUM_ARGS, ensureChromium } from './support/chromium.js';
import { testEmbedder } from './support/embedder.js';
import { startTestService, type TestService } from './support/service.js';

let s: TestService;
let browser: Browser;

beforeAll(async () => {
  const executablePath = ensureChromium();
  s = await startTestService();
  await seedMemories(s.longTerm, await testEmbedder());
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS });
}, 600_000);
afterAll(async () => {
  await browser?.close();
  await s?.stop();
});

async function openPage(path = '/'): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(s.service.url + path);
  await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');
  return page;
}

async function sendTurn(page: Page, text: string, kind = 'episodic'): Promise<void> {
  await page.selectOption('#kind', kind);
  await page.fill('#text', text);
  await page.click('#send');
  await page.waitForFunction(() => (document.getElementById('text') as HTMLTextAreaElement).value === '');
}

function memoryRow(page: Page, text: string) {
  return page.locator('#memories tr', { hasText: text });
}

describe('the demo page', () => {
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
    await s.post('/v1/threads/another-client/turns?wait=10000', { content: 'The user collects vintage stamps.', remember: 'semantic' });
    await expect.poll(() => memoryRow(second, 'The user collects vintage stamps.').count()).toBe(1);

    // Dropped in one tab, gone from the other without a reload.
    const peanuts = 'The user is allergic to peanuts';
    await memoryRow(page, peanuts).locator('button').click();
    await expect.poll(() => memoryRow(second, peanuts).count()).toBe(0);

    const dir = join(PACKAGE_ROOT, 'test-output');
    await mkdir(dir, { recursive: true });
    const shot = join(dir, 'demo-page.png');
    await page.screenshot({ path: shot, fullPage: true });
    // A blank page of this size compresses to a few kilobytes; panels of text do not.
    expect((await stat(shot)).size).toBeGreaterThan(50_000);

    await page.click('#new-thread');
    await expect.poll(() => new URL(page.url()).searchParams.get('thread')).not.toBe(thread);
    await expect.poll(() => page.locator('#wm-turns').textContent()).toBe('0');
    await expect.poll(() => page.locator('#wm-thread').textContent()).toBe(new URL(page.url()).searchParams.get('thread'));

    await page.reload();
    await page.waitForFunction(() => document.getElementById('status')?.textContent === 'live');
    expect(await page.locator('#wm-thread').textContent()).toBe(new URL(page.url()).searchParams.get('thread'));
  }, 120_000);

  it('escapes what users type', async () => {
    const page = await openPage();
    await sendTurn(page, '<img src=x onerror="document.body.dataset.pwned=1"> <b>bold</b>');
    await expect.poll(() => page.locator('#wm-recent li').last().textContent()).toContain('<b>bold</b>');
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();
    expect(await page.locator('#wm-recent b').count()).toBe(0);
  }, 60_000);
});
