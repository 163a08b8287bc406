import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { CallToolRequestSchema, ErrorCode, ListToolsRequestSchema, McpError, type CallToolResult, type Tool as ListedTool } from '@modelcontextprotocol/sdk/types.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import type { McpCaller, McpDeps } from './context.js';
import { toolError } from './errors.js';
import { registerResources } from './resources.js';
import { TOOLS, type Tool } from './tools.js';

const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

const INSTRUCTIONS =
  'agentmem is this agent\'s memory. At the start of each turn call memory_prompt (thread_id, the user\'s message as query) and use ' +
  'its text as context. Record each message with add_turn (it also recalls and remembers). Store lasting facts with remember, ' +
  'search with recall, keep plans in set_scratchpad and the aim in set_goal. Start a conversation with new_thread.';

type JsonSchema = Record<string, unknown>;

/** A zod schema as the JSON Schema MCP lists (draft-07, as the SDK itself lists zod schemas). */
function jsonSchema(schema: z.ZodType, io: 'input' | 'output'): JsonSchema {
  const generated = z.toJSONSchema(schema, { target: 'draft-7', io, unrepresentable: 'any' }) as JsonSchema;
  delete generated.$schema;
  return generated;
}

function listed(tool: Tool): ListedTool {
  const input = jsonSchema(tool.input, 'input') as { type: 'object'; properties?: Record<string, JsonSchema> };
  for (const [name, description] of Object.entries(tool.argumentHelp)) {
    const property = input.properties?.[name];
    if (property) property.description = description;
  }
  return { name: tool.name, title: tool.title, description: tool.description, inputSchema: input, outputSchema: jsonSchema(tool.output, 'output') as ListedTool['outputSchema'], annotations: tool.annotations };
}

/** Built once: the list only depends on the tool definitions. */
const LISTED_TOOLS = TOOLS.map(listed);
const TOOLS_BY_NAME = new Map(TOOLS.map((t) => [t.name, t]));

/**
 * An MCP server acting for one caller (scope and principal), over any transport: stdio builds
 * one per process, HTTP one per request. Tools are served by hand rather than with registerTool:
 * the SDK would check arguments against the schema first and refuse with its own wording, while
 * a refused argument must be answered as the REST API answers it (the field rule's message), as
 * a tool result whose text is `{ error: { field?, message, retryable, retry_after_seconds? } }`.
 */
export function buildMcpServer(deps: McpDeps, caller: McpCaller): McpServer {
  const server = new McpServer({ name: 'agentmem', title: 'agentmem memory', version: VERSION }, { instructions: INSTRUCTIONS });
  const ctx = { deps, caller };
  server.server.registerCapabilities({ tools: {} });
  server.server.setRequestHandler(ListToolsRequestSchema, () => ({ tools: LISTED_TOOLS }));
  server.server.setRequestHandler(CallToolRequestSchema, async (request): Promise<CallToolResult> => {
    const tool = TOOLS_BY_NAME.get(request.params.name);
    if (!tool) throw new McpError(ErrorCode.InvalidParams, `unknown tool ${request.params.name}; tools/list names them`);
    const started = performance.now();
    try {
      const result = await tool.call(request.params.arguments, ctx);
      deps.log.debug('mcp.tool', { tool: tool.name, user: caller.scope.user, namespace: caller.scope.namespace, key_id: caller.principal.keyId, ms: Math.round(performance.now() - started) });
      return { content: [{ type: 'text', text: tool.text ? tool.text(result) : JSON.stringify(result) }], structuredContent: result };
    } catch (err) {
      // As text, not structuredContent: that must match the tool's outputSchema, and the SDK's client checks it on errors too.
      return { isError: true, content: [{ type: 'text', text: JSON.stringify(toolError(err, tool.name, deps.log, deps.metrics)) }] };
    }
  });
  registerResources(server, ctx);
  return server;
}
