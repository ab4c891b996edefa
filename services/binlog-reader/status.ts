/**
 * The reader's status: the hash `keys.serviceStatus('binlog-reader')` (read by `drugsync status` and the
 * supervisor) and, every READER_METRICS_SECONDS, a `metrics` log line; under LOG_FORMAT=json that line also
 * carries CloudWatch Embedded Metric Format fields (ReaderLagSeconds, ReaderEventsPerSecond).
 *
 * `measureStatus` is the pure part: rates since the previous measurement and the hash fields.
 */
import { errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { METRICS, READER_METRIC_DIMENSIONS, emfFields } from '../core/metrics.ts';
import { formatBinlogPosition, serializePosition } from '../core/position.ts';
import type { ReaderStats } from './reader-stats.ts';

/** Counters at the previous measurement, to turn totals into rates. */
export interface StatusMark {
  at: number;
  events: number;
  tx: number;
  putMs: number;
  batches: number;
}

export interface StatusMeasure {
  fields: Record<string, string>;
  eventsPerSec: number;
  txPerSec: number;
  lag: number;
  putLatency: number;
  /** the mark for the next measurement */
  mark: StatusMark;
}

export interface StatusInput {
  stats: ReaderStats;
  owner: string;
  /** nothing queued, no commit pending, no open transaction: the reader is caught up (lag 0) */
  idle: boolean;
  now: number;
  extra?: Record<string, string>;
}

/** Seconds between now and the newest event's binlog time; 0 when caught up or nothing was read yet. */
export function lagSeconds(stats: Pick<ReaderStats, 'lastEventTs'>, idle: boolean, now: number): number {
  return idle || stats.lastEventTs === null ? 0 : Math.max(0, (now - stats.lastEventTs) / 1000);
}

/** The status hash fields and the rates since `prev`. */
export function measureStatus(prev: StatusMark, s: StatusInput): StatusMeasure {
  const { stats, now } = s;
  const dt = Math.max(0.001, (now - prev.at) / 1000);
  const events = stats.rowEvents + stats.tableEvents;
  const eventsPerSec = (events - prev.events) / dt;
  const txPerSec = (stats.transactions - prev.tx) / dt;
  const ps = stats.publisher;
  const batches = ps.batches - prev.batches;
  const putLatency = batches > 0 ? (ps.putMsTotal - prev.putMs) / batches : 0;
  const mark = { at: now, events, tx: stats.transactions, putMs: ps.putMsTotal, batches: ps.batches };
  const lag = lagSeconds(stats, s.idle, now);
  const fields: Record<string, string> = {
    state: stats.state,
    owner: s.owner,
    pid: String(process.pid),
    updated_at: String(now),
    events_total: String(events),
    tx_total: String(stats.transactions),
    events_per_sec: eventsPerSec.toFixed(1),
    tx_per_sec: txPerSec.toFixed(1),
    lag_seconds: lag.toFixed(1),
    put_latency_ms: putLatency.toFixed(1),
    put_retried_records: String(ps.retriedRecords),
    queue_records: String(stats.queueRecords),
    restarts: String(stats.restarts),
    ...(stats.checkpoint ? { checkpoint: serializePosition(stats.checkpoint) } : {}),
    ...(stats.checkpointCommitTs ? { checkpoint_commit_ts: String(stats.checkpointCommitTs) } : {}),
    ...(stats.lastEventTs ? { last_commit_ts: String(stats.lastEventTs) } : {}),
    ...s.extra,
  };
  return { fields, eventsPerSec, txPerSec, lag, putLatency, mark };
}

/** CloudWatch Embedded Metric Format fields for the metrics line (LOG_FORMAT=json only). */
function metricFields(m: StatusMeasure, now: number): Record<string, unknown> {
  if (process.env.LOG_FORMAT !== 'json') return {};
  const values = {
    [METRICS.ReaderLagSeconds]: Number(m.lag.toFixed(3)),
    [METRICS.ReaderEventsPerSecond]: Number(m.eventsPerSec.toFixed(1)),
  };
  return emfFields(READER_METRIC_DIMENSIONS, values, {}, now);
}

export interface StatusPublisherDeps {
  stats: ReaderStats;
  owner: string;
  log: Logger;
  redis: { hset(key: string, fields: Record<string, string>): Promise<unknown> };
  key: string;
  /** see StatusInput.idle */
  idle(): boolean;
  now?: () => number;
}

/** Writes the status hash (and the metrics line on request); a Redis failure is logged, never thrown. */
export class StatusPublisher {
  private mark: StatusMark;
  private readonly now: () => number;

  constructor(private readonly d: StatusPublisherDeps) {
    this.now = d.now ?? Date.now;
    this.mark = { at: this.now(), events: 0, tx: 0, putMs: 0, batches: 0 };
  }

  async publish(extra: Record<string, string> = {}, logLine = false): Promise<void> {
    const { stats, log } = this.d;
    const now = this.now();
    const m = measureStatus(this.mark, { stats, owner: this.d.owner, idle: this.d.idle(), now, extra });
    this.mark = m.mark;
    if (logLine) {
      log.info('metrics', {
        events_per_sec: Number(m.eventsPerSec.toFixed(1)),
        tx_per_sec: Number(m.txPerSec.toFixed(1)),
        lag_seconds: Number(m.lag.toFixed(1)),
        checkpoint: stats.checkpoint ? formatBinlogPosition(stats.checkpoint) : null,
        put_latency_ms: Number(m.putLatency.toFixed(1)),
        put_retried_records: stats.publisher.retriedRecords,
        queue_records: stats.queueRecords,
        paused: stats.paused,
        ...metricFields(m, this.now()),
      });
    }
    try {
      await this.d.redis.hset(this.d.key, m.fields);
    } catch (e) {
      log.warn('cannot write the status hash', { error: errorMessage(e) });
    }
  }
}
