import type { EventRecord } from '../../src/memory/events.js';

export interface SseClient {
  events: (EventRecord & { id: string })[];
  /** Resolves once `predicate` holds for the events received so far. */
  until(predicate: (events: SseClient['events']) => boolean, timeoutMs?: number): Promise<void>;
  close(): void;
}

/** A minimal EventSource over fetch: enough to read `id:` and `data:` lines. */
export async function openSse(url: string, lastEventId?: string, headers: Record<string, string> = {}): Promise<SseClient> {
  const controller = new AbortController();
  const res = await fetch(url, { signal: controller.signal, headers: { ...headers, ...(lastEventId ? { 'Last-Event-ID': lastEventId } : {}) } });
  if (!res.ok || !res.body) throw new Error(`SSE ${res.status}`);
  const events: SseClient['events'] = [];
  const waiters = new Set<() => void>();
  void (async () => {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const id = /^id: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (id && data) events.push({ id, ...(JSON.parse(data) as EventRecord) });
        }
        for (const wake of waiters) wake();
      }
    } catch {
      // aborted by close()
    }
  })();
  return {
    events,
    until: (predicate, timeoutMs = 15_000) =>
      new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if (predicate(events)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve();
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`SSE: condition not met in ${timeoutMs} ms; got ${events.map((e) => e.action).join(', ')}`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
    close: () => controller.abort(),
  };
}
