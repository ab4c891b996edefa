/**
 * Steps 1, 3 and 4 of `applyBatch` (apply.ts): from a batch's records to one plan per NDC.
 * Every record is decoded (an undecodable one is dead-lettered as poison); the row events are grouped by NDC,
 * ordered by source position and collapsed to the newest state of each NDC, which becomes an upsert (an
 * eligible row, mapped by the core) or a delete; an upsert older than a known truncate is refused.
 */
import { isDrugsyncError, wrapError } from '../core/errors.ts';
import { decodeChangeEvent, isRowEvent } from '../core/events.ts';
import type { RowChangeEvent } from '../core/events.ts';
import { decodeStreamRecord, framingOf } from '../core/stream-record.ts';
import { embeddingText, mapRow } from '../core/mapping.ts';
import type { EmbeddingIdentity } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import { upsertOp } from '../core/drug-store-contract.ts';
import { setResult } from './apply-run.ts';
import type { BatchRun, Decoded, Plan } from './apply-run.ts';
import type { StreamRecord } from './types.ts';

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
export function decodeRecords(run: BatchRun, records: readonly StreamRecord[]): Decoded[] {
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

/** The state an event leaves its NDC in: the after image when it is a row of this NDC, else gone. */
function finalRow(e: RowChangeEvent) {
  if (e.type === 'delete' || !e.after) return null;
  const afterNdc = e.after.NDC;
  if (afterNdc === null || afterNdc === undefined || String(afterNdc) !== e.ndc) return null;
  return e.after;
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
export function planRowEvents(
  run: BatchRun,
  decoded: readonly Decoded[],
  identity: EmbeddingIdentity,
): Plan[] {
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
export function refuseBelowFloor(run: BatchRun, plans: readonly Plan[], floor: SourcePosition | null): void {
  if (floor === null) return;
  for (const p of plans) {
    if (p.op?.kind === 'upsert' && p.op.pos < floor) {
      run.stats.staleRefused++;
      setResult(run.results, p.final, p.ndc, p.op.pos, 'applied', 'stale');
      p.op = null;
    }
  }
}
