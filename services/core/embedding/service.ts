/**
 * The embedding service: deduplicate texts, read the persistent cache, call the embedder under a
 * concurrency bound and a requests-per-minute budget, slow down when throttled (AIMD: the allowed rate is
 * cut by 30% on a throttle, at most once a second, and grows back by 2% of the budget per success), retry
 * transient failures with full-jitter exponential backoff, and report every text that still failed.
 */
import type { RedisClient } from '../clients/redis.ts';
import { embeddingModelId } from '../config.ts';
import { DrugsyncError, wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../log.ts';
import { createLogger } from '../log.ts';
import { textHash } from '../mapping.ts';
import type { EmbeddingCache } from './cache.ts';
import { createRedisEmbeddingCache } from './cache.ts';
import { createLocalEmbedder } from './local.ts';
import { createTitanEmbedder } from './titan.ts';
import type { Embedder, EmbeddingResult, EmbeddingService, EmbeddingStats } from './types.ts';

export interface EmbeddingServiceOptions {
  embedder: Embedder;
  cache: EmbeddingCache;
  concurrency: number;
  /** requests per minute; Infinity for no budget */
  rpm: number;
  maxRetries: number;
  logger?: Logger;
  /** base backoff in ms (tests shorten it) */
  backoffMs?: number;
}

const emptyStats = (): EmbeddingStats => ({
  texts: 0,
  cacheHits: 0,
  requests: 0,
  throttled: 0,
  retries: 0,
  failed: 0,
});

/**
 * Token bucket whose rate adapts (AIMD). It starts at the configured budget (`maxRpm`, Infinity for none).
 * On a throttle (at most once a second, so one burst of 429s counts once) the rate is cut to 95% of what
 * it was, bounded by the rate the server accepted over the last second (so a budget far above the hidden
 * quota, or no budget at all, comes down at once). After a cut it climbs back additively by 20% of the rate
 * at the cut per second of successes, up to the budget: at a hidden quota Q it oscillates between 0.95 Q
 * and Q, averaging above 0.97 Q; a throttled request costs one quick 429 and a retry. Bursts are capped at 100 ms worth
 * of requests, so running at a budget equal to the quota rarely overruns a rolling window.
 */
const DECREASE = 0.95;
const INCREASE = 0.2;
const BURST_MS = 100;

export class AdaptiveRateLimiter {
  private tokens = 1;
  private last = Date.now();
  private lastCut = 0;
  private ref = 0;
  private readonly recent: number[] = [];
  rpm: number;
  cuts = 0;

  constructor(readonly maxRpm: number) {
    this.rpm = maxRpm;
  }

  async acquire(): Promise<void> {
    for (;;) {
      if (!Number.isFinite(this.rpm)) return;
      const now = Date.now();
      const perMs = this.rpm / 60_000;
      // A burst of at most a tenth of a second's worth: quotas are enforced over short rolling windows, and a
      // full second's burst on top of the steady rate would overrun the window after every pause.
      this.tokens = Math.min(Math.max(1, perMs * BURST_MS), this.tokens + (now - this.last) * perMs);
      this.last = now;
      if (this.tokens >= 1) {
        this.tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil((1 - this.tokens) / perMs))));
    }
  }

  /** Successes in the last second. */
  private recentSuccesses(now: number): number {
    while (this.recent.length && (this.recent[0] as number) < now - 1_000) this.recent.shift();
    return this.recent.length;
  }

  onThrottle(): void {
    const now = Date.now();
    if (now - this.lastCut < 1000) return;
    this.lastCut = now;
    this.cuts++;
    // What the server accepted over the last second bounds the cut, so a budget far above the hidden quota
    // (or no budget at all) comes down in one step; with too few samples (after an idle spell) the current
    // rate is cut instead.
    const n = this.recentSuccesses(now);
    const current = Number.isFinite(this.rpm)
      ? n >= 10
        ? Math.min(this.rpm, n * 60)
        : this.rpm
      : Math.max(n * 60, 60);
    this.rpm = Math.max(6, current * DECREASE);
    this.ref = current;
    this.tokens = 0;
    this.last = now;
  }

  /** A request the server answered without throttling (success or not): counts toward the accepted rate. */
  onAnswered(): void {
    this.recent.push(Date.now());
    if (this.recent.length > 10_000) this.recentSuccesses(Date.now());
  }

  onSuccess(): void {
    const now = Date.now();
    this.recent.push(now);
    if (this.recent.length > 10_000) this.recentSuccesses(now);
    if (!Number.isFinite(this.rpm) || this.ref === 0) return;
    // +INCREASE of the reference rate per second of successes: each success adds (INCREASE · ref) / (rpm / 60).
    this.rpm = Math.min(this.maxRpm, this.rpm + (INCREASE * 60 * this.ref) / this.rpm);
  }
}

export function createEmbeddingServiceWith(o: EmbeddingServiceOptions): EmbeddingService {
  const totals = emptyStats();
  const limiter = new AdaptiveRateLimiter(o.rpm);
  const log = o.logger ?? createLogger({ service: 'embedding' });
  const id = { model: o.embedder.model, dimensions: o.embedder.dimensions };
  const baseBackoff = o.backoffMs ?? 200;

  return {
    model: o.embedder.model,
    dimensions: o.embedder.dimensions,
    totals: () => ({ ...totals }),
    async embedTexts(input) {
      const stats = emptyStats();
      const vectors = new Map<string, number[]>();
      const failures = new Map<string, DrugsyncError>();
      const distinct = [...new Set(input)];
      stats.texts = distinct.length;
      const hashOf = new Map(distinct.map((t) => [t, textHash(t, id)]));
      const cached = await o.cache.getMany([...hashOf.values()]);
      const missing: string[] = [];
      for (const t of distinct) {
        const v = cached.get(hashOf.get(t) as string);
        if (v) vectors.set(t, v);
        else missing.push(t);
      }
      stats.cacheHits = distinct.length - missing.length;

      // Work items: batches of up to maxBatch texts, each with its attempt count.
      const queue: { texts: string[]; attempt: number }[] = [];
      for (let i = 0; i < missing.length; i += o.embedder.maxBatch) {
        queue.push({ texts: missing.slice(i, i + o.embedder.maxBatch), attempt: 0 });
      }
      const fresh = new Map<string, number[]>();
      let inFlight = 0;
      const worker = async () => {
        for (;;) {
          const job = queue.shift();
          if (!job) {
            if (inFlight === 0) return;
            await new Promise((r) => setTimeout(r, 5)); // a retry may still be queued by another worker
            continue;
          }
          inFlight++;
          try {
            await limiter.acquire();
            stats.requests++;
            const out = await o.embedder.embed(job.texts);
            if (out.length !== job.texts.length || out.some((v) => v?.length !== o.embedder.dimensions)) {
              throw new DrugsyncError(
                'EMBEDDING_FAILED',
                `embedder ${o.embedder.model} returned ${out.length} vectors for ${job.texts.length} texts (expected ${o.embedder.dimensions}-d each)`,
                { context: { model: o.embedder.model, dimensions: o.embedder.dimensions } },
              );
            }
            limiter.onSuccess();
            job.texts.forEach((t, i) => {
              const v = out[i] as number[];
              vectors.set(t, v);
              fresh.set(hashOf.get(t) as string, v);
            });
          } catch (e) {
            const err =
              e instanceof DrugsyncError
                ? e
                : wrapError(e, 'EMBEDDING_TRANSIENT', 'embedding call failed', { retryable: true });
            if (err.code === 'EMBEDDING_THROTTLED') {
              stats.throttled++;
              limiter.onThrottle();
            } else limiter.onAnswered();
            if (!err.retryable && job.texts.length > 1) {
              // One bad text must not fail its neighbours: retry the batch one text at a time.
              for (const t of job.texts) queue.push({ texts: [t], attempt: job.attempt });
            } else if (err.retryable && job.attempt < o.maxRetries) {
              stats.retries++;
              const cap = Math.min(20_000, baseBackoff * 2 ** job.attempt);
              await new Promise((r) => setTimeout(r, Math.random() * cap));
              queue.push({ texts: job.texts, attempt: job.attempt + 1 });
            } else {
              for (const t of job.texts) failures.set(t, err);
              stats.failed += job.texts.length;
              log.warn('embedding failed for good', {
                texts: job.texts.length,
                error: err,
                attempts: job.attempt + 1,
              });
            }
          } finally {
            inFlight--;
          }
        }
      };
      await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, queue.length)) }, worker));
      await o.cache.putMany(fresh);
      for (const k of Object.keys(stats) as (keyof EmbeddingStats)[]) totals[k] += stats[k];
      return { vectors, failures, stats } satisfies EmbeddingResult;
    },
  };
}

export interface EmbeddingConfig {
  EMBEDDING_PROVIDER: 'local' | 'titan';
  EMBEDDING_MODEL?: string | undefined;
  EMBEDDING_DIMENSIONS: number;
  EMBEDDING_CONCURRENCY: number;
  EMBEDDING_RPM: number;
  EMBEDDING_MAX_RETRIES: number;
  BEDROCK_REGION?: string | undefined;
  BEDROCK_ENDPOINT?: string | undefined;
  AWS_REGION: string;
}

export function createEmbedder(cfg: EmbeddingConfig, logger?: Logger): Embedder {
  const model = embeddingModelId(cfg);
  if (cfg.EMBEDDING_PROVIDER === 'local') return createLocalEmbedder(cfg.EMBEDDING_DIMENSIONS, model);
  return createTitanEmbedder({
    model,
    dimensions: cfg.EMBEDDING_DIMENSIONS,
    region: cfg.BEDROCK_REGION ?? cfg.AWS_REGION,
    endpoint: cfg.BEDROCK_ENDPOINT,
    concurrency: cfg.EMBEDDING_CONCURRENCY,
    logger,
  });
}

/** The service as every job builds it from its decoded configuration. */
export function createEmbeddingService(
  cfg: EmbeddingConfig,
  redis: RedisClient,
  keys: Keys,
  opts: { logger?: Logger; embedder?: Embedder; backoffMs?: number } = {},
): EmbeddingService {
  const embedder = opts.embedder ?? createEmbedder(cfg, opts.logger);
  return createEmbeddingServiceWith({
    embedder,
    cache: createRedisEmbeddingCache(redis, keys, embedder.model, embedder.dimensions),
    concurrency: cfg.EMBEDDING_CONCURRENCY,
    // The local embedder is a CPU function, not a metered API.
    rpm: cfg.EMBEDDING_PROVIDER === 'local' ? Infinity : cfg.EMBEDDING_RPM,
    maxRetries: cfg.EMBEDDING_MAX_RETRIES,
    logger: opts.logger,
    backoffMs: opts.backoffMs,
  });
}
