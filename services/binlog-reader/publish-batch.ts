/**
 * How the publisher (publisher.ts) forms its next PutRecords batch from the records not yet sent, beside the
 * calls in flight. The rules that keep "the last record of a key is its newest" with several calls in flight:
 * - no batch shares a partition key (an NDC) with a batch in flight, so a retried record is never overtaken
 *   by a later one of its key;
 * - table events (`broadcast`: the sink sends them to every open shard) travel alone, with nothing else in
 *   flight: rows before them are acknowledged first and rows after them are sent after, on every shard;
 * - with a call in flight only a full batch goes out (no trickle of tiny calls); idle, anything goes.
 */
import type { OutRecord } from '../core/events.ts';

/** A queued record: its sequence number (the publisher's `enqueuedSeq` / `ackedSeq`) and size. */
export interface Queued extends OutRecord {
  seq: number;
  bytes: number;
}

/** A PutRecords call in flight: its records, their keys, whether it carries table events, whether it ended. */
export interface Flight {
  batch: Queued[];
  keys: Set<string>;
  barrier: boolean;
  done: boolean;
}

export interface BatchLimits {
  maxBatchRecords: number;
  maxBatchBytes: number;
}

export function flightOf(batch: Queued[]): Flight {
  return {
    batch,
    keys: new Set(batch.map((r) => r.partitionKey)),
    barrier: batch.some((r) => r.broadcast === true),
    done: false,
  };
}

/**
 * The next batch from the records not yet sent (`queue[sent…]`, `unsentBytes` of them): <= `maxBatchRecords`
 * records, <= `maxBatchBytes`, and no partition key that a batch in flight also carries (two calls in flight
 * never hold records of the same NDC, so a retry can never let a later record of a key overtake an earlier
 * one). Empty: nothing may go now.
 */
export function nextBatch(
  queue: readonly Queued[],
  sent: number,
  unsentBytes: number,
  inflight: readonly Flight[],
  limits: BatchLimits,
): Queued[] {
  // Table events (ExplicitHashKey, one per shard) travel alone, with nothing else in flight: rows
  // before them are acknowledged first and rows after them are sent after, on every shard.
  if (inflight.some((f) => f.barrier)) return [];
  const first = queue[sent];
  if (!first) return [];
  if (first.broadcast) {
    if (inflight.length > 0) return [];
    const batch: Queued[] = [];
    for (let i = sent; i < queue.length && batch.length < limits.maxBatchRecords; i++) {
      const r = queue[i] as Queued;
      if (!r.broadcast) break;
      batch.push(r);
    }
    return batch;
  }
  // With a call in flight, only a full batch goes out (no trickle of tiny calls); idle, anything goes.
  if (
    inflight.length > 0 &&
    queue.length - sent < limits.maxBatchRecords &&
    unsentBytes < limits.maxBatchBytes
  )
    return [];
  const busy = new Set<string>();
  for (const f of inflight) for (const k of f.keys) busy.add(k);
  const batch: Queued[] = [];
  let bytes = 0;
  for (let i = sent; i < queue.length; i++) {
    const r = queue[i] as Queued;
    if (r.broadcast) break;
    if (batch.length >= limits.maxBatchRecords || bytes + r.bytes > limits.maxBatchBytes) break;
    if (busy.size && busy.has(r.partitionKey)) break;
    batch.push(r);
    bytes += r.bytes;
  }
  return batch;
}
