import type { NextFunction, Request, Response } from 'express';
import { ValidationError } from '../../src/errors.js';

/** A request refused for how it was sent rather than for a field's value (415: an encoding agentmem does not take). */
export class RequestRefused extends Error {
  override readonly name = 'RequestRefused';
  constructor(
    readonly status: number,
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

/**
 * Checks every request before any route reads it, so no route can misread one:
 * - `Content-Encoding` other than identity is a 415. Bodies are small JSON or form data (at most
 *   AGENTMEM_MAX_BODY_BYTES), so compression would save little while decompressing costs the
 *   server CPU the client does not pay; one accepted encoding is one thing to get right.
 * - The path and the query string must be valid percent-encoding (400 naming the query field,
 *   or `path`), and no query field may be given twice (400 naming it): agentmem takes no list
 *   in a query string, and a repeated field read as absent once sent a request to the default
 *   scope.
 */
export function requestGuards(req: Request, _res: Response, next: NextFunction): void {
  const coding = req.headers['content-encoding'];
  if (coding !== undefined && coding.split(',').some((c) => !['identity', ''].includes(c.trim().toLowerCase()))) {
    throw new RequestRefused(415, 'Content-Encoding', 'only identity is accepted; send the body uncompressed');
  }
  try {
    decodeURIComponent(req.path);
  } catch {
    throw new ValidationError('path', 'malformed percent-encoding');
  }
  const query = req.originalUrl.indexOf('?');
  if (query >= 0) checkUrlEncoded(req.originalUrl.slice(query + 1));
  next();
}

/**
 * Refuses form data (a query string, an x-www-form-urlencoded body) with a field given twice or
 * with malformed percent-encoding, naming the field. The parsers themselves accept both: a
 * repeated field becomes a list, a bad escape stays as it was sent.
 */
export function checkUrlEncoded(data: string): void {
  const seen = new Set<string>();
  for (const part of data.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const rawName = eq < 0 ? part : part.slice(0, eq);
    const name = decodeFormComponent(rawName);
    if (name === undefined) throw new ValidationError(rawName, 'malformed percent-encoding in the field name');
    if (eq >= 0 && decodeFormComponent(part.slice(eq + 1)) === undefined) throw new ValidationError(name, 'malformed percent-encoding');
    if (seen.has(name)) throw new ValidationError(name, 'must be given once');
    seen.add(name);
  }
}

function decodeFormComponent(value: string): string | undefined {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/** The body-parser `verify` hook for form bodies: the same checks as a query string. */
export function verifyFormBody(_req: unknown, _res: unknown, body: Buffer): void {
  checkUrlEncoded(body.toString('utf8'));
}

/** After a string in an object: it was a key. */
const KEY_END = /\s*:/y;

/**
 * The body-parser `verify` hook for JSON bodies: a top-level field given twice is a 400 naming
 * it. JSON.parse keeps the last, a proxy or another parser may keep the first; agentmem takes
 * neither. Malformed JSON is left to the parser to report.
 */
export function verifyJsonBody(_req: unknown, _res: unknown, body: Buffer): void {
  const text = body.toString('utf8');
  if (!/^\s*\{/.test(text)) return;
  const seen = new Set<string>();
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    else if (ch === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      KEY_END.lastIndex = i + 1;
      if (depth !== 1 || !KEY_END.test(text)) continue;
      let name: string;
      try {
        name = JSON.parse(text.slice(start, i + 1)) as string;
      } catch {
        return;
      }
      if (seen.has(name)) throw new ValidationError(name, 'must be given once');
      seen.add(name);
    }
  }
}

export interface ClientErrorAnswer {
  status: number;
  error: { field?: string; message: string };
}

/**
 * The 4xx answer for an error that says the request itself was wrong: a refused request, a
 * URIError from decoding any part of it, or an error carrying a 4xx status (body-parser, the
 * router, the static file server). Undefined for anything else.
 */
export function clientError(err: unknown): ClientErrorAnswer | undefined {
  if (err instanceof RequestRefused) return { status: err.status, error: { field: err.field, message: err.message } };
  if (err instanceof URIError) return { status: 400, error: { message: 'malformed percent-encoding' } };
  const candidate = err as { type?: unknown; status?: unknown; message?: unknown } | null;
  const status = candidate?.status;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  // body-parser marks its errors with a type (entity.parse.failed, entity.too.large, request.aborted, ...).
  if (typeof candidate?.type === 'string') {
    const message = candidate.type === 'entity.parse.failed' ? 'body is not valid JSON' : String(candidate.message);
    return { status, error: { field: 'body', message } };
  }
  return { status, error: { message: String(candidate?.message) } };
}
