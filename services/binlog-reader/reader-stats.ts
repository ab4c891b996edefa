/**
 * The reader's live counters (`handle.stats`): one object for the reader's whole life, across sessions.
 * `publisher` adds the totals of finished sessions to the running session's publisher.
 */
import type { BinlogPosition } from '../core/position.ts';
import type { PublisherStats } from './publisher.ts';

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
  /**
   * times the server confirmed the reader caught up: a heartbeat (or the stall probe) found it at the end of
   * the binlog with everything read checkpointed (./progress.ts)
   */
  caughtUp: number;
  restarts: number;
  lastError: string | null;
  paused: boolean;
  queueRecords: number;
  queueBytes: number;
  publisher: PublisherStats;
  startedFrom: string | null;
}

function zeroPublisherStats(): PublisherStats {
  return { records: 0, batches: 0, retriedRecords: 0, failedCalls: 0, lastPutMs: 0, putMsTotal: 0 };
}

/** Publisher counters summed over the sessions of one reader. */
export class PublisherTotals {
  private readonly finished = zeroPublisherStats();
  private live: { readonly stats: PublisherStats } | null = null;
  /** sessions tracked so far (each one's publisher starts at the checkpoint) */
  sessions = 0;

  /** The running session's publisher (null between sessions). */
  track(publisher: { readonly stats: PublisherStats } | null): void {
    this.live = publisher;
    if (publisher) this.sessions += 1;
  }

  /** Records the running session's publisher had acknowledged (0 between sessions). */
  get liveRecords(): number {
    return this.live?.stats.records ?? 0;
  }

  /** Adds the running publisher's counters to the finished sessions' and stops tracking it. */
  close(): void {
    if (!this.live) return;
    for (const k of Object.keys(this.finished) as (keyof PublisherStats)[])
      this.finished[k] += this.live.stats[k];
    this.live = null;
  }

  /** Finished sessions plus the running one; `lastPutMs` is the running publisher's. */
  get total(): PublisherStats {
    const live = this.live?.stats;
    const sum = { ...this.finished };
    if (!live) return sum;
    for (const k of Object.keys(sum) as (keyof PublisherStats)[]) sum[k] += live[k];
    sum.lastPutMs = live.lastPutMs;
    return sum;
  }
}

/** Fresh counters whose `publisher` field reads `totals`. */
export function createReaderStats(totals: PublisherTotals): ReaderStats {
  const stats: ReaderStats = {
    state: 'starting',
    rowEvents: 0,
    tableEvents: 0,
    transactions: 0,
    checkpoint: null,
    checkpointCommitTs: null,
    lastEventTs: null,
    caughtUp: 0,
    restarts: 0,
    lastError: null,
    paused: false,
    queueRecords: 0,
    queueBytes: 0,
    publisher: zeroPublisherStats(),
    startedFrom: null,
  };
  Object.defineProperty(stats, 'publisher', { enumerable: true, get: () => totals.total });
  return stats;
}
