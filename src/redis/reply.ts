/**
 * A flat RESP2 reply of alternating names and values (MODULE LIST entries, FT.INFO, XINFO,
 * FT.AGGREGATE rows, stream entry fields) as a Map from name to value.
 */
export function pairs(flat: readonly unknown[]): Map<string, unknown> {
  const map = new Map<string, unknown>();
  for (let i = 0; i + 1 < flat.length; i += 2) map.set(String(flat[i]), flat[i + 1]);
  return map;
}

/**
 * True for an error Redis answered (`ERR ...`, `WRONGTYPE ...`, `LOADING ...`): the server got
 * the command and refused it. Connection failures are not reply errors.
 */
export function isReplyError(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}
