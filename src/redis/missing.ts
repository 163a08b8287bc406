/**
 * Redis errors saying that a structure agentmem creates at start is gone: Redis restarted
 * without its data, was flushed, or failed over to an empty replica. Whoever owns the structure
 * recreates it on such an error and carries on (consumer groups: StreamConsumer; the Search
 * index: SearchIndex), so every process heals by itself without a restart.
 */

/** XREADGROUP, XPENDING, XCLAIM, XINFO CONSUMERS on a stream or group that no longer exists. */
export function isMissingGroup(err: unknown): boolean {
  return err instanceof Error && /^NOGROUP\b/.test(err.message);
}

/** FT.SEARCH and FT.AGGREGATE answer `<name>: no such index`, FT.INFO `Unknown index name`. */
export function isMissingIndex(err: unknown): boolean {
  return err instanceof Error && /no such index|unknown index name/i.test(err.message);
}
