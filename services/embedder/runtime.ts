/**
 * Wiring shared by the drivers: configuration (decoded once) and the dependencies of `applyBatch`
 * (Redis store, embedding service, dead-letter queue, table-event state).
 */
import { SQSClient } from '@aws-sdk/client-sqs';
import {
  configFields,
  decodeConfig,
  embeddingShape,
  generalShape,
  kinesisShape,
  mysqlShape,
  redisShape,
  resolveEnv,
} from '../core/config.ts';
import type { Decoded, Env } from '../core/config.ts';
import { openRedis } from '../core/clients/redis.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { makeKeys } from '../core/keys.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { DrugStore } from '../core/drug-store-contract.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import { createRedisDrugStore } from '../core/redis/drug-store.ts';
import { createEmbeddingService } from '../core/embedding/service.ts';
import type { ApplyDeps, SweepCapable } from './apply-run.ts';
import { createRedisDeadLetterQueue, createSqsDeadLetterQueue } from './dlq.ts';
import type { DeadLetterQueue } from './dlq.ts';
import { createRedisTableState } from './table-state.ts';
import type { TableState } from './table-state.ts';
import { CONSUMER_DEFAULTS } from './consumer.ts';
import type { ConsumerDeps, KinesisReader } from './consumer.ts';

const { int, num, optStr, bool } = configFields;

/** The embedder's own settings. */
export const embedderShape = {
  /** SQS queue for dead letters (production); unset → Redis stream keys.deadLetters. */
  DLQ_QUEUE_URL: optStr(),
  /** Quiet period after the last row event before a pending truncate is swept. */
  TRUNCATE_QUIET_SECONDS: num(10, 0),
  /** GetRecords Limit per call (local/ECS consumer). */
  EMBEDDER_GETRECORDS_LIMIT: int(1000, 1, 10000),
  /** Pause between polls of a shard that returned nothing (ms). */
  EMBEDDER_IDLE_POLL_MS: int(250, 0, 60_000),
  /**
   * One active consumer per stream: expiry of its Redis lease (ms), renewed every sixth of it. A second
   * consumer waits and takes over at most this long after the holder died (at once after a clean stop).
   */
  EMBEDDER_LEASE_TTL_MS: int(CONSUMER_DEFAULTS.leaseTtlMs, 1_000, 600_000),
  /** Longest pause between retries of a failing shard (ms); a shard retries until it succeeds. */
  EMBEDDER_MAX_BACKOFF_MS: int(CONSUMER_DEFAULTS.maxBackoffMs, 100, 600_000),
  /**
   * Period of the progress heartbeat (EmbedderStallSeconds, EmbedderMillisBehindLatest as EMF lines under
   * LOG_FORMAT=json); the stall alarm treats a missing minute as breaching.
   */
  EMBEDDER_METRICS_SECONDS: int(CONSUMER_DEFAULTS.metricsEverySeconds, 1, 60),
  /**
   * The local/ECS consumer runs the re-sync by difference itself when the table is replaced (needs the
   * DB_* settings of a read-only user). 0 → resyncs stay pending until `drugsync resync`.
   */
  RESYNC_AUTO: bool(true),
  /**
   * After a truncate, while the table is still empty (the reload has committed nothing yet), the consumer
   * keeps every document for up to this long before sweeping (needs the DB_* settings).
   */
  TRUNCATE_EMPTY_WAIT_SECONDS: num(600, 0),
  /** A run of row events this long without a pause is a "load": its summary is logged when it ends. */
  LOAD_MIN_RECORDS: int(1000, 1),
  /** Pause after which a load counts as finished (seconds). */
  LOAD_QUIET_SECONDS: num(3, 0),
};

export const embedderConfigShape = {
  ...redisShape,
  ...kinesisShape,
  ...embeddingShape,
  ...generalShape,
  ...embedderShape,
};

export type EmbedderConfig = Decoded<typeof embedderConfigShape>;

export function decodeEmbedderConfig(env: Env = resolveEnv()): EmbedderConfig {
  return decodeConfig(embedderConfigShape, env);
}

/** The embedder's settings plus read access to the source table (re-sync, truncate sweep check). */
export const embedderWithSourceShape = { ...embedderConfigShape, ...mysqlShape };
export type EmbedderWithSourceConfig = Decoded<typeof embedderWithSourceShape>;

export function decodeEmbedderWithSourceConfig(env: Env = resolveEnv()): EmbedderWithSourceConfig {
  return decodeConfig(embedderWithSourceShape, env);
}

export interface EmbedderRuntime {
  config: EmbedderConfig;
  keys: Keys;
  redis: RedisClient;
  deps: ApplyDeps;
  close(): Promise<void>;
}

/** What the consumer needs from a runtime: its Redis, checkpoint and status keys, and the apply path. */
export function consumerDeps(
  rt: EmbedderRuntime,
  kinesis: KinesisReader,
  log: Logger,
): Omit<ConsumerDeps, 'deferred'> {
  return {
    kinesis,
    redis: rt.redis,
    keys: rt.keys,
    statusKey: rt.keys.serviceStatus('embedder'),
    apply: rt.deps,
    log,
  };
}

export interface RuntimeOverrides {
  store?: DrugStore & Partial<SweepCapable>;
  embeddings?: EmbeddingService;
  dlq?: DeadLetterQueue;
  tableState?: TableState;
  redis?: RedisClient;
}

export async function createEmbedderRuntime(
  config: EmbedderConfig,
  log: Logger,
  over: RuntimeOverrides = {},
): Promise<EmbedderRuntime> {
  const keys = makeKeys(config);
  // lazy: connects on first use, so a runtime whose parts are all given never opens a connection (the
  // Redis secret, when REDIS_SECRET_ARN names one, is read first)
  const redis = over.redis ?? (await openRedis(config, { lazyConnect: true }, { log }));
  const store = over.store ?? createRedisDrugStore(redis, keys, config, { log });
  const embeddings = over.embeddings ?? createEmbeddingService(config, redis, keys, { logger: log });
  const dlq =
    over.dlq ??
    (config.DLQ_QUEUE_URL
      ? // the per-record markers (shard + sequence number) live in Redis for both queue kinds
        createSqsDeadLetterQueue(new SQSClient({ region: config.AWS_REGION }), config.DLQ_QUEUE_URL, {
          redis,
          key: keys.deadLetterMarker,
          ttlSeconds: config.TOMBSTONE_TTL_SECONDS,
        })
      : createRedisDeadLetterQueue(redis, keys, {
          markerTtlSeconds: config.TOMBSTONE_TTL_SECONDS,
        }));
  const deps: ApplyDeps = {
    store,
    embeddings,
    dlq,
    tableState: over.tableState ?? createRedisTableState(redis, keys),
    log,
    stream: config.KINESIS_STREAM,
    truncateQuietMs: config.TRUNCATE_QUIET_SECONDS * 1000,
    truncateEmptyWaitMs: config.TRUNCATE_EMPTY_WAIT_SECONDS * 1000,
  };
  return {
    config,
    keys,
    redis,
    deps,
    async close() {
      if (!over.redis) redis.disconnect();
    },
  };
}
