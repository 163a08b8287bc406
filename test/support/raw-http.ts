import { connect } from 'node:net';

/** What came back for bytes sent over a raw socket. */
export interface RawResult {
  /** Status of the first final response, or null when the server closed (or went silent) without one. */
  status: number | null;
  /** Every final status seen on the connection (pipelined requests get one each). */
  statuses: number[];
  headers: Record<string, string>;
  /** Body of the first response (as far as it was read). */
  body: string;
  /** Nothing ended the exchange within the time allowed. */
  timedOut: boolean;
}

export interface RawRequest {
  method: string;
  path: string;
  /** Header lines in order, sent as given (repeats allowed); Host is added unless given. */
  headers?: [string, string][];
  body?: string | Buffer;
  /** Content-Length to send: the body's length by default, null for none, a string to lie or mangle. */
  contentLength?: number | string | null;
  version?: string;
}

/** The bytes of one HTTP/1.1 request; anything else (garbage, bare LFs) is built by hand as a Buffer. */
export function httpRequest({ method, path, headers = [], body, contentLength, version = 'HTTP/1.1' }: RawRequest): Buffer {
  const payload = body === undefined ? Buffer.alloc(0) : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  const lines: [string, string][] = [];
  if (!headers.some(([name]) => name.toLowerCase() === 'host')) lines.push(['Host', '127.0.0.1']);
  lines.push(...headers);
  const length = contentLength === undefined ? (body === undefined ? null : payload.length) : contentLength;
  if (length !== null) lines.push(['Content-Length', String(length)]);
  const head = `${method} ${path} ${version}\r\n${lines.map(([n, v]) => `${n}: ${v}\r\n`).join('')}\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), payload]);
}

export interface SendOptions {
  /**
   * Half-close right after sending: for requests that are incomplete by design (a body shorter
   * than its Content-Length), which the server would otherwise wait on. Node's server drops the
   * requests of a half-closed connection, so complete requests keep the connection open.
   */
  halfClose?: boolean;
  /** Final responses to wait for (pipelined requests); the server closing ends the wait too. */
  responses?: number;
  timeoutMs?: number;
}

/**
 * Sends `bytes` on a fresh connection and reads until the expected responses are complete (an
 * event stream: its headers), the server closes, or the time runs out. fetch cannot send most
 * of what a hostile client sends (lying lengths, bad escapes in the path, bare LFs), hence a raw
 * socket.
 */
export function sendRaw(port: number, bytes: Buffer, options: SendOptions = {}): Promise<RawResult> {
  const { halfClose = false, responses = 1, timeoutMs = 10_000 } = options;
  const isHead = bytes.subarray(0, 5).toString('latin1') === 'HEAD ';
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ ...parseResponses(Buffer.concat(chunks), isHead).parsed, timedOut });
    };
    const timer = setTimeout(() => finish(true), timeoutMs);
    socket.on('connect', () => {
      socket.write(bytes);
      if (halfClose) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      const { complete, eventStream } = parseResponses(Buffer.concat(chunks), isHead);
      if (eventStream || complete >= responses) finish(false);
    });
    socket.on('error', () => finish(false));
    socket.on('close', () => finish(false));
  });
}

/** The responses in `data`: what they say, how many are complete, whether the first is an event stream (which never completes). */
function parseResponses(data: Buffer, isHead: boolean): { parsed: Omit<RawResult, 'timedOut'>; complete: number; eventStream: boolean } {
  const text = data.toString('latin1');
  const statuses: number[] = [];
  let first: { status: number; headers: Record<string, string>; body: string } | undefined;
  let complete = 0;
  let eventStream = false;
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    const match = /^HTTP\/\d\.\d (\d{3})/.exec(text.slice(at, at + 16));
    if (end < 0 || !match) break;
    const status = Number(match[1]);
    const headers: Record<string, string> = {};
    for (const line of text.slice(at, end).split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
    }
    let next = end + 4;
    let body = '';
    let done = false;
    if (status < 200 || isHead || status === 204 || status === 304) {
      done = true;
    } else if (headers['content-type']?.startsWith('text/event-stream')) {
      eventStream = true;
    } else if (headers['content-length'] !== undefined) {
      body = text.slice(next, next + Number(headers['content-length']));
      next += body.length;
      done = body.length === Number(headers['content-length']);
    } else if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
      for (;;) {
        const sizeEnd = text.indexOf('\r\n', next);
        if (sizeEnd < 0) break;
        const size = parseInt(text.slice(next, sizeEnd), 16);
        if (Number.isNaN(size) || text.length < sizeEnd + 2 + size + 2) break;
        next = sizeEnd + 2 + size + 2;
        if (size === 0) {
          done = true;
          break;
        }
        body += text.slice(sizeEnd + 2, sizeEnd + 2 + size);
      }
    } else {
      body = text.slice(next);
      next = text.length;
    }
    if (status >= 200) {
      statuses.push(status);
      first ??= { status, headers, body: Buffer.from(body, 'latin1').toString('utf8') };
      if (done) complete++;
    }
    if (!done || eventStream) break;
    at = next;
  }
  return { parsed: { status: first?.status ?? null, statuses, headers: first?.headers ?? {}, body: first?.body ?? '' }, complete, eventStream };
}
