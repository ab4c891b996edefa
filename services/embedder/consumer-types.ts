/**
 * The consumer's shapes: its configuration, dependencies, options and the live statistics it keeps.
 */
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import type { Keys } from '../core/keys.ts';
import type { Lease, LeaseHolder } from '../core/lease.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { Logger } from '../core/log.ts';
import type { MetricEmitter } from '../core/metrics.ts';
import type { ApplyDeps } from './apply-run.ts';
import type { DeferredDeletes } from './deferred.ts';
import type { BatchStats } from './types.ts';

export type { LoadSummary } from './load-tracker.ts';

/** The subset of the Kinesis client the consumer uses. */
export type KinesisReader = Pick<KinesisClient, 'send'>;

export interface ConsumerConfig {
  KINESIS_STREAM: string;
  EMBEDDER_GETRECORDS_LIMIT: number;
  EMBEDDER_IDLE_POLL_MS: number;
  /** a run of at least this many row events is a "load", summarised when it ends (default 1000) */
  LOAD_MIN_RECORDS?: number;
  /** a pause this long ends a load (seconds, default 3) */
  LOAD_QUIET_SECONDS?: number;
  /** the consumer lease's expiry (ms, default 15,000): a successor takes over at most this long after a crash */
  EMBEDDER_LEASE_TTL_MS?: number;
  /** the longest backoff between retries of a failing shard (ms, default 30,000); retries never give up */
  EMBEDDER_MAX_BACKOFF_MS?: number;
  /** how often the progress heartbeat is emitted (seconds, default 10; ./progress.ts) */
  EMBEDDER_METRICS_SECONDS?: number;
  /** the Stage dimension of the metrics (default `local`) */
  DRUGSYNC_STAGE?: string;
}

export type ConsumerKeys = Pick<Keys, 'shardCheckpoints' | 'consumerLease' | 'deferredDeletes'>;

export interface ConsumerDeps {
  kinesis: KinesisReader;
  redis: RedisClient;
  /** The consumer's keys (for config.KINESIS_STREAM): shard checkpoints, its lease, deferred deletes. */
  keys: ConsumerKeys;
  /** keys.serviceStatus('embedder') */
  statusKey?: string | undefined;
  apply: ApplyDeps;
  log: Logger;
  /** Where deletes of transactions too large to hold wait for their commit (default: beside the checkpoints). */
  deferred?: DeferredDeletes | undefined;
  /** The one-consumer-per-stream lease (default: a Redis lease at keys.consumerLease(stream), owner host:pid). */
  lease?: Lease | undefined;
  /** Where the metrics go (default: EMF lines on stderr under LOG_FORMAT=json; tests capture them). */
  metrics?: MetricEmitter | undefined;
}

export interface ConsumerOptions {
  /** Stop once every shard is caught up and no record arrived for this long (tests, one-off drains). */
  exitWhenIdleMs?: number | undefined;
  /** Records a shard may hold to finish an open delete transaction before deferring its deletes (100,000). */
  maxPendingRecords?: number | undefined;
  /** How often shards are re-listed (new shards after resharding). */
  discoverEveryMs?: number | undefined;
  /** How often maintenance runs (truncate sweep, status). */
  maintenanceEveryMs?: number | undefined;
  /** Called after every applied batch (tests, progress bars). */
  onBatch?: ((shardId: string, stats: BatchStats) => void) | undefined;
  /** The clock of the progress metrics and the consumer's timing (tests: one that jumps ahead). */
  clock?: (() => number) | undefined;
}

export interface ShardProgress {
  shardId: string;
  checkpoint: string | null;
  millisBehindLatest: number | null;
  closed: boolean;
  /** the last GetRecords returned nothing and nothing is held back */
  idle: boolean;
  /** when the shard last proved progress: a batch applied, or a read at the tip with nothing to do (./progress.ts) */
  progressAt: number;
  /** when its last GetRecords answered (null: not read yet) */
  readAt: number | null;
  batches: number;
  errors: number;
}

export interface ConsumerStats {
  /** waiting-lease: another consumer holds the stream's lease; applying: this one holds it */
  state: 'waiting-lease' | 'applying' | 'stopped';
  /** who held the lease when this consumer last found it taken (while waiting) */
  leaseHolder: LeaseHolder | null;
  /** how many times this consumer took the lease, and lost it */
  leaseTaken: number;
  leaseLost: number;
  startedAt: number;
  totals: BatchStats;
  shards: Map<string, ShardProgress>;
  lastRecordAt: number | null;
  errors: number;
}

export interface EmbedderConsumer {
  /** Finish in-flight batches, checkpoint, and resolve `done`. */
  stop(): void;
  readonly stats: ConsumerStats;
  readonly done: Promise<ConsumerStats>;
  /** this consumer's lease owner id (host:pid:id) */
  readonly owner: string;
}
