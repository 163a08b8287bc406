import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestService, type TestService } from './support/service.js';
import { openSse, type SseClient } from './support/sse.js';

/**
 * All SSE clients of a process share one blocking XREAD. A client must not be able to stop it
 * for the others: not with a cursor Redis rejects, not with one far in the future, and a stream
 * that cannot be read (its key replaced by another type) costs only its own clients.
 */
let s: TestService;
const open: SseClient[] = [];
beforeAll(async () => {
  s = await startTestService({}, { workers: false });
});
afterAll(async () => {
  for (const client of open) client.close();
  await s.stop();
});

async function follow(threadId: string, lastEventId?: string): Promise<SseClient> {
  const client = await openSse(`${s.service.url}/v1/threads/${threadId}/events`, lastEventId);
  open.push(client);
  return client;
}

async function postTurn(threadId: string, content: string): Promise<void> {
  const res = await s.post(`/v1/threads/${threadId}/turns`, { content, remember: 'skip' });
  expect(res.status).toBe(202);
}

/** Cursors that match a naive `\d+-\d+` but Redis refuses, and other malformed ones. */
const POISONED = [
  '99999999999999999999-0', '1-18446744073709551616', '18446744073709551616-0', '18446744073709551616', '1-99999999999999999999999',
  '-1', '1-', '1--1', '1-0-0', '0x1-0', '1e3-0', '١-٠', '1-0, 2-0', '$', '+', '>', '*', '1.5-0', 'abc', '1-0 x',
];

describe('one SSE client cannot stop events for the others', () => {
  it('answers a poisoned Last-Event-ID or ?since with a 400 naming it, while an open client keeps receiving', async () => {
    const normal = await follow('iso-normal');
    for (const id of POISONED) {
      const bySince = await fetch(`${s.service.url}/v1/memories/events?since=${encodeURIComponent(id)}`);
      expect(bySince.status, `since ${id}`).toBe(400);
      expect(((await bySince.json()) as { error: { field: string } }).error.field).toBe('since');
      if (!/^[\x20-\x7e]+$/.test(id)) continue; // fetch sends only Latin-1 header values
      const byHeader = await fetch(`${s.service.url}/v1/threads/iso-normal/events`, { headers: { 'Last-Event-ID': id } });
      expect(byHeader.status, `Last-Event-ID ${id}`).toBe(400);
      expect(((await byHeader.json()) as { error: { field: string } }).error.field).toBe('Last-Event-ID');
    }
    await postTurn('iso-normal', 'after the poisoned cursors');
    await normal.until((events) => events.some((e) => e.action === 'turn_accepted'));
  });

  it('takes the largest valid id (2^64-1 twice) as "from the newest entry": a later client of the same thread still gets live events', async () => {
    await postTurn('iso-future', 'history');
    const ahead = await follow('iso-future', '18446744073709551615-18446744073709551615');
    const normal = await follow('iso-future');
    await postTurn('iso-future', 'live');
    await normal.until((events) => events.some((e) => e.action === 'turn_accepted'));
    await ahead.until((events) => events.some((e) => e.action === 'turn_accepted'));
    expect(normal.events.filter((e) => e.action === 'turn_accepted')).toHaveLength(1);
  });

  it('ends only the clients of a stream whose key turned into another type; the others keep receiving', async () => {
    const normal = await follow('iso-kept');
    await postTurn('iso-broken', 'the stream exists');
    const brokenUrl = `${s.service.url}/v1/threads/iso-broken/events`;
    // Once the headers are in, the server follows the stream (it does so right after sending them).
    const broken = await Promise.all([fetch(brokenUrl), fetch(brokenUrl)]);
    expect(broken.map((r) => r.status)).toEqual([200, 200]);
    await s.redis.multi().del(s.keys.events('iso-broken')).set(s.keys.events('iso-broken'), 'not a stream').exec();
    await postTurn('iso-kept', 'wakes the shared read, whose next round is refused');
    for (const text of await Promise.all(broken.map((r) => r.text()))) expect(text).toContain('event: stream_error');
    await postTurn('iso-kept', 'after the broken stream was dropped');
    await normal.until((events) => events.filter((e) => e.action === 'turn_accepted').length === 2);
    await s.redis.del(s.keys.events('iso-broken'));
  });
});
