/** The reader's settings (environment), its in-process options and the dependencies tests may replace. */
import { configFields, generalShape, kinesisShape, mysqlShape, redisShape } from '../core/config.ts';
import type { Decoded } from '../core/config.ts';
import { z } from 'zod';
import type { BinlogPositionStore } from '../core/checkpoint.ts';
import type { createKinesis } from '../core/clients/kinesis.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { Logger } from '../core/log.ts';
import type { MetricEmitter } from '../core/metrics.ts';
import type { BinlogPosition } from '../core/position.ts';
import type { KinesisSink } from './kinesis-sink.ts';
import type { BinlogSource } from './source.ts';

const { int, bool } = configFields;

export const readerShape = {
  /**
   * Pack the events bound for one shard into KPL aggregated records (docs/change-event.md): ~8,000–9,000
   * catalogue events/s per real shard (bytes-bound) instead of ≤ 1,000. false: one record per event, as before.
   */
  KINESIS_AGGREGATION: bool(true),
  /** zstd: aggregates 13–20× smaller (our consumer reads them); none: plain KPL, read by any KCL/Lambda consumer. */
  KINESIS_AGGREGATE_COMPRESSION: z
    .string()
    .optional()
    .transform((v) => (v === undefined || v === '' ? 'zstd' : v))
    .pipe(z.enum(['zstd', 'none'])),
  /** Without aggregation: gzip each record (~3.5× smaller: more events per shard within Kinesis' MB/s limits). */
  EVENT_GZIP: bool(true),
  /** Lease expiry; renewed every sixth of it. A second reader takes over at most this long after a crash. */
  READER_LEASE_TTL_MS: int(15_000, 1_000, 600_000),
  /** Publisher queue bounds: reading pauses when either is reached. */
  READER_QUEUE_RECORDS: int(20_000, 500, 10_000_000),
  READER_QUEUE_BYTES: int(32 * 1024 * 1024, 1024 * 1024),
  /** Silence after which the server is probed (SHOW MASTER STATUS); moved on without us → restart. */
  READER_STALL_SECONDS: int(30, 1, 3600),
  /** Heartbeat period asked of the server while idle (0: none). */
  READER_HEARTBEAT_SECONDS: int(5, 0, 3600),
  /**
   * Period of the metrics line and its EMF record (ReaderLagSeconds, ReaderStallSeconds): at most a minute,
   * since the stall alarm treats a minute without a datapoint as breaching.
   */
  READER_METRICS_SECONDS: int(10, 1, 60),
  /** Kinesis may fail this long before the session restarts from the checkpoint. */
  READER_KINESIS_OUTAGE_SECONDS: int(120, 1, 86_400),
  READER_MAX_BACKOFF_SECONDS: int(30, 1, 3600),
  /** PutRecords calls in flight at once (their batches never share an NDC). */
  READER_PUT_CONCURRENCY: int(4, 1, 64),
  /** Decode row images with drugsync's decoder where the table's column types allow (false: zongji's own). */
  READER_FAST_ROW_DECODER: bool(true),
};

export const readerConfigShape = {
  ...mysqlShape,
  ...redisShape,
  ...kinesisShape,
  LOG_LEVEL: generalShape.LOG_LEVEL,
  DRUGSYNC_STAGE: generalShape.DRUGSYNC_STAGE,
  ...readerShape,
};

export type ReaderConfig = Decoded<typeof readerConfigShape>;

export interface ReaderOptions {
  /** --from FILE:POS: used when there is neither a checkpoint nor a backfill snapshot position. */
  from?: BinlogPosition;
  /** --from-gtid: likewise. */
  fromGtid?: string;
  /** Stop (exit 0) after this many seconds without a change to the table, everything acknowledged. */
  onceIdleSeconds?: number;
  /** Skip the preflight (unit tests with a fake source). */
  skipPreflight?: boolean;
}

export interface ReaderDeps {
  redis?: RedisClient;
  kinesis?: ReturnType<typeof createKinesis>;
  pool?: MysqlPool;
  /** Replaces zongji (tests). */
  createSource?: () => BinlogSource;
  /** Replaces Kinesis PutRecords / ListShards (tests, bench). */
  sink?: KinesisSink;
  checkpoints?: BinlogPositionStore;
  log?: Logger;
  /** Where the metrics go (default: EMF lines on stderr under LOG_FORMAT=json; tests capture them). */
  metrics?: MetricEmitter;
  /** The clock of the progress metrics (tests: a clock that jumps ahead); Date.now by default. */
  clock?: () => number;
}
