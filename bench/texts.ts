/** Turn-like texts of 10-30 words, deterministic so runs compare. */
export function sampleTexts(count: number): string[] {
  const subjects = ['The user', 'My manager', 'The on-call engineer', 'Our customer', 'The agent'];
  const verbs = ['asked about', 'wants to postpone', 'reported a bug in', 'prefers a summary of', 'approved the plan for'];
  const objects = ['the order-routing service', 'the Q3 warehouse migration', 'the flaky inventory test', "next week's release", 'the Berlin office move'];
  const tails = ['before Friday.', 'and needs an answer by noon, ideally with a short list of options and their costs.', 'again.', 'because the last attempt failed halfway through the night.'];
  return Array.from({ length: count }, (_, i) =>
    `${subjects[i % 5]} ${verbs[(i >> 1) % 5]} ${objects[(i >> 2) % 5]} ${tails[(i >> 3) % 4]} (#${i})`,
  );
}
