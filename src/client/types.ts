/**
 * The `/v1` wire shapes: generated into ./wire.ts from the server's schemas (see its header), so
 * they are what the server validates and answers. What follows is named from them, or is the
 * client's own (its arguments as a caller gives them).
 */
import type { MemoryRecord, TurnRequest, TurnResult, WhoAmI } from './wire.js';

export type * from './wire.js';

export type TurnRole = NonNullable<TurnRequest['role']>;
export type MemoryKind = MemoryRecord['kind'];
/** How a turn is remembered: as an episodic or a semantic memory, or not at all. */
export type RememberMode = NonNullable<TurnRequest['remember']>;
export type Role = WhoAmI['role'];
export type TurnStatus = TurnResult['status'];

/** GET /v1/memories: the query the client sends (`limit` as a number; on the wire, a query string). */
export interface ListMemoriesQuery {
  user?: string;
  namespace?: string;
  /** 1..10000 (default 200). */
  limit?: number;
}
