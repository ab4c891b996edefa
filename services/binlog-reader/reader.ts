/**
 * The binlog reader service: binlog (zongji) → change events → Kinesis, checkpoint in Redis.
 *
 * `startBinlogReader(config, deps, options)` runs it in-process and returns {stop(), stats, done}; the
 * `drugsync binlog-reader` command and the tests use it. One run:
 *
 * 1. waits for the lease (one reader at a time), runs the preflight (every problem at once);
 * 2. resolves the start: checkpoint, else the backfill's snapshot position, else --from / --from-gtid,
 *    else refuses (BINLOG_NO_START_POSITION); a start file the server no longer has → BINLOG_PURGED;
 * 3. streams: each row event is published as soon as it is decoded (a binlog only holds committed
 *    transactions, so nothing is buffered until the commit; memory is bounded by the publisher queue, and
 *    the socket is paused while the queue is full); each commit (XID / COMMIT / standalone statement) is a
 *    checkpoint candidate that becomes the checkpoint once every record queued before it is acknowledged;
 * 4. any failure (MySQL connection, handler exception, stalled socket, Kinesis or Redis outage) ends the
 *    session; the reader logs the cause and restarts from the checkpoint with exponential backoff. Only
 *    BINLOG_PURGED, BINLOG_NO_START_POSITION, KINESIS_RECORD_TOO_LARGE, preflight and decode errors stop it.
 */
import os from 'node:os';
import { randomUUID } from 'node:crypto';
import { configFields, generalShape, kinesisShape, mysqlShape, redisShape } from '../core/config.ts';
import type { Decoded } from '../core/config.ts';
import { createKinesis } from '../core/clients/kinesis.ts';
import mysql from 'mysql2/promise';
import {
  mysqlConnectError,
  mysqlConnectionOptions,
  mysqlTlsOptions,
  resolveMysqlCredentials,
} from '../core/clients/mysql.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import { createRedis } from '../core/clients/redis.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { createBackfillSnapshotStore, createRedisCheckpointStore } from '../core/checkpoint.ts';
import type { CheckpointStore } from '../core/checkpoint.ts';
import { DrugsyncError, errorMessage, isDrugsyncError, wrapError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import { makeKeys } from '../core/keys.ts';
import type { Keys } from '../core/keys.ts';
import { createLogger, describeErrorMasked } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { compareBinlogPositions, formatBinlogPosition, serializePosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { classifyDdl } from './ddl.ts';
import { rowChangeEvents, rowRecord, tableEvent, tableRecords } from './row-events.ts';
import type { TxInfo } from './row-events.ts';
import { createRedisLease } from '../core/lease.ts';
import type { Lease } from '../core/lease.ts';
import { preflight, preflightError } from './preflight.ts';
import { Publisher, createKinesisSink } from './publisher.ts';
import { createWorkerCompressor } from '../core/compressor.ts';
import { REQUEST_TIMEOUT_MS } from '../core/clients/http.ts';
import type { KinesisSink, PublisherStats } from './publisher.ts';
import { createZongjiSource } from './source.ts';
import type { BinlogHandler, BinlogSource, EventPlace, RowsEvent, StartFrom } from './source.ts';

const { int, bool } = configFields;

export const readerShape = {
  /** gzip each record on the stream (~3.5× smaller: more events per shard within Kinesis' MB/s limits). */
  EVENT_GZIP: bool(true),
  /** Lease expiry; renewed every third of it. A second reader takes over at most this long after a crash. */
  READER_LEASE_TTL_MS: int(15_000, 1_000, 600_000),
  /** Publisher queue bounds: reading pauses when either is reached. */
  READER_QUEUE_RECORDS: int(20_000, 500, 10_000_000),
  READER_QUEUE_BYTES: int(32 * 1024 * 1024, 1024 * 1024),
  /** Silence after which the server is probed (SHOW MASTER STATUS); moved on without us → restart. */
  READER_STALL_SECONDS: int(30, 1, 3600),
  /** Heartbeat period asked of the server while idle (0: none). */
  READER_HEARTBEAT_SECONDS: int(5, 0, 3600),
  READER_METRICS_SECONDS: int(10, 1, 3600),
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
  checkpoints?: CheckpointStore;
  log?: Logger;
}

export type ReaderState =
  'waiting-lease' | 'starting' | 'streaming' | 'backoff' | 'stopping' | 'stopped' | 'failed';

export interface ReaderStats {
  state: ReaderState;
  rowEvents: number;
  tableEvents: number;
  transactions: number;
  /** the last checkpoint written */
  checkpoint: BinlogPosition | null;
  /** commit time (ms) of the transaction at the checkpoint */
  checkpointCommitTs: number | null;
  /** header time (ms) of the newest decoded event */
  lastEventTs: number | null;
  restarts: number;
  lastError: string | null;
  paused: boolean;
  queueRecords: number;
  queueBytes: number;
  publisher: PublisherStats;
  startedFrom: string | null;
}

export interface ReaderResult {
  reason: 'stopped' | 'idle';
  stats: ReaderStats;
}

export interface BinlogReaderHandle {
  stop(): Promise<ReaderResult>;
  readonly stats: ReaderStats;
  readonly done: Promise<ReaderResult>;
}

const FATAL: ErrorCode[] = [
  'BINLOG_PURGED',
  'BINLOG_NO_START_POSITION',
  'KINESIS_RECORD_TOO_LARGE',
  'MYSQL_PREFLIGHT_FAILED',
  'BINLOG_DECODE_FAILED',
  'CHECKPOINT_INVALID',
  'CONFIG_INVALID',
];

function isFatal(e: unknown): boolean {
  return isDrugsyncError(e) && FATAL.includes(e.code);
}

/**
 * Classifies a failure of the binlog stream: a DrugsyncError as it is (BINLOG_DECODE_FAILED from the row
 * decoders is fatal), configuration (TLS) as CONFIG_INVALID, MySQL error 1236 (binlog gone / position
 * invalid) as BINLOG_PURGED, anything else as a retryable MYSQL_QUERY_FAILED.
 */
async function dumpError(
  e: unknown,
  start: StartFrom,
  s: Pick<ReaderConfig, 'DB_HOST' | 'DB_PORT' | 'DB_TLS'>,
  cred: { user: string; password: string } | null,
): Promise<DrugsyncError> {
  if (isDrugsyncError(e)) return e;
  const config = await mysqlConnectError(e, s, cred);
  if (config) return config;
  const err = e as { errno?: number; code?: string; message?: string };
  const text = err?.message ?? String(e);
  const where = 'file' in start ? `${start.file}:${start.pos}` : `gtid ${start.gtid}`;
  if (err?.errno === 1236 || /could not find|purged|first log file name/i.test(text)) {
    return new DrugsyncError('BINLOG_PURGED', `the server cannot send the binlog from ${where}: ${text}`, {
      context: { start: where },
      cause: e,
      remedy:
        'the binlog at the checkpoint is gone: re-run the backfill (`drugsync backfill`), which records a new start position',
    });
  }
  return wrapError(e, 'MYSQL_QUERY_FAILED', `binlog stream failed (from ${where})`, {
    context: { start: where },
    retryable: true,
    remedy: 'the reader restarts from its checkpoint; check MySQL if this repeats',
  });
}

export function startBinlogReader(
  config: ReaderConfig,
  deps: ReaderDeps = {},
  options: ReaderOptions = {},
): BinlogReaderHandle {
  const log = deps.log ?? createLogger({ service: 'binlog-reader' });
  const keys: Keys = makeKeys(config);
  const owned: (() => Promise<void> | void)[] = [];
  const publisherStats: PublisherStats = {
    records: 0,
    batches: 0,
    retriedRecords: 0,
    failedCalls: 0,
    lastPutMs: 0,
    putMsTotal: 0,
  };
  const stats: ReaderStats = {
    state: 'starting',
    rowEvents: 0,
    tableEvents: 0,
    transactions: 0,
    checkpoint: null,
    checkpointCommitTs: null,
    lastEventTs: null,
    restarts: 0,
    lastError: null,
    paused: false,
    queueRecords: 0,
    queueBytes: 0,
    publisher: publisherStats,
    startedFrom: null,
  };
  let livePublisher: Publisher | null = null;
  // totals of finished sessions plus the running one
  Object.defineProperty(stats, 'publisher', {
    enumerable: true,
    get: (): PublisherStats => {
      const live = livePublisher?.stats;
      if (!live) return { ...publisherStats };
      const sum = { ...publisherStats };
      for (const k of Object.keys(sum) as (keyof PublisherStats)[]) sum[k] += live[k];
      sum.lastPutMs = live.lastPutMs;
      return sum;
    },
  });

  let stopping = false;
  let wake: (() => void) | null = null;
  let stopSession: (() => void) | null = null;
  const interruptibleSleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(done, ms);
      function done() {
        clearTimeout(t);
        wake = null;
        resolve();
      }
      wake = done;
    });

  const redis =
    deps.redis ??
    (() => {
      const r = createRedis(config);
      owned.push(() => void r.disconnect());
      return r;
    })();
  const kinesisSink =
    deps.sink ??
    (() => {
      const k = deps.kinesis ?? createKinesis(config);
      if (!deps.kinesis) owned.push(() => k.destroy());
      const sink = createKinesisSink(k, config.KINESIS_STREAM, {
        compress: config.EVENT_GZIP ? createWorkerCompressor(log) : null,
      });
      owned.push(() => void sink.close?.());
      return sink;
    })();
  const checkpoints = deps.checkpoints ?? createRedisCheckpointStore(redis, keys);
  const snapshots = createBackfillSnapshotStore(redis, keys);
  const owner = `${os.hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const lease: Lease = createRedisLease(redis, keys.readerLease, owner, config.READER_LEASE_TTL_MS);

  let creds: { user: string; password: string } | null = null;
  /**
   * Control queries (preflight, SHOW BINARY LOGS, the stall probe) each on a short-lived connection with a
   * timeout: a pooled connection could sit on the very network fault the probe is meant to detect.
   */
  const sql: Pick<MysqlPool, 'query'> = deps.pool ?? {
    async query<T>(text: string, params: unknown[] = []): Promise<T[]> {
      if (!creds) creds = await resolveMysqlCredentials(config, config.AWS_REGION);
      const { connectionLimit: _limit, ...opts } = mysqlConnectionOptions(config, creds);
      let conn: mysql.Connection | null = null;
      let timer: NodeJS.Timeout | undefined;
      try {
        conn = await mysql.createConnection({ ...opts, connectTimeout: 10_000 });
        const timeout = new Promise<never>((_, rej) => {
          timer = setTimeout(() => rej(new Error('no answer within 15 s')), 15_000);
        });
        const [rows] = await Promise.race([conn.query(text, params), timeout]);
        return rows as T[];
      } catch (e) {
        throw (
          (await mysqlConnectError(e, config, creds)) ??
          wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${text.slice(0, 40)})`, {
            context: { host: config.DB_HOST, port: config.DB_PORT },
            retryable: true,
            remedy: "check that MySQL is reachable with the reader's credentials",
          })
        );
      } finally {
        clearTimeout(timer);
        conn?.destroy();
      }
    },
  };
  const makeSource = async (): Promise<BinlogSource> => {
    if (deps.createSource) return deps.createSource();
    if (!creds) creds = await resolveMysqlCredentials(config, config.AWS_REGION);
    return createZongjiSource({
      host: config.DB_HOST,
      port: config.DB_PORT,
      user: creds.user,
      password: creds.password,
      ssl: mysqlTlsOptions(config),
      serverId: config.DB_SERVER_ID,
      schema: config.DB_NAME,
      table: config.DB_TABLE,
      heartbeatSeconds: config.READER_HEARTBEAT_SECONDS,
      fastRows: config.READER_FAST_ROW_DECODER,
      warn: (message) => log.warn(message),
    });
  };

  // ---- status hash + metrics ------------------------------------------------------------------------
  let lastMetrics = { at: Date.now(), events: 0, tx: 0, putMs: 0, batches: 0 };
  const lagSeconds = (idle: boolean) =>
    idle || stats.lastEventTs === null ? 0 : Math.max(0, (Date.now() - stats.lastEventTs) / 1000);
  let sessionIdle = () => true;
  const writeStatus = async (extra: Record<string, string> = {}) => {
    const now = Date.now();
    const dt = Math.max(0.001, (now - lastMetrics.at) / 1000);
    const events = stats.rowEvents + stats.tableEvents;
    const eventsPerSec = (events - lastMetrics.events) / dt;
    const txPerSec = (stats.transactions - lastMetrics.tx) / dt;
    const ps = stats.publisher;
    const batches = ps.batches - lastMetrics.batches;
    const putLatency = batches > 0 ? (ps.putMsTotal - lastMetrics.putMs) / batches : 0;
    lastMetrics = {
      at: now,
      events,
      tx: stats.transactions,
      putMs: ps.putMsTotal,
      batches: ps.batches,
    };
    const lag = lagSeconds(sessionIdle());
    const fields: Record<string, string> = {
      state: stats.state,
      owner,
      pid: String(process.pid),
      updated_at: String(now),
      events_total: String(events),
      tx_total: String(stats.transactions),
      events_per_sec: eventsPerSec.toFixed(1),
      tx_per_sec: txPerSec.toFixed(1),
      lag_seconds: lag.toFixed(1),
      put_latency_ms: putLatency.toFixed(1),
      put_retried_records: String(stats.publisher.retriedRecords),
      queue_records: String(stats.queueRecords),
      restarts: String(stats.restarts),
      ...(stats.checkpoint ? { checkpoint: serializePosition(stats.checkpoint) } : {}),
      ...(stats.checkpointCommitTs ? { checkpoint_commit_ts: String(stats.checkpointCommitTs) } : {}),
      ...(stats.lastEventTs ? { last_commit_ts: String(stats.lastEventTs) } : {}),
      ...extra,
    };
    return { fields, eventsPerSec, txPerSec, lag, putLatency };
  };
  const publishStatus = async (extra: Record<string, string> = {}, logLine = false) => {
    const m = await writeStatus(extra);
    if (logLine) {
      const emf =
        process.env.LOG_FORMAT === 'json'
          ? {
              _aws: {
                Timestamp: Date.now(),
                CloudWatchMetrics: [
                  {
                    Namespace: 'drugsync',
                    Dimensions: [['Service']],
                    Metrics: [
                      { Name: 'ReaderLagSeconds', Unit: 'Seconds' },
                      { Name: 'ReaderEventsPerSecond', Unit: 'Count/Second' },
                    ],
                  },
                ],
              },
              Service: 'binlog-reader',
              ReaderLagSeconds: Number(m.lag.toFixed(3)),
              ReaderEventsPerSecond: Number(m.eventsPerSec.toFixed(1)),
            }
          : {};
      log.info('metrics', {
        events_per_sec: Number(m.eventsPerSec.toFixed(1)),
        tx_per_sec: Number(m.txPerSec.toFixed(1)),
        lag_seconds: Number(m.lag.toFixed(1)),
        checkpoint: stats.checkpoint ? formatBinlogPosition(stats.checkpoint) : null,
        put_latency_ms: Number(m.putLatency.toFixed(1)),
        put_retried_records: stats.publisher.retriedRecords,
        queue_records: stats.queueRecords,
        paused: stats.paused,
        ...emf,
      });
    }
    try {
      await redis.hset(keys.serviceStatus('binlog-reader'), m.fields);
    } catch (e) {
      log.warn('cannot write the status hash', { error: errorMessage(e) });
    }
  };

  // ---- lease --------------------------------------------------------------------------------------------
  let leaseOkAt = 0;
  let leaseLost: ((e: DrugsyncError) => void) | null = null;
  let renewTimer: NodeJS.Timeout | null = null;
  const startRenewing = () => {
    leaseOkAt = Date.now();
    renewTimer = setInterval(
      () => {
        lease.renew().then(
          (ok) => {
            if (ok) leaseOkAt = Date.now();
            else
              leaseLost?.(
                new DrugsyncError('READER_LEASE_HELD', 'the reader lease was taken over by another reader', {
                  context: { key: lease.key },
                  retryable: true,
                }),
              );
          },
          (e) => {
            if (Date.now() - leaseOkAt > config.READER_LEASE_TTL_MS) {
              leaseLost?.(
                new DrugsyncError(
                  'READER_LEASE_HELD',
                  'the reader lease could not be renewed before it expired',
                  {
                    context: { key: lease.key },
                    cause: e,
                    retryable: true,
                  },
                ),
              );
            }
          },
        );
      },
      Math.max(200, Math.floor(config.READER_LEASE_TTL_MS / 3)),
    );
    renewTimer.unref?.();
  };
  const waitForLease = async (): Promise<boolean> => {
    stats.state = 'waiting-lease';
    let logged = 0;
    while (!stopping) {
      try {
        if (await lease.tryAcquire()) {
          log.info('reader lease taken', { key: lease.key, owner });
          return true;
        }
        const h = await lease.holder();
        if (logged++ % 20 === 0) {
          log.warn('another binlog reader holds the lease: waiting', {
            key: lease.key,
            holder: h.owner,
            expires_in_ms: h.ttlMs,
          });
          await publishStatus({ state: 'waiting-lease', lease_holder: h.owner ?? '' });
        }
      } catch (e) {
        log.warn('cannot reach Redis for the lease: retrying', { error: errorMessage(e) });
      }
      await interruptibleSleep(Math.max(200, Math.floor(config.READER_LEASE_TTL_MS / 3)));
    }
    return false;
  };

  // ---- start position ------------------------------------------------------------------------------------
  const resolveStart = async (): Promise<{ from: StartFrom; label: string; pos: BinlogPosition | null }> => {
    const cp = await checkpoints.load();
    if (cp)
      return {
        from: { file: cp.file, pos: cp.pos },
        label: `checkpoint ${formatBinlogPosition(cp)}`,
        pos: cp,
      };
    const snap = await snapshots.load();
    if (snap)
      return {
        from: { file: snap.file, pos: snap.pos },
        label: `backfill snapshot ${formatBinlogPosition(snap)}`,
        pos: snap,
      };
    if (options.from)
      return {
        from: { file: options.from.file, pos: options.from.pos },
        label: `--from ${formatBinlogPosition(options.from)}`,
        pos: options.from,
      };
    if (options.fromGtid)
      return { from: { gtid: options.fromGtid }, label: `--from-gtid ${options.fromGtid}`, pos: null };
    throw new DrugsyncError('BINLOG_NO_START_POSITION', 'the binlog reader has no position to start from', {
      context: { checkpoint_key: keys.readerCheckpoint, snapshot_key: keys.backfillSnapshot },
      remedy:
        'run the backfill first (`drugsync backfill`): it loads Redis and records where the reader starts; ' +
        'or pass --from FILE:POS / --from-gtid GTID when Redis already holds the data up to that point',
    });
  };

  const checkNotPurged = async (p: BinlogPosition) => {
    const rows = await sql.query<Record<string, unknown>>('SHOW BINARY LOGS');
    const files = rows.map((r) => String(r.Log_name));
    if (!files.includes(p.file)) {
      const oldest = files[0] ?? '(none)';
      const purged = files.length > 0 && compareBinlogPositions(p, { file: oldest, pos: 0 }) < 0;
      throw new DrugsyncError(
        'BINLOG_PURGED',
        `binlog file ${p.file} at the start position ${formatBinlogPosition(p)} ${purged ? 'has been purged' : 'does not exist on the server'} (oldest: ${oldest})`,
        {
          context: { file: p.file, pos: p.pos, oldest, host: config.DB_HOST, port: config.DB_PORT },
          remedy:
            're-run the backfill (`drugsync backfill`) to reload Redis and record a new start position; ' +
            'the reader never skips ahead. Keep binlog retention longer than any reader outage.',
        },
      );
    }
  };

  const probeServer = async (): Promise<{ file: string; pos: number } | null> => {
    for (const statement of ['SHOW MASTER STATUS', 'SHOW BINARY LOG STATUS']) {
      try {
        const rows = await sql.query<Record<string, unknown>>(statement);
        if (rows[0]) return { file: String(rows[0].File), pos: Number(rows[0].Position) };
        return null;
      } catch (e) {
        if (statement === 'SHOW BINARY LOG STATUS') throw e;
      }
    }
    return null;
  };

  // ---- one streaming session -------------------------------------------------------------------------------
  const runSession = async (start: { from: StartFrom; label: string }): Promise<'stopped' | 'idle'> => {
    const publisher = new Publisher(kinesisSink, {
      maxQueueRecords: config.READER_QUEUE_RECORDS,
      maxQueueBytes: config.READER_QUEUE_BYTES,
      maxOutageMs: config.READER_KINESIS_OUTAGE_SECONDS * 1000,
      concurrency: config.READER_PUT_CONCURRENCY,
      log,
      stream: config.KINESIS_STREAM,
    });
    livePublisher = publisher;
    const source = await makeSource();
    let shardKeys = await kinesisSink.openShardHashKeys();
    const schema = config.DB_NAME;
    const table = config.DB_TABLE;

    let tx: TxInfo | null = null;
    /** txid of the current transaction when it has deleted rows of the table (a commit event follows it) */
    let txDeletes: string | null = null;
    const commits: { seq: number; pos: BinlogPosition; ts: number }[] = [];
    let target: { pos: BinlogPosition; ts: number } | null = null;
    let saving: Promise<void> | null = null;
    let lastPacketAt = Date.now();
    let lastOwnEventAt = Date.now();
    let lastSeen: { file: string; pos: number } | null = 'file' in start.from ? { ...start.from } : null;
    let blocked = false;
    const backlog: (() => void)[] = [];

    let settle!: (v: 'stopped' | 'idle') => void;
    let reject!: (e: unknown) => void;
    const result = new Promise<'stopped' | 'idle'>((res, rej) => {
      settle = res;
      reject = rej;
    });
    let finished = false;
    const timers: NodeJS.Timeout[] = [];
    const cleanup = async () => {
      for (const t of timers) clearInterval(t);
      publisher.close();
      await source.stop();
    };
    const fail = (e: unknown) => {
      if (finished) return;
      finished = true;
      void cleanup().then(
        () => reject(e),
        () => reject(e),
      );
    };
    leaseLost = fail;
    publisher.onFailure(fail);
    sessionIdle = () => publisher.idle && commits.length === 0 && tx === null;

    const save = () => {
      if (saving || !target) return;
      const t = target;
      saving = checkpoints
        .save(t.pos)
        .then(() => {
          stats.checkpoint = t.pos;
          stats.checkpointCommitTs = t.ts;
          saving = null;
          if (target !== t) save();
        })
        .catch((e) => {
          saving = null;
          fail(e);
        });
    };
    const advance = () => {
      let reached: (typeof commits)[number] | undefined;
      while (commits.length && (commits[0] as (typeof commits)[number]).seq <= publisher.ackedSeq)
        reached = commits.shift();
      if (reached) {
        target = { pos: reached.pos, ts: reached.ts };
        save();
      }
    };
    const backpressure = () => {
      stats.queueRecords = publisher.queuedRecords;
      stats.queueBytes = publisher.bytes;
      if (publisher.full && !source.paused) {
        source.pause();
        stats.paused = true;
        log.debug('publisher queue full: reading paused', {
          records: publisher.queuedRecords,
          bytes: publisher.bytes,
        });
      }
    };
    publisher.onAck = () => {
      advance();
      stats.queueRecords = publisher.queuedRecords;
      stats.queueBytes = publisher.bytes;
      if (source.paused && !blocked && publisher.drained) {
        stats.paused = false;
        source.resume();
      }
    };
    const guard =
      <A extends unknown[]>(fn: (...a: A) => void) =>
      (...a: A) => {
        if (finished) return;
        if (blocked) {
          backlog.push(() => fn(...a));
          return;
        }
        try {
          lastPacketAt = Date.now();
          fn(...a);
        } catch (e) {
          fail(e);
        }
      };
    const commitPoint = (e: EventPlace) => {
      lastSeen = { file: e.file, pos: e.next };
      commits.push({
        seq: publisher.enqueuedSeq,
        pos: { file: e.file, pos: e.next, ...(e.gtid ? { gtid: e.gtid } : {}) },
        ts: e.ts,
      });
      advance();
    };

    const handler: BinlogHandler = {
      onRotate: guard((file: string, pos: number) => {
        lastSeen = { file, pos };
      }),
      onBegin: guard((e: EventPlace) => {
        txDeletes = null;
        tx = { txid: e.gtid ?? `${e.file}:${e.pos}`, gtid: e.gtid, ts: e.ts };
        if (e.next > 0) lastSeen = { file: e.file, pos: e.next };
      }),
      onRows: guard((e: RowsEvent) => {
        if (e.schema !== schema || e.table !== table) return;
        const t = tx ?? { txid: `${e.file}:${e.pos}`, gtid: e.gtid, ts: e.ts };
        const events = rowChangeEvents(e, t);
        if (tx && !txDeletes && events.some((x) => x.type === 'delete')) txDeletes = tx.txid;
        publisher.enqueue(events.map(rowRecord));
        stats.rowEvents += events.length;
        stats.lastEventTs = t.ts;
        lastOwnEventAt = Date.now();
        backpressure();
      }),
      onCommit: guard((e: EventPlace & { xid: string | null }) => {
        if (txDeletes !== null) {
          // the end of a transaction that deleted rows, on every shard (see the 'commit' table event)
          const ev = tableEvent('commit', { ...e, query: 'COMMIT', txid: txDeletes }, schema, table);
          publisher.enqueue(tableRecords(ev, shardKeys));
          txDeletes = null;
        }
        tx = null;
        stats.transactions += 1;
        commitPoint(e);
      }),
      onStatement: guard((e: EventPlace & { query: string; schema: string }) => {
        tx = null;
        const kind = classifyDdl(e.query, e.schema, { schema, table });
        if (kind === 'alter') {
          log.info('ALTER TABLE on the source table: decoding continues with the binlog column metadata', {
            statement: e.query.slice(0, 200),
            file: e.file,
            pos: e.pos,
          });
        }
        if (kind !== 'truncate' && kind !== 'resync') {
          commitPoint(e);
          return;
        }
        // A table event goes to every open shard: list them now (resharding), holding the stream meanwhile.
        blocked = true;
        source.pause();
        lastOwnEventAt = Date.now();
        kinesisSink
          .openShardHashKeys()
          .then((k) => {
            if (k.length) shardKeys = k;
            const ev = tableEvent(kind, e, schema, table);
            publisher.enqueue(tableRecords(ev, shardKeys));
            stats.tableEvents += 1;
            stats.lastEventTs = e.ts;
            log.warn(`${kind} of the source table: table event sent to ${shardKeys.length} shard(s)`, {
              statement: e.query.slice(0, 200),
              file: e.file,
              pos: e.pos,
            });
            commitPoint(e);
            blocked = false;
            while (backlog.length && !blocked && !finished) (backlog.shift() as () => void)();
            if (!publisher.full && !blocked) source.resume();
            else backpressure();
          })
          .catch((err) =>
            fail(
              wrapError(err, 'KINESIS_LIST_SHARDS_FAILED', 'ListShards failed', {
                context: { stream: config.KINESIS_STREAM },
                retryable: true,
                remedy:
                  'the reader restarts from its checkpoint; check the stream exists and the role may list its shards',
              }),
            ),
          );
      }),
      onHeartbeat: guard(() => {}),
      onError: (e) => void dumpError(e, start.from, config, creds).then(fail),
    };

    stopSession = () => {
      if (finished) return;
      stats.state = 'stopping';
      source.pause();
      void (async () => {
        const acked = await publisher.waitIdle(7_000);
        advance();
        while (saving) await saving;
        if (finished) return;
        finished = true;
        if (!acked)
          log.warn(
            'stopping with records not yet acknowledged: they are re-read from the checkpoint next time',
            { queued: publisher.queuedRecords },
          );
        await cleanup();
        settle('stopped');
      })().catch(fail);
    };

    // stall watchdog: silence → ask the server where it is; ahead of us → restart
    const stallMs = config.READER_STALL_SECONDS * 1000;
    // past the client's request timeout (every call ends by then) and the binlog stall bound
    const putStallMs = Math.max(stallMs, 2 * REQUEST_TIMEOUT_MS);
    timers.push(
      setInterval(
        () => {
          // a PutRecords call that neither ends nor fails would hold the source paused forever
          if (!finished && publisher.stalledMs > putStallMs) {
            fail(
              new DrugsyncError(
                'KINESIS_PUT_STALLED',
                `PutRecords calls in flight for ${Math.round(publisher.stalledMs / 1000)} s without an answer or an error`,
                {
                  context: { stream: config.KINESIS_STREAM, queued: publisher.queuedRecords },
                  retryable: true,
                  remedy:
                    'the reader restarts from its checkpoint (nothing acknowledged is lost); check Kinesis if this repeats',
                },
              ),
            );
            return;
          }
          if (finished || source.paused || Date.now() - lastPacketAt < stallMs) return;
          probeServer().then(
            (server) => {
              if (finished || Date.now() - lastPacketAt < stallMs) return;
              const seen = lastSeen;
              if (server && seen && (server.file !== seen.file || server.pos > seen.pos)) {
                fail(
                  new DrugsyncError(
                    'BINLOG_STALLED',
                    `no binlog event for ${Math.round((Date.now() - lastPacketAt) / 1000)} s although the server moved on`,
                    {
                      context: { server: `${server.file}:${server.pos}`, seen: `${seen.file}:${seen.pos}` },
                      retryable: true,
                      remedy:
                        'the reader restarts from its checkpoint; check the network between reader and MySQL if this repeats',
                    },
                  ),
                );
              } else {
                lastPacketAt = Date.now();
              }
            },
            (e) => fail(e),
          );
        },
        Math.max(250, Math.floor(stallMs / 4)),
      ),
    );
    if (options.onceIdleSeconds !== undefined) {
      const idleMs = options.onceIdleSeconds * 1000;
      timers.push(
        setInterval(() => {
          if (finished || blocked || !sessionIdle() || saving) return;
          if (target && stats.checkpoint !== target.pos) return;
          if (Date.now() - lastOwnEventAt < idleMs) return;
          finished = true;
          void cleanup().then(() => settle('idle'), reject);
        }, 100),
      );
    }

    stats.state = 'streaming';
    stats.startedFrom = start.label;
    log.info('streaming', {
      from: start.label,
      stream: config.KINESIS_STREAM,
      shards: shardKeys.length,
      table: `${schema}.${table}`,
    });
    if (stopping) {
      finished = true;
      await cleanup();
      return 'stopped';
    }
    source.start(start.from, handler);
    try {
      return await result;
    } finally {
      stopSession = null;
      leaseLost = null;
      for (const k of Object.keys(publisherStats) as (keyof PublisherStats)[])
        publisherStats[k] += publisher.stats[k];
      livePublisher = null;
    }
  };

  // ---- the service loop --------------------------------------------------------------------------------------
  const run = async (): Promise<ReaderResult> => {
    const metricsTimer = setInterval(
      () => void publishStatus({}, true),
      config.READER_METRICS_SECONDS * 1000,
    );
    metricsTimer.unref?.();
    try {
      let attempt = 0;
      let haveLease = false;
      let preflightDone = !!options.skipPreflight;
      while (!stopping) {
        if (!haveLease) {
          if (!(await waitForLease())) break;
          haveLease = true;
          startRenewing();
        }
        let progressedFrom: BinlogPosition | null = null;
        try {
          stats.state = 'starting';
          if (!preflightDone) {
            const r = await preflight(sql, config.DB_NAME, config.DB_TABLE);
            for (const w of r.warnings) log.warn(w, { server: r.server });
            if (r.problems.length) throw preflightError(r, config.DB_HOST, config.DB_PORT);
            log.info('preflight passed', { server: r.server, retention_seconds: r.retentionSeconds });
            preflightDone = true;
          }
          const start = await resolveStart();
          if (start.pos && !deps.createSource) await checkNotPurged(start.pos);
          progressedFrom = stats.checkpoint;
          const outcome = await runSession(start);
          return { reason: outcome, stats };
        } catch (e) {
          if (isFatal(e) || stopping) throw e;
          const err = isDrugsyncError(e)
            ? e
            : wrapError(e, 'INTERNAL', 'binlog reader session failed', { retryable: true });
          if (isDrugsyncError(err, 'READER_LEASE_HELD')) {
            if (renewTimer) clearInterval(renewTimer);
            haveLease = false;
          }
          if (stats.checkpoint !== progressedFrom) attempt = 0;
          attempt += 1;
          stats.restarts += 1;
          stats.lastError = describeErrorMasked(err);
          const delay = Math.min(500 * 2 ** (attempt - 1), config.READER_MAX_BACKOFF_SECONDS * 1000);
          stats.state = 'backoff';
          log.warn('binlog reader restarting from its checkpoint', {
            cause: err,
            attempt,
            delay_ms: delay,
            checkpoint: stats.checkpoint ? formatBinlogPosition(stats.checkpoint) : null,
          });
          await publishStatus({
            last_error: describeErrorMasked(err).slice(0, 1000),
            last_error_at: String(Date.now()),
          });
          await interruptibleSleep(delay);
        }
      }
      return { reason: 'stopped', stats };
    } catch (e) {
      stats.state = 'failed';
      stats.lastError = describeErrorMasked(e);
      await publishStatus({ last_error: stats.lastError.slice(0, 1000), last_error_at: String(Date.now()) });
      throw e;
    } finally {
      clearInterval(metricsTimer);
      if (renewTimer) clearInterval(renewTimer);
      if (stats.state !== 'failed') stats.state = 'stopped';
      await publishStatus({}, true);
      try {
        await lease.release();
      } catch (e) {
        log.warn('cannot release the reader lease (it expires by itself)', { error: errorMessage(e) });
      }
      for (const close of owned.reverse()) {
        try {
          await close();
        } catch (e) {
          log.debug('closing a client failed', { error: errorMessage(e) });
        }
      }
    }
  };

  const done = run();
  done.catch(() => undefined);
  return {
    stats,
    done,
    async stop() {
      stopping = true;
      wake?.();
      stopSession?.();
      return done;
    },
  };
}
