/**
 * The binlog reader's status hash (`keys.serviceStatus('binlog-reader')`): written every
 * READER_METRICS_SECONDS by services/binlog-reader/status.ts (and when its state changes), read by
 * `drugsync status` and `drugsync stream`. `lag_seconds` and `stall_seconds` are the values of
 * ReaderLagSeconds and ReaderStallSeconds (../metrics.ts) at `updated_at`; `readerProgressAt` ages them.
 */
import { field, statusHash, toMs } from './hash.ts';
import type { StatusOf } from './hash.ts';

/** What the reader is doing (services/binlog-reader/reader-stats.ts). */
export const READER_STATES = [
  'waiting-lease',
  'starting',
  'streaming',
  'backoff',
  'stopping',
  'stopped',
  'failed',
] as const;

export const readerStatus = statusHash('binlog-reader status', {
  state: field.oneOf(READER_STATES),
  /** the reader's lease owner id (host:pid:id) */
  owner: field.text(),
  pid: field.int(),
  updated_at: field.epochMs(),
  /** change events (row and table) published since the process started */
  events_total: field.int(),
  tx_total: field.int(),
  /** rates since the previous write */
  events_per_sec: field.number(1),
  tx_per_sec: field.number(1),
  /** how often the reader rewrites this hash (READER_METRICS_SECONDS, besides its state changes) */
  period_seconds: field.int(),
  /** ReaderLagSeconds at `updated_at` */
  lag_seconds: field.number(1),
  /** ReaderStallSeconds at `updated_at` */
  stall_seconds: field.number(1),
  /** mean PutRecords time since the previous write */
  put_latency_ms: field.number(1),
  put_retried_records: field.int(),
  queue_records: field.int(),
  restarts: field.int(),
  /** the last checkpoint written (serialized position), once there is one */
  checkpoint: field.text().optional(),
  /** commit time (server clock) of the transaction at the checkpoint */
  checkpoint_commit_ts: field.epochMs().optional(),
  /** header time of the newest event decoded */
  last_commit_ts: field.epochMs().optional(),
  /** the last failure (kept after the reader recovers; `last_error_at` dates it) */
  last_error: field.text().optional(),
  last_error_at: field.epochMs().optional(),
  /** who held the reader lease when this reader last found it taken (meaningful while `waiting-lease`) */
  lease_holder: field.text().optional(),
});

export type ReaderStatus = StatusOf<typeof readerStatus>;
export type ReaderStatusState = ReaderStatus['state'];

/** The reader's lag and stall, as ReaderLagSeconds and ReaderStallSeconds would read them at some moment. */
export interface ReaderProgressNow {
  lagSeconds: number;
  stallSeconds: number;
}

/**
 * The lag and stall the reader last wrote, as they read at `now`. Both are measured from a moment in the past
 * (the last proven progress, the newest point known captured): within one period of the write its word
 * stands (the next write is not due yet), past it every second of silence is added, so a reader that stopped
 * writing keeps growing, as its alarms do when its metrics go missing. null when the hash does not say.
 */
export function readerProgressAt(s: Partial<ReaderStatus>, now: number): ReaderProgressNow | null {
  if (s.updated_at === undefined || s.lag_seconds === undefined || s.stall_seconds === undefined) return null;
  const silent = Math.max(0, (now - s.updated_at) / 1000 - (s.period_seconds ?? 0));
  return { lagSeconds: toMs(s.lag_seconds + silent), stallSeconds: toMs(s.stall_seconds + silent) };
}
