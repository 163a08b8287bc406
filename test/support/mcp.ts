import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { PACKAGE_ROOT } from '../../src/paths.js';
import { jsonLines } from './fleet.js';

/** An MCP client of the SDK's own over Streamable HTTP: `url` is the service's /mcp (with ?user= and so on), `key` an API key if auth is on. */
export async function httpClient(url: string, key?: string): Promise<Client> {
  const client = new Client({ name: 'agentmem-test', version: '1.0.0' });
  const transport = new StreamableHTTPClientTransport(new URL(url), key === undefined ? {} : { requestInit: { headers: { Authorization: `Bearer ${key}` } } });
  await client.connect(transport);
  return client;
}

export interface StdioAgentmem {
  client: Client;
  /** Every JSON log line the process wrote to stderr so far. */
  logs: Record<string, unknown>[];
  pid: number | null;
}

/** `node dist/server/cli/main.js mcp` spawned by the SDK's StdioClientTransport, with `env` as its whole environment. */
export async function stdioClient(env: NodeJS.ProcessEnv): Promise<StdioAgentmem> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [join(PACKAGE_ROOT, 'dist/server/cli/main.js'), 'mcp'],
    env: Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined)),
    stderr: 'pipe',
  });
  const logs = transport.stderr ? jsonLines(transport.stderr) : [];
  const client = new Client({ name: 'agentmem-test', version: '1.0.0' });
  // Start-up loads the model and connects to Redis before the server answers initialize.
  await client.connect(transport, { timeout: 120_000 });
  return { client, logs, pid: transport.pid };
}

/** A tool call's structured result; fails the test with the tool's error text when the call failed. */
export async function call<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const result = (await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
  if (result.isError) throw new Error(`${name} failed: ${JSON.stringify(result.content)}`);
  return result.structuredContent as T;
}

export interface ToolErrorResult {
  isError: true;
  text: string;
  error: { field?: string; message: string; retryable: boolean; retry_after_seconds?: number };
}

/** A tool call expected to fail: its text, and the error that text holds as JSON. */
export async function callFailing(client: Client, name: string, args: Record<string, unknown>): Promise<ToolErrorResult> {
  const result = (await client.callTool({ name, arguments: args }, undefined, { timeout: 60_000 })) as CallToolResult;
  if (!result.isError) throw new Error(`${name} succeeded, expected an error: ${JSON.stringify(result.structuredContent)}`);
  const first = result.content[0];
  const text = first?.type === 'text' ? first.text : '';
  return { isError: true, text, error: (JSON.parse(text) as { error: ToolErrorResult['error'] }).error };
}
