import type { Server } from 'node:http';
import type { Logger } from './log.js';

/**
 * What a process acquired while starting (connections, threads, ports, consumers), released in
 * reverse order: by a start-up step that fails, before it rethrows, and by a graceful shutdown.
 * Each release is guarded, so one that fails does not keep the others from running.
 */
export class Releasers {
  private readonly held: { what: string; release: () => Promise<void> }[] = [];

  constructor(private readonly log: Logger) {}

  add(what: string, release: () => Promise<void>): void {
    this.held.push({ what, release });
  }

  async releaseAll(): Promise<void> {
    for (let step = this.held.pop(); step; step = this.held.pop()) {
      try {
        await step.release();
      } catch (err) {
        this.log.warn('release.failed', { what: step.what, error: err });
      }
    }
  }
}

/** Binds `server` to host:port; a failure names the port and the setting that moves it. */
export function listen(server: Server, port: number, host: string, what: string, setting: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new Error(`${what} ${host}:${port}: ${err.message} (set ${setting})`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : port);
    });
  });
}

/** Stops listening and ends idle keep-alive connections; resolves once every connection has closed. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    if (!server.listening) return resolve();
    server.close(() => resolve());
    server.closeIdleConnections();
  });
}
