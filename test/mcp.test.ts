import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import type { MemoryRecord } from '../src/memory/long-term.js';
import type { SessionState } from '../src/memory/working.js';
import { agentmemEnv, keysEnv } from './support/fleet.js';
import { call, callFailing, httpClient, stdioClient, type StdioAgentmem } from './support/mcp.js';
import { startTestService, type TestService } from './support/service.js';

/**
 * The MCP server through the SDK's own client, over both transports: `agentmem mcp` as a real
 * process on stdio, and POST /mcp of a running service. Both share this file's keys, each in a
 * scope of its own, and every tool's effect is checked in Redis through the library.
 */

const TOOLS = ['remember', 'recall', 'add_turn', 'get_working_memory', 'set_goal', 'set_scratchpad', 'new_thread', 'list_memories', 'forget', 'memory_prompt'];

let s: TestService;
let stdio: StdioAgentmem;
let http: Client;
const stdioScope = { user: 'mcp-stdio-user', namespace: 'notes' };
const httpScope = { user: 'mcp-http-user', namespace: 'work' };

beforeAll(async () => {
  s = await startTestService();
  const env = agentmemEnv(inject('redisUrl'), {
    ...keysEnv(s.config), AGENTMEM_MCP_USER: stdioScope.user, AGENTMEM_MCP_NAMESPACE: stdioScope.namespace,
    AGENTMEM_EMBED_SESSIONS: '1', AGENTMEM_EMBED_THREADS: '1',
  });
  [stdio, http] = await Promise.all([stdioClient(env), httpClient(`${s.service.url}/mcp?user=${httpScope.user}&namespace=${httpScope.namespace}`)]);
});

afterAll(async () => {
  await http?.close();
  await stdio?.client.close();
  await s?.stop();
});

describe.each([
  ['stdio', () => stdio.client, stdioScope],
  ['Streamable HTTP', () => http, httpScope],
] as const)('MCP over %s', (_transport, client, scope) => {
  let factId: string;
  let threadId: string;

  it('lists every tool with an input and an output schema, and the resources', async () => {
    const { tools } = await client().listTools();
    expect(tools.map((t) => t.name).sort()).toEqual([...TOOLS].sort());
    for (const tool of tools) {
      expect(tool.description?.length, tool.name).toBeGreaterThan(80);
      expect(tool.inputSchema.type).toBe('object');
      expect(tool.outputSchema?.type, tool.name).toBe('object');
    }
    const recall = tools.find((t) => t.name === 'recall');
    expect(recall?.inputSchema.required).toEqual(['text']);
    expect(recall?.inputSchema.properties?.k).toMatchObject({ type: 'integer', minimum: 1, maximum: 100, description: expect.stringContaining('nearest') });
    const { resourceTemplates } = await client().listResourceTemplates();
    expect(resourceTemplates.map((r) => r.uriTemplate)).toEqual(['agentmem://threads/{thread_id}']);
    const { resources } = await client().listResources();
    expect(resources.map((r) => r.uri)).toEqual(['agentmem://memories']);
  });

  it('remember writes a memory in its scope, then dedups a repeat onto it (hit_count bumped)', async () => {
    const first = await call<{ memory_id: string; deduped: boolean; written: boolean; existing_distance: number | null }>(client(), 'remember', { text: 'My cat is called Miso and she is nine years old.' });
    expect(first).toMatchObject({ deduped: false, written: true, kind: 'semantic' });
    factId = first.memory_id;
    expect(await s.longTerm.get(factId)).toMatchObject({ ...scope, kind: 'semantic', hit_count: 0, source_thread: 'mcp', ttl_seconds: null });

    const again = await call<typeof first>(client(), 'remember', { text: 'My cat is called Miso and she is nine years old.' });
    expect(again).toMatchObject({ memory_id: factId, deduped: true, written: false });
    expect(again.existing_distance).toBeLessThan(0.01);
    expect((await s.longTerm.get(factId))?.hit_count).toBe(1);

    const episodic = await call<typeof first>(client(), 'remember', { text: 'We talked about the garden on Tuesday.', kind: 'episodic', ttl_seconds: 600 });
    const stored = await s.longTerm.get(episodic.memory_id);
    expect(stored?.kind).toBe('episodic');
    expect(stored?.ttl_seconds).toBeGreaterThan(500);
    expect(stored?.ttl_seconds).toBeLessThanOrEqual(600);
  });

  it('recall finds the remembered fact for a paraphrase, with distance, kind and hit count', async () => {
    const { memories } = await call<{ memories: (MemoryRecord & { distance: number })[] }>(client(), 'recall', { text: "What is my cat's name?" });
    expect(memories[0]).toMatchObject({ id: factId, kind: 'semantic', hit_count: 1, ...scope });
    expect(memories[0]?.distance).toBeLessThan(0.55);
  });

  it('new_thread, set_goal, set_scratchpad and add_turn change working memory; add_turn returns its recall', async () => {
    ({ thread_id: threadId } = await call<{ thread_id: string }>(client(), 'new_thread', { goal: 'Find a cat sitter for August' }));
    expect(await s.working.load(threadId)).toMatchObject({ user: scope.user, goal: 'Find a cat sitter for August', turn_count: 0 });

    expect(await call<SessionState>(client(), 'set_scratchpad', { thread_id: threadId, scratchpad: '- ask the neighbours' })).toMatchObject({ scratchpad: '- ask the neighbours' });
    await call(client(), 'set_goal', { thread_id: threadId, goal: 'Find a cat sitter for the first two weeks of August' });
    expect(await s.redis.hmget(s.keys.session(threadId), 'goal', 'scratchpad')).toEqual(['Find a cat sitter for the first two weeks of August', '- ask the neighbours']);

    const turn = await call<{ status: string; turn_count: number; recall: MemoryRecord[]; memory: { id: string; kind: string } }>(client(), 'add_turn', {
      thread_id: threadId, content: 'Who could look after Miso, my cat, while I am away?', remember: 'skip',
    });
    expect(turn).toMatchObject({ status: 'done', turn_count: 1, memory: null });
    expect(turn.recall.map((m) => m.id)).toContain(factId);
    const facts = await call<{ memory: { id: string; deduped: boolean; kind: string } }>(client(), 'add_turn', {
      thread_id: threadId, content: 'I am allergic to peanuts.', remember: 'semantic',
    });
    expect(facts.memory).toMatchObject({ deduped: false, kind: 'semantic' });
    expect(await s.longTerm.get(facts.memory.id)).toMatchObject({ ...scope, source_thread: threadId, text: 'I am allergic to peanuts.' });

    // A call repeated with its idempotency key (an answer lost on the way) answers the first turn and adds nothing.
    const once = { thread_id: threadId, content: 'Miso eats twice a day.', remember: 'skip', idempotency_key: `miso-${threadId}` };
    const first = await call<{ turn_id: string; replayed: boolean; turn_count: number }>(client(), 'add_turn', once);
    const again = await call<{ turn_id: string; replayed: boolean; status: string }>(client(), 'add_turn', once);
    expect(first).toMatchObject({ replayed: false, turn_count: 3 });
    expect(again).toMatchObject({ turn_id: first.turn_id, replayed: true, status: 'done' });

    const state = await call<SessionState>(client(), 'get_working_memory', { thread_id: threadId });
    expect(state.turn_count).toBe(3);
    expect(state.recent_turns.map((t) => t.content)).toEqual(['Who could look after Miso, my cat, while I am away?', 'I am allergic to peanuts.', 'Miso eats twice a day.']);
    expect((await s.working.load(threadId))?.recent_turns).toHaveLength(3);
  });

  it('memory_prompt gives goal, scratchpad, turns and recalled memories in one block', async () => {
    const result = await client().callTool({ name: 'memory_prompt', arguments: { thread_id: threadId, query: 'Do I have any food allergies?' } });
    const { prompt, memories } = result.structuredContent as { prompt: string; memories: MemoryRecord[] };
    expect(result.content).toEqual([{ type: 'text', text: prompt }]);
    expect(prompt).toContain('Find a cat sitter for the first two weeks of August');
    expect(prompt).toContain('- ask the neighbours');
    expect(prompt).toContain('- user: I am allergic to peanuts.');
    expect(prompt).toMatch(/- \[semantic\] I am allergic to peanuts\. \(distance 0\.\d{3}, hit_count 0\)/);
    expect(memories[0]?.text).toBe('I am allergic to peanuts.');
  });

  it('list_memories and the memories resource show the scope; forget deletes, then answers not found', async () => {
    const { memories } = await call<{ memories: MemoryRecord[] }>(client(), 'list_memories', {});
    expect(memories).toHaveLength(3);
    expect(memories.every((m) => m.user === scope.user && m.namespace === scope.namespace)).toBe(true);
    const resource = await client().readResource({ uri: 'agentmem://memories' });
    expect((JSON.parse((resource.contents[0] as { text: string }).text) as { memories: unknown[] }).memories).toHaveLength(3);
    const thread = await client().readResource({ uri: `agentmem://threads/${threadId}` });
    expect(JSON.parse((thread.contents[0] as { text: string }).text)).toMatchObject({ thread_id: threadId, turn_count: 3 });

    expect(await call(client(), 'forget', { memory_id: factId })).toEqual({ deleted: true, memory_id: factId });
    expect(await s.longTerm.get(factId)).toBeNull();
    expect((await callFailing(client(), 'forget', { memory_id: factId })).error).toEqual({ message: `memory ${factId} not found`, retryable: false });
  });

  it('refuses malformed arguments with a tool error naming the field (the REST API\'s message), and keeps serving', async () => {
    expect((await callFailing(client(), 'recall', { text: '   ' })).error).toEqual({ field: 'text', message: 'text: must not be blank', retryable: false });
    expect((await callFailing(client(), 'recall', { text: 'cats', k: 0 })).error).toMatchObject({ field: 'k', message: 'k: must be an integer in [1, 100]' });
    expect((await callFailing(client(), 'recall', { text: 'cats', threshold: 'close' })).error).toMatchObject({ field: 'threshold' });
    expect((await callFailing(client(), 'recall', {})).error).toMatchObject({ field: 'text' });
    expect((await callFailing(client(), 'add_turn', { thread_id: 'no spaces allowed', content: 'hi' })).error).toMatchObject({ field: 'thread_id' });
    expect((await callFailing(client(), 'add_turn', { thread_id: threadId, content: 'hi', idempotency_key: 'has spaces' })).error).toMatchObject({ field: 'idempotency_key', message: 'idempotency_key: must be 1-255 printable ASCII characters' });
    expect((await callFailing(client(), 'add_turn', { thread_id: threadId, content: 'hi', remember: 'forever' })).error).toMatchObject({ field: 'remember', message: 'remember: must be one of episodic, semantic, skip' });
    expect((await callFailing(client(), 'remember', { text: 'x', kind: 'procedural' })).error).toMatchObject({ field: 'kind', message: 'kind: must be one of episodic, semantic' });
    const ttl = await callFailing(client(), 'remember', { text: 'x', ttl_seconds: -5 });
    expect(ttl.error).toMatchObject({ field: 'ttl_seconds' });
    expect((await callFailing(client(), 'forget', { memory_id: 'not-an-id' })).error).toMatchObject({ field: 'memory_id', message: 'memory_id: must be 12 lowercase hex characters' });
    expect((await callFailing(client(), 'get_working_memory', { thread_id: 'never-started' })).error).toEqual({ message: 'thread never-started not found', retryable: false });
    await expect(client().callTool({ name: 'no_such_tool', arguments: {} })).rejects.toThrow(/unknown tool no_such_tool/);
    await expect(client().readResource({ uri: 'agentmem://threads/never-started' })).rejects.toThrow(/thread never-started not found/);
    // Nothing was written by a refused call, and the server still answers.
    expect(await s.working.load('never-started')).toBeNull();
    expect((await call<{ memories: unknown[] }>(client(), 'list_memories', {})).memories).toHaveLength(2);
  });
});

describe('agentmem mcp (stdio)', () => {
  it('logs only to stderr, and shuts down cleanly when stdin closes', async () => {
    expect(stdio.logs.find((l) => l.event === 'mcp.listening')).toMatchObject({ transport: 'stdio', ...stdioScope, workers: ['embed-recall', 'remember'] });
    expect(stdio.logs.filter((l) => 'raw' in l)).toEqual([]);
    await stdio.client.close();
    const exited = await new Promise<boolean>((resolve) => {
      const deadline = Date.now() + 30_000;
      const poll = (): void => {
        try {
          process.kill(stdio.pid as number, 0);
          if (Date.now() > deadline) resolve(false);
          else setTimeout(poll, 100);
        } catch {
          resolve(true);
        }
      };
      poll();
    });
    expect(exited).toBe(true);
    expect(stdio.logs.find((l) => l.event === 'mcp.stopping')).toMatchObject({ reason: 'stdin closed' });
    expect(stdio.logs.some((l) => l.event === 'shutdown.done')).toBe(true);
  });
});

describe('POST /mcp', () => {
  it('is stateless: no session id, GET and DELETE answer 405', async () => {
    const res = await fetch(`${s.service.url}/mcp`, {
      method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('mcp-session-id')).toBeNull();
    expect(((await res.json()) as { result: { serverInfo: { name: string } } }).result.serverInfo.name).toBe('agentmem');
    for (const method of ['GET', 'DELETE']) expect((await fetch(`${s.service.url}/mcp`, { method })).status).toBe(405);
  });

  it('answers malformed MCP requests with 4xx or a JSON-RPC error, never a 5xx, and keeps serving', async () => {
    const post = (body: string, accept = 'application/json, text/event-stream') =>
      fetch(`${s.service.url}/mcp`, { method: 'POST', headers: { 'content-type': 'application/json', accept }, body });
    const rpc = (method: string, params: unknown) => JSON.stringify({ jsonrpc: '2.0', id: 7, method, params });
    for (const body of ['{}', '[]', '"text"', '{"jsonrpc":"2.0"}', '{not json', rpc('tools/call', { name: 'recall', arguments: 'oops' }), rpc('no/such/method', {})]) {
      const res = await post(body);
      expect(res.status, body).toBeLessThan(500);
      if (res.status === 200) expect(((await res.json()) as { error?: unknown }).error, body).toBeDefined();
      else await res.body?.cancel();
    }
    expect((await post(rpc('tools/list', {}), 'text/html')).status).toBe(406);
    // A batch would put many calls (each an embedding) on one request of the key's rate limit: refused whole, nothing run.
    const remembers = [1, 2, 3].map((id) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'remember', arguments: { text: `Batched fact number ${id}.` } } }));
    const batch = await post(JSON.stringify(remembers));
    expect(batch.status).toBe(400);
    expect(await batch.json()).toMatchObject({ error: { field: 'body' } });
    expect((await s.longTerm.list({ user: 'default', namespace: 'default' })).filter((m) => m.text.startsWith('Batched fact'))).toEqual([]);
    // Stateless: a call needs no initialize before it.
    const res = await post(rpc('tools/call', { name: 'recall', arguments: { text: 'my cat' } }));
    expect(res.status).toBe(200);
    expect(((await res.json()) as { result: { isError?: boolean } }).result.isError).toBeUndefined();
  });

  it('refuses a bad scope in the URL as the REST API does', async () => {
    const res = await fetch(`${s.service.url}/mcp?user=a,b`, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: '{}' });
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: { field: 'user', message: 'user: must not contain a comma' } });
  });
});
