/**
 * A real MCP session, recorded for the README: its own Redis and `agentmem serve`, the SDK's
 * client over Streamable HTTP at /mcp?user=alice, and every JSON-RPC request and answer on the
 * wire, abbreviated (long texts cut, long lists shortened, tools/list reduced to names and one
 * input schema). Prints Markdown and writes docs/mcp-transcript.md.
 *
 *   npm run mcp:transcript
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { PACKAGE_ROOT } from '../src/paths.js';
import { startStack } from './stack.js';

const MAX_STRING = 160;
const MAX_ITEMS = 3;

/** A JSON value shortened for reading: strings cut at MAX_STRING, arrays at MAX_ITEMS (with a count of the rest). */
function abbreviate(value: unknown): unknown {
  if (typeof value === 'string') return value.length > MAX_STRING ? `${value.slice(0, MAX_STRING)}…` : value;
  if (Array.isArray(value)) {
    const kept = value.slice(0, MAX_ITEMS).map(abbreviate);
    return value.length > MAX_ITEMS ? [...kept, `… ${value.length - MAX_ITEMS} more`] : kept;
  }
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, abbreviate(v)]));
  return value;
}

interface Tool {
  name: string;
  inputSchema: unknown;
}

/** A tool result's text is its structured content as JSON (memory_prompt: the prompt): shown once. */
function withoutDuplicateText(answer: unknown): unknown {
  const result = (answer as { result?: { content?: { type: string; text?: string }[]; structuredContent?: unknown } }).result;
  if (!result?.structuredContent || !result.content) return answer;
  return { ...(answer as object), result: { ...result, content: result.content.map((c) => ({ ...c, text: '(the structured content, as text)' })) } };
}

/** tools/list lists ten tools with long descriptions and two schemas each: names, and recall's input schema as an example. */
function shortenToolList(answer: { result?: { tools?: Tool[] } }): unknown {
  const tools = answer.result?.tools;
  if (!tools) return abbreviate(answer);
  return { ...answer, result: { tools: `${tools.length} tools: ${tools.map((t) => t.name).join(', ')}`, 'tools[recall].inputSchema': tools.find((t) => t.name === 'recall')?.inputSchema } };
}

async function main(): Promise<void> {
  const stack = await startStack('mcp-transcript');
  const lines: string[] = [];
  const record: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    const request = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }) : undefined;
    if (!request?.method) return res;
    const text = await res.clone().text();
    const answer = text === '' ? `HTTP ${res.status} (no body)` : (JSON.parse(text) as { result?: { tools?: Tool[] } });
    lines.push(`→ ${JSON.stringify(abbreviate(request))}`);
    lines.push(`← ${typeof answer === 'string' ? answer : JSON.stringify(request.method === 'tools/list' ? shortenToolList(answer) : abbreviate(withoutDuplicateText(answer)))}`, '');
    return res;
  };
  const client = new Client({ name: 'transcript', version: '1.0.0' });
  let prompt: string | undefined;
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`${stack.url}/mcp?user=alice`), { fetch: record }));
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })).structuredContent as Record<string, string>;
    await client.listTools();
    const { thread_id: threadId } = await call('new_thread', { goal: 'Help Alice plan a weekend in Lisbon' });
    await call('remember', { text: 'Alice is vegetarian.', kind: 'semantic' });
    const { memory_id: dupId } = await call('remember', { text: 'Alice is a vegetarian.' });
    await call('add_turn', { thread_id: threadId, content: 'Can you suggest somewhere to eat in Lisbon tonight?' });
    await call('set_scratchpad', { thread_id: threadId, scratchpad: '- dinner tonight\n- tram 28 tomorrow' });
    prompt = (await call('memory_prompt', { thread_id: threadId, query: 'Where should Alice eat tonight, given her diet?' })).prompt ?? '';
    await call('recall', { text: 'What does Alice not eat?', k: 3 });
    await call('get_working_memory', { thread_id: threadId });
    await call('list_memories', { limit: 5 });
    await client.readResource({ uri: `agentmem://threads/${threadId}` });
    await call('recall', { text: '', k: 500 });
    await call('forget', { memory_id: dupId });
  } finally {
    await client.close();
    await stack.stop();
  }
  const markdown = ['```', ...lines, '```', '', 'The text memory_prompt returned, in full:', '', '```markdown', prompt ?? '', '```', ''].join('\n');
  process.stdout.write(markdown);
  await writeFile(join(PACKAGE_ROOT, 'docs/mcp-transcript.md'), `# A recorded MCP session\n\nWritten by \`npm run mcp:transcript\` (Streamable HTTP, \`/mcp?user=alice\`); long texts and lists abbreviated.\n\n${markdown}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
