/**
 * The embedding service: deduplicate texts, read the persistent cache, call the embedder under a
 * concurrency bound and a requests-per-minute budget, slow down when throttled (AIMD, see
 * AdaptiveRateLimiter in rate-limiter.ts), retry transient failures with full-jitter exponential backoff,
 * and report every text that still failed. A text another call is embedding right now is awaited, not
 * embedded again, and each request's vectors are cached as soon as it returns (a kill loses only the
 * requests in flight).
 */
import type { RedisClient } from '../clients/redis.ts';
import { embeddingModelId } from '../config.ts';
import { DrugsyncError, wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../log.ts';
import { createLogger } from '../log.ts';
import { textHash } from '../mapping.ts';
import type { EmbeddingIdentity } from '../mapping.ts';
import { backoffDelay, sleep } from '../backoff.ts';
import type { EmbeddingCache } from './cache.ts';
import { createRedisEmbeddingCache } from './cache.ts';
import { createLocalEmbedder } from './local.ts';
import { createMinilmEmbedder } from './minilm.ts';
import { AdaptiveRateLimiter } from './rate-limiter.ts';
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

/** retry waits: full jitter up to min(20 s, base · 2^attempt) */
const MAX_BACKOFF_MS = 20_000;
/** how often an idle worker looks again for a retry another worker may still queue */
const IDLE_POLL_MS = 5;

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

/** What the service keeps across calls. */
interface ServiceState {
  o: EmbeddingServiceOptions;
  id: EmbeddingIdentity;
  totals: EmbeddingStats;
  limiter: AdaptiveRateLimiter;
  log: Logger;
  baseBackoff: number;
  /** texts being embedded by a call in progress (by text hash): another call asking for one awaits it */
  pending: Map<string, Promise<Outcome>>;
  /**
   * the concurrency bound holds across concurrent calls (the backfill embeds several windows at once); the
   * earliest call is served first, a later one fills the slots the earlier one leaves idle (its tail)
   */
  slots: Slots;
  calls: number;
}

/** A batch of up to maxBatch texts with its attempt count. */
interface Job {
  texts: string[];
  attempt: number;
}

/** One embedTexts call. */
interface Call {
  s: ServiceState;
  /** the call's number: earlier calls get request slots first */
  seq: number;
  stats: EmbeddingStats;
  vectors: Map<string, number[]>;
  failures: Map<string, DrugsyncError>;
  hashOf: Map<string, string>;
  /** texts this call embeds (not cached, not in flight elsewhere) */
  missing: string[];
  /** texts another call is embedding right now, with its outcome */
  joined: [string, Promise<Outcome>][];
  /** this call's promises in `pending`, by text hash */
  mine: Map<string, { resolve: (o: Outcome) => void; promise: Promise<Outcome> }>;
  queue: Job[];
  /** cache writes of returned vectors; the call waits for every one before it returns */
  puts: Promise<void>[];
  inFlight: number;
}

export function createEmbeddingServiceWith(opts: EmbeddingServiceOptions): EmbeddingService {
  const s: ServiceState = {
    o: opts,
    id: { model: opts.embedder.model, dimensions: opts.embedder.dimensions },
    totals: emptyStats(),
    limiter: new AdaptiveRateLimiter(opts.rpm),
    log: opts.logger ?? createLogger({ service: 'embedding' }),
    baseBackoff: opts.backoffMs ?? 200,
    pending: new Map(),
    slots: new Slots(Math.max(1, opts.concurrency)),
    calls: 0,
  };
  return {
    model: opts.embedder.model,
    dimensions: opts.embedder.dimensions,
    totals: () => ({ ...s.totals }),
    embedTexts: (input) => embedTexts(s, input),
  };
}

async function embedTexts(state: ServiceState, input: Iterable<string>): Promise<EmbeddingResult> {
  const c = await openCall(state, input);
  await runJobs(c);
  await collectJoined(c);
  for (const k of Object.keys(c.stats) as (keyof EmbeddingStats)[]) state.totals[k] += c.stats[k];
  return { vectors: c.vectors, failures: c.failures, stats: c.stats };
}

/** Deduplicates the input, takes what the cache holds, joins texts in flight elsewhere, claims the rest. */
async function openCall(state: ServiceState, input: Iterable<string>): Promise<Call> {
  const distinct = [...new Set(input)];
  const hashOf = new Map(distinct.map((t) => [t, textHash(t, state.id)]));
  const c: Call = {
    s: state,
    seq: ++state.calls,
    stats: { ...emptyStats(), texts: distinct.length },
    vectors: new Map(),
    failures: new Map(),
    hashOf,
    missing: [],
    joined: [],
    mine: new Map(),
    queue: [],
    puts: [],
    inFlight: 0,
  };
  const cached = await state.o.cache.getMany([...hashOf.values()]);
  for (const t of distinct) {
    const h = hashOf.get(t) as string;
    const v = cached.get(h);
    if (v) c.vectors.set(t, v);
    else claimOrJoin(c, t, h);
  }
  // a text embedded by a concurrent call counts as a cache hit here (this call did not send it)
  c.stats.cacheHits = distinct.length - c.missing.length;
  const batch = state.o.embedder.maxBatch;
  for (let i = 0; i < c.missing.length; i += batch)
    c.queue.push({ texts: c.missing.slice(i, i + batch), attempt: 0 });
  return c;
}

function claimOrJoin(c: Call, t: string, h: string): void {
  const other = c.s.pending.get(h);
  if (other) {
    c.joined.push([t, other]);
    return;
  }
  c.missing.push(t);
  let resolve: (o: Outcome) => void = () => {};
  const promise = new Promise<Outcome>((r) => (resolve = r));
  c.mine.set(h, { resolve, promise });
  c.s.pending.set(h, promise);
}

/** Answers the calls waiting on a text this call claimed. */
function settle(c: Call, t: string, outcome: Outcome): void {
  const h = c.hashOf.get(t) as string;
  const m = c.mine.get(h);
  if (!m) return;
  c.mine.delete(h);
  if (c.s.pending.get(h) === m.promise) c.s.pending.delete(h);
  m.resolve(outcome);
}

/** Runs the queue on up to `concurrency` workers, then waits for the cache writes. */
async function runJobs(c: Call): Promise<void> {
  const workers = Math.max(1, Math.min(c.s.o.concurrency, c.queue.length));
  try {
    await Promise.all(Array.from({ length: workers }, () => worker(c)));
    const putResults = await Promise.allSettled(c.puts);
    const putFailure = putResults.find((r) => r.status === 'rejected');
    if (putFailure) throw putFailure.reason;
  } finally {
    // never leave a concurrent caller waiting on a text this call did not finish
    const aborted = new DrugsyncError('EMBEDDING_FAILED', 'the call embedding this text failed', {
      retryable: true,
    });
    for (const t of c.missing) settle(c, t, { error: aborted });
  }
}

async function worker(c: Call): Promise<void> {
  for (;;) {
    const job = c.queue.shift();
    if (!job) {
      if (c.inFlight === 0) return;
      await sleep(IDLE_POLL_MS); // a retry may still be queued by another worker
      continue;
    }
    c.inFlight++;
    try {
      const out = await requestVectors(c, job);
      c.s.limiter.onSuccess();
      keepVectors(c, job, out);
    } catch (e) {
      await onJobFailed(c, job, e);
    } finally {
      c.inFlight--;
    }
  }
}

/** One embedder request under a slot and the rate budget; the vectors checked against the model's shape. */
async function requestVectors(c: Call, job: Job): Promise<number[][]> {
  const { embedder } = c.s.o;
  await c.s.slots.acquire(c.seq);
  let out: number[][];
  try {
    await c.s.limiter.acquire();
    c.stats.requests++;
    out = await embedder.embed(job.texts);
  } finally {
    c.s.slots.release();
  }
  if (out.length !== job.texts.length || out.some((v) => v?.length !== embedder.dimensions)) {
    throw new DrugsyncError(
      'EMBEDDING_FAILED',
      `embedder ${embedder.model} returned ${out.length} vectors for ${job.texts.length} texts (expected ${embedder.dimensions}-d each)`,
      { context: { model: embedder.model, dimensions: embedder.dimensions } },
    );
  }
  return out;
}

/**
 * Records a request's vectors and caches them as soon as it returns (a waiting call is answered once the
 * cache holds them, so no later call misses both).
 */
function keepVectors(c: Call, job: Job, out: number[][]): void {
  const fresh = new Map<string, number[]>();
  job.texts.forEach((t, i) => {
    const v = out[i] as number[];
    c.vectors.set(t, v);
    fresh.set(c.hashOf.get(t) as string, v);
  });
  c.puts.push(
    c.s.o.cache.putMany(fresh).then(() => {
      for (const t of job.texts) settle(c, t, { vector: c.vectors.get(t) as number[] });
    }),
  );
}

/** A failed request: split a rejected batch, retry a transient failure after its backoff, or give up. */
async function onJobFailed(c: Call, job: Job, e: unknown): Promise<void> {
  const err =
    e instanceof DrugsyncError
      ? e
      : wrapError(e, 'EMBEDDING_TRANSIENT', 'embedding call failed', { retryable: true });
  if (err.code === 'EMBEDDING_THROTTLED') {
    c.stats.throttled++;
    c.s.limiter.onThrottle();
  } else c.s.limiter.onAnswered();
  if (!err.retryable && job.texts.length > 1) {
    // One bad text must not fail its neighbours: retry the batch one text at a time.
    for (const t of job.texts) c.queue.push({ texts: [t], attempt: job.attempt });
  } else if (err.retryable && job.attempt < c.s.o.maxRetries) {
    c.stats.retries++;
    await sleep(
      backoffDelay(job.attempt, { baseMs: c.s.baseBackoff, maxMs: MAX_BACKOFF_MS, jitter: 'full' }),
    );
    c.queue.push({ texts: job.texts, attempt: job.attempt + 1 });
  } else {
    for (const t of job.texts) {
      c.failures.set(t, err);
      settle(c, t, { error: err });
    }
    c.stats.failed += job.texts.length;
    c.s.log.warn('embedding failed for good', {
      texts: job.texts.length,
      error: err,
      attempts: job.attempt + 1,
    });
  }
}

/** The outcomes of the texts another call was embedding. */
async function collectJoined(c: Call): Promise<void> {
  for (const [t, p] of c.joined) {
    const outcome = await p;
    if ('vector' in outcome) c.vectors.set(t, outcome.vector);
    else {
      c.failures.set(t, outcome.error);
      c.stats.failed += 1;
    }
  }
}

export interface EmbeddingConfig {
  EMBEDDING_PROVIDER: 'local' | 'titan' | 'minilm';
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
  if (cfg.EMBEDDING_PROVIDER === 'minilm') return createMinilmEmbedder({ model });
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
    // The local embedders (lexical, MiniLM) are CPU functions, not metered APIs.
    rpm: cfg.EMBEDDING_PROVIDER === 'titan' ? cfg.EMBEDDING_RPM : Infinity,
    maxRetries: cfg.EMBEDDING_MAX_RETRIES,
    logger: opts.logger,
    backoffMs: opts.backoffMs,
  });
}
