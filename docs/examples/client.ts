import { AgentmemApiError, AgentmemClient } from 'agentmem/client';

const client = new AgentmemClient({
  baseUrl: process.env.AGENTMEM_URL ?? 'http://127.0.0.1:8094',
  apiKey: process.env.AGENTMEM_API_KEY, // only needed when the server has API keys on
});

const { thread_id } = await client.createThread({ user: 'alice' });
// Sent with an Idempotency-Key and retried on 429/503: queued once, however often it is sent.
const posted = await client.postTurn(thread_id, { content: 'I always book an aisle seat on long flights.', user: 'alice', remember: 'semantic' });
const turn = await client.waitForTurn(posted.turn_id);
console.log(turn.status, turn.memory?.kind);

const { recall } = await client.recall({ text: 'Which seat does alice book on long flights?', user: 'alice' });
for (const memory of recall) console.log(memory.distance?.toFixed(3), memory.text);

// The thread's log from its start; the iterator reconnects by itself and ends on abort.
for await (const event of client.events(thread_id, { since: '0', signal: AbortSignal.timeout(1_000) })) {
  console.log(event.action);
}

try {
  await client.postTurn(thread_id, { content: '' });
} catch (err) {
  if (err instanceof AgentmemApiError) console.log(err.status, err.field, err.message);
}
