/**
 * The consumer's status: every tick it tracks loads (load-tracker.ts), logs progress at most every 10 s,
 * and publishes the status hash (keys.serviceStatus('embedder')) that `drugsync status` reads.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import type { Logger } from '../core/log.ts';
import { LoadTracker } from './load-tracker.ts';
import type { LoadInProgress, LoadSummary, LoadTrackerOptions } from './load-tracker.ts';
import type { ConsumerStats } from './consumer-types.ts';
import type { BatchStats } from './types.ts';

const PROGRESS_LOG_EVERY_MS = 10_000;

export interface StatusTarget {
  redis: RedisClient;
  /** the status hash (none: only the progress log and load tracking) */
  statusKey?: string | undefined;
  stream: string;
  leaseOwner: string;
  log: Logger;
}

/** The counters the progress log and the status hash share. */
function counters(t: BatchStats) {
  return {
    records: t.records,
    upserted: t.upserted,
    fields_updated: t.fieldsUpdated,
    unchanged: t.unchanged,
    deleted: t.deleted,
    stale_refused: t.staleRefused,
    embeddings_requested: t.embeddingsRequested,
    cache_hits: t.cacheHits,
    dead_lettered: t.deadLettered,
  };
}

/** The status hash's fields. */
export function statusFields(
  s: ConsumerStats,
  o: { stream: string; leaseOwner: string; recordsPerSec: number; now: number },
  load: LoadInProgress | null,
  lastLoad: LoadSummary | null,
): Record<string, string | number> {
  const t = s.totals;
  return {
    updated_at: new Date(o.now).toISOString(),
    stream: o.stream,
    lease_owner: o.leaseOwner,
    records_per_sec: Math.round(o.recordsPerSec),
    ...counters(t),
    failed: t.failed,
    latency_p50_ms: t.latencyP50Ms ?? '',
    latency_p99_ms: t.latencyP99Ms ?? '',
    shards: JSON.stringify([...s.shards.values()]),
    load_in_progress: load ? 1 : 0,
    load_started_at: load ? new Date(load.startedAt).toISOString() : '',
    load_row_events: load ? load.rowEvents : 0,
    last_load: lastLoad ? JSON.stringify(lastLoad) : '',
  };
}

export class StatusPublisher {
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
    const fields = statusFields(
      stats,
      { stream, leaseOwner, recordsPerSec, now },
      this.loads.inProgress(t),
      this.loads.lastLoad,
    );
    await this.target.redis.hset(this.target.statusKey, fields);
  }
}
