import { isIP } from 'node:net';
import type { Config } from '../config.js';
import { ValidationError } from '../errors.js';
import type { Logger } from '../log.js';

/** How often a process serving without authentication on a non-loopback address says so again. */
const INSECURE_WARNING_INTERVAL_MS = 10 * 60_000;

/** 127.0.0.0/8, ::1 (also as ::ffff:127.x), localhost: addresses no other machine can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1').toLowerCase();
  if (h === 'localhost') return true;
  if (isIP(h) === 4) return h.startsWith('127.');
  if (isIP(h) === 6) return h === '::1' || /^::ffff:127\./.test(h) || /^0{0,4}(:0{0,4}){6}:0{0,3}1$/.test(h);
  return false;
}

/**
 * Refuses to serve without authentication where other machines can reach the port: `off` (the
 * default) is for loopback only. `off-insecure` is the one way to serve other addresses without
 * keys, a value of its own rather than a flag beside `off`, so that an `off` copied from a
 * developer's setup can never open a server up, and a reader of the config sees it in one place.
 */
export function checkAuthMode(config: Pick<Config, 'auth' | 'host'>): void {
  if (config.auth === 'off' && !isLoopback(config.host)) {
    throw new ValidationError(
      'AGENTMEM_AUTH',
      `authentication is off and the API would listen on ${config.host}, which other machines can reach. ` +
        'Set AGENTMEM_AUTH=keys (create keys with `agentmem keys create`, or give AGENTMEM_BOOTSTRAP_ADMIN_KEY), ' +
        'bind a loopback address (AGENTMEM_HOST=127.0.0.1), or, to serve everyone without keys, AGENTMEM_AUTH=off-insecure',
    );
  }
}

/** With `off-insecure`: a warning now and every INSECURE_WARNING_INTERVAL_MS; returns the stop. */
export function warnWhileInsecure(config: Pick<Config, 'auth' | 'host'>, log: Logger): () => void {
  if (config.auth !== 'off-insecure') return () => undefined;
  const warn = (): void => log.warn('auth.insecure', {
    host: config.host,
    message: 'serving without authentication (AGENTMEM_AUTH=off-insecure): anyone who reaches this port can read, write and delete every user\'s memories',
  });
  warn();
  const timer = setInterval(warn, INSECURE_WARNING_INTERVAL_MS);
  timer.unref();
  return () => clearInterval(timer);
}
