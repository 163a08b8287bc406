/**
 * Structured logs: one JSON object per line on stderr, so stdout stays free for command output
 * (`agentmem embed`, `agentmem redis` print data there).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, unknown>;

const LEVEL_RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger whose every line also carries `fields` (worker id, thread id, ...). */
  child(fields: LogFields): Logger;
}

export function isLogLevel(value: string): value is LogLevel {
  return value in LEVEL_RANK;
}

export function createLogger(
  level: LogLevel = 'info',
  bound: LogFields = {},
  write: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): Logger {
  const emit = (at: LogLevel, event: string, fields: LogFields = {}): void => {
    if (LEVEL_RANK[at] < LEVEL_RANK[level]) return;
    const record = { ts: new Date().toISOString(), level: at, event, ...bound, ...fields };
    write(JSON.stringify(record, errorReplacer));
  };
  return {
    debug: (event, fields) => emit('debug', event, fields),
    info: (event, fields) => emit('info', event, fields),
    warn: (event, fields) => emit('warn', event, fields),
    error: (event, fields) => emit('error', event, fields),
    child: (fields) => createLogger(level, { ...bound, ...fields }, write),
  };
}

/** Errors have no enumerable fields; without this they would log as `{}`. */
function errorReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? errorRecord(value, 0) : value;
}

/** How many causes deep a logged error goes (a chain may be long, or even a cycle). */
const MAX_CAUSE_DEPTH = 5;

/** An error as plain fields: name, message, code (system and Redis errors), stack, and its cause, recursively. */
function errorRecord(err: Error, depth: number): Record<string, unknown> {
  const record: Record<string, unknown> = { name: err.name, message: err.message };
  const { code } = err as Error & { code?: unknown };
  if (typeof code === 'string' || typeof code === 'number') record.code = code;
  if (err.stack) record.stack = err.stack;
  if (err instanceof AggregateError) record.errors = err.errors.slice(0, MAX_CAUSE_DEPTH).map((e: unknown) => (e instanceof Error ? errorRecord(e, depth + 1) : plain(e)));
  if (err.cause !== undefined) {
    record.cause = depth + 1 >= MAX_CAUSE_DEPTH ? '(further causes left out)' : err.cause instanceof Error ? errorRecord(err.cause, depth + 1) : plain(err.cause);
  }
  return record;
}

/** A non-Error cause as something JSON can hold: primitives as they are, anything else as text. */
function plain(value: unknown): unknown {
  if (value === null || ['string', 'number', 'boolean'].includes(typeof value)) return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

export const silentLogger: Logger = createLogger('error', {}, () => undefined);
