import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/log.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  return { lines, log: createLogger('debug', { worker: 'w1' }, (line) => lines.push(JSON.parse(line) as Record<string, unknown>)) };
}

describe('logged errors', () => {
  it('keep code, stack and cause, recursively', () => {
    const { lines, log } = capture();
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6379'), { code: 'ECONNREFUSED' });
    log.error('redis.down', { error: new Error('cannot reach Redis at redis://127.0.0.1:6379', { cause: refused }) });
    const error = lines[0]?.error as Record<string, unknown>;
    expect(error).toMatchObject({ name: 'Error', message: 'cannot reach Redis at redis://127.0.0.1:6379' });
    expect(error.stack).toMatch(/^Error: cannot reach Redis[\s\S]*log\.test\.ts/);
    expect(error.cause).toMatchObject({ message: 'connect ECONNREFUSED 127.0.0.1:6379', code: 'ECONNREFUSED' });
    expect((error.cause as Record<string, unknown>).stack).toMatch(/log\.test\.ts/);
    expect(lines[0]).toMatchObject({ level: 'error', event: 'redis.down', worker: 'w1' });
  });

  it('stop at five causes, even when the chain is a cycle, and keep causes that are not errors', () => {
    const { lines, log } = capture();
    const looped = new Error('a');
    looped.cause = new Error('b', { cause: looped });
    log.warn('cycle', { error: looped, other: new Error('with a reason', { cause: { status: 503 } }) });
    let depth = 0;
    for (let e = lines[0]?.error as Record<string, unknown> | string; typeof e === 'object'; e = e.cause as Record<string, unknown> | string) depth++;
    expect(depth).toBe(5);
    expect((lines[0]?.other as Record<string, unknown>).cause).toBe('{"status":503}');
  });
});
