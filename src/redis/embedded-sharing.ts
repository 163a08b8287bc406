import type { Redis } from 'ioredis';
import type { Logger } from '../log.js';
import type { RunningRedis } from '../provision/redis-server.js';
import { connectRedis } from './connection.js';

/**
 * The embedded Redis is shared by every agentmem process on the machine that finds it running
 * (`serve`, `mcp`, `worker`, `keys`): the first starts it, the others reuse it. Whoever stops
 * first must not take it away from the rest — an agent quitting its `agentmem mcp` would stop the
 * Redis under a `serve` — so a process stops the server only when no other client is connected:
 * the one that started it leaves it running otherwise (and marks it so), and the last agentmem
 * process to leave a server so marked stops it.
 */

/** How long this process's own connections, closed just before, may take to leave the server's client list. */
const SETTLE_MS = 500;

/** `use` on a connection of its own to the server at `url`, closed afterwards. */
async function withConnection<T>(url: string, use: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = connectRedis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    return await use(redis);
  } finally {
    redis.disconnect();
  }
}

/** Clients of the server at `url` other than the one asking, once this process's closing connections are gone (or SETTLE_MS passed). */
function otherClients(url: string): Promise<number> {
  return withConnection(url, async (redis) => {
    for (const deadline = Date.now() + SETTLE_MS; ; await new Promise((resolve) => setTimeout(resolve, 50))) {
      const others = ((await redis.client('LIST')) as string).split('\n').filter((line) => line.trim() !== '').length - 1;
      if (others === 0 || Date.now() > deadline) return others;
    }
  });
}

/** Stops a server this process started, unless others still use it: then it outlives the process, marked for the last one to stop. */
export async function stopStarted(running: RunningRedis, markerKey: string, log: Logger): Promise<void> {
  const others = await otherClients(running.url).catch(() => 0);
  if (others === 0) return running.stop();
  await withConnection(running.url, (redis) => redis.set(markerKey, String(process.pid)));
  running.release();
  log.info('redis.left_running', { url: running.url, pid: running.child?.pid, other_clients: others, reason: 'other clients still use it; the last agentmem process to stop will stop it' });
}

/** Stops a reused server if its starter left it running for others and this process is the last of them. */
export async function stopIfLast(url: string, markerKey: string, log: Logger): Promise<void> {
  try {
    if ((await withConnection(url, (redis) => redis.exists(markerKey))) === 0) return;
    if ((await otherClients(url)) > 0) return;
    await withConnection(url, async (redis) => {
      await redis.del(markerKey);
      // With appendfsync always every write is on disk already; SHUTDOWN closes the file and exits (and so never answers).
      await redis.shutdown().catch(() => undefined);
    });
    log.info('redis.stopped', { url, reason: 'the last agentmem process to use the embedded Redis its starter left running' });
  } catch (err) {
    log.warn('redis.stop_failed', { url, error: err });
  }
}

/** A server this process has just started is its own: a mark an earlier starter left in its data no longer applies. */
export async function claimStarted(url: string, markerKey: string): Promise<void> {
  await withConnection(url, (redis) => redis.del(markerKey));
}
