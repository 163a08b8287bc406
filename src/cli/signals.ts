/**
 * Resolves on the first SIGINT or SIGTERM, so the caller can shut down in order; a further signal
 * exits at once, for when a graceful shutdown hangs. The listeners stay installed from the first
 * call on: removing and re-adding them would leave a moment in which a signal kills the process.
 */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    let received = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      received += 1;
      if (received === 1) resolve(signal);
      else process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
