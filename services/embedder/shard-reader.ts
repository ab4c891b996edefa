/**
 * Reads one shard: its iterator (after the checkpoint: ../core/stream-record.ts `iteratorAfter`; TRIM_HORIZON without one),
 * GetRecords paced as on AWS (at most 5 calls/s per shard: ≥ MIN_CALL_GAP_MS apart; 2 MB/s per shard:
 * after a response of B bytes the next call waits B / MAX_BYTES_PER_SEC; a throttled call doubles the gap),
 * and one GetRecords ahead (`prefetch`) while the previous batch is applied. GetRecords' Limit counts records,
 * and an aggregate holds hundreds of events: the limit is sized from the events per record of the last read so a
 * read holds about READ_EVENTS_TARGET events (memory and the synchronous decode of one batch stay bounded, as
 * they were with one event per record). Records come back as events:
 * decompressed, deaggregated (an aggregate's events named `sequence:index`) and marked for the transaction
 * hold (tx-hold.ts).
 */
import {
  GetRecordsCommand,
  type GetRecordsCommandOutput,
  GetShardIteratorCommand,
  type _Record,
} from '@aws-sdk/client-kinesis';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { decodeStreamRecord, eventId, isAtOrBefore, iteratorAfter } from '../core/stream-record.ts';
import { txMark } from './tx-hold.ts';
import type { HeldRecord } from './tx-hold.ts';
import type { KinesisReader } from './consumer-types.ts';
import type { StreamRecord } from './types.ts';

export const MAX_BYTES_PER_SEC = 2 * 1024 * 1024;
export const MIN_CALL_GAP_MS = 200;
/** the longest gap a throttled shard backs off to */
export const MAX_CALL_GAP_MS = 5_000;
/** Events one GetRecords aims at: 5 calls/s × 10,000 stays above a real shard's write ceiling. */
export const READ_EVENTS_TARGET = 10_000;

/** GetRecords' Limit (records) for about READ_EVENTS_TARGET events at `eventsPerRecord`, within 1..`max`. */
export function recordLimit(max: number, eventsPerRecord: number): number {
  return Math.max(1, Math.min(max, Math.floor(READ_EVENTS_TARGET / Math.max(1, eventsPerRecord))));
}

/** The gap before the next GetRecords after a response of `bytes` (as Kinesis counts them: compressed). */
export function gapAfterRead(gapMs: number, bytes: number): number {
  const relaxed = Math.max(MIN_CALL_GAP_MS, Math.floor(gapMs / 2));
  return Math.max(relaxed, Math.ceil((bytes / MAX_BYTES_PER_SEC) * 1000));
}

/** The gap after a ProvisionedThroughputExceeded answer. */
export function gapAfterThrottle(gapMs: number): number {
  return Math.min(gapMs * 2, MAX_CALL_GAP_MS);
}

/**
 * The events of one Kinesis record, decompressed and deaggregated (../core/stream-record.ts), each marked for
 * the hold. An event of an aggregate is named `sequence:index` (its SequenceNumber here, so checkpoints and
 * dead letters name it). A record no framing reads is kept whole, as is: it is dead-lettered with its reason.
 */
export function heldRecords(r: _Record): HeldRecord[] {
  const data = r.Data ?? new Uint8Array();
  const seq = r.SequenceNumber as string;
  let events;
  try {
    events = decodeStreamRecord(data, r.PartitionKey ?? '');
  } catch {
    return [{ ...r, Data: data, tx: txMark(data) }];
  }
  return events.map((u) => ({
    ...r,
    SequenceNumber: eventId(seq, u.subSequence),
    PartitionKey: u.partitionKey,
    Data: u.json,
    tx: txMark(u.json),
  }));
}

/** A read event as `applyBatch` takes it. */
export function toStreamRecord(r: _Record, shardId: string): StreamRecord {
  return {
    sequenceNumber: r.SequenceNumber as string,
    partitionKey: r.PartitionKey ?? '',
    shardId,
    data: r.Data ?? new Uint8Array(),
    approximateArrivalTimestamp: r.ApproximateArrivalTimestamp?.getTime(),
  };
}

/** The events of a Kinesis record as `applyBatch` takes them (`dlq replay` re-reads ranges with it). */
export function streamRecordsOf(r: _Record, shardId: string): StreamRecord[] {
  return heldRecords(r).map((h) => toStreamRecord(h, shardId));
}

/** One GetRecords: records and where the shard stands, or 'retry' (expired iterator, throttled). */
export type ShardRead =
  | { kind: 'records'; records: HeldRecord[]; millisBehindLatest: number | null; more: boolean }
  | { kind: 'retry' };

type Fetched =
  { out: GetRecordsCommandOutput; limit: number; error?: undefined } | { out?: undefined; error: unknown };

export interface ShardReaderDeps {
  kinesis: KinesisReader;
  stream: string;
  shardId: string;
  limit: number;
  log: Logger;
  sleep: (ms: number) => Promise<void>;
  clock?: () => number;
}

const errName = (e: unknown): string => (e instanceof Error ? e.name : '');

export class ShardReader {
  /** null: to be opened at the checkpoint; after a read, null means SHARD_END */
  iterator: string | null = null;
  private lastCall = 0;
  private gapMs = MIN_CALL_GAP_MS;
  /** the next GetRecords, started while a batch is applied; dropped whenever the iterator is reset */
  private prefetched: { iterator: string; result: Promise<Fetched> } | null = null;
  private readonly clock: () => number;
  /** the checkpoint the iterator was opened at, until the first records past it are read */
  private skipThrough: string | null = null;
  /** events per record in the last read that had records (1 before the first): sizes the next Limit */
  private eventsPerRecord = 1;

  constructor(private readonly d: ShardReaderDeps) {
    this.clock = d.clock ?? Date.now;
  }

  /** Drops the iterator and any read ahead: the next read starts again at the checkpoint. */
  reset(): void {
    this.iterator = null;
    this.prefetched = null;
  }

  async open(after: string | null): Promise<void> {
    this.prefetched = null;
    this.skipThrough = after;
    const out = await this.d.kinesis
      .send(
        new GetShardIteratorCommand({
          StreamName: this.d.stream,
          ShardId: this.d.shardId,
          ...(after ? iteratorAfter(after) : { ShardIteratorType: 'TRIM_HORIZON' }),
        }),
      )
      .catch((e: unknown) => {
        throw this.readError(e, 'GetShardIterator');
      });
    if (!out.ShardIterator)
      throw new DrugsyncError('KINESIS_READ_FAILED', 'GetShardIterator returned no shard iterator', {
        context: { stream: this.d.stream, shard: this.d.shardId },
        retryable: true,
        remedy: 'check that the stream and the shard still exist; the shard is retried',
      });
    this.iterator = out.ShardIterator;
  }

  /** Starts the next GetRecords now, so it runs while the current batch is applied. */
  prefetch(): void {
    if (this.iterator) this.prefetched = { iterator: this.iterator, result: this.fetch(this.iterator) };
  }

  /** The next GetRecords at the current iterator (the one read ahead when there is one). */
  async read(): Promise<ShardRead> {
    const it = this.iterator as string;
    const ahead = this.prefetched?.iterator === it ? this.prefetched.result : null;
    this.prefetched = null;
    const got = await (ahead ?? this.fetch(it));
    if (got.out === undefined) return this.onReadError(got.error);
    const out = got.out;
    const bytes = (out.Records ?? []).reduce((n, r) => n + (r.Data?.length ?? 0), 0);
    this.gapMs = gapAfterRead(this.gapMs, bytes);
    this.iterator = out.NextShardIterator ?? null;
    const read = (out.Records ?? []).flatMap(heldRecords);
    if (out.Records?.length) this.eventsPerRecord = read.length / out.Records.length;
    const records = this.skipApplied(read);
    const more = (out.MillisBehindLatest ?? 0) > 0 || (out.Records ?? []).length >= got.limit;
    return { kind: 'records', records, millisBehindLatest: out.MillisBehindLatest ?? null, more };
  }

  /**
   * Drops the events at or before the checkpoint the iterator was opened at: a checkpoint inside an
   * aggregate re-reads that aggregate (AT_SEQUENCE_NUMBER), whose applied events are skipped here.
   */
  private skipApplied(records: HeldRecord[]): HeldRecord[] {
    const cp = this.skipThrough;
    if (cp === null || records.length === 0) return records;
    const kept = records.filter((r) => !isAtOrBefore(r.SequenceNumber as string, cp));
    this.skipThrough = null;
    return kept;
  }

  private onReadError(e: unknown): ShardRead {
    if (errName(e) === 'ExpiredIteratorException') {
      this.iterator = null;
      return { kind: 'retry' };
    }
    if (errName(e) === 'ProvisionedThroughputExceededException') {
      this.gapMs = gapAfterThrottle(this.gapMs);
      this.d.log.warn('GetRecords throttled: slowing down', { min_gap_ms: this.gapMs });
      return { kind: 'retry' };
    }
    throw this.readError(e, 'GetRecords');
  }

  private fetch(iterator: string): Promise<Fetched> {
    return (async () => {
      const wait = this.lastCall + this.gapMs - this.clock();
      if (wait > 0) await this.d.sleep(wait);
      this.lastCall = this.clock();
      const limit = recordLimit(this.d.limit, this.eventsPerRecord);
      const out = await this.d.kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: limit }));
      return { out, limit };
    })().catch((error: unknown) => ({ error }));
  }

  private readError(e: unknown, what: string): DrugsyncError {
    return wrapError(e, 'KINESIS_READ_FAILED', `Kinesis ${what} failed`, {
      context: { stream: this.d.stream, shard: this.d.shardId },
      retryable: true,
      remedy: 'check KINESIS_ENDPOINT / AWS credentials and that the stream exists',
    });
  }
}
