/**
 * Kinesis publishing for the binlog reader.
 *
 * - Records wait in one FIFO queue, bounded in records and bytes; the reader pauses the binlog socket while
 *   `full` and resumes below half (backpressure instead of unbounded buffering).
 * - Up to `concurrency` PutRecords calls in flight, ≤ `maxBatchRecords` events and ≤ `maxBatchBytes` each
 *   (500 and 5 MiB by default), whose batches never share a partition key; table events (`broadcast`: the
 *   sink sends them to every open shard) are sent alone with nothing else in flight (publish-batch.ts).
 * - A partially failed call is retried before anything newer of its keys is sent, with the failed records AND
 *   every later record of the same partition key from that call, so a later event for an NDC never ends up
 *   behind an earlier one (put-retry.ts).
 * - Every record has a sequence number; `ackedSeq` is the highest number up to which every record was
 *   acknowledged (calls are acknowledged in queue order). The reader advances its checkpoint from it.
 * - A record over 1 MiB is refused with KINESIS_RECORD_TOO_LARGE naming the NDC (the reader stops: a change
 *   is never dropped). Kinesis failing for longer than `maxOutageMs` fails the publisher (the reader
 *   restarts from its checkpoint with backoff).
 *
 * The sink (`KinesisSink`, kinesis-sink.ts) is what sends: KPL aggregates (aggregating-sink.ts) or one record
 * per event (`createKinesisSink`).
 */
import { DrugsyncError } from '../core/errors.ts';
import type { OutRecord } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { KinesisSink } from './kinesis-sink.ts';
import { flightOf, nextBatch } from './publish-batch.ts';
import type { BatchLimits, Flight, Queued } from './publish-batch.ts';
import { kinesisFailure, putWithRetry } from './put-retry.ts';
import type { PutContext, PutStats } from './put-retry.ts';

export const MAX_RECORD_BYTES = 1024 * 1024;
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;

export interface PublisherOptions {
  maxQueueRecords: number;
  maxQueueBytes: number;
  /** Kinesis may fail for this long before the publisher gives up (the reader then restarts). */
  maxOutageMs: number;
  /** PutRecords calls in flight at once (their batches never share a partition key). */
  concurrency: number;
  /** Events a call carries at most (default 500: one Kinesis record each; an aggregating sink packs more). */
  maxBatchRecords?: number;
  /** Bytes of events a call carries at most, before compression (default 5 MiB). */
  maxBatchBytes?: number;
  log: Logger;
  stream: string;
}

export interface PublisherStats extends PutStats {
  records: number;
  batches: number;
}

export class Publisher {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private seq = 0;
  private acked = 0;
  private sent = 0;
  private sentBytes = 0;
  private inflight: Flight[] = [];
  private closed = false;
  private waiters = new Set<() => boolean>();
  private failure: DrugsyncError | null = null;
  /** when a call last ended (acknowledged or failed), or a call started with none in flight */
  private lastOutcomeAt = Date.now();
  private failListeners: ((e: DrugsyncError) => void)[] = [];
  readonly stats: PublisherStats = {
    records: 0,
    batches: 0,
    retriedRecords: 0,
    failedCalls: 0,
    lastPutMs: 0,
    putMsTotal: 0,
  };
  /** Called after every acknowledged batch. */
  onAck: () => void = () => {};

  private readonly limits: BatchLimits;
  private readonly put: PutContext;

  constructor(
    sink: KinesisSink,
    private readonly opts: PublisherOptions,
  ) {
    this.limits = {
      maxBatchRecords: opts.maxBatchRecords ?? MAX_BATCH_RECORDS,
      maxBatchBytes: opts.maxBatchBytes ?? MAX_BATCH_BYTES,
    };
    this.put = {
      sink,
      stream: opts.stream,
      maxOutageMs: opts.maxOutageMs,
      log: opts.log,
      stats: this.stats,
      active: () => !this.closed && !this.failure,
      ended: () => {
        this.lastOutcomeAt = Date.now();
      },
      fail: (e) => this.fail(e),
    };
  }

  get enqueuedSeq(): number {
    return this.seq;
  }
  get ackedSeq(): number {
    return this.acked;
  }
  get queuedRecords(): number {
    return this.queue.length;
  }
  get bytes(): number {
    return this.queuedBytes;
  }
  get full(): boolean {
    return this.queue.length >= this.opts.maxQueueRecords || this.queuedBytes >= this.opts.maxQueueBytes;
  }
  /** Below half of both bounds: time to resume reading. */
  get drained(): boolean {
    return (
      this.queue.length <= this.opts.maxQueueRecords / 2 && this.queuedBytes <= this.opts.maxQueueBytes / 2
    );
  }
  get idle(): boolean {
    return this.acked === this.seq;
  }
  /**
   * How long calls have been in flight with no outcome from any of them (0 when none is in flight). Each
   * call ends within the client's request timeout, acknowledged or failed, so a long stall means a call that
   * will never end: the reader restarts from its checkpoint.
   */
  get stalledMs(): number {
    return this.inflight.some((f) => !f.done) ? Date.now() - this.lastOutcomeAt : 0;
  }

  onFailure(fn: (e: DrugsyncError) => void): void {
    this.failListeners.push(fn);
    if (this.failure) fn(this.failure);
  }

  /** Queues records; returns the sequence number of the last one. Throws KINESIS_RECORD_TOO_LARGE. */
  enqueue(records: OutRecord[]): number {
    if (this.failure) throw this.failure;
    for (const r of records) {
      const bytes = r.data.length + Buffer.byteLength(r.partitionKey);
      if (bytes > MAX_RECORD_BYTES) throw recordTooLarge(r, bytes, this.opts.stream);
      this.seq += 1;
      const q: Queued = { data: r.data, partitionKey: r.partitionKey, ndc: r.ndc, seq: this.seq, bytes };
      if (r.broadcast) q.broadcast = true;
      this.queue.push(q);
      this.queuedBytes += bytes;
    }
    this.pump();
    return this.seq;
  }

  /** Resolves once every queued record is acknowledged (true), or false on failure, close or timeout. */
  async waitIdle(timeoutMs: number): Promise<boolean> {
    if (this.idle) return true;
    return new Promise<boolean>((resolve) => {
      const w = (): boolean => {
        if (!this.idle && !this.failure && !this.closed) return false;
        clearTimeout(t);
        resolve(this.idle);
        return true;
      };
      const t = setTimeout(() => {
        this.waiters.delete(w);
        resolve(this.idle);
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Stops sending after the call in flight; queued records are dropped (the checkpoint covers them). */
  close(): void {
    this.closed = true;
    this.notify();
  }

  private notify(): void {
    for (const w of [...this.waiters]) if (w()) this.waiters.delete(w);
  }

  private fail(e: DrugsyncError): void {
    if (this.failure) return;
    this.failure = e;
    for (const fn of this.failListeners) fn(e);
    this.notify();
  }

  /** Sends batches while calls may start (publish-batch.ts decides what may go). */
  private pump(): void {
    while (
      !this.closed &&
      !this.failure &&
      this.inflight.length < this.opts.concurrency &&
      this.sent < this.queue.length
    ) {
      const unsentBytes = this.queuedBytes - this.sentBytes;
      const batch = nextBatch(this.queue, this.sent, unsentBytes, this.inflight, this.limits);
      if (batch.length === 0) return;
      if (!this.inflight.some((f) => !f.done)) this.lastOutcomeAt = Date.now();
      this.sent += batch.length;
      for (const r of batch) this.sentBytes += r.bytes;
      const flight = flightOf(batch);
      this.inflight.push(flight);
      putWithRetry(batch, this.put).then(
        () => {
          flight.done = true;
          this.settle();
        },
        (e: unknown) => this.fail(kinesisFailure(e, 'PutRecords', this.opts.stream)),
      );
    }
  }

  /** Acknowledges completed batches in queue order, then sends more. */
  private settle(): void {
    if (this.closed || this.failure) return;
    let advanced = false;
    while (this.inflight[0]?.done) {
      const { batch } = this.inflight.shift() as Flight;
      this.queue.splice(0, batch.length);
      this.sent -= batch.length;
      for (const r of batch) {
        this.queuedBytes -= r.bytes;
        this.sentBytes -= r.bytes;
      }
      this.acked = (batch[batch.length - 1] as Queued).seq;
      this.stats.records += batch.length;
      this.stats.batches += 1;
      advanced = true;
    }
    if (advanced) {
      this.onAck();
      this.notify();
    }
    this.pump();
  }
}

function recordTooLarge(r: OutRecord, bytes: number, stream: string): DrugsyncError {
  return new DrugsyncError(
    'KINESIS_RECORD_TOO_LARGE',
    `change event for NDC ${r.ndc ?? '(table event)'} is ${bytes} bytes, over the Kinesis record limit of ${MAX_RECORD_BYTES}`,
    {
      context: { ndc: r.ndc ?? undefined, bytes, stream },
      remedy:
        'the row image is larger than Kinesis accepts: shrink the oversized column values in MySQL; ' +
        'the reader stops here (it never skips a change) and resumes from its checkpoint once fixed',
    },
  );
}
