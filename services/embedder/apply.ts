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
 */
import { DrugsyncError, isDrugsyncError, wrapError } from '../core/errors.ts';
import { decodeChangeEvent, isRowEvent } from '../core/events.ts';
import { decodeStreamRecord, framingOf } from '../core/stream-record.ts';
import type { ChangeEvent, RowChangeEvent, TableEvent } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import { embeddingText, mapRow } from '../core/mapping.ts';
import type { EmbeddingIdentity } from '../core/mapping.ts';
import type { DrugFields } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import { upsertOp } from '../core/drug-store.ts';
import type { ApplyOutcome, DrugStore, StoreOp, UpsertOp } from '../core/drug-store.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { DeadLetterInput, DeadLetterQueue } from './dlq.ts';
import type { TableState, TableStateSnapshot } from './table-state.ts';
import type { ResyncRunner } from './resync.ts';
import type { SourceProbe } from './source-probe.ts';
import type { SweepOptions } from '../core/redis/drug-store.ts';
import { emptyStats, percentile } from './types.ts';
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

interface Decoded {
  i: number;
  record: StreamRecord;
  event: ChangeEvent;
}

interface Plan {
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
type WriteOutcome = Exclude<ApplyOutcome, 'needs_embedding'>;

/** One applyBatch call's working state: what every step reads and records into. */
interface BatchRun {
  deps: ApplyDeps;
  now: () => number;
  stats: BatchStats;
  results: (RecordResult | undefined)[];
  dead: DeadLetterInput[];
}

function setResult(
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

/** The state an event leaves its NDC in: the after image when it is a row of this NDC, else gone. */
function finalRow(e: RowChangeEvent) {
  if (e.type === 'delete' || !e.after) return null;
  const afterNdc = e.after.NDC;
  if (afterNdc === null || afterNdc === undefined || String(afterNdc) !== e.ndc) return null;
  return e.after;
}

const maxPos = (a: SourcePosition | null, b: SourcePosition | null): SourcePosition | null =>
  a === null ? b : b === null ? a : a > b ? a : b;

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

/**
 * A record the shard reader could not unpack reaches the batch whole, as read: an aggregate (zstd or KPL) or
 * bytes of no known framing. Reading it again here throws STREAM_RECORD_INVALID with the framing's reason, so
 * the dead letter says why (not just "not valid JSON").
 */
function assertUnframed(record: StreamRecord): void {
  const framing = framingOf(record.data);
  if (framing === 'kpl+zstd' || framing === 'kpl' || framing === null)
    decodeStreamRecord(record.data, record.partitionKey);
}

/** 1. Decodes every record; an undecodable one is dead-lettered as poison, with its reason. */
function decodeRecords(run: BatchRun, records: readonly StreamRecord[]): Decoded[] {
  const decoded: Decoded[] = [];
  records.forEach((record, i) => {
    try {
      assertUnframed(record);
      const event = decodeChangeEvent(record.data, {
        shard: record.shardId,
        sequence_number: record.sequenceNumber,
      });
      decoded.push({ i, record, event });
    } catch (e) {
      const err = isDrugsyncError(e)
        ? e
        : wrapError(e, 'EVENT_DECODE_FAILED', 'change event could not be decoded', {
            context: { shard: record.shardId, sequence_number: record.sequenceNumber },
          });
      run.dead.push({ record, error: err, ndc: null, pos: null, stream: run.deps.stream });
      setResult(run.results, { i, record }, null, null, 'dead_lettered', 'poison', err);
    }
  });
  return decoded;
}

/**
 * 2. Records the table events (a Redis failure throws: the batch is retried as a whole). Returns the
 * truncate floor (no upsert older than it is written) and whether a truncate is pending.
 */
async function recordTableEvents(
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

/** 3. Row events grouped by NDC, each group ordered by position (record order breaks ties). */
function groupByNdc(run: BatchRun, decoded: readonly Decoded[]): Map<string, Decoded[]> {
  const groups = new Map<string, Decoded[]>();
  for (const d of decoded) {
    if (!isRowEvent(d.event)) continue;
    run.stats.rowEvents++;
    const g = groups.get(d.event.ndc);
    if (g) g.push(d);
    else groups.set(d.event.ndc, [d]);
  }
  for (const group of groups.values()) {
    group.sort((a, b) => (a.event.pos < b.event.pos ? -1 : a.event.pos > b.event.pos ? 1 : a.i - b.i));
  }
  run.stats.ndcs = groups.size;
  return groups;
}

/** 3–4. One plan per NDC: its newest state as an upsert or a delete; older records are superseded. */
function planRowEvents(run: BatchRun, decoded: readonly Decoded[], identity: EmbeddingIdentity): Plan[] {
  const plans: Plan[] = [];
  for (const [ndc, group] of groupByNdc(run, decoded)) {
    const final = group[group.length - 1] as Plan['final'];
    for (const d of group.slice(0, -1)) {
      run.stats.superseded++;
      const dup = d.event.pos === final.event.pos;
      setResult(run.results, d, ndc, d.event.pos, 'applied', dup ? 'duplicate' : 'superseded');
    }
    const row = finalRow(final.event);
    const fields = row ? mapRow(row) : null;
    const pos = final.event.pos;
    plans.push(
      fields
        ? {
            ndc,
            group,
            final,
            fields,
            text: embeddingText(fields),
            op: upsertOp({ ndc, pos, fields, identity }),
          }
        : { ndc, group, final, fields: null, text: null, op: { kind: 'delete', ndc, pos } },
    );
  }
  return plans;
}

/** 4. An upsert older than a known truncate is refused (the truncate removed that row). */
function refuseBelowFloor(run: BatchRun, plans: readonly Plan[], floor: SourcePosition | null): void {
  if (floor === null) return;
  for (const p of plans) {
    if (p.op?.kind === 'upsert' && p.op.pos < floor) {
      run.stats.staleRefused++;
      setResult(run.results, p.final, p.ndc, p.op.pos, 'applied', 'stale');
      p.op = null;
    }
  }
}

/** 5. Writes the plans (position-checked); 'needs_embedding' ones are embedded and written again, once. */
async function writePlans(run: BatchRun, live: Plan[]): Promise<void> {
  let toWrite = live;
  for (let attempt = 0; attempt < 2 && toWrite.length > 0; attempt++) {
    const out = await run.deps.store.apply(toWrite.map((p) => p.op as StoreOp));
    const retry: Plan[] = [];
    const writtenAt = run.now();
    out.forEach((r, k) => {
      const p = toWrite[k] as Plan;
      if (r.outcome !== 'needs_embedding') recordOutcome(run, p, r.outcome, writtenAt);
      else if (attempt === 0) retry.push(p);
      else
        failPlan(
          run,
          p,
          new DrugsyncError('INTERNAL', 'stored text kept changing under the write; will retry', {
            context: { ndc: p.ndc, pos: p.final.event.pos },
            retryable: true,
          }),
        );
    });
    await embedInto(run, retry);
    toWrite = retry.filter((p) => p.op !== null);
  }
}

/** Counts a write's outcome and records it as the newest record's result. */
function recordOutcome(run: BatchRun, p: Plan, outcome: WriteOutcome, writtenAt: number): void {
  const { stats } = run;
  switch (outcome) {
    case 'stale':
      stats.staleRefused++;
      break;
    case 'written':
      stats.upserted++;
      break;
    case 'fields_updated':
      stats.fieldsUpdated++;
      break;
    case 'unchanged':
      stats.unchanged++;
      break;
    case 'deleted':
    case 'tombstoned':
      stats.deleted++;
      break;
  }
  if (outcome !== 'stale') stats.latencyMs.push(Math.max(0, writtenAt - p.final.event.ts));
  setResult(run.results, p.final, p.ndc, p.final.event.pos, 'applied', outcome);
}

/** Embeds the plans' texts into their upserts; a text without a vector fails its plan. */
async function embedInto(run: BatchRun, batch: Plan[]): Promise<void> {
  if (batch.length === 0) return;
  const { stats } = run;
  const res = await run.deps.embeddings.embedTexts(batch.map((p) => p.text as string));
  stats.embeddingTexts += res.stats.texts;
  stats.embeddingsRequested += res.stats.requests;
  stats.cacheHits += res.stats.cacheHits;
  for (const p of batch) {
    const v = res.vectors.get(p.text as string);
    if (v) {
      (p.op as UpsertOp).embedding = v;
      continue;
    }
    const err =
      res.failures.get(p.text as string) ??
      new DrugsyncError('EMBEDDING_FAILED', 'embedding service returned no vector and no reason', {
        context: { ndc: p.ndc, pos: p.final.event.pos },
      });
    failPlan(run, p, withContext(err, { ndc: p.ndc, pos: p.final.event.pos }));
  }
}

/**
 * A plan that cannot be written. Transient: nothing of this NDC is applied (the consumer retries from the
 * first failed record). Poison: the newest state goes to the dead-letter queue (it supersedes the older
 * records).
 */
function failPlan(run: BatchRun, p: Plan, err: DrugsyncError): void {
  p.op = null;
  if (err.retryable) {
    run.stats.failed += p.group.length;
    p.group.forEach((d, k) =>
      setResult(run.results, d, p.ndc, d.event.pos, 'failed', k === 0 ? 'embedding_failed' : 'blocked', err),
    );
    return;
  }
  run.dead.push({
    record: p.final.record,
    error: err,
    ndc: p.ndc,
    pos: p.final.event.pos,
    stream: run.deps.stream,
  });
  setResult(run.results, p.final, p.ndc, p.final.event.pos, 'dead_lettered', 'poison', err);
}

/** 6. Dead letters (a failure here throws: nothing is lost, the batch is retried). */
async function putDeadLetters(run: BatchRun): Promise<void> {
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
function finishBatch(run: BatchRun, records: readonly StreamRecord[], started: number): BatchResult {
  const { stats, results } = run;
  const sorted = [...stats.latencyMs].sort((a, b) => a - b);
  stats.latencyP50Ms = percentile(sorted, 50);
  stats.latencyP99Ms = percentile(sorted, 99);
  stats.durationMs = run.now() - started;
  const missing = results.findIndex((r) => r === undefined);
  if (missing >= 0 && missing < records.length) {
    throw new DrugsyncError('INTERNAL', 'applyBatch left a record without an outcome', {
      context: { sequence_number: records[missing]?.sequenceNumber, shard: records[missing]?.shardId },
    });
  }
  return { results: results as RecordResult[], stats };
}

function withContext(e: DrugsyncError, ctx: Record<string, string>): DrugsyncError {
  for (const [k, v] of Object.entries(ctx)) if (e.context[k] === undefined) e.context[k] = v;
  return e;
}

/** For a shard's records in order: the first record that was not applied and must be retried. */
export function firstFailurePerShard(results: readonly RecordResult[]): Map<string, RecordResult> {
  const out = new Map<string, RecordResult>();
  for (const r of results) if (r.status === 'failed' && !out.has(r.shardId)) out.set(r.shardId, r);
  return out;
}

export interface MaintenanceResult {
  truncatePending: SourcePosition | null;
  swept: SourcePosition | null;
  sweepResult?: unknown;
  resyncsPending: number;
}

/**
 * Periodic work the consumer runs between batches: starts pending re-syncs, and sweeps a pending truncate
 * once no row event has been applied for the quiet period. Safe to run from several processes at once (the
 * sweep is idempotent).
 */
export async function runMaintenance(deps: ApplyDeps): Promise<MaintenanceResult> {
  const now = (deps.now ?? Date.now)();
  const quiet = deps.truncateQuietMs ?? 10_000;
  const st = await deps.tableState.read();
  const t = st.truncate;
  const base: MaintenanceResult = {
    truncatePending: t?.pos ?? null,
    swept: null,
    resyncsPending: st.resyncs.length,
  };
  if (st.resyncs.length > 0) deps.resync?.kick(st.resyncs);
  if (!t) return base;
  const quietFor = now - Math.max(t.seenAt, t.lastRowAt);
  if (quietFor < quiet) return base;
  if (typeof deps.store.sweepOlderThan !== 'function') {
    deps.log.warn('truncate pending but this store cannot sweep yet; documents older than it stay', {
      pos: t.pos,
    });
    return base;
  }
  const source = deps.source;
  if (source && !(await source.hasRows())) {
    const waited = now - t.seenAt;
    const maxWait = deps.truncateEmptyWaitMs ?? 600_000;
    if (waited < maxWait) return base; // the reload has not committed anything yet: keep everything
    deps.log.warn('the table is still empty after the truncate: sweeping every document older than it', {
      pos: t.pos,
      waited_ms: waited,
    });
  }
  const sweepResult = await deps.store.sweepOlderThan(
    t.pos,
    source ? { inSource: (ndcs) => source.present(ndcs) } : {},
  );
  await deps.tableState.completeTruncate(t.pos);
  deps.log.info('truncate settled: swept documents not rewritten since it', {
    pos: t.pos,
    quiet_ms: quietFor,
    shards_seen: t.shards,
    result: sweepResult,
  });
  return { truncatePending: null, swept: t.pos, sweepResult, resyncsPending: st.resyncs.length };
}
