/**
 * Phase 2: the spool loaded window by window. A window's distinct texts are embedded once (cache first, the
 * embedder only for unknown texts, each request's vectors cached as it returns); its documents are written
 * through the position-checked store at the snapshot's position, so a backfill beside live streaming never
 * overwrites a newer change nor resurrects a deleted drug. The next two windows' texts are embedded while
 * the current one is written: Bedrock latency overlaps Redis indexing, and the embedder never waits for a
 * window's last answers before it gets the next window's texts. Rows without a vector are listed
 * (./failures.ts), never dropped.
 */
import type { RedisClient } from '../core/clients/redis.ts';
import type { StoreOp } from '../core/drug-store-contract.ts';
import type { EmbeddingResult, EmbeddingService } from '../core/embedding/types.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { embeddingText } from '../core/mapping.ts';
import type { DrugFields } from '../core/mapping.ts';
import type { SourcePosition } from '../core/position.ts';
import { createProgress } from '../core/progress.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import { embeddedOps, failureReason } from './failures.ts';
import type { Counters } from './run-state.ts';
import { spoolWindows } from './spool.ts';

/** Windows embedded ahead of the one being written (each window's texts are one embedding call). */
const WINDOWS_AHEAD = 2;

export interface LoadDeps {
  redis: RedisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  log: Logger;
}

/** What the load needs of the backfill's options. */
export interface LoadSettings {
  /** read and count only: nothing embedded or written */
  dryRun?: boolean;
  /** rows per window: distinct texts of a window are embedded together */
  windowRows?: number;
  /** documents per Redis pipeline */
  batchSize?: number;
  /** pipelines in flight at once (default 2: Redis indexes one while the next is prepared and sent) */
  writeConcurrency?: number;
  /** embed the next windows while the current one is written (default true) */
  lookahead?: boolean;
}

/** One part's load: its spool, from where, at which position, and the counters it advances. */
export interface LoadJob {
  label: string;
  spool: string;
  /** rows in the spool */
  total: number;
  /** the snapshot's source position: every write of this run is made at it */
  writePosition: SourcePosition;
  /** advanced as windows are written; `done` (lines already loaded) is where the load starts */
  counters: Counters;
  /** when the run started (embeddings per second on the progress bar) */
  startedAt: number;
  /** rows listed as failed by an earlier run leave the list when they are written now */
  clearFailures: boolean;
}

type Embedded = { ok: true; result: EmbeddingResult } | { ok: false; error: unknown };

/**
 * Loads the spool from line `counters.done`; `afterWindow` runs after each window (the run's state is saved
 * there). The next windows are embedded while this one is written, so the embedder always has work queued
 * (no idle tail at a window's end). A text shared by two windows is embedded once: the service makes the
 * later window await the call already embedding it.
 */
export async function loadSpool(
  deps: LoadDeps,
  job: LoadJob,
  settings: LoadSettings,
  afterWindow: () => Promise<void>,
): Promise<void> {
  const { counters } = job;
  const progress = createProgress({
    label: `backfill ${job.label}`,
    total: job.total,
    unit: 'drugs',
    log: deps.log,
  });
  const windows = spoolWindows(job.spool, counters.done, settings.windowRows ?? 5_000)[
    Symbol.asyncIterator
  ]();
  const ahead: { rows: DrugFields[]; embedded: Promise<Embedded> | undefined }[] = [];
  let spoolEnded = false;
  const fill = async (n: number) => {
    while (!spoolEnded && ahead.length < n) {
      const next = await windows.next();
      if (next.done) spoolEnded = true;
      else
        ahead.push({
          rows: next.value,
          embedded: settings.dryRun ? undefined : embedWindow(deps, next.value),
        });
    }
  };
  const depth = 1 + ((settings.lookahead ?? true) ? WINDOWS_AHEAD : 0);
  // settle the windows embedding ahead before failing (they never reject; what they embedded is cached)
  const settleAhead = () => Promise.all(ahead.map((a) => a.embedded));
  for (;;) {
    await fill(depth);
    const window = ahead.shift();
    if (!window) break;
    if (!settings.dryRun) {
      const embedded = (await window.embedded) as Embedded;
      if (!embedded.ok) {
        await settleAhead();
        throw embedded.error;
      }
      await fill(depth - 1);
      await writeWindow(deps, job, settings, window.rows, embedded.result).catch(async (err: unknown) => {
        await settleAhead();
        throw err;
      });
    }
    counters.done += window.rows.length;
    await afterWindow();
    const lookups = counters.hits + counters.embeddings;
    const seconds = Math.max(0.001, (Date.now() - job.startedAt) / 1000);
    progress.update(counters.done, {
      'emb/s': Math.round(counters.embeddings / seconds),
      'cache hit': `${lookups ? Math.round((counters.hits / lookups) * 100) : 0}%`,
    });
  }
  progress.stop();
}

/** Distinct texts of a window, cache first. Never rejects: the error is returned. */
function embedWindow(deps: LoadDeps, rows: DrugFields[]): Promise<Embedded> {
  return deps.embeddings.embedTexts(rows.map(embeddingText)).then(
    (result): Embedded => ({ ok: true, result }),
    (error: unknown): Embedded => ({ ok: false, error }),
  );
}

/** A window's documents written, its failures listed, its counters added. */
async function writeWindow(
  deps: LoadDeps,
  job: LoadJob,
  settings: LoadSettings,
  rows: DrugFields[],
  embedded: EmbeddingResult,
): Promise<void> {
  const { redis, keys } = deps;
  const { counters } = job;
  const pending = rows.map((fields) => ({ ndc: fields.ndc, pos: job.writePosition, fields }));
  const { ops, failures } = embeddedOps(pending, embedded, deps.embeddings);
  const batchSize = Math.max(1, settings.batchSize ?? 500);
  const batches: StoreOp[][] = [];
  for (let i = 0; i < ops.length; i += batchSize) batches.push(ops.slice(i, i + batchSize));
  const written = await writeBatches(
    deps.store,
    batches,
    settings.writeConcurrency,
    counters,
    job.clearFailures,
  );
  if (job.clearFailures && written.length) await redis.hdel(keys.backfillFailures, ...written);
  const failed = Object.keys(failures);
  if (failed.length) {
    counters.failed += failed.length;
    await redis.hset(keys.backfillFailures, failures);
    deps.log.error('rows failed to embed; listed for `backfill --retry-failed`', {
      count: failed.length,
      example_ndc: failed[0],
      reason: failureReason(Object.values(failures)[0] as string),
    });
  }
  counters.embeddings += embedded.stats.texts - embedded.stats.cacheHits; // texts sent to the embedder (retries not counted)
  counters.hits += embedded.stats.cacheHits;
}

/**
 * Writes the batches `writeConcurrency` at a time, counting them successful ('stale' counts: a newer change
 * is there); returns the NDCs written when `collect` is set.
 */
async function writeBatches(
  store: RedisDrugStore,
  batches: StoreOp[][],
  writeConcurrency: number | undefined,
  counters: Counters,
  collect: boolean,
): Promise<string[]> {
  const inFlight = Math.max(1, writeConcurrency ?? 2);
  let next = 0;
  const written: string[] = [];
  await Promise.all(
    Array.from({ length: Math.min(inFlight, batches.length) }, async () => {
      for (let b = next++; b < batches.length; b = next++) {
        const results = await store.apply(batches[b] as StoreOp[]);
        counters.successful += results.length;
        if (collect) for (const r of results) written.push(r.ndc);
      }
    }),
  );
  return written;
}
