/**
 * The consumer's status: every tick it tracks loads (load-tracker.ts), logs progress at most every 10 s,
 * and publishes the status hash (keys.serviceStatus('embedder'); its schema, ../core/status/embedder.ts, is
 * what `drugsync status` and `drugsync stream` read it with), the stall and lag of ./progress.ts included.
 */
import type { Logger } from '../core/log.ts';
import { embedderStatus } from '../core/status/embedder.ts';
import type { EmbedderStatus } from '../core/status/embedder.ts';
import { LoadTracker } from './load-tracker.ts';
import type { LoadInProgress, LoadSummary, LoadTrackerOptions } from './load-tracker.ts';
import type { ConsumerStats } from './consumer-types.ts';
import { millisBehind, stallSeconds } from './progress.ts';
import type { BatchStats } from './types.ts';

const PROGRESS_LOG_EVERY_MS = 10_000;

export interface StatusTarget {
  redis: { hset(key: string, fields: Record<string, string>): Promise<unknown> };
  /** the status hash (none: only the progress log and load tracking) */
  statusKey?: string | undefined;
  stream: string;
  leaseOwner: string;
  log: Logger;
}

/** The counters the progress log and the status hash share. */
function counters(totals: BatchStats) {
  return {
    records: totals.records,
    upserted: totals.upserted,
    fields_updated: totals.fieldsUpdated,
    unchanged: totals.unchanged,
    deleted: totals.deleted,
    stale_refused: totals.staleRefused,
    embeddings_requested: totals.embeddingsRequested,
    cache_hits: totals.cacheHits,
    dead_lettered: totals.deadLettered,
  };
}

/** The status the hash gets (encoded by `embedderStatus`). */
export function consumerStatus(
  stats: ConsumerStats,
  o: { stream: string; leaseOwner: string; recordsPerSec: number; now: number },
  load: LoadInProgress | null,
  lastLoad: LoadSummary | null,
): EmbedderStatus {
  const t = stats.totals;
  const behind = millisBehind(stats, o.now);
  return {
    updated_at: o.now,
    state: stats.state,
    stream: o.stream,
    lease_owner: o.leaseOwner,
    lease_holder: stats.state === 'waiting-lease' ? (stats.leaseHolder?.owner ?? null) : null,
    records_per_sec: Math.round(o.recordsPerSec),
    ...counters(t),
    failed: t.failed,
    latency_p50_ms: t.latencyP50Ms ?? null,
    latency_p99_ms: t.latencyP99Ms ?? null,
    stall_seconds: stallSeconds(stats, o.now),
    millis_behind_latest: behind === null ? null : Math.round(behind),
    shards: [...stats.shards.values()],
    load_in_progress: load !== null,
    load_started_at: load ? load.startedAt : null,
    load_row_events: load ? load.rowEvents : 0,
    last_load: lastLoad,
  };
}

/** Tracks loads, logs the consumer's progress and writes its status hash. */
export class ConsumerStatusPublisher {
  private readonly loads: LoadTracker;
  private lastProgressLog: number;

  constructor(
    private readonly target: StatusTarget,
    stats: ConsumerStats,
    loadOptions: LoadTrackerOptions,
    private readonly clock: () => number = Date.now,
  ) {
    const now = clock();
    this.loads = new LoadTracker(stats.totals, now, loadOptions);
    this.lastProgressLog = now;
  }

  /** Tracks loads, logs progress (every 10 s) and writes the status hash. */
  async publish(stats: ConsumerStats): Promise<void> {
    const t = stats.totals;
    const now = this.clock();
    const { recordsPerSec, finished } = this.loads.tick(t, stats.lastRecordAt, now);
    if (finished) this.target.log.info('load finished', { ...finished });
    if (now - this.lastProgressLog >= PROGRESS_LOG_EVERY_MS && t.records > 0) {
      this.lastProgressLog = now;
      this.target.log.info('embedder progress', {
        records_per_sec: Math.round(recordsPerSec),
        ...counters(t),
        latency_p50_ms: t.latencyP50Ms,
        latency_p99_ms: t.latencyP99Ms,
      });
    }
    if (!this.target.statusKey) return;
    const { stream, leaseOwner } = this.target;
    const status = consumerStatus(
      stats,
      { stream, leaseOwner, recordsPerSec, now },
      this.loads.inProgress(t),
      this.loads.lastLoad,
    );
    await this.target.redis.hset(this.target.statusKey, embedderStatus.encode(status));
  }
}
