import type { Principal } from '../../src/auth/principal.js';
import type { Config } from '../../src/config.js';
import type { TextEmbedder } from '../../src/embedder/types.js';
import type { Logger } from '../../src/log.js';
import type { LongTermMemory } from '../../src/memory/long-term.js';
import type { WorkingMemory } from '../../src/memory/working.js';
import type { Metrics } from '../../src/metrics.js';
import type { Ingest } from '../../src/pipeline/ingest.js';
import type { TurnWaiter } from '../../src/pipeline/waiter.js';
import type { Scope } from '../../src/query.js';

/** What the MCP tools and resources are built from: the same library objects the REST routes use. */
export interface McpDeps {
  working: WorkingMemory;
  longTerm: LongTermMemory;
  embedder: TextEmbedder;
  ingest: Ingest;
  waiter: TurnWaiter;
  config: Config;
  log: Logger;
  /** The process's metrics, where it serves them (the API). */
  metrics?: Metrics;
}

/**
 * Who an MCP connection acts for, fixed when it is built: one user and namespace (the tools take
 * none, so a model cannot name another tenant's), and the principal narrowed to exactly that
 * scope, so the REST API's visibility rules (mayActAs, inScope, exclusive thread ownership) keep
 * every tool inside it, even for a key bound to several users or with authentication off.
 */
export interface McpCaller {
  scope: Scope;
  principal: Principal;
}

export function callerIn(base: Principal, scope: Scope): McpCaller {
  return { scope, principal: { ...base, users: [scope.user], namespaces: [scope.namespace] } };
}
