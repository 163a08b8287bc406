import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiKeyStore } from '../src/auth/key-store.js';
import type { MemoryRecord } from '../src/memory/long-term.js';
import { call, callFailing, httpClient } from './support/mcp.js';
import { startTestService, type TestService } from './support/service.js';

/** With API keys on, an MCP session acts exactly within its key's scope: another user's memories and threads are out of reach, as on the REST API. */

let s: TestService;
let alice: Client;
let bob: Client;
const tokens: Record<string, string> = {};
let bobMemory: string;
let bobThread: string;

beforeAll(async () => {
  s = await startTestService({ auth: 'keys' });
  const store = new ApiKeyStore(s.redis, s.keys);
  tokens.alice = (await store.create({ users: ['alice'], namespaces: ['default'], role: 'write' })).token;
  tokens.aliceRead = (await store.create({ users: ['alice'], namespaces: ['default'], role: 'read' })).token;
  tokens.bob = (await store.create({ users: ['bob'], namespaces: ['work'], role: 'write' })).token;
  [alice, bob] = await Promise.all([httpClient(`${s.service.url}/mcp`, tokens.alice), httpClient(`${s.service.url}/mcp`, tokens.bob)]);
  bobMemory = (await call<{ memory_id: string }>(bob, 'remember', { text: 'The code of the office locker is 4711.' })).memory_id;
  bobThread = (await call<{ thread_id: string }>(bob, 'new_thread', { goal: 'Bob\'s secret plan' })).thread_id;
  await call(bob, 'add_turn', { thread_id: bobThread, content: 'Remember that the locker code is 4711.', remember: 'skip' });
});

afterAll(async () => {
  await Promise.all([alice?.close(), bob?.close()]);
  await s?.stop();
});

describe('MCP over HTTP with API keys', () => {
  it('acts in the key\'s own user and namespace', async () => {
    const { memory_id: id } = await call<{ memory_id: string }>(alice, 'remember', { text: 'Alice likes green tea.' });
    expect(await s.longTerm.get(id)).toMatchObject({ user: 'alice', namespace: 'default' });
    expect(await s.longTerm.get(bobMemory)).toMatchObject({ user: 'bob', namespace: 'work' });
  });

  it('alice cannot see bob\'s memories: recall, list_memories and the memories resource', async () => {
    const recalled = await call<{ memories: MemoryRecord[] }>(alice, 'recall', { text: 'What is the locker code?', threshold: 2 });
    expect(recalled.memories.map((m) => m.id)).not.toContain(bobMemory);
    expect(recalled.memories.every((m) => m.user === 'alice')).toBe(true);
    const listed = await call<{ memories: MemoryRecord[] }>(alice, 'list_memories', {});
    expect(listed.memories.map((m) => m.id)).not.toContain(bobMemory);
    const resource = await alice.readResource({ uri: 'agentmem://memories' });
    expect((resource.contents[0] as { text: string }).text).not.toContain('4711');
    // The same fact is recalled for its owner.
    expect((await call<{ memories: MemoryRecord[] }>(bob, 'recall', { text: 'What is the locker code?' })).memories[0]?.id).toBe(bobMemory);
  });

  it('alice cannot forget bob\'s memory: not found, and it stays', async () => {
    expect((await callFailing(alice, 'forget', { memory_id: bobMemory })).error).toEqual({ message: `memory ${bobMemory} not found`, retryable: false });
    expect(await s.longTerm.get(bobMemory)).not.toBeNull();
  });

  it('alice cannot read or change bob\'s thread: each answer is "not found", and nothing changes', async () => {
    const notFound = { message: `thread ${bobThread} not found`, retryable: false };
    expect((await callFailing(alice, 'get_working_memory', { thread_id: bobThread })).error).toEqual(notFound);
    expect((await callFailing(alice, 'memory_prompt', { thread_id: bobThread })).error).toEqual(notFound);
    expect((await callFailing(alice, 'set_goal', { thread_id: bobThread, goal: 'hijacked' })).error).toEqual(notFound);
    expect((await callFailing(alice, 'set_scratchpad', { thread_id: bobThread, scratchpad: 'hijacked' })).error).toEqual(notFound);
    expect((await callFailing(alice, 'add_turn', { thread_id: bobThread, content: 'hijacked', remember: 'skip' })).error).toEqual(notFound);
    await expect(alice.readResource({ uri: `agentmem://threads/${bobThread}` })).rejects.toThrow(`thread ${bobThread} not found`);
    expect(await s.working.load(bobThread)).toMatchObject({ user: 'bob', goal: 'Bob\'s secret plan', scratchpad: '', turn_count: 1 });
    // A thread id that does not exist is answered the same way.
    expect((await callFailing(alice, 'get_working_memory', { thread_id: 'no-such-thread' })).error).toEqual({ message: 'thread no-such-thread not found', retryable: false });
  });

  it('a key cannot name another scope in the URL (403), and no key or a wrong one gets 401', async () => {
    await expect(httpClient(`${s.service.url}/mcp?user=bob`, tokens.alice)).rejects.toThrow(/403|outside the scope/);
    await expect(httpClient(`${s.service.url}/mcp?namespace=work`, tokens.alice)).rejects.toThrow(/403|outside the scope/);
    await expect(httpClient(`${s.service.url}/mcp`)).rejects.toThrow(/401|missing or invalid API key/);
    await expect(httpClient(`${s.service.url}/mcp`, 'am_000000000000_wrong')).rejects.toThrow(/401|missing or invalid API key/);
  });

  it('a read-only key reads but cannot write', async () => {
    const reader = await httpClient(`${s.service.url}/mcp`, tokens.aliceRead);
    try {
      expect((await callFailing(reader, 'remember', { text: 'Written by a reader.' })).error).toEqual({ field: 'role', message: 'role: this key is read; write is needed', retryable: false });
      expect((await call<{ memories: MemoryRecord[] }>(reader, 'list_memories', {})).memories.map((m) => m.text)).toEqual(['Alice likes green tea.']);
    } finally {
      await reader.close();
    }
  });
});
