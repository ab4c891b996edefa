/**
 * What `applyBatch` (apply.ts) works with: its dependencies (`ApplyDeps`, also `runMaintenance`'s), one call's
 * working state (`BatchRun`: the records decoded, the plan per NDC, every record's outcome, the dead letters)
 * and how a call ends: dead letters put (step 6), latency percentiles, a check that every record has an
 * outcome. The steps in between (apply-plan.ts, apply-table.ts, apply-write.ts) record into a `BatchRun`.
 */
import { DrugsyncError } from '../core/errors.ts';
import type { ChangeEvent, RowChangeEvent } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { DrugFields } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import type { ApplyOutcome, DrugStore, StoreOp } from '../core/drug-store-contract.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { SweepOptions } from '../core/redis/drug-store.ts';
import type { DeadLetterInput, DeadLetterQueue } from './dlq.ts';
import type { TableState } from './table-state.ts';
import type { ResyncRunner } from './resync.ts';
import type { SourceProbe } from './source-probe.ts';
import { percentiles } from '../core/percentiles.ts';
import type { BatchResult, BatchStats, RecordDetail, RecordResult, StreamRecord } from './types.ts';

/** The store may offer a sweep (issue 9); without it a pending truncate stays pending, with a warning. */
export interface SweepCapable {
  sweepOlderThan(pos: SourcePosition, opts?: SweepOptions): Promise<unknown>;
}

export interface ApplyDeps {
  store: DrugStore & Partial<SweepCapable>;
  embeddings: EmbeddingService;
  dlq: DeadLetterQueue;
  tableState: TableState;
  log: Logger;
  /** Kinesis stream name, recorded with dead letters. */
  stream?: string | undefined;
  /** Quiet period after the last row event before a pending truncate is swept (default 10 s). */
  truncateQuietMs?: number | undefined;
  /** Clock (epoch ms); tests pass their own. */
  now?: (() => number) | undefined;
  /**
   * Runs the re-sync by difference for pending resyncs (needs MySQL). Without it (RESYNC_AUTO=0) a pending
   * resync waits for `drugsync resync`.
   */
  resync?: ResyncRunner | undefined;
  /**
   * Read access to the source table (local/ECS consumer): the truncate sweep keeps documents whose NDC is
   * still in the table and waits while the table is empty (a reload whose first transaction has not
   * committed yet), up to `truncateEmptyWaitMs`.
   */
  source?: SourceProbe | undefined;
  truncateEmptyWaitMs?: number | undefined;
}

/** A record that decoded, with its index in the batch. */
export interface Decoded {
  i: number;
  record: StreamRecord;
  event: ChangeEvent;
}

/** What one NDC's records come to: the newest state as one store operation. */
export interface Plan {
  ndc: string;
  /** the group's records, oldest first; the last one is the newest state */
  group: Decoded[];
  final: Decoded & { event: RowChangeEvent };
  fields: DrugFields | null;
  op: StoreOp | null;
  /** the upsert's embedding text (null: a delete) */
  text: string | null;
}

/** What a position-checked write ends in, once embedded. */
export type WriteOutcome = Exclude<ApplyOutcome, 'needs_embedding'>;

/** One applyBatch call's working state: what every step reads and records into. */
export interface BatchRun {
  deps: ApplyDeps;
  now: () => number;
  stats: BatchStats;
  results: (RecordResult | undefined)[];
  dead: DeadLetterInput[];
}

/** Records the outcome of the record at `d.i`. */
export function setResult(
  results: (RecordResult | undefined)[],
  d: { i: number; record: StreamRecord },
  ndc: string | null,
  pos: SourcePosition | null,
  status: RecordResult['status'],
  detail: RecordDetail,
  error?: DrugsyncError,
): void {
  results[d.i] = {
    sequenceNumber: d.record.sequenceNumber,
    shardId: d.record.shardId,
    ndc,
    pos,
    status,
    detail,
    ...(error ? { error } : {}),
  };
}

/** 6. Dead letters (a failure here throws: nothing is lost, the batch is retried). */
export async function putDeadLetters(run: BatchRun): Promise<void> {
  const { dead, deps } = run;
  run.stats.deadLettered = dead.length;
  if (dead.length === 0) return;
  await deps.dlq.put(dead);
  for (const d of dead) {
    deps.log.error('record dead-lettered', {
      shard: d.record.shardId,
      sequence_number: d.record.sequenceNumber,
      ndc: d.ndc,
      pos: d.pos,
      error: d.error,
    });
  }
}

/** Latency percentiles and duration; every record must have an outcome. */
export function finishBatch(run: BatchRun, records: readonly StreamRecord[], started: number): BatchResult {
  const { stats, results } = run;
  [stats.latencyP50Ms, stats.latencyP99Ms] = percentiles(stats.latencyMs, [50, 99]);
  stats.durationMs = run.now() - started;
  const missing = results.findIndex((r) => r === undefined);
  if (missing >= 0 && missing < records.length) {
    throw new DrugsyncError('INTERNAL', 'applyBatch left a record without an outcome', {
      context: { sequence_number: records[missing]?.sequenceNumber, shard: records[missing]?.shardId },
    });
  }
  return { results: results as RecordResult[], stats };
}

/** For a shard's records in order: the first record that was not applied and must be retried. */
export function firstFailurePerShard(results: readonly RecordResult[]): Map<string, RecordResult> {
  const out = new Map<string, RecordResult>();
  for (const r of results) if (r.status === 'failed' && !out.has(r.shardId)) out.set(r.shardId, r);
  return out;
}
