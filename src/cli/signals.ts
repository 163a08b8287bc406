/**
 * Resolves on the first SIGINT or SIGTERM, so the caller can shut down in order; a second signal
 * exits at once, for when a graceful shutdown hangs.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const first = (signal: NodeJS.Signals): void => {
      process.once('SIGINT', () => process.exit(130));
      process.once('SIGTERM', () => process.exit(143));
      resolve(signal);
    };
    process.once('SIGINT', first);
    process.once('SIGTERM', first);
  });
}
