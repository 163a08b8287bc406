import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { toEventRecord, type EventRecord } from '../../src/memory/events.js';
import { compareStreamIds, type StreamFanout } from '../../src/redis/stream-fanout.js';
import * as s from './schemas.js';

const KEEP_ALIVE_MS = 15_000;

/**
 * Streams a thread's event log as Server-Sent Events, each with its Stream entry id as the SSE
 * id, so a client that reconnects with Last-Event-ID (or `?since=<id>`) resumes right after the
 * last event it saw: nothing missed, nothing repeated. Without either it starts with new events
 * (`?since=0` replays the whole capped log). A malformed id is a 400 naming the field. An id
 * past the newest entry resumes from the newest entry: a cursor in the future would hold back
 * the shared read of this stream for every client of it. All clients of the process share one
 * blocking read (StreamFanout); a client that goes away is dropped from it at once, and one whose
 * stream Redis refuses to read is sent a `stream_error` event and ended.
 */
/**
 * What to do with one event for this client: send it, leave it out (outside the client's scope),
 * or end the stream before it (the stream is no longer the client's).
 */
export type EventFilter = (event: EventRecord) => 'send' | 'skip' | 'end';

export async function streamEvents(
  redis: Redis, fanout: StreamFanout, streamKey: string, threadId: string, req: Request, res: Response, filter: EventFilter = () => 'send',
): Promise<void> {
  const requested = requestedCursor(req);
  let gone = false;
  req.once('close', () => (gone = true));
  // Fixed before the client hears anything: a client that posts once connected must see that turn's events.
  const latest = await latestId(redis, streamKey);
  const cursor = requested !== undefined && compareStreamIds(requested, latest) < 0 ? requested : latest;
  if (gone) return; // left while the cursor was read: nothing to follow for it
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  // A HEAD response has no body to stream: its headers would wait for one that never ends.
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  // The starting cursor as an id-only event (dispatches nothing): a client whose connection drops
  // before its first event resumes from here with Last-Event-ID, and misses nothing in between.
  res.write(`: connected\nid: ${cursor}\n\n`);
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  // Entries that arrive together go out in one write.
  const unfollow = fanout.follow(
    streamKey,
    cursor,
    (entries) => {
      if (res.writableEnded) return;
      let out = '';
      for (const [id, fields] of entries) {
        const event = toEventRecord(threadId, id, fields);
        const verdict = filter(event);
        if (verdict === 'end') {
          clearInterval(keepAlive);
          res.end(out);
          return;
        }
        if (verdict === 'send') out += `id: ${id}\ndata: ${JSON.stringify(event)}\n\n`;
      }
      if (out !== '') res.write(out);
    },
    () => {
      clearInterval(keepAlive);
      res.end(`event: stream_error\ndata: ${JSON.stringify({ error: { message: 'this event stream cannot be read' } })}\n\n`);
    },
  );
  req.on('close', () => {
    clearInterval(keepAlive);
    unfollow();
  });
}

/** The id the client last saw: `Last-Event-ID` (an EventSource reconnecting) before `?since`; both are checked. */
function requestedCursor(req: Request): string | undefined {
  const { since } = s.parse(s.eventsQuery, req.query);
  // EventSource leaves the header out when it has no id; an empty one means the same.
  const header = req.header('Last-Event-ID');
  if (header === undefined || header === '') return since;
  return s.parse(s.eventsHeaders, { 'Last-Event-ID': header })['Last-Event-ID'];
}

/** The id new events will follow (`$` cannot serve as a cursor across several XREAD calls). */
async function latestId(redis: Redis, streamKey: string): Promise<string> {
  const [last] = await redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}
