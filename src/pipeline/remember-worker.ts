import type { Config } from '../config.js';
import { REMEMBER_GROUP } from './groups.js';
import { RememberStage, type StageDeps } from './stages.js';
import { startStageWorker, type RunningWorker } from './worker.js';

export const REMEMBER_WORKER = 'remember';

/** Reads embedded turns and performs the dedup write, exactly once per turn. */
export function startRememberWorker(deps: StageDeps & { config: Config }, consumerName: string): Promise<RunningWorker> {
  const stage = new RememberStage(deps);
  return startStageWorker(REMEMBER_WORKER, deps, deps.keys.rememberStream, REMEMBER_GROUP, consumerName, (entries) => stage.handle(entries));
}
