/**
 * The pipeline's consumer groups and the read rhythm of their consumers: shared by the stages,
 * the stage workers and the liveness checks, which is why they are in none of them.
 */

export const EMBED_RECALL_GROUP = 'embed-recall';
export const REMEMBER_GROUP = 'remember';

/** How long one read of a stage worker blocks at most. */
export const BLOCK_MS = 2000;
/**
 * A consumer that has not read for this long is not live: a healthy loop reads at least every
 * BLOCK_MS plus the time one batch takes, so five block times leave room for a busy machine.
 */
export const CONSUMER_LIVE_MS = 5 * BLOCK_MS;
