/**
 * Shapes shared by the embedder's core (apply.ts) and its callers (the consumer, `drugsync dlq replay`).
 */
import type { DrugsyncError } from '../core/errors.ts';
import { percentiles } from '../core/percentiles.ts';
import type { SourcePosition } from '../core/position.ts';

/** One Kinesis record as the consumer and `dlq replay` hand it to `applyBatch`. */
export interface StreamRecord {
  sequenceNumber: string;
  partitionKey: string;
  shardId: string;
  data: Uint8Array;
  /** epoch milliseconds */
  approximateArrivalTimestamp?: number | undefined;
}

/**
 * What happened to one record:
 * - applied: its change is in Redis (written, fields updated, unchanged, deleted, refused as stale, or
 *   superseded by a newer record of the same NDC in the batch) or, for a table event, recorded.
 * - dead_lettered: poison (undecodable, or its change failed for good); written to the dead-letter queue.
 * - failed: a transient failure (e.g. Bedrock still throttling after every retry); not applied, and
 *   neither is any later record of the same NDC. The consumer retries from the shard's first failed record.
 */
export type RecordStatus = 'applied' | 'dead_lettered' | 'failed';

export type RecordDetail =
  | 'written'
  | 'fields_updated'
  | 'unchanged'
  | 'deleted'
  | 'tombstoned'
  | 'stale'
  | 'superseded'
  | 'duplicate'
  | 'truncate_recorded'
  | 'resync_recorded'
  /** the end of a transaction that deleted rows: nothing to apply */
  | 'tx_commit'
  | 'poison'
  | 'embedding_failed'
  | 'blocked';

export interface RecordResult {
  sequenceNumber: string;
  shardId: string;
  ndc: string | null;
  pos: SourcePosition | null;
  status: RecordStatus;
  detail: RecordDetail;
  error?: DrugsyncError | undefined;
}

export interface BatchStats {
  records: number;
  rowEvents: number;
  tableEvents: number;
  /** distinct NDCs after collapsing */
  ndcs: number;
  /** records folded into a newer record of the same NDC (or duplicates) */
  superseded: number;
  upserted: number;
  fieldsUpdated: number;
  unchanged: number;
  deleted: number;
  staleRefused: number;
  /** distinct texts handed to the embedding service */
  embeddingTexts: number;
  /** calls made to the embedder (Bedrock requests) */
  embeddingsRequested: number;
  cacheHits: number;
  deadLettered: number;
  failed: number;
  truncates: number;
  resyncs: number;
  /** records whose change reached Redis in this batch, with their end-to-end latency */
  latencyMs: number[];
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
  durationMs: number;
}

export interface BatchResult {
  results: RecordResult[];
  stats: BatchStats;
}

export function emptyStats(): BatchStats {
  return {
    records: 0,
    rowEvents: 0,
    tableEvents: 0,
    ndcs: 0,
    superseded: 0,
    upserted: 0,
    fieldsUpdated: 0,
    unchanged: 0,
    deleted: 0,
    staleRefused: 0,
    embeddingTexts: 0,
    embeddingsRequested: 0,
    cacheHits: 0,
    deadLettered: 0,
    failed: 0,
    truncates: 0,
    resyncs: 0,
    latencyMs: [],
    latencyP50Ms: null,
    latencyP99Ms: null,
    durationMs: 0,
  };
}

/** Adds `b` into `a` (counters summed, latencies concatenated up to a bound, percentiles recomputed). */
export function mergeStats(a: BatchStats, b: BatchStats, maxSamples = 20_000): BatchStats {
  const out = { ...a };
  for (const k of Object.keys(b) as (keyof BatchStats)[]) {
    const v = b[k];
    if (typeof v === 'number' && k !== 'latencyP50Ms' && k !== 'latencyP99Ms') {
      (out[k] as number) = (a[k] as number) + v;
    }
  }
  out.latencyMs = a.latencyMs.concat(b.latencyMs);
  if (out.latencyMs.length > maxSamples) out.latencyMs = out.latencyMs.slice(-maxSamples);
  [out.latencyP50Ms, out.latencyP99Ms] = percentiles(out.latencyMs, [50, 99]);
  return out;
}
