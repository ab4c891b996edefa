/**
 * Every Redis key drugsync uses, built from configuration so that tests (and several environments on one
 * Redis) can live side by side. Documents sit under the index prefix; everything else (bookkeeping,
 * checkpoints, cache, dead letters) sits under the state prefix, outside the index, because any write to
 * an indexed key re-indexes the whole document.
 */
export interface KeyConfig {
  REDIS_INDEX: string;
  REDIS_DOC_PREFIX: string;
  REDIS_STATE_PREFIX: string;
}

export interface Keys {
  index: string;
  docPrefix: string;
  doc(ndc: string): string;
  /** Hash per NDC: p = SourcePosition, h = content hash, t = text hash, d = '1' for a tombstone. */
  meta(ndc: string): string;
  metaPrefix: string;
  /** Embedding cache entry: raw little-endian float32 bytes. */
  embedding(model: string, dimensions: number, textHash: string): string;
  embeddingPrefix(model: string, dimensions: number): string;
  /** Binlog reader checkpoint (serialized BinlogPosition). */
  readerCheckpoint: string;
  /** Reader lease (one reader at a time). */
  readerLease: string;
  /** Snapshot position recorded by the backfill. */
  backfillSnapshot: string;
  /** Backfill run state (hash) and its failure list. */
  backfillRun(part: string): string;
  backfillFailures: string;
  /** Kinesis shard checkpoints of the local consumer (hash shardId → sequence number). */
  shardCheckpoints(stream: string): string;
  /** Dead-letter stream. */
  deadLetters: string;
  /** Service status hashes (last error, counters) for `drugsync status`. */
  serviceStatus(service: string): string;
  /** Any other state key. */
  state(name: string): string;
}

export function makeKeys(cfg: KeyConfig): Keys {
  const s = cfg.REDIS_STATE_PREFIX;
  return {
    index: cfg.REDIS_INDEX,
    docPrefix: cfg.REDIS_DOC_PREFIX,
    doc: (ndc) => `${cfg.REDIS_DOC_PREFIX}${ndc}`,
    meta: (ndc) => `${s}meta:${ndc}`,
    metaPrefix: `${s}meta:`,
    embedding: (model, dims, th) => `${s}emb:${model}:${dims}:${th}`,
    embeddingPrefix: (model, dims) => `${s}emb:${model}:${dims}:`,
    readerCheckpoint: `${s}reader:checkpoint`,
    readerLease: `${s}reader:lease`,
    backfillSnapshot: `${s}backfill:snapshot`,
    backfillRun: (part) => `${s}backfill:run:${part}`,
    backfillFailures: `${s}backfill:failures`,
    shardCheckpoints: (stream) => `${s}embedder:shards:${stream}`,
    deadLetters: `${s}dlq`,
    serviceStatus: (service) => `${s}status:${service}`,
    state: (name) => `${s}${name}`,
  };
}
