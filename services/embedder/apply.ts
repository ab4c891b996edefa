/**
 * The embedder's core: one batch of Kinesis records → Redis state. The consumer (local and ECS) and
 * `drugsync dlq replay` call `applyBatch`.
 *
 * 1. Decode every record (change-event v1). Undecodable → dead letter, the rest proceeds.
 * 2. Table events: truncate → pending sweep in Redis (no delete at once, see table-state.ts); resync →
 *    recorded as pending; maintenance starts the re-sync by difference (resync.ts) where MySQL is reachable;
 *    commit → nothing to apply (it ends a transaction the consumer may have held).
 * 3. Row events: grouped by NDC, ordered by source position, collapsed to the newest state of each NDC in
 *    the batch (a delete followed by an insert is just the insert; an NDC change is a delete of the old
 *    NDC and an insert of the new one, two independent NDCs).
 * 4. Newest state → upsert (eligible row, mapped by the core) or delete (deleted or ineligible row); an
 *    upsert older than a known truncate is refused as stale.
 * 5. Optimistic write: every upsert is first sent without a vector. The store's atomic, position-checked
 *    apply answers 'stale' (a newer state is there), 'unchanged', 'fields_updated' (same text: fields
 *    merged, vector kept) or 'needs_embedding' (a new document or a changed text), so the common case costs
 *    one round trip and no Bedrock call; only 'needs_embedding' ones are embedded (together: the embedding
 *    service deduplicates and consults its cache) and written again, once.
 *
 * Failure classes: poison (undecodable; a text the model rejects) → dead-lettered, batch continues.
 * Transient after every retry (Bedrock still throttling) → that NDC's records are 'failed', nothing of
 * that NDC is applied, and the consumer retries from the shard's first failed record. Redis unavailable
 * (store, DLQ or table state) → the whole batch throws; nothing is dead-lettered.
 *
 * The steps live beside this file: apply-plan.ts (1, 3, 4: decode, group by NDC, plan), apply-table.ts (2),
 * apply-write.ts (5), apply-run.ts (the dependencies, the batch's working state, 6: dead letters and the
 * result). Table events take effect in maintenance.ts (`runMaintenance`, between batches).
 */
import { decodeRecords, planRowEvents, refuseBelowFloor } from './apply-plan.ts';
import { finishBatch, putDeadLetters } from './apply-run.ts';
import type { ApplyDeps, BatchRun } from './apply-run.ts';
import { recordTableEvents } from './apply-table.ts';
import { writePlans } from './apply-write.ts';
import { emptyStats } from './types.ts';
import type { BatchResult, StreamRecord } from './types.ts';

/** One batch of records → Redis state (steps 1–6 above); every record ends with an outcome. */
export async function applyBatch(records: readonly StreamRecord[], deps: ApplyDeps): Promise<BatchResult> {
  const now = deps.now ?? Date.now;
  const started = now();
  const run: BatchRun = { deps, now, stats: emptyStats(), results: new Array(records.length), dead: [] };
  run.stats.records = records.length;
  // the table state is read while the records decode (its round trip overlaps the CPU work); a Redis
  // failure rejects it and the batch is retried as a whole
  const tableStateRead = deps.tableState.read();
  tableStateRead.catch(() => {}); // awaited below; never an unhandled rejection meanwhile
  const decoded = decodeRecords(run, records);
  const tableState = await tableStateRead;
  const { floor, truncatePending } = await recordTableEvents(run, decoded, tableState);
  const identity = { model: deps.embeddings.model, dimensions: deps.embeddings.dimensions };
  const plans = planRowEvents(run, decoded, identity);
  refuseBelowFloor(run, plans, floor);
  await writePlans(
    run,
    plans.filter((p) => p.op !== null),
  );
  await putDeadLetters(run);
  if (truncatePending && run.stats.rowEvents > 0) await deps.tableState.noteRowActivity(now());
  return finishBatch(run, records, started);
}
