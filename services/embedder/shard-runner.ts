/**
 * One shard's loop: read (shard-reader.ts), hold an open delete transaction (tx-hold.ts), apply the batch
 * (`applyBatch`), release the deletes deferred to the commits it reached, and checkpoint
 * (shard-checkpoints.ts).
 *
 * - The shard starts after its checkpoint (an event id: `sequence` or `sequence:index` inside an aggregate),
 *   or at TRIM_HORIZON when it has none. The
 *   checkpoint moves only after a batch is applied, and only up to the record before the shard's first
 *   failed record; on failure the shard is re-read from there after a backoff, so nothing after a failure
 *   is skipped. Retries never give up.
 * - No batch starts once the consumer halts (a stop, or a lease loss); on a stop the shard finishes its
 *   in-flight batch and checkpoint first.
 * - The shard's progress (`progressAt`: a batch applied, or a read at the tip with nothing to do) and the
 *   per-batch metrics feed ./progress.ts.
 */
import { DrugsyncError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { MetricEmitter } from '../core/metrics.ts';
import { applyBatch } from './apply.ts';
import { firstFailurePerShard } from './apply-run.ts';
import { ShardCheckpoints, isLeaseError } from './shard-checkpoints.ts';
import type { ShardCheckpointStore } from './shard-checkpoints.ts';
import type { ConsumerGate } from './consumer-lease.ts';
import type {
  ConsumerConfig,
  ConsumerDeps,
  ConsumerOptions,
  ConsumerStats,
  ShardProgress,
} from './consumer-types.ts';
import { backoffDelay } from '../core/backoff.ts';
import type { DeferredDeletes } from './deferred.ts';
import { ShardReader, toStreamRecord } from './shard-reader.ts';
import { decideHold, emptyHold, holdRecords, splitOpenDeletes, takeHeld } from './tx-hold.ts';
import type { HeldRecord, TxHoldState } from './tx-hold.ts';
import { batchMetricValues } from './progress.ts';
import { mergeStats } from './types.ts';
import type { RecordResult } from './types.ts';

/** The first retry of a failing shard waits this long; each further one twice as long, up to the maximum. */
const FIRST_BACKOFF_MS = 500;

export interface ShardContext {
  config: ConsumerConfig;
  deps: ConsumerDeps;
  opts: ConsumerOptions;
  stats: ConsumerStats;
  gate: ConsumerGate;
  checkpoints: ShardCheckpointStore;
  deferred: DeferredDeletes;
  maxPending: number;
  txWaitMs: number;
  maxBackoffMs: number;
  /** a shard closed (resharding): its children may start */
  onShardClosed: () => void;
  clock: () => number;
  /** the per-batch metrics (./progress.ts) */
  metrics: MetricEmitter;
}

type Step = 'next' | 'halt' | 'closed';

/** The last record applied: before the first failed one, or the last one read when none failed. */
function lastApplied(results: readonly RecordResult[], failed: RecordResult | undefined, lastRead: string) {
  if (!failed) return lastRead;
  const upTo = results.indexOf(failed);
  return upTo > 0 ? (results[upTo - 1]?.sequenceNumber ?? null) : null;
}

/** Reads and applies one shard until it closes or the consumer halts. */
export async function runShard(ctx: ShardContext, shardId: string, start: string | null): Promise<void> {
  await new ShardRunner(ctx, shardId, start).run();
}

class ShardRunner {
  private readonly p: ShardProgress;
  private readonly log: Logger;
  private readonly reader: ShardReader;
  private readonly hold: TxHoldState;
  private readonly cps: ShardCheckpoints;
  /** consecutive failures (the backoff's attempt) */
  private failures = 0;

  constructor(
    private readonly ctx: ShardContext,
    private readonly shardId: string,
    start: string | null,
  ) {
    this.p = {
      shardId,
      checkpoint: start,
      millisBehindLatest: null,
      closed: false,
      idle: false,
      batches: 0,
      errors: 0,
      // a shard started again (after a lease loss, an ended reader) keeps the time of its last progress
      progressAt: ctx.stats.shards.get(shardId)?.progressAt ?? ctx.clock(),
      readAt: null,
    };
    ctx.stats.shards.set(shardId, this.p);
    this.log = ctx.deps.log.child({ shard: shardId });
    this.reader = new ShardReader({
      kinesis: ctx.deps.kinesis,
      stream: ctx.config.KINESIS_STREAM,
      shardId,
      limit: ctx.config.EMBEDDER_GETRECORDS_LIMIT,
      log: this.log,
      sleep: (ms) => ctx.gate.sleep(ms),
      clock: ctx.clock,
    });
    this.hold = emptyHold(ctx.clock());
    this.cps = new ShardCheckpoints(ctx.checkpoints, shardId);
  }

  async run(): Promise<void> {
    while (!this.ctx.gate.halted()) {
      try {
        const step = await this.step();
        if (step === 'closed') return;
        if (step === 'halt') break;
      } catch (e) {
        // Redis or Kinesis unavailable: nothing was checkpointed past what was applied; retry from there
        if (this.ctx.gate.lost || isLeaseError(e)) break; // lease lost: this shard stops here
        await this.retryAfter('error', 'batch failed as a whole; retrying from the last checkpoint', {
          error: e instanceof DrugsyncError ? e : errorMessage(e),
          checkpoint: this.p.checkpoint,
        });
      }
    }
    // stopping: the last checkpoint is durable before the shard reports done (a failure is the run's
    // error); after a lease loss the fenced write refuses it, and that is no error of this shard
    await this.cps.settled().catch((e: unknown) => {
      if (!isLeaseError(e)) throw e;
    });
  }

  private async step(): Promise<Step> {
    const { gate, stats, config, clock } = this.ctx;
    this.cps.throwIfFailed();
    if (!this.reader.iterator) {
      takeHeld(this.hold);
      await this.reader.open(this.p.checkpoint);
    }
    if (gate.halted()) return 'halt';
    const read = await this.reader.read();
    if (read.kind === 'retry') return 'next';
    this.p.millisBehindLatest = read.millisBehindLatest;
    this.p.readAt = clock();
    holdRecords(this.hold, read.records, clock());
    this.p.idle = read.records.length === 0 && this.hold.pending.length === 0;
    // Kinesis says the shard has nothing more: caught up is progress (./progress.ts)
    if (this.p.idle && read.millisBehindLatest === 0) this.p.progressAt = clock();
    if (read.records.length > 0) stats.lastRecordAt = clock();
    const decision = decideHold(this.hold, {
      hasIterator: this.reader.iterator !== null,
      moreOnStream: read.more,
      now: clock(),
      maxPending: this.ctx.maxPending,
      txWaitMs: this.ctx.txWaitMs,
    });
    if (decision === 'read-on') return 'next';
    if (decision !== 'idle') {
      const applied = await this.applyHeld(decision === 'defer-deletes');
      if (applied !== 'applied') return applied;
    }
    this.failures = 0;
    if (!this.reader.iterator) return this.close();
    if (read.records.length === 0) await gate.sleep(config.EMBEDDER_IDLE_POLL_MS);
    return 'next';
  }

  /** Applies the held records; 'next': some failed and the shard is re-read after a backoff. */
  private async applyHeld(deferDeletes: boolean): Promise<'applied' | 'next' | 'halt'> {
    const { gate, stats, deps, opts } = this.ctx;
    // read the next records while this batch is applied
    if (!gate.stopped) this.reader.prefetch();
    const lastRead = (this.hold.pending[this.hold.pending.length - 1] as HeldRecord).SequenceNumber as string;
    const batch = deferDeletes ? await this.deferOpenDeletes() : this.hold.pending;
    // the lease is checked right before the batch: no batch starts once it is lost
    if (gate.halted()) return 'halt';
    takeHeld(this.hold);
    const { results, stats: bs } = await applyBatch(
      batch.map((r) => toStreamRecord(r, this.shardId)),
      deps.apply,
    );
    const failed = firstFailurePerShard(results).get(this.shardId);
    await this.releaseCommitted(batch.slice(0, failed ? results.indexOf(failed) : results.length));
    const last = lastApplied(results, failed, lastRead);
    if (last) {
      // written while the next batch is read and decoded; the shard stops at the next batch if it failed
      this.cps.queue(last);
      this.p.checkpoint = last;
      this.p.progressAt = this.ctx.clock();
    }
    stats.totals = mergeStats(stats.totals, bs);
    stats.lastRecordAt = this.ctx.clock();
    this.p.batches++;
    this.ctx.metrics.emit(batchMetricValues(bs), this.ctx.clock());
    opts.onBatch?.(this.shardId, bs);
    if (!failed) return 'applied';
    // re-read from the first failed record after a backoff; nothing after it is skipped
    await this.retryAfter('warn', 'records failed: retrying the shard from the first failed record', {
      sequence_number: failed.sequenceNumber,
      ndc: failed.ndc,
      error: failed.error,
    });
    return 'next';
  }

  /** Too large to hold: the open transaction's deletes wait, durably, for its commit event. */
  private async deferOpenDeletes(): Promise<HeldRecord[]> {
    const held = this.hold.pending;
    const { keep, deferred } = splitOpenDeletes(held, this.hold.openDeleteTxs);
    for (const [tx, items] of deferred) await this.ctx.deferred.defer(this.shardId, tx, items);
    this.log.info('transaction larger than the hold bound: its deletes wait for its commit event', {
      held: held.length,
      deferred: held.length - keep.length,
    });
    return keep;
  }

  /** Commit events reached: their transactions' deferred deletes are applied now. */
  private async releaseCommitted(applied: readonly HeldRecord[]): Promise<void> {
    for (const r of applied) {
      const tx = r.tx.commitTx;
      if (tx === null) continue;
      const released = await this.ctx.deferred.release(this.shardId, tx, this.ctx.deps.apply.store);
      if (released.deleted + released.refused > 0)
        this.log.info('deferred deletes applied at their commit', { txid: tx, ...released });
    }
  }

  /** SHARD_END: every record of this (parent) shard is applied; children may start. */
  private async close(): Promise<Step> {
    await this.cps.close();
    this.p.closed = true;
    this.ctx.onShardClosed();
    this.log.info('shard closed (resharding): finished');
    return 'closed';
  }

  /** Counts the failure, logs it with the backoff, and waits before the shard is re-read. */
  private async retryAfter(
    level: 'warn' | 'error',
    message: string,
    fields: Record<string, unknown>,
  ): Promise<void> {
    this.p.errors++;
    this.ctx.stats.errors++;
    const backoff = backoffDelay(this.failures++, {
      baseMs: FIRST_BACKOFF_MS,
      maxMs: this.ctx.maxBackoffMs,
      jitter: 'none',
    });
    const entry = { ...fields, backoff_ms: backoff };
    this.log[level](message, entry);
    this.reader.reset();
    await this.ctx.gate.sleep(backoff);
  }
}
