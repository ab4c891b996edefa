/**
 * Load tracking: a load (a burst, a reload, a refresh) runs from the first row event after a pause to the
 * next pause of `quietSeconds`; when it ends with at least `minRecords` row events, what it did is
 * summarised. Pure: the caller passes the consumer's running totals and the time on every tick.
 */
import type { LoadSummary } from '../core/status/embedder.ts';
import type { BatchStats } from './types.ts';

/** What one load did, logged when it ends (its shape is the status hash's `last_load`). */
export type { LoadSummary };

export interface LoadTrackerOptions {
  /** a run of at least this many row events is a load (default 1000) */
  minRecords?: number | undefined;
  /** a pause this long ends a load (seconds, default 3) */
  quietSeconds?: number | undefined;
}

/** A load in progress, as the status hash shows it. */
export interface LoadInProgress {
  startedAt: number;
  rowEvents: number;
}

export interface LoadTick {
  /** records applied per second since the previous tick */
  recordsPerSec: number;
  /** the load that ended at this tick (null: none, or one too small to report) */
  finished: LoadSummary | null;
}

function summarise(totals: BatchStats, base: BatchStats, startedAt: number, endedAt: number): LoadSummary {
  return {
    started_at: new Date(startedAt).toISOString(),
    seconds: Math.round((endedAt - startedAt) / 100) / 10,
    row_events: totals.rowEvents - base.rowEvents,
    ndcs: totals.ndcs - base.ndcs,
    written: totals.upserted - base.upserted,
    fields_updated: totals.fieldsUpdated - base.fieldsUpdated,
    unchanged: totals.unchanged - base.unchanged,
    deleted: totals.deleted - base.deleted,
    stale_refused: totals.staleRefused - base.staleRefused,
    names_embedded: totals.embeddingTexts - base.embeddingTexts - (totals.cacheHits - base.cacheHits),
    embeddings_requested: totals.embeddingsRequested - base.embeddingsRequested,
    cache_hits: totals.cacheHits - base.cacheHits,
    dead_lettered: totals.deadLettered - base.deadLettered,
  };
}

export class LoadTracker {
  private load: { at: number; base: BatchStats } | null = null;
  private prevTotals: BatchStats;
  private prevAt: number;
  /** the last load summarised */
  lastLoad: LoadSummary | null = null;

  constructor(
    totals: BatchStats,
    now: number,
    private readonly opts: LoadTrackerOptions = {},
  ) {
    this.prevTotals = { ...totals, latencyMs: [] };
    this.prevAt = now;
  }

  /** One tick: starts or ends a load, and the record rate since the previous tick. */
  tick(totals: BatchStats, lastRecordAt: number | null, now: number): LoadTick {
    const finished = this.trackLoad(totals, lastRecordAt, now);
    const recordsPerSec =
      ((totals.records - this.prevTotals.records) * 1000) / Math.max(1, now - this.prevAt);
    this.prevTotals = { ...totals, latencyMs: [] };
    this.prevAt = now;
    return { recordsPerSec, finished };
  }

  inProgress(totals: BatchStats): LoadInProgress | null {
    if (!this.load) return null;
    return { startedAt: this.load.at, rowEvents: totals.rowEvents - this.load.base.rowEvents };
  }

  private trackLoad(totals: BatchStats, lastRecordAt: number | null, now: number): LoadSummary | null {
    if (!this.load) {
      // the load began after the previous tick: count from the totals of that tick
      if (totals.rowEvents > this.prevTotals.rowEvents)
        this.load = { at: this.prevAt, base: this.prevTotals };
      return null;
    }
    const quietMs = (this.opts.quietSeconds ?? 3) * 1000;
    if (now - (lastRecordAt ?? 0) < quietMs) return null;
    const { at, base } = this.load;
    this.load = null;
    if (totals.rowEvents - base.rowEvents < (this.opts.minRecords ?? 1000)) return null;
    this.lastLoad = summarise(totals, base, at, lastRecordAt ?? now);
    return this.lastLoad;
  }
}
