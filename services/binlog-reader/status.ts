/**
 * The reader's status: the hash `keys.serviceStatus('binlog-reader')` (its schema, ../core/status/reader.ts,
 * is what `drugsync status` and the supervisor read it with) and, every READER_METRICS_SECONDS on the
 * reader's own timer (whatever its work loop is doing: streaming, reconnecting, waiting for its lease, backing
 * off), a `metrics` log line; under LOG_FORMAT=json an EMF record (ReaderLagSeconds, ReaderStallSeconds,
 * ReaderEventsPerSecond; ../core/metrics.ts) follows it. Lag and stall come from ./progress.ts, sampled at
 * each publish.
 *
 * `measureStatus` is the pure part: rates since the previous measurement and the status.
 */
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { METRICS } from '../core/metrics.ts';
import type { MetricEmitter, MetricName } from '../core/metrics.ts';
import { formatBinlogPosition, serializePosition } from '../core/position.ts';
import { readerStatus } from '../core/status/reader.ts';
import type { ReaderStatus } from '../core/status/reader.ts';
import { ReaderProgress } from './progress.ts';
import type { PublisherTotals, ReaderStats } from './reader-stats.ts';

/** Counters at the previous measurement, to turn totals into rates. */
export interface StatusMark {
  at: number;
  events: number;
  tx: number;
  putMs: number;
  batches: number;
}

/** What the reader adds to its status at a moment of its own: its state, the lease holder, an error. */
export type ReaderStatusExtra = Partial<
  Pick<ReaderStatus, 'state' | 'lease_holder' | 'last_error' | 'last_error_at'>
>;

export interface StatusMeasure {
  /** what the hash gets (encoded by `readerStatus`) */
  status: ReaderStatus;
  eventsPerSec: number;
  txPerSec: number;
  lag: number;
  stall: number;
  putLatency: number;
  /** the mark for the next measurement */
  mark: StatusMark;
}

export interface StatusInput {
  stats: ReaderStats;
  owner: string;
  /** READER_METRICS_SECONDS: how often the status is published */
  periodSeconds: number;
  /** ReaderLagSeconds and ReaderStallSeconds now (./progress.ts) */
  lag: number;
  stall: number;
  now: number;
  extra?: ReaderStatusExtra;
}

/** The status and the rates since `prev`. */
export function measureStatus(prev: StatusMark, input: StatusInput): StatusMeasure {
  const { stats, now } = input;
  const dt = Math.max(0.001, (now - prev.at) / 1000);
  const events = stats.rowEvents + stats.tableEvents;
  const eventsPerSec = (events - prev.events) / dt;
  const txPerSec = (stats.transactions - prev.tx) / dt;
  const ps = stats.publisher;
  const batches = ps.batches - prev.batches;
  const putLatency = batches > 0 ? (ps.putMsTotal - prev.putMs) / batches : 0;
  const mark = { at: now, events, tx: stats.transactions, putMs: ps.putMsTotal, batches: ps.batches };
  const { lag, stall } = input;
  const status: ReaderStatus = {
    state: stats.state,
    owner: input.owner,
    pid: process.pid,
    updated_at: now,
    events_total: events,
    tx_total: stats.transactions,
    events_per_sec: eventsPerSec,
    tx_per_sec: txPerSec,
    lag_seconds: lag,
    stall_seconds: stall,
    put_latency_ms: putLatency,
    put_retried_records: ps.retriedRecords,
    queue_records: stats.queueRecords,
    restarts: stats.restarts,
    period_seconds: input.periodSeconds,
    ...(stats.checkpoint ? { checkpoint: serializePosition(stats.checkpoint) } : {}),
    ...(stats.checkpointCommitTs ? { checkpoint_commit_ts: stats.checkpointCommitTs } : {}),
    ...(stats.lastEventTs ? { last_commit_ts: stats.lastEventTs } : {}),
    ...input.extra,
  };
  return { status, eventsPerSec, txPerSec, lag, stall, putLatency, mark };
}

/** The reader's metric values of one measurement (its SERVICE_METRICS). */
export function readerMetricValues(m: StatusMeasure): Partial<Record<MetricName, number>> {
  return {
    [METRICS.ReaderLagSeconds]: Number(m.lag.toFixed(3)),
    [METRICS.ReaderStallSeconds]: Number(m.stall.toFixed(3)),
    [METRICS.ReaderEventsPerSecond]: Number(m.eventsPerSec.toFixed(1)),
  };
}

export interface ReaderStatusPublisherDeps {
  stats: ReaderStats;
  /** the sessions' publishers (which session runs, what it had acknowledged) */
  totals: Pick<PublisherTotals, 'sessions' | 'liveRecords'>;
  owner: string;
  log: Logger;
  redis: { hset(key: string, fields: Record<string, string>): Promise<unknown> };
  key: string;
  /** where the metrics line's EMF record goes (../core/metrics.ts createMetricEmitter) */
  metrics: MetricEmitter;
  /** READER_METRICS_SECONDS: how often `publish` is called on the reader's timer */
  periodSeconds: number;
  now?: () => number;
}

/**
 * Writes the reader's status hash (and the metrics line on request); a failure (Redis, a value the schema
 * refuses) is logged, never thrown. Each call samples the reader's progress first.
 */
export class ReaderStatusPublisher {
  private mark: StatusMark;
  private readonly now: () => number;
  private readonly progress: ReaderProgress;

  constructor(private readonly deps: ReaderStatusPublisherDeps) {
    this.now = deps.now ?? Date.now;
    const now = this.now();
    this.mark = { at: now, events: 0, tx: 0, putMs: 0, batches: 0 };
    this.progress = new ReaderProgress(now);
  }

  async publish(extra: ReaderStatusExtra = {}, logLine = false): Promise<void> {
    const { stats, log, totals } = this.deps;
    const now = this.now();
    this.progress.observe(
      {
        checkpoint: stats.checkpoint ? serializePosition(stats.checkpoint) : null,
        checkpointCommitTs: stats.checkpointCommitTs,
        session: totals.sessions,
        sessionAcked: totals.liveRecords,
        caughtUp: stats.caughtUp,
      },
      now,
    );
    const lag = this.progress.lagSeconds(now);
    const stall = this.progress.stallSeconds(now);
    const { owner, periodSeconds } = this.deps;
    const m = measureStatus(this.mark, { stats, owner, periodSeconds, lag, stall, now, extra });
    this.mark = m.mark;
    if (logLine) {
      log.info('metrics', {
        state: stats.state,
        events_per_sec: Number(m.eventsPerSec.toFixed(1)),
        tx_per_sec: Number(m.txPerSec.toFixed(1)),
        lag_seconds: Number(m.lag.toFixed(1)),
        stall_seconds: Number(m.stall.toFixed(1)),
        checkpoint: stats.checkpoint ? formatBinlogPosition(stats.checkpoint) : null,
        put_latency_ms: Number(m.putLatency.toFixed(1)),
        put_retried_records: stats.publisher.retriedRecords,
        queue_records: stats.queueRecords,
        paused: stats.paused,
      });
      this.deps.metrics.emit(readerMetricValues(m), now);
    }
    try {
      await this.deps.redis.hset(this.deps.key, readerStatus.encode(m.status));
    } catch (e) {
      log.warn('cannot write the status hash', { error: errorMessage(e) });
    }
  }
}
