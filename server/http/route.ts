import type { NextFunction, Request, Response, Router } from 'express';
import { OPERATIONS, type ApiOperationId, type ReferenceOperationId } from './openapi.js';

export type Handler = (req: Request, res: Response) => Promise<void>;

/** Sends a rejected async handler to express's error handler, where operational errors become 4xx. */
export const route = (handler: Handler) => (req: Request, res: Response, next: NextFunction): void => void handler(req, res).catch(next);

type Part = 'api' | 'reference';
type IdsOf<P extends Part> = P extends 'reference' ? ReferenceOperationId : ApiOperationId;

/** One registering function per operation id, plus `done()`, which refuses a table row left without a handler. */
export type OperationRoutes<Id extends string> = { readonly [K in Id]: (handler: Handler) => void } & { done(): void };

/**
 * Registers routes from the OPERATIONS table (openapi.ts): `routes.createThread(handler)`
 * registers the handler at that row's method and path, so a route and its documentation cannot
 * name different paths. `part` is which rows this router serves: the reference demos' or the rest.
 */
export function operationRoutes<P extends Part>(router: Pick<Router, 'get' | 'post' | 'put' | 'delete'>, part: P): OperationRoutes<IdsOf<P>> {
  const rows = OPERATIONS.filter((op) => (op.tag === 'reference') === (part === 'reference'));
  const pending = new Set(rows.map((op) => op.id));
  const routes: Record<string, (handler: Handler) => void> = {};
  for (const op of rows) {
    routes[op.id] = (handler) => {
      if (!pending.delete(op.id)) throw new Error(`operation ${op.id} was given a second handler`);
      router[op.method](op.path, route(handler));
    };
  }
  const done = (): void => {
    if (pending.size > 0) throw new Error(`operations without a handler: ${[...pending].join(', ')}`);
  };
  // The keys are exactly the rows' ids, which IdsOf<P> names at compile time.
  return { ...routes, done } as unknown as OperationRoutes<IdsOf<P>>;
}
