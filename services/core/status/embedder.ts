/**
 * The embedder's status hash (`keys.serviceStatus('embedder')`): written at each maintenance tick by
 * services/embedder/consumer-status.ts, read by `drugsync status` and `drugsync stream`. `stall_seconds` and
 * `millis_behind_latest` are EmbedderStallSeconds and EmbedderMillisBehindLatest (../metrics.ts) at
 * `updated_at`; `embedderProgressAt` ages them. A load (a burst, a reload) in progress and the last one
 * finished are part of it (`load_*`, `last_load`).
 */
import { z } from 'zod';
import { field, statusHash, toMs } from './hash.ts';
import type { StatusOf } from './hash.ts';

/** What the consumer is doing: waiting for the stream's lease, applying (it holds it), stopped. */
export const EMBEDDER_STATES = ['waiting-lease', 'applying', 'stopped'] as const;

/** One shard as the consumer last saw it (services/embedder/consumer-types.ts `ShardProgress`). */
export const shardProgressSchema = z.object({
  shardId: z.string(),
  checkpoint: z.string().nullable(),
  millisBehindLatest: z.number().nullable(),
  closed: z.boolean(),
  idle: z.boolean(),
  progressAt: z.number(),
  readAt: z.number().nullable(),
  batches: z.number().int(),
  errors: z.number().int(),
});

/** What one load did (services/embedder/load-tracker.ts), logged as `load finished` and kept as `last_load`. */
export const loadSummarySchema = z.object({
  started_at: z.string(),
  seconds: z.number(),
  row_events: z.number().int(),
  ndcs: z.number().int(),
  written: z.number().int(),
  fields_updated: z.number().int(),
  unchanged: z.number().int(),
  deleted: z.number().int(),
  stale_refused: z.number().int(),
  /** distinct names sent to the embedder (not found in the cache) */
  names_embedded: z.number().int(),
  embeddings_requested: z.number().int(),
  cache_hits: z.number().int(),
  dead_lettered: z.number().int(),
});

export type LoadSummary = z.output<typeof loadSummarySchema>;

export const embedderStatus = statusHash('embedder status', {
  updated_at: field.isoTime(),
  state: field.oneOf(EMBEDDER_STATES),
  stream: field.text(),
  /** this consumer's lease owner id */
  lease_owner: field.text(),
  /** who held the stream's lease when this consumer last found it taken (empty when it holds it) */
  lease_holder: field.orEmpty(field.text()),
  /** records applied per second since the previous write */
  records_per_sec: field.int(),
  /** totals since the process started */
  records: field.int(),
  upserted: field.int(),
  fields_updated: field.int(),
  unchanged: field.int(),
  deleted: field.int(),
  stale_refused: field.int(),
  embeddings_requested: field.int(),
  cache_hits: field.int(),
  dead_lettered: field.int(),
  failed: field.int(),
  /** commit-to-Redis latency of the recent records (empty before any) */
  latency_p50_ms: field.orEmpty(field.number()),
  latency_p99_ms: field.orEmpty(field.number()),
  /** EmbedderStallSeconds at `updated_at` */
  stall_seconds: field.number(1),
  /** EmbedderMillisBehindLatest at `updated_at` (empty before any shard was read) */
  millis_behind_latest: field.orEmpty(field.int()),
  shards: field.json(z.array(shardProgressSchema)),
  load_in_progress: field.flag(),
  load_started_at: field.orEmpty(field.isoTime()),
  load_row_events: field.int(),
  last_load: field.orEmpty(field.json(loadSummarySchema)),
});

export type EmbedderStatus = StatusOf<typeof embedderStatus>;

/** The embedder's stall and lag, as EmbedderStallSeconds and EmbedderMillisBehindLatest would read them. */
export interface EmbedderProgressNow {
  stallSeconds: number;
  /** null before any shard was read */
  millisBehindLatest: number | null;
}

/** The stall and lag the embedder last wrote, aged by the time since (see `readerProgressAt`). */
export function embedderProgressAt(s: Partial<EmbedderStatus>, now: number): EmbedderProgressNow | null {
  if (s.updated_at === undefined || s.stall_seconds === undefined) return null;
  const sinceMs = Math.max(0, now - s.updated_at);
  const behind = s.millis_behind_latest;
  return {
    stallSeconds: toMs(s.stall_seconds + sinceMs / 1000),
    millisBehindLatest: behind === undefined || behind === null ? null : behind + sinceMs,
  };
}
