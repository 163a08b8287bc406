import type { MemoryRecord } from '../../src/memory/long-term.js';
import type { SessionState } from '../../src/memory/working.js';

/**
 * One context block an agent pastes into its model's prompt: the thread's goal and scratchpad,
 * its latest turns, and the long-term memories recalled for the query with their kinds. Plain
 * Markdown-ish text: headings a model recognises, one line per turn and per memory, nothing to
 * parse. Empty sections say so instead of vanishing, so the model knows it was looked at.
 */
export function formatMemoryPrompt(thread: SessionState, turns: number, query: string | null, memories: readonly (MemoryRecord & { distance: number })[]): string {
  const recent = turns === 0 ? [] : thread.recent_turns.slice(-turns);
  const lines = [
    `## Memory for thread ${thread.thread_id} (user ${thread.user})`,
    '',
    '### Goal',
    thread.goal.trim() === '' ? '(none set)' : thread.goal,
    '',
    '### Scratchpad',
    thread.scratchpad.trim() === '' ? '(empty)' : thread.scratchpad,
    '',
    `### Recent turns (${recent.length} of ${thread.turn_count})`,
    ...(recent.length === 0 ? ['(none)'] : recent.map((t) => `- ${t.role}: ${oneLine(t.content)}`)),
    '',
    query === null ? '### Recalled memories' : `### Recalled memories for "${oneLine(query)}"`,
    ...(memories.length === 0
      ? [query === null ? '(no query: nothing recalled)' : '(none close enough)']
      : memories.map((m) => `- [${m.kind}] ${oneLine(m.text)} (distance ${m.distance.toFixed(3)}, hit_count ${m.hit_count})`)),
  ];
  return lines.join('\n');
}

/** Newlines inside a turn or memory would read as new list items. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
