import type { TextEmbedder } from '../embedder/types.js';
import { EMBED_RECALL_GROUP } from './groups.js';
import { EmbedRecallStage, type StageDeps } from './stages.js';
import { startStageWorker, type RunningWorker } from './worker.js';
import type { Config } from '../config.js';

export const EMBED_RECALL_WORKER = 'embed-recall';

/** Reads accepted turns, embeds them in batches, recalls, hands them to the remember stage. */
export function startEmbedRecallWorker(deps: StageDeps & { config: Config }, embedder: TextEmbedder, consumerName: string): Promise<RunningWorker> {
  const stage = new EmbedRecallStage(deps, embedder);
  return startStageWorker(
    EMBED_RECALL_WORKER, deps, deps.keys.ingestStream, EMBED_RECALL_GROUP, consumerName,
    (entries) => stage.handle(entries),
    () => stage.drain(),
  );
}
