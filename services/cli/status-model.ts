/**
 * `drugsync status`, the middle step: what status-gather.ts read (`StatusSources`: positions, shards, counts
 * and the services' raw status hashes) in, the report out — each hash decoded by its schema
 * (../core/status/), the reader's and the embedder's lag and stall aged to the moment of the report, the
 * time left before the checkpoint's binlog could be purged, the load. Pure: the clock is the sources'
 * `collectedAt`. status-view.ts draws the model; `--json` prints its report.
 */
import type { BinlogPosition } from '../core/position.ts';
import type { VectorIndexState } from '../core/redis/index.ts';
import { backfillStatus } from '../core/status/backfill.ts';
import type { BackfillStatus } from '../core/status/backfill.ts';
import { embedderProgressAt, embedderStatus } from '../core/status/embedder.ts';
import type { EmbedderProgressNow, EmbedderStatus, LoadSummary } from '../core/status/embedder.ts';
import type { Decoded } from '../core/status/hash.ts';
import { readerProgressAt, readerStatus } from '../core/status/reader.ts';
import type { ReaderProgressNow, ReaderStatus } from '../core/status/reader.ts';
import { resyncStatus } from '../core/status/resync.ts';
import type { ResyncStatus } from '../core/status/resync.ts';

/** The services whose status hash `drugsync status` reads. */
export const STATUS_SERVICES = ['backfill', 'binlog-reader', 'embedder'] as const;

/** The binlog as read from the server and the checkpoints. */
export interface BinlogSources {
  checkpoint: BinlogPosition | null;
  snapshot: BinlogPosition | null;
  server: BinlogPosition | null;
  /** bytes between the checkpoint (the snapshot without one) and the server's position, summed over files */
  behindBytes: number | null;
  /** how long binlogs are kept (null: unlimited or unreadable) */
  retentionSeconds: number | null;
  checkpointFilePresent: boolean | null;
  warnings: string[];
}

export interface BinlogStatus extends BinlogSources {
  /** the reader's lag (ReaderLagSeconds) now; from the checkpointed commit for a reader that does not say */
  behindSeconds: number | null;
  /** how long until the checkpoint's file would be purged */
  retentionLeftSeconds: number | null;
}

export interface ShardStatus {
  shardId: string;
  /** false once the shard was split or merged (it takes no new records) */
  open: boolean;
  checkpoint: string | null;
  latest: string | null;
  /** records between the checkpoint and the newest record (counted up to SHARD_LAG_BOUND) */
  lagRecords: number | null;
  /** the count stopped at the bound: at least lagRecords are behind */
  lagBounded: boolean;
}

/** The vector index as the server built it beside what was asked, and what the server's search module offers. */
export interface VectorIndexStatus extends VectorIndexState {
  /** the detected capabilities in one line (capabilities.ts): versions, how SVS-VAMANA support was decided */
  server: string | null;
  /** why it could not be read (the rest is then empty) */
  error?: string;
}

/** What status-gather.ts reads: the servers' answers and the raw status hashes. */
export interface StatusSources {
  /** when the sources were read (ms since the epoch): every age in the report is taken from here */
  collectedAt: number;
  binlog: BinlogSources;
  kinesis: { stream: string; shards: ShardStatus[]; error?: string };
  redis: {
    documents: number | null;
    eligibleRows: number | null;
    embeddingCache: number;
    deadLetters: number;
    /** null when there is no index yet */
    vectorIndex?: VectorIndexStatus | null;
  };
  /** each service's status hash as written (a service that never wrote one is absent) */
  services: Record<string, Record<string, string>>;
  /** table events: a truncate waiting for its reload to settle, resyncs pending, the re-sync's status hash */
  table: {
    truncatePending: string | null;
    resyncsPending: { pos: string; statement: string }[];
    resync: Record<string, string>;
  };
}

/** The load the embedder is applying now (a burst, a reload), or the last one it finished. */
export interface LoadStatus {
  inProgress: boolean;
  startedAt: string | null;
  rowEvents: number;
  eventsPerSecond: number;
  rowsBehind: number | null;
  last: LoadSummary | null;
}

/** `drugsync status --json`: the sources with what follows from them. */
export interface StatusReport extends StatusSources {
  binlog: BinlogStatus;
  load: LoadStatus;
  /** the stall and lag heartbeats (../core/metrics.ts) as they read at `collectedAt` (null: not reported) */
  progress: { reader: ReaderProgressNow | null; embedder: EmbedderProgressNow | null };
  /** status hash fields missing or unreadable (a writer of another version), shown as warnings */
  problems: string[];
}

/** The report, and the status hashes decoded (a part absent when its hash is). */
export interface StatusModel {
  report: StatusReport;
  reader: Partial<ReaderStatus> | null;
  embedder: Partial<EmbedderStatus> | null;
  backfill: Partial<BackfillStatus> | null;
  resync: Partial<ResyncStatus> | null;
}

export interface ModelOptions {
  /** warn when less binlog retention than this is left for the checkpoint (RETENTION_WARN_SECONDS) */
  retentionWarnSeconds: number;
}

/**
 * How far the reader is behind in time, and how long its checkpoint's binlog file has left before the
 * retention purges it (the file is at most as old as the last commit the reader checkpointed).
 */
export function binlogTiming(a: {
  /** ReaderLagSeconds now (null: the reader does not report it) */
  lagSeconds: number | null;
  behindBytes: number | null;
  /** the checkpointed commit's time (ms), when known */
  checkpointCommitMs: number | null;
  retentionSeconds: number | null;
  retentionWarnSeconds: number;
  now: number;
}): Pick<BinlogStatus, 'behindSeconds' | 'retentionLeftSeconds' | 'warnings'> {
  const commit = a.checkpointCommitMs;
  const sinceCommit = commit === null ? null : Math.max(0, (a.now - commit) / 1000);
  const behindSeconds = a.lagSeconds ?? (a.behindBytes === 0 ? 0 : sinceCommit);
  const warnings: string[] = [];
  let retentionLeftSeconds: number | null = null;
  if (a.retentionSeconds !== null && sinceCommit !== null) {
    retentionLeftSeconds = Math.round(a.retentionSeconds - sinceCommit);
    if (retentionLeftSeconds < a.retentionWarnSeconds) {
      warnings.push(
        `only ${retentionLeftSeconds} s of binlog retention left before the reader's checkpoint could be purged`,
      );
    }
  } else if (a.retentionSeconds === null) {
    warnings.push('binlog retention is unlimited or unknown: set it so purges are deliberate');
  }
  return { behindSeconds, retentionLeftSeconds, warnings };
}

/** The embedder's current or last load, from its status and the stream's lag. */
export function loadStatus(
  embedder: Partial<EmbedderStatus> | null,
  shards: readonly ShardStatus[],
): LoadStatus {
  const behind = shards.map((x) => x.lagRecords);
  const started = embedder?.load_started_at;
  return {
    inProgress: embedder?.load_in_progress === true,
    startedAt: typeof started === 'number' ? new Date(started).toISOString() : null,
    rowEvents: embedder?.load_row_events ?? 0,
    eventsPerSecond: embedder?.records_per_sec ?? 0,
    rowsBehind: behind.every((x) => typeof x === 'number')
      ? behind.reduce<number>((a, x) => a + (x ?? 0), 0)
      : null,
    last: embedder?.last_load ?? null,
  };
}

/** Decodes one hash, collecting its problems. */
function decoded<T>(d: Decoded<T> | null, problems: string[]): Partial<T> | null {
  if (!d) return null;
  problems.push(...d.problems);
  return d.value;
}

/** The report and the decoded statuses, from what was read. */
export function statusModel(sources: StatusSources, opts: ModelOptions): StatusModel {
  const problems: string[] = [];
  const hash = (svc: string) => sources.services[svc] ?? {};
  const reader = decoded(readerStatus.decode(hash('binlog-reader')), problems);
  const embedder = decoded(embedderStatus.decode(hash('embedder')), problems);
  const backfill = decoded(backfillStatus.decode(hash('backfill')), problems);
  const resync = decoded(resyncStatus.decode(sources.table.resync), problems);
  const now = sources.collectedAt;
  const progress = {
    reader: reader && readerProgressAt(reader, now),
    embedder: embedder && embedderProgressAt(embedder, now),
  };
  const timing = binlogTiming({
    lagSeconds: progress.reader?.lagSeconds ?? null,
    behindBytes: sources.binlog.behindBytes,
    checkpointCommitMs: reader?.checkpoint_commit_ts ?? reader?.last_commit_ts ?? null,
    retentionSeconds: sources.binlog.retentionSeconds,
    retentionWarnSeconds: opts.retentionWarnSeconds,
    now,
  });
  const binlog = { ...sources.binlog, ...timing, warnings: [...sources.binlog.warnings, ...timing.warnings] };
  const load = loadStatus(embedder, sources.kinesis.shards);
  return {
    report: { ...sources, binlog, load, progress, problems },
    reader,
    embedder,
    backfill,
    resync,
  };
}
