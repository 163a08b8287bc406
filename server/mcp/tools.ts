import { z } from 'zod';
import type { ToolAnnotations } from '@modelcontextprotocol/sdk/types.js';
import { inScope, mayActAs, requireRole } from '../../src/auth/principal.js';
import { BacklogFullError, DurabilityError, ThreadNotVisible } from '../../src/errors.js';
import type { SessionState } from '../../src/memory/working.js';
import { parseTurnInput } from '../../src/pipeline/ingest.js';
import { asRedisUnavailable } from '../../src/redis/unavailable.js';
import * as v from '../../src/validate.js';
import { NotFound } from '../http/not-found.js';
import * as r from '../http/responses.js';
import * as s from '../http/schemas.js';
import { keyField } from '../http/visibility.js';
import type { McpCaller, McpDeps } from './context.js';
import { formatMemoryPrompt } from './prompt.js';
import { field, memoryRecord, recalledMemory, threadState } from './schemas.js';

export interface ToolContext {
  deps: McpDeps;
  caller: McpCaller;
}

/** A tool as the server lists and calls it: its arguments are checked here, with the REST API's field rules and messages. */
export interface Tool {
  name: string;
  title: string;
  description: string;
  input: z.ZodObject;
  /** Descriptions of the arguments, added to the listed JSON Schema (see schemas.ts for why not in the schema). */
  argumentHelp: Readonly<Record<string, string>>;
  output: z.ZodObject;
  annotations: ToolAnnotations;
  /** Checks `args` (a ValidationError naming the first refused field), then runs the tool. */
  call(args: unknown, ctx: ToolContext): Promise<Record<string, unknown>>;
  /** The text content of a successful result; JSON of the structured result unless given. */
  text?: (result: Record<string, unknown>) => string;
}

/** Where memories written through `remember` say they came from (a valid thread id, as the stored document requires). */
export const MCP_SOURCE_THREAD = 'mcp';

/** How long add_turn waits for the pipeline (the REST API's longest ?wait). */
const ADD_TURN_WAIT_MS = 30_000;

const WHOLE = { field: 'arguments', message: 'must be an object' };

function tool<I extends z.ZodObject, O extends z.ZodObject>(def: {
  name: string;
  title: string;
  description: string;
  input: I;
  argumentHelp: { [K in keyof z.input<I>]-?: string };
  output: O;
  annotations: ToolAnnotations;
  run: (args: z.output<I>, ctx: ToolContext) => Promise<z.output<O>>;
  text?: (result: z.output<O>) => string;
}): Tool {
  const { run, text, ...listing } = def;
  return {
    ...listing,
    call: (args, ctx) => run(s.parse(def.input, args ?? {}, WHOLE), ctx),
    // The result handed back is the one `run` returned.
    ...(text ? { text: (result: Record<string, unknown>) => text(result as z.output<O>) } : {}),
  };
}

/** The thread if the caller's user owns it; a missing thread and another user's are the same "not found". */
async function visibleThread({ deps, caller }: ToolContext, threadId: string): Promise<SessionState> {
  const state = await deps.working.load(threadId);
  if (!state || !mayActAs(caller.principal, state.user)) throw new ThreadNotVisible(threadId);
  return state;
}

/** A write to a thread as its owner: starts it in the caller's scope if new, refuses (not found) another user's, atomically. */
function asOwner({ caller }: ToolContext, agent?: string) {
  return { user: caller.scope.user, namespace: caller.scope.namespace, exclusive: true, keyId: caller.principal.keyId, ...(agent === undefined ? {} : { agent }) };
}

/** set_goal and set_scratchpad: one write as the thread's owner (starting it if new), answered with the thread as it is now. */
async function updateThread(ctx: ToolContext, threadId: string, fields: { goal?: string; scratchpad?: string }): Promise<SessionState> {
  requireRole(ctx.caller.principal, 'write');
  await ctx.deps.working.update(threadId, fields, asOwner(ctx));
  return visibleThread(ctx, threadId);
}

async function recallFor(ctx: ToolContext, text: string, k: number | undefined, threshold: number | undefined) {
  const { embedder, longTerm, config } = ctx.deps;
  const embedding = await embedder.embedOne(text);
  return longTerm.recall({ ...ctx.caller.scope, embedding, k: k ?? config.recallK, threshold: threshold ?? config.recallThreshold }) as Promise<z.output<typeof recalledMemory>[]>;
}

const K_HELP = 'How many nearest memories to consider, 1-100 (default: the server\'s AGENTMEM_RECALL_K, 5).';
const THRESHOLD_HELP = 'Cosine distance at or under which a memory counts as recalled, 0-2; smaller is stricter (default: AGENTMEM_RECALL_THRESHOLD, 0.55).';
const THREAD_HELP = 'The thread (conversation) id: 1-64 characters of A-Z a-z 0-9 _ -, e.g. one returned by new_thread.';

export const TOOLS: readonly Tool[] = [
  tool({
    name: 'remember',
    title: 'Remember a fact',
    description:
      'Store one fact or event in long-term memory, for this user and namespace. The write deduplicates: if a memory of the same kind ' +
      'already says nearly the same thing (cosine distance at or under the dedup threshold), that memory\'s hit_count is bumped ' +
      'instead of storing a copy. Returns the memory id, whether it was deduped, and the distance to the nearest existing memory. ' +
      'Use for facts worth keeping across conversations (preferences, decisions, names); use add_turn to record conversation turns.',
    input: z.object({ text: field.text, kind: field.kind.optional(), ttl_seconds: field.ttlSeconds.optional() }),
    argumentHelp: {
      text: 'The fact, as a self-contained sentence (e.g. "The user prefers metric units").',
      kind: 'semantic (default): a lasting fact, never expires; episodic: an event, expires after AGENTMEM_EPISODIC_TTL_SECONDS (7 days).',
      ttl_seconds: 'Overrides the kind\'s expiry for a new memory: seconds until it is forgotten; 0 = never.',
    },
    output: z.object({ memory_id: z.string(), kind: field.kind, deduped: z.boolean(), written: z.boolean(), existing_distance: z.number().nullable() }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run({ text, kind = 'semantic', ttl_seconds: ttlSeconds }, ctx) {
      requireRole(ctx.caller.principal, 'write');
      const { embedder, longTerm, metrics } = ctx.deps;
      const embedding = await embedder.embedOne(text);
      const result = await longTerm.remember({ ...ctx.caller.scope, text, kind, embedding, sourceThread: MCP_SOURCE_THREAD, ...(ttlSeconds === undefined ? {} : { ttlSeconds }) });
      if (result.applied) metrics?.memoryWrites.inc({ outcome: result.deduped ? 'deduped' : 'written' });
      return { memory_id: result.id, kind: result.kind, deduped: result.deduped, written: result.written, existing_distance: result.existingDistance };
    },
  }),
  tool({
    name: 'recall',
    title: 'Recall memories',
    description:
      'Search long-term memory (this user and namespace) for what is relevant to a text, by meaning rather than keywords. Returns the ' +
      'nearest memories within the threshold, nearest first, each with its cosine distance (smaller = closer), kind and hit_count ' +
      '(how often it was re-remembered). Read-only. To get goal, scratchpad, recent turns and recall in one ready-to-use block, use memory_prompt.',
    input: z.object({ text: field.text, k: field.k, threshold: field.threshold }),
    argumentHelp: { text: 'What to look for: a question, a topic or the user\'s latest message.', k: K_HELP, threshold: THRESHOLD_HELP },
    output: z.object({ memories: z.array(recalledMemory) }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run({ text, k, threshold }, ctx) {
      return { memories: await recallFor(ctx, text, k, threshold) };
    },
  }),
  tool({
    name: 'add_turn',
    title: 'Add a conversation turn',
    description:
      'Append one turn (a user or assistant message) to a thread\'s working memory, through agentmem\'s pipeline: it is stored durably, ' +
      'embedded, used to recall related long-term memories, and (unless remember is skip) remembered as an episodic or semantic memory ' +
      'with the same deduplication as remember. Starts the thread if it does not exist. Waits for the pipeline (up to 30 s) and returns ' +
      'the memories recalled for this turn and what was remembered; status queued means it was accepted but not processed in time. ' +
      'Give an idempotency_key to retry safely: a call repeated with the same key (e.g. after a lost answer) answers the first turn instead of adding another.',
    input: z.object({
      thread_id: field.threadId, content: field.content, role: field.role, remember: field.remember, k: field.k, threshold: field.threshold,
      idempotency_key: field.idempotencyKey.optional(),
    }),
    argumentHelp: {
      thread_id: THREAD_HELP,
      content: 'The message text.',
      role: 'user (default), assistant, tool or system.',
      remember: 'episodic (default): keep it as an event memory; semantic: as a lasting fact; skip: working memory and recall only.',
      k: K_HELP,
      threshold: THRESHOLD_HELP,
      idempotency_key: 'Any unique string for this turn (1-255 printable ASCII characters, no spaces), kept for AGENTMEM_TURN_TTL_SECONDS per thread.',
    },
    output: z.object({
      turn_id: z.string(),
      replayed: z.boolean(),
      thread_id: z.string(),
      status: r.TurnResult.shape.status,
      turn_count: z.number(),
      recall: z.array(memoryRecord).nullable(),
      memory: r.MemoryOutcome.nullable(),
      error: z.string().optional(),
    }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run(args, ctx) {
      const { principal, scope } = ctx.caller;
      requireRole(principal, 'write');
      const { ingest, waiter, config, log, metrics } = ctx.deps;
      const turn = { ...parseTurnInput(args.thread_id, args, config), ...scope };
      const accepted = await ingest.accept(turn, args.idempotency_key, { exclusive: true, keyId: principal.keyId }).catch((err: unknown) => {
        if (err instanceof BacklogFullError) metrics?.turnsIngested.inc({ result: 'rejected' });
        throw err;
      });
      metrics?.turnsIngested.inc({ result: accepted.created ? 'accepted' : 'replayed' });
      const replayed = !accepted.created;
      // Accepted and on disk: Redis failing during the wait still answers the turn as queued, never an error a client would retry (and so repeat).
      const result = await waiter.waitFor(accepted.turnId, ADD_TURN_WAIT_MS).catch((err: unknown) => {
        if (!asRedisUnavailable(err) && !(err instanceof DurabilityError)) throw err;
        log.warn('mcp.wait_failed', { turn_id: accepted.turnId, error: err });
        return null;
      });
      if (!result) return { turn_id: accepted.turnId, replayed, thread_id: accepted.threadId, status: 'queued' as const, turn_count: accepted.turnCount ?? 0, recall: null, memory: null };
      return {
        turn_id: result.turn_id, replayed, thread_id: result.thread_id, status: result.status, turn_count: result.turn_count,
        recall: result.recall, memory: result.memory, ...(result.error === undefined ? {} : { error: result.error }),
      };
    },
  }),
  tool({
    name: 'get_working_memory',
    title: 'Read a thread\'s working memory',
    description:
      'Read a thread\'s working memory: its goal, scratchpad, the most recent turns (up to the window, 20 by default), turn count, ' +
      'timestamps and remaining TTL (the thread expires after AGENTMEM_SESSION_TTL_SECONDS without writes). Read-only.',
    input: z.object({ thread_id: field.threadId }),
    argumentHelp: { thread_id: THREAD_HELP },
    output: threadState,
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run({ thread_id: threadId }, ctx) {
      return visibleThread(ctx, threadId);
    },
  }),
  tool({
    name: 'set_goal',
    title: 'Set a thread\'s goal',
    description: 'Set (replace) the goal of a thread: what the agent is trying to achieve in this conversation. Starts the thread if new. An empty string clears it. Returns the thread\'s working memory.',
    input: z.object({ thread_id: field.threadId, goal: field.goal }),
    argumentHelp: { thread_id: THREAD_HELP, goal: 'The goal, as one or a few sentences.' },
    output: threadState,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: ({ thread_id: threadId, goal }, ctx) => updateThread(ctx, threadId, { goal }),
  }),
  tool({
    name: 'set_scratchpad',
    title: 'Set a thread\'s scratchpad',
    description: 'Set (replace) a thread\'s scratchpad: free-form notes the agent keeps for itself during the conversation (plans, partial results). Starts the thread if new. Returns the thread\'s working memory.',
    input: z.object({ thread_id: field.threadId, scratchpad: field.scratchpad }),
    argumentHelp: { thread_id: THREAD_HELP, scratchpad: 'The whole new scratchpad text (it replaces the old one); empty clears it.' },
    output: threadState,
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
    run: ({ thread_id: threadId, scratchpad }, ctx) => updateThread(ctx, threadId, { scratchpad }),
  }),
  tool({
    name: 'new_thread',
    title: 'Start a thread',
    description: 'Start a new thread (conversation) with a fresh id, optionally with its goal. Use the returned thread_id with add_turn, memory_prompt and the other thread tools.',
    input: z.object({ agent: field.agent, goal: field.goal.optional() }),
    argumentHelp: { agent: 'Name of the agent the thread belongs to (default: default).', goal: 'The thread\'s goal, if known already.' },
    output: z.object({ thread_id: z.string() }),
    annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
    async run({ agent, goal }, ctx) {
      requireRole(ctx.caller.principal, 'write');
      const threadId = v.newId();
      await ctx.deps.working.update(threadId, { goal }, asOwner(ctx, agent));
      return { thread_id: threadId };
    },
  }),
  tool({
    name: 'list_memories',
    title: 'List memories',
    description: 'List the long-term memories of this user and namespace, newest first, with kind, hit_count and remaining TTL (null = never expires). Read-only; use recall to search by meaning.',
    input: z.object({ limit: field.limit.optional() }),
    argumentHelp: { limit: 'At most this many memories, 1-10000 (default 200).' },
    output: z.object({ memories: z.array(memoryRecord) }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run({ limit = 200 }, ctx) {
      return { memories: await ctx.deps.longTerm.list(ctx.caller.scope, limit) };
    },
  }),
  tool({
    name: 'forget',
    title: 'Forget a memory',
    description: 'Delete one long-term memory by its id (from remember, recall or list_memories). Cannot be undone. A memory outside this user and namespace is answered as not found.',
    input: z.object({ memory_id: field.memoryId }),
    argumentHelp: { memory_id: 'The memory\'s id: 12 lowercase hex characters.' },
    output: r.DeletedMemory,
    annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
    async run({ memory_id: memoryId }, ctx) {
      const { principal } = ctx.caller;
      requireRole(principal, 'write');
      const { longTerm } = ctx.deps;
      const memory = await longTerm.get(memoryId);
      if (!memory || !inScope(principal, memory)) throw new NotFound('memory', memoryId);
      if (!(await longTerm.delete(memoryId, { user: memory.user, namespace: memory.namespace, ...keyField(principal) }))) throw new NotFound('memory', memoryId);
      return { deleted: true as const, memory_id: memoryId };
    },
  }),
  tool({
    name: 'memory_prompt',
    title: 'Memory context for a prompt',
    description:
      'Everything the agent should know before answering, in one call and one ready-to-paste text block: the thread\'s goal, ' +
      'scratchpad and recent turns, and the long-term memories recalled for the query, each with its kind. Call it at the start of a ' +
      'turn and put the text into the model\'s context. Without a query, the thread\'s latest turn is the query. Read-only.',
    input: z.object({ thread_id: field.threadId, query: field.text.optional(), k: field.k, threshold: field.threshold, turns: field.turns.optional() }),
    argumentHelp: {
      thread_id: THREAD_HELP,
      query: 'What to recall memories for, usually the user\'s latest message (default: the thread\'s latest turn).',
      k: K_HELP,
      threshold: THRESHOLD_HELP,
      turns: 'How many of the latest turns to include, 0-1000 (default 10).',
    },
    output: z.object({ prompt: z.string(), thread_id: z.string(), query: z.string().nullable(), memories: z.array(recalledMemory) }),
    annotations: { readOnlyHint: true, openWorldHint: false },
    async run({ thread_id: threadId, query, k, threshold, turns = 10 }, ctx) {
      // With a query, the thread and the recall side by side: recall reads only the caller's own scope, so nothing is shown before the thread is checked.
      const [thread, recalled] = await Promise.all([visibleThread(ctx, threadId), query === undefined ? undefined : recallFor(ctx, query, k, threshold)]);
      const asked = query ?? thread.recent_turns.at(-1)?.content ?? null;
      const memories = recalled ?? (asked === null ? [] : await recallFor(ctx, asked, k, threshold));
      return { prompt: formatMemoryPrompt(thread, turns, asked, memories), thread_id: threadId, query: asked, memories };
    },
    text: (result) => result.prompt,
  }),
];
