/**
 * In-memory EmbeddingService for unit tests: deterministic vectors of the text (fakeVector), a cache, a
 * log of the texts sent to the "model", and texts that can be made to fail.
 */
import { createHash } from 'node:crypto';
import type { DrugsyncError } from '../../services/core/errors.ts';
import type {
  EmbeddingResult,
  EmbeddingService,
  EmbeddingStats,
} from '../../services/core/embedding/types.ts';

/** Deterministic vector of a text. */
export function fakeVector(text: string, dims: number): number[] {
  const h = createHash('sha256').update(text).digest();
  return Array.from({ length: dims }, (_, i) => ((h[i % h.length] as number) - 128) / 128);
}

/** In-memory EmbeddingService with a cache and a call log; texts can be made to fail. Unit tests only. */
export class MemoryEmbeddingService implements EmbeddingService {
  readonly model = 'fake-embed-v1';
  readonly cache = new Map<string, number[]>();
  /** every text sent to the "model" */
  readonly calls: string[] = [];
  /** text → error to report for it (poison when not retryable) */
  readonly failing = new Map<string, DrugsyncError>();
  private readonly total: EmbeddingStats = {
    texts: 0,
    cacheHits: 0,
    requests: 0,
    throttled: 0,
    retries: 0,
    failed: 0,
  };
  constructor(readonly dimensions = 16) {}

  async embedTexts(texts: Iterable<string>): Promise<EmbeddingResult> {
    const distinct = [...new Set(texts)];
    const stats: EmbeddingStats = {
      texts: distinct.length,
      cacheHits: 0,
      requests: 0,
      throttled: 0,
      retries: 0,
      failed: 0,
    };
    const vectors = new Map<string, number[]>();
    const failures = new Map<string, DrugsyncError>();
    for (const t of distinct) {
      const hit = this.cache.get(t);
      if (hit) {
        stats.cacheHits++;
        vectors.set(t, hit);
        continue;
      }
      stats.requests++;
      this.calls.push(t);
      const err = this.failing.get(t);
      if (err) {
        stats.failed++;
        failures.set(t, err);
        continue;
      }
      const v = fakeVector(t, this.dimensions);
      this.cache.set(t, v);
      vectors.set(t, v);
    }
    for (const k of Object.keys(stats) as (keyof EmbeddingStats)[]) this.total[k] += stats[k];
    return { vectors, failures, stats };
  }

  totals(): EmbeddingStats {
    return { ...this.total };
  }
}
