import type { NextFunction, Request, Response } from 'express';

export type Handler = (req: Request, res: Response) => Promise<void>;

/** Sends a rejected async handler to express's error handler, where operational errors become 4xx. */
export const route = (handler: Handler) => (req: Request, res: Response, next: NextFunction): void => void handler(req, res).catch(next);
