/**
 * Every Redis key drugsync uses, built from configuration so that tests (and several environments on one
 * Redis) can live side by side. Documents sit under the index prefix; everything else (bookkeeping,
 * checkpoints, cache, dead letters) sits under the state prefix, outside the index, because any write to
 * an indexed key re-indexes the whole document.
 *
 * This file is the one place a key name is written: every other module takes its keys from `Keys`
 * (test/ownership.unit.test.ts holds the rule; test/keys.unit.test.ts pins every name's text, since
 * deployed data lives under them).
 */
export interface KeyConfig {
  REDIS_INDEX: string;
  REDIS_DOC_PREFIX: string;
  REDIS_STATE_PREFIX: string;
}

/** A record of a Kinesis shard, as a dead-letter marker names it. */
export interface ShardRecordId {
  shardId: string;
  sequenceNumber: string;
}

export interface Keys {
  index: string;
  docPrefix: string;
  doc(ndc: string): string;
  /**
   * The state prefix itself: what every state key starts with. For naming this environment outside Redis
   * (the backfill's spool directory) and for SCAN patterns; never for building a key (add a member here).
   */
  statePrefix: string;
  /** Hash per NDC: p = SourcePosition, h = content hash, t = text hash, d = '1' for a tombstone. */
  meta(ndc: string): string;
  metaPrefix: string;
  /** The vector field as we created it (JSON), recorded beside the index (core/redis/index-schema.ts). */
  indexVectorSpec: string;
  /** Embedding cache entry: raw little-endian float32 bytes. */
  embedding(model: string, dimensions: number, textHash: string): string;
  embeddingPrefix(model: string, dimensions: number): string;
  /** Every model's cache entries (to clear the whole cache). */
  embeddingCachePrefix: string;
  /** Binlog reader checkpoint (serialized BinlogPosition). */
  readerCheckpoint: string;
  /** Reader lease (one reader at a time). */
  readerLease: string;
  /** Snapshot position recorded by the backfill (the oldest of a split's parts). */
  backfillSnapshot: string;
  /** Each part's own snapshot position (hash: part label → serialized BinlogPosition). */
  backfillSnapshots: string;
  /** The NDC boundaries of a split into `parts` parts, computed once (JSON). */
  backfillSplit(parts: number): string;
  /** Backfill run state (hash) and its failure list. */
  backfillRun(part: string): string;
  /** Every part's run state (SCAN pattern). */
  backfillRunPrefix: string;
  backfillFailures: string;
  /** Kinesis shard checkpoints of the local consumer (hash shardId → sequence number). */
  shardCheckpoints(stream: string): string;
  /** The one-consumer-per-stream lease of the embedder (beside the stream's shard checkpoints). */
  consumerLease(stream: string): string;
  /** Deletes of a transaction too large to hold, waiting for its commit (hash NDC → position; embedder/deferred.ts). */
  deferredDeletes(stream: string, shardId: string, txid: string): string;
  /** The pending truncate (hash: pos, seenAt, lastRowAt, statement, shard:<id>; embedder/table-state.ts). */
  pendingTruncate: string;
  /** The newest truncate position already swept. */
  truncateFloor: string;
  /** Pending re-syncs (hash: position → the resync event). */
  pendingResyncs: string;
  /** Re-syncs at or below this position are done. */
  resyncFloor: string;
  /** The re-sync's cross-process lease (one re-sync at a time; embedder/resync.ts). */
  resyncLease: string;
  /** The re-sync's status hash (core/status/resync.ts). */
  resyncStatus: string;
  /** Dead-letter stream. */
  deadLetters: string;
  /** A record's dead-letter marker (set once the record is dead-lettered; embedder/dlq-queue.ts). */
  deadLetterMarker(record: ShardRecordId): string;
  deadLetterMarkerPrefix: string;
  /** Service status hashes (last error, counters) for `drugsync status`. */
  serviceStatus(service: string): string;
}

export function makeKeys(cfg: KeyConfig): Keys {
  const s = cfg.REDIS_STATE_PREFIX;
  const shards = (stream: string) => `${s}embedder:shards:${stream}`;
  const markers = `${s}dlq:seen:`;
  const embeddings = `${s}emb:`;
  return {
    index: cfg.REDIS_INDEX,
    docPrefix: cfg.REDIS_DOC_PREFIX,
    doc: (ndc) => `${cfg.REDIS_DOC_PREFIX}${ndc}`,
    statePrefix: s,
    meta: (ndc) => `${s}meta:${ndc}`,
    metaPrefix: `${s}meta:`,
    indexVectorSpec: `${s}index:${cfg.REDIS_INDEX}:vector`,
    embedding: (model, dims, th) => `${embeddings}${model}:${dims}:${th}`,
    embeddingPrefix: (model, dims) => `${embeddings}${model}:${dims}:`,
    embeddingCachePrefix: embeddings,
    readerCheckpoint: `${s}reader:checkpoint`,
    readerLease: `${s}reader:lease`,
    backfillSnapshot: `${s}backfill:snapshot`,
    backfillSnapshots: `${s}backfill:snapshots`,
    backfillSplit: (parts) => `${s}backfill:split:${parts}`,
    backfillRun: (part) => `${s}backfill:run:${part}`,
    backfillRunPrefix: `${s}backfill:run:`,
    backfillFailures: `${s}backfill:failures`,
    shardCheckpoints: shards,
    consumerLease: (stream) => `${shards(stream)}:lease`,
    deferredDeletes: (stream, shardId, txid) => `${shards(stream)}:deferred:${shardId}:${txid}`,
    pendingTruncate: `${s}embedder:truncate`,
    truncateFloor: `${s}embedder:truncate_floor`,
    pendingResyncs: `${s}embedder:resync`,
    resyncFloor: `${s}embedder:resync_floor`,
    resyncLease: `${s}embedder:resync_lease`,
    resyncStatus: `${s}embedder:resync_status`,
    deadLetters: `${s}dlq`,
    deadLetterMarker: (r) => `${markers}${r.shardId}:${r.sequenceNumber}`,
    deadLetterMarkerPrefix: markers,
    serviceStatus: (service) => `${s}status:${service}`,
  };
}
