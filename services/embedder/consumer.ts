/**
 * Local / ECS driver: polls every shard of the stream and applies each shard's records with `applyBatch`.
 * This module starts and supervises; each concern has its own module:
 *
 * - shard-discovery.ts: which shards to start. Shards are re-listed periodically (and at once when one
 *   closes); a child shard starts once its parent(s) are finished or no longer listed.
 * - shard-runner.ts: one shard's loop (checkpoint, retries from the first failed record, backoff);
 *   shard-reader.ts: GetRecords paced as on AWS, one read ahead; tx-hold.ts: holding an open delete
 *   transaction (and deferring its deletes past a bound, deferred.ts).
 * - shard-checkpoints.ts: checkpoints in Redis (keys.shardCheckpoints(stream)), fenced on the lease.
 * - consumer-lease.ts: one active consumer per stream. A Redis lease (services/core/lease.ts, key
 *   keys.consumerLease(stream)); a second consumer waits, logging who holds it (host, pid, since), and takes
 *   over when the lease expires (its holder died) or is released (clean stop). On a loss the holder stops
 *   applying at once, writes no checkpoint after it, and waits to take the lease again.
 * - consumer-status.ts / load-tracker.ts: the status hash, progress logs and load summaries; progress.ts: the
 *   metrics (a progress heartbeat on its own timer, per-batch counts).
 *
 * stop() (SIGTERM/SIGINT in the CLI): each shard finishes its in-flight batch and checkpoint, then exits.
 */
import { DrugsyncError, errorMessage } from '../core/errors.ts';
import { createRedisLease, leaseOwnerId } from '../core/lease.ts';
import { createMetricEmitter } from '../core/metrics.ts';
import type { MetricEmitter } from '../core/metrics.ts';
import { runMaintenance } from './maintenance.ts';
import { readCheckpoints } from './shard-checkpoints.ts';
import type { ShardCheckpointStore } from './shard-checkpoints.ts';
import { ConsumerGate } from './consumer-lease.ts';
import { ConsumerStatusPublisher } from './consumer-status.ts';
import type {
  ConsumerConfig,
  ConsumerDeps,
  ConsumerOptions,
  ConsumerStats,
  EmbedderConsumer,
} from './consumer-types.ts';
import { listAllShards } from '../core/kinesis-shards.ts';
import { createDeferredDeletes } from './deferred.ts';
import { EmbedderHeartbeat } from './progress.ts';
import { shardsToStart } from './shard-discovery.ts';
import { runShard } from './shard-runner.ts';
import type { ShardContext } from './shard-runner.ts';
import { emptyStats } from './types.ts';

export type {
  ConsumerConfig,
  ConsumerDeps,
  ConsumerOptions,
  ConsumerStats,
  EmbedderConsumer,
  KinesisReader,
  LoadSummary,
  ShardProgress,
} from './consumer-types.ts';

/**
 * What the consumer does when its settings and options leave a bound unset (embedderShape declares its
 * variables' defaults from these).
 */
export const CONSUMER_DEFAULTS = {
  /** records held back to finish an open delete transaction (memory bound) */
  maxPendingRecords: 100_000,
  /**
   * how long a caught-up shard waits for the rest of an open delete transaction. The binlog reader ends every
   * transaction that deleted rows with a 'commit' table event on every shard, which closes it at once; this
   * bound only matters when that event is missing (an older producer).
   */
  txWaitMs: 10_000,
  /** EMBEDDER_LEASE_TTL_MS */
  leaseTtlMs: 15_000,
  /** EMBEDDER_MAX_BACKOFF_MS */
  maxBackoffMs: 30_000,
  discoverEveryMs: 10_000,
  maintenanceEveryMs: 1_000,
  /** EMBEDDER_METRICS_SECONDS: the progress heartbeat's period */
  metricsEverySeconds: 10,
} as const;
/** the supervising loop's tick (at most; shorter when maintenance runs more often) */
const TICK_MS = 250;

function newStats(now: number): ConsumerStats {
  return {
    state: 'waiting-lease',
    leaseHolder: null,
    leaseTaken: 0,
    leaseLost: 0,
    startedAt: now,
    totals: emptyStats(),
    shards: new Map(),
    lastRecordAt: null,
    errors: 0,
  };
}

/** Every shard caught up (closed, or idle at the tip) for `idleMs`: tracks since when. */
class IdleWatch {
  private since: number;
  constructor(
    private readonly idleMs: number,
    now: number,
  ) {
    this.since = now;
  }

  /** How long every shard has been caught up, once that reaches `idleMs` (else null). */
  idleFor(stats: ConsumerStats, now: number): number | null {
    const shards = [...stats.shards.values()];
    const caughtUp =
      shards.length > 0 && shards.every((s) => s.closed || (s.idle && s.millisBehindLatest === 0));
    if (!caughtUp) {
      this.since = now;
      return null;
    }
    const idle = now - Math.max(stats.lastRecordAt ?? 0, this.since);
    return idle >= this.idleMs ? idle : null;
  }
}

class Consumer {
  readonly stats: ConsumerStats;
  readonly gate: ConsumerGate;
  private readonly status: ConsumerStatusPublisher;
  private readonly metrics: MetricEmitter;
  private readonly shardCtx: ShardContext;
  /** set when a shard closes: its children may start now */
  private rediscover = false;

  constructor(
    private readonly config: ConsumerConfig,
    private readonly deps: ConsumerDeps,
    private readonly opts: ConsumerOptions,
    private readonly clock: () => number = Date.now,
  ) {
    this.stats = newStats(clock());
    const ttl = config.EMBEDDER_LEASE_TTL_MS ?? CONSUMER_DEFAULTS.leaseTtlMs;
    const lease =
      deps.lease ??
      createRedisLease(
        deps.redis,
        deps.keys.consumerLease(config.KINESIS_STREAM),
        leaseOwnerId(),
        ttl,
        'embedder consumer lease',
      );
    this.gate = new ConsumerGate(lease, ttl, this.stats, deps.log);
    this.metrics = deps.metrics ?? createMetricEmitter('embedder', config.DRUGSYNC_STAGE);
    this.status = new ConsumerStatusPublisher(
      {
        redis: deps.redis,
        statusKey: deps.statusKey,
        stream: config.KINESIS_STREAM,
        leaseOwner: lease.owner,
        log: deps.log,
      },
      this.stats,
      { minRecords: config.LOAD_MIN_RECORDS, quietSeconds: config.LOAD_QUIET_SECONDS },
      clock,
    );
    this.shardCtx = this.shardContext();
  }

  private shardContext(): ShardContext {
    const { config, deps, gate } = this;
    const checkpoints: ShardCheckpointStore = {
      redis: deps.redis,
      lease: gate.lease,
      key: deps.keys.shardCheckpoints(config.KINESIS_STREAM),
      stream: config.KINESIS_STREAM,
      onLeaseLost: (cause) => gate.loseLease(cause),
    };
    return {
      config,
      deps,
      opts: this.opts,
      stats: this.stats,
      gate,
      checkpoints,
      deferred:
        deps.deferred ??
        createDeferredDeletes(deps.redis, (shardId, txid) =>
          deps.keys.deferredDeletes(config.KINESIS_STREAM, shardId, txid),
        ),
      maxPending: this.opts.maxPendingRecords ?? CONSUMER_DEFAULTS.maxPendingRecords,
      txWaitMs: CONSUMER_DEFAULTS.txWaitMs,
      maxBackoffMs: config.EMBEDDER_MAX_BACKOFF_MS ?? CONSUMER_DEFAULTS.maxBackoffMs,
      onShardClosed: () => (this.rediscover = true),
      clock: this.clock,
      metrics: this.metrics,
    };
  }

  /** Holds the lease and runs the shards, again after every loss, until stop(). */
  async main(): Promise<ConsumerStats> {
    const { gate, deps } = this;
    // the progress heartbeat runs whatever the loops below do (./progress.ts)
    const heartbeat = new EmbedderHeartbeat({
      stats: this.stats,
      metrics: this.metrics,
      everyMs: (this.config.EMBEDDER_METRICS_SECONDS ?? CONSUMER_DEFAULTS.metricsEverySeconds) * 1000,
      clock: this.clock,
    });
    heartbeat.start();
    try {
      while (!gate.stopped) {
        if (!(await gate.acquire())) break;
        await this.runLeased();
        gate.pause();
        if (!gate.stopped)
          deps.log.warn('lease lost: shards stopped; waiting to take the lease again', {
            key: gate.lease.key,
          });
      }
    } finally {
      heartbeat.stop();
      heartbeat.beat();
      await gate.end();
    }
    const t = this.stats.totals;
    deps.log.info('embedder consumer stopped', {
      records: t.records,
      upserted: t.upserted,
      deleted: t.deleted,
      dead_lettered: t.deadLettered,
      checkpoints: Object.fromEntries([...this.stats.shards.values()].map((s) => [s.shardId, s.checkpoint])),
    });
    return this.stats;
  }

  /** Runs every shard while the lease is ours: until stop(), idle exit or a lease loss. */
  private async runLeased(): Promise<void> {
    const running = new Map<string, Promise<void>>();
    const discoverEvery = this.opts.discoverEveryMs ?? CONSUMER_DEFAULTS.discoverEveryMs;
    const maintenanceEvery = this.opts.maintenanceEveryMs ?? CONSUMER_DEFAULTS.maintenanceEveryMs;
    const idle =
      this.opts.exitWhenIdleMs === undefined ? null : new IdleWatch(this.opts.exitWhenIdleMs, this.clock());
    let lastDiscover = 0;
    let lastMaintenance = 0;
    while (!this.gate.halted()) {
      const now = this.clock();
      if (now - lastDiscover >= discoverEvery || this.rediscover) {
        await this.discover(running);
        lastDiscover = now;
      }
      if (now - lastMaintenance >= maintenanceEvery) {
        lastMaintenance = now;
        await this.maintain();
      }
      if (idle && this.exitIfIdle(idle)) break;
      await this.gate.sleep(Math.min(TICK_MS, maintenanceEvery));
    }
    await Promise.all(running.values());
    if (this.gate.lost) return; // the status hash is the new holder's now
    await this.status
      .publish(this.stats)
      .catch((e: unknown) =>
        this.deps.log.warn('could not write the final status', { error: errorMessage(e) }),
      );
  }

  /** Lists the shards and starts those ready to read. */
  private async discover(running: Map<string, Promise<void>>): Promise<void> {
    const { deps } = this;
    try {
      const shards = await listAllShards(deps.kinesis, this.config.KINESIS_STREAM);
      const cps = await readCheckpoints(deps.redis, deps.keys.shardCheckpoints(this.config.KINESIS_STREAM));
      for (const { shardId, after } of shardsToStart(shards, cps, new Set(running.keys()))) {
        deps.log.info('reading shard', { shard: shardId, after: after ?? 'TRIM_HORIZON' });
        running.set(shardId, this.runTracked(running, shardId, after));
      }
      this.rediscover = false;
    } catch (e) {
      this.stats.errors++;
      deps.log.error('cannot list shards; retrying', {
        error: e instanceof DrugsyncError ? e : errorMessage(e),
      });
    }
  }

  /**
   * Runs one shard and forgets it when its runner ends, so that the next discovery starts it again from its
   * checkpoint unless it is closed (SHARD_END). A runner also ends when it sees the lease not surely ours for a
   * moment (a renewal overdue while the event loop was busy) that the consumer's own loop did not see: it was
   * never started again, and the shard stalled behind a lease the consumer still held.
   */
  private async runTracked(running: Map<string, Promise<void>>, shardId: string, after: string | null) {
    try {
      await runShard(this.shardCtx, shardId, after);
    } finally {
      running.delete(shardId);
      this.rediscover = true;
      const progress = this.stats.shards.get(shardId);
      if (!this.gate.halted() && !progress?.closed)
        this.deps.log.warn('shard reader ended while the consumer runs: restarting it from its checkpoint', {
          shard: shardId,
          checkpoint: progress?.checkpoint ?? null,
        });
    }
  }

  /** Maintenance (truncate sweep, re-sync kick) and the status. */
  private async maintain(): Promise<void> {
    try {
      await runMaintenance(this.deps.apply);
      await this.status.publish(this.stats);
    } catch (e) {
      this.stats.errors++;
      this.deps.log.error('maintenance failed; will retry', {
        error: e instanceof DrugsyncError ? e : errorMessage(e),
      });
    }
  }

  private exitIfIdle(idle: IdleWatch): boolean {
    const idleMs = idle.idleFor(this.stats, this.clock());
    if (idleMs === null) return false;
    this.deps.log.info('idle: every shard caught up', { idle_ms: idleMs });
    this.gate.stop();
    return true;
  }
}

export function startEmbedderConsumer(
  config: ConsumerConfig,
  deps: ConsumerDeps,
  opts: ConsumerOptions = {},
): EmbedderConsumer {
  const c = new Consumer(config, deps, opts, opts.clock);
  const done = c.main();
  return { stop: () => c.gate.stop(), stats: c.stats, done, owner: c.gate.lease.owner };
}
