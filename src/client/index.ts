/**
 * `agentmem/client`: a typed client of the agentmem HTTP API. It imports nothing from the server
 * side and needs only `fetch`, so it runs on Node 20+ and in browsers.
 */
export { AgentmemClient } from './client.js';
export type { CallOptions, ClientOptions, PostedTurn, PostTurnOptions, ReconnectOptions, RetryInfo, RetryOptions, StreamOptions, WaitOptions } from './client.js';
export { AgentmemApiError, AgentmemError, AgentmemNetworkError, AgentmemStreamError, AgentmemTimeoutError } from './errors.js';
export type * from './types.js';
