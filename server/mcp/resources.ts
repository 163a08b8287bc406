import { ResourceTemplate, type McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ErrorCode, McpError, type ReadResourceResult } from '@modelcontextprotocol/sdk/types.js';
import { mayActAs } from '../../src/auth/principal.js';
import { ThreadNotVisible } from '../../src/errors.js';
import { NotFound } from '../http/not-found.js';
import * as s from '../http/schemas.js';
import type { ToolContext } from './tools.js';
import { toolError } from './errors.js';

/** JSON-RPC code of a resource that does not exist (MCP specification, resources/read). */
const RESOURCE_NOT_FOUND = -32002;

export const THREAD_RESOURCE = 'agentmem://threads/{thread_id}';
export const MEMORIES_RESOURCE = 'agentmem://memories';

/** The same data as get_working_memory and list_memories, for clients that attach resources to a model's context. */
export function registerResources(server: McpServer, ctx: ToolContext): void {
  server.registerResource(
    'thread',
    new ResourceTemplate(THREAD_RESOURCE, { list: undefined }),
    { title: 'Thread working memory', description: 'A thread\'s goal, scratchpad, recent turns and TTL, as JSON.', mimeType: 'application/json' },
    (uri, variables) =>
      read(ctx, 'thread', uri, async () => {
        const { thread_id: threadId } = s.parse(s.threadParams, { thread_id: variables.thread_id }, { field: 'thread_id', message: 'missing' });
        const state = await ctx.deps.working.load(threadId);
        if (!state || !mayActAs(ctx.caller.principal, state.user)) throw new ThreadNotVisible(threadId);
        return state;
      }),
  );
  server.registerResource(
    'memories',
    MEMORIES_RESOURCE,
    { title: 'Long-term memories', description: 'The newest 200 long-term memories of this user and namespace, as JSON.', mimeType: 'application/json' },
    (uri) => read(ctx, 'memories', uri, async () => ({ memories: await ctx.deps.longTerm.list(ctx.caller.scope, 200) })),
  );
}

/** A resource read; failures become JSON-RPC errors in the tools' categories (data says whether to retry). */
async function read(ctx: ToolContext, name: string, uri: URL, load: () => Promise<unknown>): Promise<ReadResourceResult> {
  try {
    return { contents: [{ uri: uri.href, mimeType: 'application/json', text: JSON.stringify(await load()) }] };
  } catch (err) {
    const { error } = toolError(err, `resource:${name}`, ctx.deps.log, ctx.deps.metrics);
    const code = err instanceof NotFound || err instanceof ThreadNotVisible ? RESOURCE_NOT_FOUND : error.retryable ? ErrorCode.InternalError : ErrorCode.InvalidParams;
    throw new McpError(code, error.message, error);
  }
}
