/**
 * The binlog reader service: binlog (zongji) → change events → Kinesis, checkpoint in Redis.
 *
 * `startBinlogReader(config, deps, options)` runs it in-process and returns {stop(), stats, done}; the
 * `drugsync binlog-reader` command and the tests use it. One run:
 *
 * 1. waits for the lease (one reader at a time, ./lease-keeper.ts), runs the preflight (every problem at
 *    once, ./preflight.ts);
 * 2. resolves the start (./start-position.ts): checkpoint, else the backfill's snapshot position, else
 *    --from / --from-gtid, else refuses (BINLOG_NO_START_POSITION); a start file the server no longer has →
 *    BINLOG_PURGED;
 * 3. streams (./session.ts): each row event is published as soon as it is decoded (a binlog only holds
 *    committed transactions, so nothing is buffered until the commit; memory is bounded by the publisher
 *    queue, and the socket is paused while the queue is full); each commit (XID / COMMIT / standalone
 *    statement) is a checkpoint candidate that becomes the checkpoint once every record queued before it is
 *    acknowledged (./commit-tracker.ts, ./checkpoint-chain.ts);
 * 4. any failure (MySQL connection, handler exception, stalled socket, Kinesis or Redis outage, lost lease)
 *    ends the session; the reader logs the cause and restarts from the checkpoint with exponential backoff.
 *    Only BINLOG_PURGED, BINLOG_NO_START_POSITION, KINESIS_RECORD_TOO_LARGE, preflight and decode errors
 *    stop it.
 *
 * The status hash and the metrics line: ./status.ts.
 */
import { backoffDelay, sleep } from '../core/backoff.ts';
import { createBackfillSnapshotStore, createReaderCheckpointStore, withSource } from '../core/checkpoint.ts';
import type { BinlogPositionStore } from '../core/checkpoint.ts';
import { createKinesis } from '../core/clients/kinesis.ts';
import { createRedis } from '../core/clients/redis.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { createWorkerCompressor } from '../core/compressor.ts';
import { errorMessage, isDrugsyncError, wrapError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import { makeKeys } from '../core/keys.ts';
import type { Keys } from '../core/keys.ts';
import { createRedisLease, leaseOwnerId } from '../core/lease.ts';
import type { Lease } from '../core/lease.ts';
import { createLogger, describeErrorMasked } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { createMetricEmitter } from '../core/metrics.ts';
import { formatBinlogPosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { probeSource } from '../core/source-identity.ts';
import { ReaderLease } from './lease-keeper.ts';
import { preflight, preflightError } from './preflight.ts';
import { Publisher } from './publisher.ts';
import { createKinesisSink } from './kinesis-sink.ts';
import { AGGREGATED_BATCH, createAggregatingSink } from './aggregating-sink.ts';
import type { AggregatingSinkOptions } from './aggregating-sink.ts';
import type { KinesisSink } from './kinesis-sink.ts';
import type { ReaderConfig, ReaderDeps, ReaderOptions } from './reader-config.ts';
import { ReaderMysql } from './reader-mysql.ts';
import { PublisherTotals, createReaderStats } from './reader-stats.ts';
import type { ReaderStats } from './reader-stats.ts';
import { ReaderSession } from './session.ts';
import type { SessionEnd } from './session.ts';
import { resolveStart } from './start-position.ts';
import type { SessionStart } from './start-position.ts';
import { ReaderStatusPublisher } from './status.ts';
import type { ReaderStatusExtra } from './status.ts';

export { readerConfigShape, readerShape } from './reader-config.ts';
export type { ReaderConfig, ReaderDeps, ReaderOptions } from './reader-config.ts';
export type { ReaderState, ReaderStats } from './reader-stats.ts';

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
  'BINLOG_SOURCE_CHANGED',
  'KINESIS_RECORD_TOO_LARGE',
  'MYSQL_PREFLIGHT_FAILED',
  'BINLOG_DECODE_FAILED',
  'CHECKPOINT_INVALID',
  'CONFIG_INVALID',
];

function isFatal(e: unknown): boolean {
  return isDrugsyncError(e) && FATAL.includes(e.code);
}

/** Restart waits: 0.5 s doubling up to READER_MAX_BACKOFF_SECONDS, no jitter (one reader). */
const RESTART_BASE_MS = 500;

/** The Redis and Kinesis clients and stores of one reader, and how to close what it opened itself. */
interface ReaderClients {
  redis: RedisClient;
  sink: KinesisSink;
  /** the reader lease; the checkpoint writes are fenced on its token */
  lease: Lease;
  checkpoints: BinlogPositionStore;
  snapshots: BinlogPositionStore;
  /** closers of the clients created here (not those passed in deps), in opening order */
  owned: (() => Promise<void> | void)[];
}

function openClients(config: ReaderConfig, deps: ReaderDeps, keys: Keys, log: Logger): ReaderClients {
  const owned: ReaderClients['owned'] = [];
  let redis = deps.redis;
  if (!redis) {
    const r = createRedis(config);
    owned.push(() => void r.disconnect());
    redis = r;
  }
  let sink = deps.sink;
  if (!sink) {
    const k = deps.kinesis ?? createKinesis(config);
    if (!deps.kinesis) owned.push(() => k.destroy());
    const s = config.KINESIS_AGGREGATION
      ? createAggregatingSink(k, config.KINESIS_STREAM, aggregateFraming(config, log))
      : createKinesisSink(k, config.KINESIS_STREAM, {
          compress: config.EVENT_GZIP ? createWorkerCompressor(log) : null,
        });
    owned.push(() => void s.close?.());
    sink = s;
  }
  const lease = createRedisLease(redis, keys.readerLease, leaseOwnerId(), config.READER_LEASE_TTL_MS);
  const checkpoints = deps.checkpoints ?? createReaderCheckpointStore(redis, keys, lease);
  return { redis, sink, lease, checkpoints, snapshots: createBackfillSnapshotStore(redis, keys), owned };
}

/** The aggregating sink's options: zstd frames are made on a worker thread, closed with the sink. */
export function aggregateFraming(config: ReaderConfig, log: Logger): AggregatingSinkOptions {
  const compression = config.KINESIS_AGGREGATE_COMPRESSION;
  if (compression !== 'zstd') return { compression };
  const worker = createWorkerCompressor(log, { zstd: true });
  return { compression, frame: (kpls) => worker.compress(kpls), close: () => worker.close() };
}

/** The error and its time as status hash fields. */
function errorFields(err: unknown): ReaderStatusExtra {
  return { last_error: describeErrorMasked(err).slice(0, 1000), last_error_at: Date.now() };
}

class BinlogReader {
  readonly stats: ReaderStats;
  private readonly log: Logger;
  private readonly keys: Keys;
  private readonly clients: ReaderClients;
  private readonly mysql: ReaderMysql;
  private readonly lease: ReaderLease;
  private readonly status: ReaderStatusPublisher;
  private readonly totals = new PublisherTotals();
  private readonly stopSignal = new AbortController();
  /** the running session (null between sessions) */
  private session: ReaderSession | null = null;
  private preflightDone: boolean;

  constructor(
    private readonly config: ReaderConfig,
    private readonly deps: ReaderDeps,
    private readonly options: ReaderOptions,
  ) {
    this.log = deps.log ?? createLogger({ service: 'binlog-reader' });
    this.keys = makeKeys(config);
    this.stats = createReaderStats(this.totals);
    this.clients = openClients(config, deps, this.keys, this.log);
    this.mysql = new ReaderMysql(config, this.log, deps.pool);
    const owner = this.clients.lease.owner;
    this.lease = new ReaderLease(this.clients.lease, config.READER_LEASE_TTL_MS, this.log);
    this.status = new ReaderStatusPublisher({
      stats: this.stats,
      totals: this.totals,
      owner,
      log: this.log,
      redis: this.clients.redis,
      key: this.keys.serviceStatus('binlog-reader'),
      metrics: deps.metrics ?? createMetricEmitter('reader', config.DRUGSYNC_STAGE),
      periodSeconds: config.READER_METRICS_SECONDS,
      ...(deps.clock ? { now: deps.clock } : {}),
    });
    this.preflightDone = !!options.skipPreflight;
  }

  private get stopping(): boolean {
    return this.stopSignal.signal.aborted;
  }

  stop(): void {
    this.stopSignal.abort();
    this.session?.stop();
  }

  /** The service loop: sessions until stopped, idle (--once-idle) or a fatal error. */
  async run(): Promise<ReaderResult> {
    const metricsTimer = setInterval(
      () => void this.status.publish({}, true),
      this.config.READER_METRICS_SECONDS * 1000,
    );
    metricsTimer.unref?.();
    try {
      return await this.loop();
    } catch (e) {
      this.stats.state = 'failed';
      this.stats.lastError = describeErrorMasked(e);
      await this.status.publish(errorFields(e));
      throw e;
    } finally {
      clearInterval(metricsTimer);
      await this.shutdown();
    }
  }

  private async loop(): Promise<ReaderResult> {
    let attempt = 0;
    while (!this.stopping) {
      if (!this.lease.held && !(await this.acquireLease())) break;
      const progressedFrom = this.stats.checkpoint;
      try {
        return { reason: await this.startSession(), stats: this.stats };
      } catch (e) {
        if (isFatal(e) || this.stopping) throw e;
        attempt = this.stats.checkpoint !== progressedFrom ? 1 : attempt + 1;
        await this.restartAfter(e, attempt);
      }
    }
    return { reason: 'stopped', stats: this.stats };
  }

  private acquireLease(): Promise<boolean> {
    this.stats.state = 'waiting-lease';
    return this.lease.acquire({
      stopping: () => this.stopping,
      sleep: (ms) => sleep(ms, this.stopSignal.signal),
      onHeld: (holder) => this.status.publish({ state: 'waiting-lease', lease_holder: holder.owner ?? '' }),
    });
  }

  /** Logs the failure, records it in the status hash and waits before the next session. */
  private async restartAfter(e: unknown, attempt: number): Promise<void> {
    const err = isDrugsyncError(e)
      ? e
      : wrapError(e, 'INTERNAL', 'binlog reader session failed', { retryable: true });
    if (isDrugsyncError(err, 'READER_LEASE_HELD')) this.lease.drop();
    this.stats.restarts += 1;
    this.stats.lastError = describeErrorMasked(err);
    const maxMs = this.config.READER_MAX_BACKOFF_SECONDS * 1000;
    const delay = backoffDelay(attempt - 1, { baseMs: RESTART_BASE_MS, maxMs, jitter: 'none' });
    this.stats.state = 'backoff';
    this.log.warn('binlog reader restarting from its checkpoint', {
      cause: err,
      attempt,
      delay_ms: delay,
      checkpoint: this.stats.checkpoint ? formatBinlogPosition(this.stats.checkpoint) : null,
    });
    await this.status.publish(errorFields(err));
    await sleep(delay, this.stopSignal.signal);
  }

  /** Preflight (once), start position, then one session. */
  private async startSession(): Promise<SessionEnd> {
    this.stats.state = 'starting';
    if (!this.preflightDone) await this.runPreflight();
    const probe = this.deps.createSource
      ? undefined
      : (at: BinlogPosition | null) => probeSource(this.mysql.sql, at);
    const start = await resolveStart({
      ...this.clients,
      options: this.options,
      keys: this.keys,
      probe,
      log: this.log,
    });
    if (start.pos && !this.deps.createSource) await this.mysql.checkNotPurged(start.pos);
    return this.runSession(start);
  }

  private async runPreflight(): Promise<void> {
    const { config, log } = this;
    const r = await preflight(this.mysql.sql, config.DB_NAME, config.DB_TABLE);
    for (const w of r.warnings) log.warn(w, { server: r.server });
    if (r.problems.length) throw preflightError(r, config.DB_HOST, config.DB_PORT);
    log.info('preflight passed', { server: r.server, retention_seconds: r.retentionSeconds });
    this.preflightDone = true;
  }

  private async runSession(start: SessionStart): Promise<SessionEnd> {
    const publisher = this.newPublisher();
    this.totals.track(publisher);
    try {
      const session = await this.newSession(start, publisher).catch((e: unknown) => {
        publisher.close();
        throw e;
      });
      this.streaming(start);
      if (this.stopping) return await session.abandon();
      this.session = session;
      this.lease.watch(session.fail);
      return await session.run();
    } finally {
      this.session = null;
      this.lease.unwatch();
      this.totals.close();
    }
  }

  private newPublisher(): Publisher {
    const c = this.config;
    return new Publisher(this.clients.sink, {
      maxQueueRecords: c.READER_QUEUE_RECORDS,
      maxQueueBytes: c.READER_QUEUE_BYTES,
      maxOutageMs: c.READER_KINESIS_OUTAGE_SECONDS * 1000,
      concurrency: c.READER_PUT_CONCURRENCY,
      log: this.log,
      stream: c.KINESIS_STREAM,
      // an aggregating sink packs a call's events into a few records: calls carry many more events
      ...(c.KINESIS_AGGREGATION ? AGGREGATED_BATCH : {}),
    });
  }

  private async newSession(start: SessionStart, publisher: Publisher): Promise<ReaderSession> {
    const source = this.deps.createSource ? this.deps.createSource() : await this.mysql.openSource();
    const session = new ReaderSession(
      {
        config: this.config,
        onceIdleSeconds: this.options.onceIdleSeconds,
        log: this.log,
        stats: this.stats,
        sink: this.clients.sink,
        source,
        publisher,
        checkpoints: start.source
          ? withSource(this.clients.checkpoints, start.source)
          : this.clients.checkpoints,
        serverPosition: () => this.mysql.serverPosition(),
        streamError: (e, from) => this.mysql.streamError(e, from),
      },
      start,
    );
    return session;
  }

  private streaming(start: SessionStart): void {
    this.stats.state = 'streaming';
    this.stats.startedFrom = start.label;
    this.log.info('streaming', {
      from: start.label,
      stream: this.config.KINESIS_STREAM,
      table: `${this.config.DB_NAME}.${this.config.DB_TABLE}`,
    });
  }

  /** Final status, lease released, the clients opened here closed. */
  private async shutdown(): Promise<void> {
    if (this.stats.state !== 'failed') this.stats.state = 'stopped';
    this.lease.drop();
    await this.status.publish({}, true);
    await this.lease.release();
    for (const close of this.clients.owned.reverse()) {
      try {
        await close();
      } catch (e) {
        this.log.debug('closing a client failed', { error: errorMessage(e) });
      }
    }
  }
}

export function startBinlogReader(
  config: ReaderConfig,
  deps: ReaderDeps = {},
  options: ReaderOptions = {},
): BinlogReaderHandle {
  const reader = new BinlogReader(config, deps, options);
  const done = reader.run();
  done.catch(() => undefined);
  return {
    stats: reader.stats,
    done,
    async stop() {
      reader.stop();
      return done;
    },
  };
}
