import type { ScriptGateway } from '../src/redis/scripts.js';

/**
 * Checked by the compiler only (`tsc` over test/): script parameters are named and typed, so a
 * swapped or misnamed argument is a compile error. Each line below must fail to compile.
 */
export function swappedArgumentsDoNotCompile(scripts: ScriptGateway): void {
  // @ts-expect-error the distance and an id swapped
  void scripts.mergeMemories({ survivorId: 0.01, duplicateId: 'dddddddddddd', distance: 'cccccccccccc' });
  // @ts-expect-error a memory key where the memory id goes
  void scripts.mergeMemories({ survivorKey: 'agent:mem:cccccccccccc', duplicateId: 'dddddddddddd', distance: 0.01 });
  // @ts-expect-error the token and the extension swapped
  void scripts.releaseLock({ lockKey: 'lock', token: 60_000, extendMs: 'mine' });
  // @ts-expect-error a bump carries no document
  void scripts.applyMemory({ write: { mode: 'bump', memoryId: 'aaaaaaaaaaaa', documentJson: '{}', ttlSeconds: 0 }, logDetail: {} });
  // @ts-expect-error positional arguments, as the scripts took before
  void scripts.takeToken('key', 'subject', 10, 1);
}
