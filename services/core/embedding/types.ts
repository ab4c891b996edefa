/**
 * Embedding contracts. An `Embedder` turns texts into vectors (Titan via Bedrock, or the local lexical
 * one). The `EmbeddingService` in front of it (services/core/embedding/service.ts) deduplicates texts,
 * consults the persistent cache in Redis (keyed by model, dimensions and text hash), calls the embedder
 * under a concurrency bound and a requests-per-minute budget, slows down on throttling (AIMD), retries
 * transient errors with jitter, and reports every text that still failed, with its reason.
 */
import type { DrugsyncError } from '../errors.ts';

export interface Embedder {
  /** Model id, part of every cache key and content hash. */
  readonly model: string;
  readonly dimensions: number;
  /** Max texts per call (Titan v2: 1 per InvokeModel). */
  readonly maxBatch: number;
  /**
   * Embeds the texts (≤ maxBatch) in order. Throws DrugsyncError EMBEDDING_THROTTLED (retryable),
   * EMBEDDING_TRANSIENT (retryable) or EMBEDDING_FAILED (not retryable: e.g. input rejected).
   */
  embed(texts: readonly string[]): Promise<number[][]>;
}

export interface EmbeddingStats {
  /** distinct texts asked for */
  texts: number;
  cacheHits: number;
  /** calls made to the embedder (Bedrock requests) */
  requests: number;
  throttled: number;
  retries: number;
  failed: number;
}

export interface EmbeddingResult {
  /** text → vector, for every text that succeeded */
  vectors: Map<string, number[]>;
  /** text → reason, for every text that still failed after its retries */
  failures: Map<string, DrugsyncError>;
  stats: EmbeddingStats;
}

export interface EmbeddingService {
  readonly model: string;
  readonly dimensions: number;
  /** Vectors for the texts: cache first, then the embedder; new vectors are written to the cache. */
  embedTexts(texts: Iterable<string>): Promise<EmbeddingResult>;
  /** Running totals since creation. */
  totals(): EmbeddingStats;
}
