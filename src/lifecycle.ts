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
