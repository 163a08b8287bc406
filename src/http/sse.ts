import type { Request, Response } from 'express';
import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import { toEventRecord } from '../memory/events.js';

const BLOCK_MS = 15_000;
const STREAM_ID = /^\d+-\d+$/;

/**
 * Streams a thread's event log as Server-Sent Events, each with its Stream entry id as the SSE
 * id, so a client that reconnects with Last-Event-ID (or `?since=<id>`) resumes right after the
 * last event it saw: nothing missed, nothing repeated. Without either it starts with new events
 * (`?since=0` replays the whole capped log). Each client holds one blocking Redis connection,
 * closed the moment the client goes away.
 */
export async function streamEvents(redis: Redis, streamKey: string, threadId: string, req: Request, res: Response, log: Logger): Promise<void> {
  const requested = req.header('Last-Event-ID') ?? (typeof req.query.since === 'string' ? req.query.since : undefined);
  // Fixed before the client hears anything: a client that posts once connected must see that turn's events.
  let cursor = requested === '0' ? '0-0' : requested && STREAM_ID.test(requested) ? requested : await latestId(redis, streamKey);
  res.writeHead(200, {
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    'X-Accel-Buffering': 'no',
  });
  res.write(': connected\n\n');

  const reader = redis.duplicate({ connectionName: `agentmem-sse-${threadId}` });
  reader.on('error', () => undefined);
  let open = true;
  req.on('close', () => {
    open = false;
    reader.disconnect();
  });

  void (async () => {
    while (open) {
      try {
        const reply = (await reader.xread('COUNT', 100, 'BLOCK', BLOCK_MS, 'STREAMS', streamKey, cursor)) as [string, [string, string[]][]][] | null;
        if (!open) break;
        if (!reply) {
          res.write(': keep-alive\n\n');
          continue;
        }
        for (const [id, fields] of reply[0]?.[1] ?? []) {
          res.write(`id: ${id}\ndata: ${JSON.stringify(toEventRecord(threadId, id, fields))}\n\n`);
          cursor = id;
        }
      } catch (err) {
        if (open) log.warn('sse.error', { thread_id: threadId, error: err });
        break;
      }
    }
    reader.disconnect();
    res.end();
  })();
}

/** The id new events will follow (`$` cannot serve as a cursor across several XREAD calls). */
async function latestId(redis: Redis, streamKey: string): Promise<string> {
  const [last] = await redis.xrevrange(streamKey, '+', '-', 'COUNT', 1);
  return last?.[0] ?? '0-0';
}
