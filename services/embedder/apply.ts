/**
 * The embedder's core: one batch of Kinesis records → Redis state. Both drivers (Lambda, local/ECS
 * consumer) and `drugsync dlq replay` call `applyBatch`.
 *
 * 1. Decode every record (change-event v1). Undecodable → dead letter, the rest proceeds.
 * 2. Table events: truncate → pending sweep in Redis (no delete at once, see table-state.ts); resync →
 *    recorded as pending; maintenance starts the re-sync by difference (resync.ts) where MySQL is reachable.
 * 3. Row events: grouped by NDC, ordered by source position, collapsed to the newest state of each NDC in
 *    the batch (a delete followed by an insert is just the insert; an NDC change is a delete of the old
 *    NDC and an insert of the new one, two independent NDCs).
 * 4. Newest state → upsert (eligible row, mapped by the core) or delete (deleted or ineligible row).
 * 5. `store.getMeta` first: stale ones (store already newer) are skipped before any embedding; an upsert
 *    whose text hash equals the stored one is sent without a vector (the store keeps the vector: 0 Bedrock
 *    calls); only changed texts go to the embedding service (cache + dedupe + Bedrock).
 * 6. `store.apply` (position-checked); 'needs_embedding' (a race) → embed and retry once.
 *
 * Failure classes: poison (undecodable; a text the model rejects) → dead-lettered, batch continues.
 * Transient after every retry (Bedrock still throttling) → that NDC's records are 'failed', nothing of
 * that NDC is applied, and the drivers retry from the shard's first failed record. Redis unavailable
 * (store, DLQ or table state) → the whole batch throws; nothing is dead-lettered.
 */
import { DrugsyncError, isDrugsyncError, wrapError } from '../core/errors.ts';
import { decodeChangeEvent, isRowEvent } from '../core/events.ts';
import type { ChangeEvent, RowChangeEvent, TableEvent } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import { contentHash, embeddingText, mapRow, textHash } from '../core/mapping.ts';
import type { DrugFields } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import type { DrugStore, StoreOp, UpsertOp } from '../core/drug-store.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { DeadLetterInput, DeadLetterQueue } from './dlq.ts';
import type { TableState } from './table-state.ts';
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
   * Runs the re-sync by difference for pending resyncs (needs MySQL: the local/ECS consumer). Without it a
   * pending resync waits for `drugsync resync` (the Lambda driver has no database access).
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
  text: string | null;
  th: string | null;
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
  const stats: BatchStats = emptyStats();
  stats.records = records.length;
  const results: (RecordResult | undefined)[] = new Array(records.length);
  const dead: DeadLetterInput[] = [];
  const identity = { model: deps.embeddings.model, dimensions: deps.embeddings.dimensions };
  // the table state is read while the records decode (its round trip overlaps the CPU work); a Redis
  // failure rejects it and the batch is retried as a whole
  const tableStateRead = deps.tableState.read();
  tableStateRead.catch(() => {}); // awaited below; never an unhandled rejection meanwhile

  // 1. decode
  const decoded: Decoded[] = [];
  records.forEach((record, i) => {
    try {
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
      dead.push({ record, error: err, ndc: null, pos: null, stream: deps.stream });
      setResult(results, { i, record }, null, null, 'dead_lettered', 'poison', err);
    }
  });

  // 2. table events (state read once; a Redis failure throws: the batch is retried as a whole)
  const tableState = await tableStateRead;
  let floor = maxPos(tableState.truncate?.pos ?? null, tableState.floor);
  let truncatePending = tableState.truncate !== null;
  for (const d of decoded) {
    if (isRowEvent(d.event)) continue;
    const e = d.event as TableEvent;
    stats.tableEvents++;
    if (e.type === 'commit') {
      setResult(results, d, null, e.pos, 'applied', 'tx_commit');
    } else if (e.type === 'truncate') {
      stats.truncates++;
      const isNew = await deps.tableState.recordTruncate(e, d.record.shardId, now());
      floor = maxPos(floor, e.pos);
      truncatePending = true;
      deps.log.warn('truncate recorded: documents not rewritten after it are swept once the reload settles', {
        pos: e.pos,
        shard: d.record.shardId,
        statement: e.statement,
        first_sighting: isNew,
        quiet_seconds: (deps.truncateQuietMs ?? 10_000) / 1000,
      });
      setResult(results, d, null, e.pos, 'applied', 'truncate_recorded');
    } else {
      stats.resyncs++;
      const pending = await deps.tableState.recordResync(e, d.record.shardId, now());
      deps.log.warn(
        deps.resync
          ? 'resync event recorded: the table was replaced; the re-sync by difference starts in the background'
          : 'resync event recorded as PENDING: the table was replaced; this driver has no database access, run `drugsync resync`',
        { pos: e.pos, shard: d.record.shardId, statement: e.statement, resyncs_pending: pending },
      );
      setResult(results, d, null, e.pos, 'applied', 'resync_recorded');
    }
  }

  // 3. row events: group by NDC, order by position, collapse
  const groups = new Map<string, Decoded[]>();
  for (const d of decoded) {
    if (!isRowEvent(d.event)) continue;
    stats.rowEvents++;
    const g = groups.get(d.event.ndc);
    if (g) g.push(d);
    else groups.set(d.event.ndc, [d]);
  }
  stats.ndcs = groups.size;
  const plans: Plan[] = [];
  for (const [ndc, group] of groups) {
    group.sort((a, b) => (a.event.pos < b.event.pos ? -1 : a.event.pos > b.event.pos ? 1 : a.i - b.i));
    const final = group[group.length - 1] as Plan['final'];
    for (const d of group.slice(0, -1)) {
      stats.superseded++;
      const dup = d.event.pos === final.event.pos;
      setResult(results, d, ndc, d.event.pos, 'applied', dup ? 'duplicate' : 'superseded');
    }
    const row = finalRow(final.event);
    const fields = row ? mapRow(row) : null;
    const pos = final.event.pos;
    if (fields) {
      const text = embeddingText(fields);
      const th = textHash(text, identity);
      plans.push({
        ndc,
        group,
        final,
        fields,
        text,
        th,
        op: { kind: 'upsert', ndc, pos, fields, contentHash: contentHash(fields, identity), textHash: th },
      });
    } else {
      plans.push({ ndc, group, final, fields: null, text: null, th: null, op: { kind: 'delete', ndc, pos } });
    }
  }

  // 4. truncate floor: an upsert older than a known truncate is refused (the truncate removed that row)
  for (const p of plans) {
    if (p.op?.kind === 'upsert' && floor !== null && p.op.pos < floor) {
      stats.staleRefused++;
      setResult(results, p.final, p.ndc, p.op.pos, 'applied', 'stale');
      p.op = null;
    }
  }

  // 5. optimistic: every upsert is first sent without a vector. The store's atomic check answers 'stale'
  // (a newer state is there), 'unchanged', 'fields_updated' (same text: fields merged, vector kept) or
  // 'needs_embedding' (a new document or a changed text), so the common case (a field change, a reload of
  // an unchanged row) costs one round trip and no separate bookkeeping read; only 'needs_embedding' ones
  // are embedded (together) and written again.
  const live = plans.filter((p) => p.op !== null);

  // 6. embed only the changed texts (the service deduplicates and consults the cache)
  const failPlan = (p: Plan, err: DrugsyncError) => {
    p.op = null;
    if (err.retryable) {
      // transient: nothing of this NDC is applied; drivers retry from the first failed record
      stats.failed += p.group.length;
      p.group.forEach((d, k) =>
        setResult(results, d, p.ndc, d.event.pos, 'failed', k === 0 ? 'embedding_failed' : 'blocked', err),
      );
    } else {
      // poison: the newest state goes to the dead-letter queue (it supersedes the older records)
      dead.push({
        record: p.final.record,
        error: err,
        ndc: p.ndc,
        pos: p.final.event.pos,
        stream: deps.stream,
      });
      setResult(results, p.final, p.ndc, p.final.event.pos, 'dead_lettered', 'poison', err);
    }
  };
  const embedInto = async (batch: Plan[]) => {
    if (batch.length === 0) return;
    const res = await deps.embeddings.embedTexts(batch.map((p) => p.text as string));
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
      failPlan(p, withContext(err, { ndc: p.ndc, pos: p.final.event.pos }));
    }
  };
  // 7. write (position-checked); 'needs_embedding' is embedded and written again, with its vector
  let toWrite = live;
  for (let attempt = 0; attempt < 2 && toWrite.length > 0; attempt++) {
    const out = await deps.store.apply(toWrite.map((p) => p.op as StoreOp));
    const retry: Plan[] = [];
    const writtenAt = now();
    out.forEach((r, k) => {
      const p = toWrite[k] as Plan;
      const pos = p.final.event.pos;
      switch (r.outcome) {
        case 'needs_embedding':
          if (attempt === 0) retry.push(p);
          else
            failPlan(
              p,
              new DrugsyncError('INTERNAL', 'stored text kept changing under the write; will retry', {
                context: { ndc: p.ndc, pos },
                retryable: true,
              }),
            );
          return;
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
      if (r.outcome !== 'stale') stats.latencyMs.push(Math.max(0, writtenAt - p.final.event.ts));
      setResult(results, p.final, p.ndc, pos, 'applied', r.outcome);
    });
    await embedInto(retry);
    toWrite = retry.filter((p) => p.op !== null);
  }

  // 8. dead letters (a failure here throws: nothing is lost, the batch is retried)
  stats.deadLettered = dead.length;
  if (dead.length > 0) {
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
  if (truncatePending && stats.rowEvents > 0) await deps.tableState.noteRowActivity(now());

  const sorted = [...stats.latencyMs].sort((a, b) => a - b);
  stats.latencyP50Ms = percentile(sorted, 50);
  stats.latencyP99Ms = percentile(sorted, 99);
  stats.durationMs = now() - started;
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
 * Periodic work the drivers run between batches: sweeps a pending truncate once no row event has been
 * applied for the quiet period. Safe to run from several processes at once (the sweep is idempotent).
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
