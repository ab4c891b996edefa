/**
 * The embedding service: deduplicate texts, read the persistent cache, call the embedder under a
 * concurrency bound and a requests-per-minute budget, slow down when throttled (AIMD, see
 * AdaptiveRateLimiter), retry transient failures with full-jitter exponential backoff, and report every
 * text that still failed. A text another call is embedding right now is awaited, not embedded again, and
 * each request's vectors are cached as soon as it returns (a kill loses only the requests in flight).
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
 * Request pacing whose rate adapts (AIMD). It starts at the configured budget (`maxRpm`, Infinity for none)
 * and spaces requests evenly on a schedule (request i at t0 + i / rate: a late timer is caught up by the next
 * slot, an idle spell earns no burst), so a budget equal to a quota enforced over a short rolling window
 * does not overrun it. On a throttle (at most once a second, so one burst of 429s counts once) the rate is
 * cut to 95% of what it was, bounded by the rate the server accepted over the last second (so a budget far
 * above the hidden quota, or no budget at all, comes down at once); that rate is remembered as the ceiling.
 * It climbs back fast (20% of the ceiling per second of successes) to 99% of the ceiling, then probes above
 * it, slowly at first (0.5% a second, doubling every second without a throttle), up to the budget: at a
 * hidden quota Q it spends most of its time between 0.99 Q and Q and is throttled every second or two, not
 * several times a second, while a ceiling estimated too low is outgrown in seconds.
 */
const DECREASE = 0.95;
const INCREASE = 0.2;
const PROBE = 0.005;
const RECOVER_TO = 0.99;

export class AdaptiveRateLimiter {
  private nextAt = 0;
  private lastCut = 0;
  private ref = 0;
  private readonly recent: number[] = [];
  rpm: number;
  cuts = 0;

  constructor(readonly maxRpm: number) {
    this.rpm = maxRpm;
  }

  async acquire(): Promise<void> {
    if (!Number.isFinite(this.rpm)) return;
    const now = performance.now();
    const slot = Math.max(now, this.nextAt);
    this.nextAt = slot + 60_000 / this.rpm;
    if (slot - now >= 1) await new Promise((r) => setTimeout(r, slot - now));
  }

  /** Successes in the last second. */
  private recentSuccesses(now: number): number {
    while (this.recent.length && (this.recent[0] as number) < now - 1_000) this.recent.shift();
    return this.recent.length;
  }

  onThrottle(): void {
    const now = Date.now();
    if (now - this.lastCut < 1000) return;
    // What the server accepted over the last second bounds the cut, so a budget far above the hidden quota
    // (or no budget at all) comes down in one step (accepted counts lag and jitter: within 20% of the
    // paced rate, the paced rate is the better estimate). With too few samples (a cold start, an idle spell)
    // a budget is cut as it is; with no budget there is nothing to estimate from yet: the refused request
    // backs off and the next throttle, with samples, sets the rate.
    const n = this.recentSuccesses(now);
    if (!Number.isFinite(this.rpm) && n < 10) return;
    this.lastCut = now;
    this.cuts++;
    const current = Number.isFinite(this.rpm)
      ? n >= 10 && n * 60 < 0.8 * this.rpm
        ? n * 60
        : this.rpm
      : n * 60;
    this.rpm = Math.max(6, current * DECREASE);
    this.ref = current;
    // the next request waits one interval at the new rate (the refused ones are retried after their backoff)
    this.nextAt = Math.max(this.nextAt, performance.now() + 60_000 / this.rpm);
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
    // Each success adds (share · base) / (rpm / 60): `share` of the base per second of successes. Below 99%
    // of the ceiling: 20% of the ceiling a second. Above: a probe that starts at 0.5% a second and doubles
    // every second without a throttle (up to 20%, of the current rate once it is past the ceiling), so a
    // ceiling estimated too low is left behind in seconds while a true one is met gently.
    const recovered = Math.min(this.maxRpm, RECOVER_TO * this.ref);
    if (this.rpm < recovered) {
      this.rpm = Math.min(recovered, this.rpm + (INCREASE * 60 * this.ref) / this.rpm);
      return;
    }
    const share = Math.min(INCREASE, PROBE * 2 ** ((now - this.lastCut) / 1000));
    const base = Math.max(this.ref, this.rpm);
    this.rpm = Math.min(this.maxRpm, this.rpm + (share * 60 * base) / this.rpm);
  }
}

type Outcome = { vector: number[] } | { error: DrugsyncError };

/** Request slots, granted to the earliest call first (its id), so concurrent calls finish in call order. */
class Slots {
  private free: number;
  private readonly waiting: { call: number; go: () => void }[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(call: number): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((go) => {
      let i = this.waiting.length;
      while (i > 0 && (this.waiting[i - 1] as { call: number }).call > call) i--;
      this.waiting.splice(i, 0, { call, go });
    });
  }
  release(): void {
    const next = this.waiting.shift();
    if (next) next.go();
    else this.free++;
  }
}

export function createEmbeddingServiceWith(o: EmbeddingServiceOptions): EmbeddingService {
  const totals = emptyStats();
  const limiter = new AdaptiveRateLimiter(o.rpm);
  const log = o.logger ?? createLogger({ service: 'embedding' });
  const id = { model: o.embedder.model, dimensions: o.embedder.dimensions };
  const baseBackoff = o.backoffMs ?? 200;
  // texts being embedded by a call in progress (by text hash): another call asking for one awaits it
  const pending = new Map<string, Promise<Outcome>>();
  // the concurrency bound holds across concurrent calls (the backfill embeds several windows at once); the
  // earliest call is served first, a later one fills the slots the earlier one leaves idle (its tail)
  const slots = new Slots(Math.max(1, o.concurrency));
  let calls = 0;

  return {
    model: o.embedder.model,
    dimensions: o.embedder.dimensions,
    totals: () => ({ ...totals }),
    async embedTexts(input) {
      const call = ++calls;
      const stats = emptyStats();
      const vectors = new Map<string, number[]>();
      const failures = new Map<string, DrugsyncError>();
      const distinct = [...new Set(input)];
      stats.texts = distinct.length;
      const hashOf = new Map(distinct.map((t) => [t, textHash(t, id)]));
      const cached = await o.cache.getMany([...hashOf.values()]);
      const missing: string[] = [];
      const joined: [string, Promise<Outcome>][] = [];
      const mine = new Map<string, { resolve: (o: Outcome) => void; promise: Promise<Outcome> }>();
      for (const t of distinct) {
        const h = hashOf.get(t) as string;
        const v = cached.get(h);
        if (v) vectors.set(t, v);
        else {
          const other = pending.get(h);
          if (other) joined.push([t, other]);
          else {
            missing.push(t);
            let resolve: (o: Outcome) => void = () => {};
            const promise = new Promise<Outcome>((r) => (resolve = r));
            mine.set(h, { resolve, promise });
            pending.set(h, promise);
          }
        }
      }
      // a text embedded by a concurrent call counts as a cache hit here (this call did not send it)
      stats.cacheHits = distinct.length - missing.length;
      const settle = (t: string, outcome: Outcome) => {
        const h = hashOf.get(t) as string;
        const m = mine.get(h);
        if (!m) return;
        mine.delete(h);
        if (pending.get(h) === m.promise) pending.delete(h);
        m.resolve(outcome);
      };

      // Work items: batches of up to maxBatch texts, each with its attempt count.
      const queue: { texts: string[]; attempt: number }[] = [];
      for (let i = 0; i < missing.length; i += o.embedder.maxBatch) {
        queue.push({ texts: missing.slice(i, i + o.embedder.maxBatch), attempt: 0 });
      }
      const puts: Promise<void>[] = [];
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
            await slots.acquire(call);
            let out: number[][];
            try {
              await limiter.acquire();
              stats.requests++;
              out = await o.embedder.embed(job.texts);
            } finally {
              slots.release();
            }
            if (out.length !== job.texts.length || out.some((v) => v?.length !== o.embedder.dimensions)) {
              throw new DrugsyncError(
                'EMBEDDING_FAILED',
                `embedder ${o.embedder.model} returned ${out.length} vectors for ${job.texts.length} texts (expected ${o.embedder.dimensions}-d each)`,
                { context: { model: o.embedder.model, dimensions: o.embedder.dimensions } },
              );
            }
            limiter.onSuccess();
            const fresh = new Map<string, number[]>();
            job.texts.forEach((t, i) => {
              const v = out[i] as number[];
              vectors.set(t, v);
              fresh.set(hashOf.get(t) as string, v);
            });
            // cached as soon as the request returns (a waiting call is answered once the cache holds it, so
            // no later call misses both); the call waits for every write before it returns
            const texts = job.texts;
            puts.push(
              o.cache.putMany(fresh).then(() => {
                for (const t of texts) settle(t, { vector: vectors.get(t) as number[] });
              }),
            );
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
              for (const t of job.texts) {
                failures.set(t, err);
                settle(t, { error: err });
              }
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
      try {
        await Promise.all(Array.from({ length: Math.max(1, Math.min(o.concurrency, queue.length)) }, worker));
        const putResults = await Promise.allSettled(puts);
        const putFailure = putResults.find((r) => r.status === 'rejected');
        if (putFailure) throw putFailure.reason;
      } finally {
        // never leave a concurrent caller waiting on a text this call did not finish
        const aborted = new DrugsyncError('EMBEDDING_FAILED', 'the call embedding this text failed', {
          retryable: true,
        });
        for (const t of missing) settle(t, { error: aborted });
      }
      for (const [t, p] of joined) {
        const outcome = await p;
        if ('vector' in outcome) vectors.set(t, outcome.vector);
        else {
          failures.set(t, outcome.error);
          stats.failed += 1;
        }
      }
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
