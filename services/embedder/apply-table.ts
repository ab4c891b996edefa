/**
 * Step 2 of `applyBatch` (apply.ts): a batch's table events, recorded in the table state (table-state.ts).
 * A truncate becomes a pending sweep (nothing is deleted at once) and raises the floor below which no upsert
 * is written; a resync is recorded as pending (maintenance.ts starts it); a commit only ends a transaction the
 * consumer may have held. A Redis failure throws: the batch is retried as a whole.
 */
import { isRowEvent } from '../core/events.ts';
import type { TableEvent } from '../core/events.ts';
import type { SourcePosition } from '../core/position.ts';
import { setResult } from './apply-run.ts';
import type { BatchRun, Decoded } from './apply-run.ts';
import type { TableStateSnapshot } from './table-state.ts';

const maxPos = (a: SourcePosition | null, b: SourcePosition | null): SourcePosition | null =>
  a === null ? b : b === null ? a : a > b ? a : b;

/**
 * 2. Records the table events. Returns the truncate floor (no upsert older than it is written) and whether a
 * truncate is pending.
 */
export async function recordTableEvents(
  run: BatchRun,
  decoded: readonly Decoded[],
  state: TableStateSnapshot,
): Promise<{ floor: SourcePosition | null; truncatePending: boolean }> {
  let floor = maxPos(state.truncate?.pos ?? null, state.floor);
  let truncatePending = state.truncate !== null;
  for (const d of decoded) {
    if (isRowEvent(d.event)) continue;
    const e = d.event as TableEvent;
    run.stats.tableEvents++;
    if (e.type === 'commit') {
      setResult(run.results, d, null, e.pos, 'applied', 'tx_commit');
    } else if (e.type === 'truncate') {
      await recordTruncate(run, d, e);
      floor = maxPos(floor, e.pos);
      truncatePending = true;
    } else {
      await recordResync(run, d, e);
    }
  }
  return { floor, truncatePending };
}

async function recordTruncate(run: BatchRun, d: Decoded, e: TableEvent): Promise<void> {
  const { deps } = run;
  run.stats.truncates++;
  const isNew = await deps.tableState.recordTruncate(e, d.record.shardId, run.now());
  deps.log.warn('truncate recorded: documents not rewritten after it are swept once the reload settles', {
    pos: e.pos,
    shard: d.record.shardId,
    statement: e.statement,
    first_sighting: isNew,
    quiet_seconds: (deps.truncateQuietMs ?? 10_000) / 1000,
  });
  setResult(run.results, d, null, e.pos, 'applied', 'truncate_recorded');
}

async function recordResync(run: BatchRun, d: Decoded, e: TableEvent): Promise<void> {
  const { deps } = run;
  run.stats.resyncs++;
  const pending = await deps.tableState.recordResync(e, d.record.shardId, run.now());
  deps.log.warn(
    deps.resync
      ? 'resync event recorded: the table was replaced; the re-sync by difference starts in the background'
      : 'resync event recorded as PENDING: the table was replaced; this embedder has no database access, run `drugsync resync`',
    { pos: e.pos, shard: d.record.shardId, statement: e.statement, resyncs_pending: pending },
  );
  setResult(run.results, d, null, e.pos, 'applied', 'resync_recorded');
}
