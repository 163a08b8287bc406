import type { TextEmbedder } from '../embedder/types.js';
import type { Scope } from '../query.js';
import type { MemoryKind } from '../validate.js';
import type { LongTermMemory, RememberResult } from './long-term.js';

/** The reference demos' eight seed memories (user and namespace `default`, source_thread `seed`). */
export const SEED_MEMORIES: readonly { kind: MemoryKind; text: string }[] = [
  { kind: 'semantic', text: 'The user prefers concise answers without filler phrases.' },
  { kind: 'semantic', text: 'The user is a Python developer working on a logistics platform.' },
  { kind: 'semantic', text: 'The user lives in Berlin and works in the Europe/Berlin time zone.' },
  { kind: 'semantic', text: 'The user dislikes dark mode and prefers a high-contrast light theme in editors and dashboards.' },
  { kind: 'semantic', text: 'The user is allergic to peanuts; any restaurant suggestion must avoid dishes that commonly contain them.' },
  { kind: 'episodic', text: 'Last Tuesday the user asked the agent to draft a postmortem for the order-routing outage. The agent produced a five-section draft and the user approved sections 1, 2, and 4 with minor edits.' },
  { kind: 'episodic', text: 'In a previous session the user asked for help debugging a flaky test in the inventory service. The fix turned out to be a race condition in the warehouse webhook handler.' },
  { kind: 'episodic', text: 'Two weeks ago the user mentioned they were planning to migrate the analytics warehouse from Snowflake to BigQuery in Q3.' },
];

export const DEFAULT_SCOPE: Readonly<Scope> = Object.freeze({ user: 'default', namespace: 'default' });

/** Embeds the seeds as one batch and writes each through the normal dedup write. */
export async function seedMemories(longTerm: LongTermMemory, embedder: TextEmbedder, scope: Scope = DEFAULT_SCOPE): Promise<RememberResult[]> {
  const vectors = await embedder.embed(SEED_MEMORIES.map((m) => m.text));
  const results: RememberResult[] = [];
  for (const [i, seed] of SEED_MEMORIES.entries()) {
    results.push(
      await longTerm.remember({ ...scope, text: seed.text, kind: seed.kind, embedding: vectors[i] as Float32Array, sourceThread: 'seed' }),
    );
  }
  return results;
}
