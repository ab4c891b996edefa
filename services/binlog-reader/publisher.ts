/**
 * Kinesis publishing for the binlog reader.
 *
 * - Records wait in one FIFO queue, bounded in records and bytes; the reader pauses the binlog socket while
 *   `full` and resumes below half (backpressure instead of unbounded buffering).
 * - Up to `concurrency` PutRecords calls in flight, ≤ `maxBatchRecords` events and ≤ `maxBatchBytes` each
 *   (500 and 5 MiB by default), whose batches never share a partition key; table events (`broadcast`: the
 *   sink sends them to every open shard) are sent alone with nothing else in flight.
 *   A partially failed call is retried before anything newer of its keys is sent, with the failed records AND every later record of the same partition
 *   key from that call (Kinesis may have accepted a later record of a key whose earlier one failed; sending
 *   both again restores "the last record of a key is its newest"), so a later event for an NDC never ends
 *   up behind an earlier one.
 * - Every record has a sequence number; `ackedSeq` is the highest number up to which every record was
 *   acknowledged. The reader advances its checkpoint from it.
 * - A record over 1 MiB is refused with KINESIS_RECORD_TOO_LARGE naming the NDC (the reader stops: a change
 *   is never dropped). Kinesis failing for longer than `maxOutageMs` fails the publisher (the reader
 *   restarts from its checkpoint with backoff).
 */
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { backoffDelay, sleep } from '../core/backoff.ts';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { RecordCompressor } from '../core/compressor.ts';
import type { OutRecord } from '../core/events.ts';
import { isOpenShard, listAllShards } from '../core/kinesis-shards.ts';
import type { Logger } from '../core/log.ts';

export const MAX_RECORD_BYTES = 1024 * 1024;
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;
/** Waits between PutRecords retries: 100 ms doubling to 5 s, each between half and all of that. */
const PUT_RETRY_BACKOFF = { baseMs: 100, maxMs: 5_000, jitter: 'half' } as const;

export interface PutResult {
  /** indexes (into the request) of the records Kinesis refused, with its error code */
  failed: { index: number; code: string; message: string }[];
}

/** The subset of Kinesis the publisher needs. */
export interface KinesisSink {
  /** Sends the records (a `broadcast` one to every open shard); answers which request indexes failed. */
  putRecords(records: OutRecord[]): Promise<PutResult>;
  /** Releases what the sink holds (its compression worker). */
  close?(): Promise<void>;
}

/**
 * One Kinesis record per event (`KINESIS_AGGREGATION=false`; the format before aggregation), gzip-compressed
 * when a compressor is given. A broadcast record goes to every open shard, listed for that call
 * (ExplicitHashKey = the shard's StartingHashKey); it fails when any of its copies fails.
 */
export function createKinesisSink(
  kinesis: KinesisClient,
  stream: string,
  opts: { compress?: RecordCompressor | null } = {},
): KinesisSink {
  const compressor = opts.compress ?? null;
  return {
    async close() {
      await compressor?.close();
    },
    async putRecords(records) {
      const keys = records.some((r) => r.broadcast) ? await openShardHashKeys(kinesis, stream) : [];
      const sent: { r: OutRecord; index: number; explicitHashKey?: string }[] = records.flatMap((r, index) =>
        r.broadcast ? keys.map((k) => ({ r, index, explicitHashKey: k })) : [{ r, index }],
      );
      // compressed here, per call, a batch at a time (on a worker thread: see services/core/compressor.ts)
      const data = compressor ? await compressor.compress(sent.map((x) => x.r.data)) : null;
      const Records: PutRecordsRequestEntry[] = sent.map((x, i) => ({
        Data: data ? data[i] : x.r.data,
        PartitionKey: x.r.partitionKey,
        ...(x.explicitHashKey ? { ExplicitHashKey: x.explicitHashKey } : {}),
      }));
      const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records }));
      const failed = new Map<number, PutResult['failed'][number]>();
      if ((out.FailedRecordCount ?? 0) > 0) {
        (out.Records ?? []).forEach((r, i) => {
          const index = (sent[i] as { index: number }).index;
          if (r.ErrorCode) failed.set(index, { index, code: r.ErrorCode, message: r.ErrorMessage ?? '' });
        });
      }
      return { failed: [...failed.values()] };
    },
  };
}

/** StartingHashKey of every open shard. */
async function openShardHashKeys(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const shards = await listAllShards(kinesis, stream);
  return shards.flatMap((s) =>
    isOpenShard(s) && s.HashKeyRange?.StartingHashKey ? [s.HashKeyRange.StartingHashKey] : [],
  );
}

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

export interface PublisherStats {
  records: number;
  batches: number;
  retriedRecords: number;
  failedCalls: number;
  lastPutMs: number;
  putMsTotal: number;
}

interface Queued extends OutRecord {
  seq: number;
  bytes: number;
}

export class Publisher {
  private queue: Queued[] = [];
  private queuedBytes = 0;
  private seq = 0;
  private acked = 0;
  private sent = 0;
  private sentBytes = 0;
  private inflight: { batch: Queued[]; keys: Set<string>; barrier: boolean; done: boolean }[] = [];
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

  private readonly maxBatchRecords: number;
  private readonly maxBatchBytes: number;

  constructor(
    private readonly sink: KinesisSink,
    private readonly opts: PublisherOptions,
  ) {
    this.maxBatchRecords = opts.maxBatchRecords ?? MAX_BATCH_RECORDS;
    this.maxBatchBytes = opts.maxBatchBytes ?? MAX_BATCH_BYTES;
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
      if (bytes > MAX_RECORD_BYTES) {
        throw new DrugsyncError(
          'KINESIS_RECORD_TOO_LARGE',
          `change event for NDC ${r.ndc ?? '(table event)'} is ${bytes} bytes, over the Kinesis record limit of ${MAX_RECORD_BYTES}`,
          {
            context: { ndc: r.ndc ?? undefined, bytes, stream: this.opts.stream },
            remedy:
              'the row image is larger than Kinesis accepts: shrink the oversized column values in MySQL; ' +
              'the reader stops here (it never skips a change) and resumes from its checkpoint once fixed',
          },
        );
      }
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

  /**
   * The next batch from the records not yet sent: <= 500 records, <= 5 MiB, and no partition key that a
   * batch in flight also carries (two calls in flight never hold records of the same NDC, so a retry can
   * never let a later record of a key overtake an earlier one).
   */
  private takeBatch(): Queued[] {
    // Table events (ExplicitHashKey, one per shard) travel alone, with nothing else in flight: rows
    // before them are acknowledged first and rows after them are sent after, on every shard.
    if (this.inflight.some((f) => f.barrier)) return [];
    const first = this.queue[this.sent];
    if (!first) return [];
    if (first.broadcast) {
      if (this.inflight.length > 0) return [];
      const batch: Queued[] = [];
      for (let i = this.sent; i < this.queue.length && batch.length < this.maxBatchRecords; i++) {
        const r = this.queue[i] as Queued;
        if (!r.broadcast) break;
        batch.push(r);
      }
      return batch;
    }
    // With a call in flight, only a full batch goes out (no trickle of tiny calls); idle, anything goes.
    if (
      this.inflight.length > 0 &&
      this.queue.length - this.sent < this.maxBatchRecords &&
      this.queuedBytes - this.sentBytes < this.maxBatchBytes
    )
      return [];
    const busy = new Set<string>();
    for (const f of this.inflight) for (const k of f.keys) busy.add(k);
    const batch: Queued[] = [];
    let bytes = 0;
    for (let i = this.sent; i < this.queue.length; i++) {
      const r = this.queue[i] as Queued;
      if (r.broadcast) break;
      if (batch.length >= this.maxBatchRecords || bytes + r.bytes > this.maxBatchBytes) break;
      if (busy.size && busy.has(r.partitionKey)) break;
      batch.push(r);
      bytes += r.bytes;
    }
    return batch;
  }

  private pump(): void {
    while (
      !this.closed &&
      !this.failure &&
      this.inflight.length < this.opts.concurrency &&
      this.sent < this.queue.length
    ) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      if (!this.inflight.some((f) => !f.done)) this.lastOutcomeAt = Date.now();
      this.sent += batch.length;
      for (const r of batch) this.sentBytes += r.bytes;
      const flight = {
        batch,
        keys: new Set(batch.map((r) => r.partitionKey)),
        barrier: batch.some((r) => r.broadcast === true),
        done: false,
      };
      this.inflight.push(flight);
      this.sendBatch(batch).then(
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
      const { batch } = this.inflight.shift() as { batch: Queued[] };
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

  private async sendBatch(batch: Queued[]): Promise<void> {
    let pending = batch;
    let attempt = 0;
    let failingSince: number | null = null;
    const log = this.opts.log;
    while (pending.length > 0 && !this.closed && !this.failure) {
      const t0 = performance.now();
      let failedIdx: Set<number>;
      let reason = '';
      try {
        const res = await this.sink.putRecords(pending);
        failedIdx = new Set(res.failed.map((f) => f.index));
        if (res.failed.length) {
          const codes = [...new Set(res.failed.map((f) => f.code))].join(',');
          reason = `${res.failed.length} of ${pending.length} records refused (${codes})`;
        }
      } catch (e) {
        failedIdx = new Set(pending.map((_, i) => i));
        reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
        this.stats.failedCalls += 1;
      }
      const ms = performance.now() - t0;
      this.lastOutcomeAt = Date.now();
      this.stats.lastPutMs = ms;
      this.stats.putMsTotal += ms;
      if (failedIdx.size === 0) return;
      // retry the failed records and every later record of the same partition key, in order
      const failedKeys = new Set<string>();
      const retry: Queued[] = [];
      pending.forEach((r, i) => {
        const key = r.partitionKey;
        if (failedIdx.has(i) || failedKeys.has(key)) {
          failedKeys.add(key);
          retry.push(r);
        }
      });
      this.stats.retriedRecords += retry.length;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > this.opts.maxOutageMs) {
        this.fail(
          new DrugsyncError(
            'KINESIS_PUT_FAILED',
            `Kinesis PutRecords kept failing for ${Math.round((Date.now() - failingSince) / 1000)} s: ${reason}`,
            {
              context: { stream: this.opts.stream, pending: retry.length },
              retryable: true,
              remedy:
                'check the stream exists and is reachable (KINESIS_ENDPOINT / AWS credentials / throughput)',
            },
          ),
        );
        return;
      }
      const delay = backoffDelay(attempt, PUT_RETRY_BACKOFF);
      attempt += 1;
      (attempt === 1 || attempt % 10 === 0 ? log.warn : log.debug)('PutRecords failed, retrying', {
        stream: this.opts.stream,
        reason,
        retry_records: retry.length,
        attempt,
        delay_ms: Math.round(delay),
      });
      await sleep(delay);
      pending = retry;
    }
  }
}

export function kinesisFailure(e: unknown, what: string, stream: string): DrugsyncError {
  return wrapError(e, 'KINESIS_PUT_FAILED', `Kinesis ${what} failed`, {
    context: { stream },
    retryable: true,
    remedy: 'check the stream exists and is reachable (KINESIS_ENDPOINT / AWS credentials)',
  });
}
