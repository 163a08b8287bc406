import type { RequestHandler } from 'express';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { resolveScope } from '../../src/auth/principal.js';
import { ValidationError } from '../../src/errors.js';
import { principalOf } from '../http/authenticate.js';
import type { Handler } from '../http/route.js';
import * as s from '../http/schemas.js';
import { callerIn, type McpDeps } from './context.js';
import { buildMcpServer } from './server.js';

/** `?user=&namespace=` on the MCP URL: checked as a REST request's fields are (a key bound to one of each needs neither). */
const scopeQuery = s.createThreadBody.pick({ user: true, namespace: true });

/**
 * POST /mcp: MCP over Streamable HTTP, stateless (no session id), so any API replica can answer
 * any request: each request gets its own server and transport, acting for the request's API key
 * in the scope resolveScope gives it, exactly as a REST request naming that user and namespace.
 * Answers are plain JSON (no SSE stream): every tool answers once.
 */
export function mcpRoute(deps: McpDeps): Handler {
  return async (req, res) => {
    // One request, one call: a batch would run hundreds of embeddings on one request of the key's rate limit.
    if (Array.isArray(req.body)) throw new ValidationError('body', 'must be one JSON-RPC message: batches are not accepted (MCP dropped them in protocol 2025-06-18)');
    const principal = principalOf(res);
    const scope = resolveScope(principal, s.parse(scopeQuery, req.query, { field: 'query', message: 'must be user= and namespace= fields' }));
    const server = buildMcpServer(deps, callerIn(principal, scope));
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    await server.connect(transport);
    await transport.handleRequest(req, res, req.body);
  };
}

/** GET and DELETE /mcp: a stateless server has no stream to open and no session to end (405, which the SDK's client expects). */
export const mcpOtherMethods: RequestHandler = (req, res, next) => {
  if (req.method === 'POST' || req.path !== '/') return next();
  res.setHeader('Allow', 'POST');
  res.status(405).json({ error: { message: `${req.method} /mcp: this server is stateless; send MCP requests with POST` } });
};
