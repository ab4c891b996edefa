/**
 * Which shards to start reading. Resharding: a child shard starts once its parent(s) are finished (read to
 * SHARD_END and checkpointed as closed) or no longer listed (expired). Pure; the shard list comes from
 * `listAllShards` and the checkpoints from `readCheckpoints`.
 */
import type { Shard } from '@aws-sdk/client-kinesis';
import { closedField } from './shard-checkpoints.ts';

export interface ShardStart {
  shardId: string;
  /** the checkpoint to read after (null: TRIM_HORIZON) */
  after: string | null;
}

/** Listed shards that are neither running nor closed, and whose listed parents are all closed. */
export function shardsToStart(
  shards: readonly Shard[],
  checkpoints: Readonly<Record<string, string>>,
  running: ReadonlySet<string>,
): ShardStart[] {
  const listed = new Set(shards.map((s) => s.ShardId as string));
  const closed = (id: string) => checkpoints[closedField(id)] === '1';
  const out: ShardStart[] = [];
  for (const s of shards) {
    const id = s.ShardId as string;
    if (running.has(id) || closed(id)) continue;
    const parents = [s.ParentShardId, s.AdjacentParentShardId].filter((x): x is string => !!x);
    if (parents.some((pid) => listed.has(pid) && !closed(pid))) continue;
    out.push({ shardId: id, after: checkpoints[id] ?? null });
  }
  return out;
}
