import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import { toEventRecord } from '../memory/events.js';
import type { StreamFanout } from '../redis/stream-fanout.js';

const KEEP_ALIVE_MS = 15_000;
const STREAM_ID = /^\d+-\d+$/;

/**
 * Streams a thread's event log as Server-Sent Events, each with its Stream entry id as the SSE
 * id, so a client that reconnects with Last-Event-ID (or `?since=<id>`) resumes right after the
 * last event it saw: nothing missed, nothing repeated. Without either it starts with new events
 * (`?since=0` replays the whole capped log). All clients of the process share one blocking read
 * (StreamFanout); a client that goes away is dropped from it at once.
 */
export async function streamEvents(redis: Redis, fanout: StreamFanout, streamKey: string, threadId: string, req: Request, res: Response): Promise<void> {
  const requested = req.header('Last-Event-ID') ?? (typeof req.query.since === 'string' ? req.query.since : undefined);
  let gone = false;
  req.once('close', () => (gone = true));
  // Fixed before the client hears anything: a client that posts once connected must see that turn's events.
  const cursor = requested === '0' ? '0-0' : requested && STREAM_ID.test(requested) ? requested : await latestId(redis, streamKey);
  if (gone) return; // left while the cursor was read: nothing to follow for it
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(': connected\n\n');
  // Entries that arrive together go out in one write.
  const unfollow = fanout.follow(streamKey, cursor, (entries) => {
    res.write(entries.map(([id, fields]) => `id: ${id}\ndata: ${JSON.stringify(toEventRecord(threadId, id, fields))}\n\n`).join(''));
  });
  const keepAlive = setInterval(() => res.write(': keep-alive\n\n'), KEEP_ALIVE_MS);
  req.on('close', () => {
    clearInterval(keepAlive);
    unfollow();
  });
}

/** The id new events will follow (`$` cannot serve as a cursor across several XREAD calls). */
async function latestId(redis: Redis, streamKey: string): Promise<string> {
  const [last] = await redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}
