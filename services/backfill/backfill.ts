/**
 * The backfill: makes Redis a full copy of the eligible catalogue, once, resumably, and records the binlog
 * position its snapshot is consistent with, where the binlog reader continues.
 *
 * 1. Snapshot + spool. A consistent snapshot (../core/snapshot.ts: exact on MariaDB, a sound lower bound via a
 *    millisecond table lock on MySQL 8 / Aurora) is read by keyset pages on NDC (never OFFSET) and every
 *    eligible row, mapped, is spooled to a local JSON-lines file. The MySQL transaction is open only while
 *    rows are read, never while they are embedded, then it ends. The snapshot position is handed to the
 *    binlog reader as soon as the snapshot is open.
 * 2. Load. The spool is processed in windows: distinct texts embedded once (cache first, Bedrock only for
 *    unknown texts, each request's vectors cached as it returns), documents written through the
 *    position-checked store at the snapshot's position, so a backfill beside live streaming never
 *    overwrites a newer change nor resurrects a deleted drug. The next two windows' texts are embedded
 *    while the current window is written (Bedrock latency overlaps Redis indexing, and Bedrock never
 *    waits for a window's last answers before it gets the next window's texts). The run state (snapshot,
 *    spool, lines done, counters) is in Redis after every window: a killed run continues where it stopped;
 *    re-writing the last window is harmless (same content → 'unchanged').
 * 3. Clean up. Documents of this part's key range whose NDC is not an eligible row of the snapshot are
 *    deleted at the snapshot's position (a newer write is kept).
 *
 * `--part i/n` splits the 11-digit NDC key space into n equal numeric ranges; each part has its own
 * snapshot, spool, state and cleanup. The reader's start is the oldest of the parts' snapshot positions.
 */
import fs from 'node:fs';
import type { RedisClient } from '../core/clients/redis.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { embeddingText } from '../core/mapping.ts';
import type { DrugFields } from '../core/mapping.ts';
import { serializePosition, snapshotSourcePosition } from '../core/position.ts';
import type { BinlogPosition, SourcePosition } from '../core/position.ts';
import { createProgress } from '../core/progress.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import type { StoreOp } from '../core/drug-store.ts';
import type { EmbeddingResult } from '../core/embedding/types.ts';
import type { SnapshotMethod } from '../core/snapshot.ts';
import { resolvePart } from './part.ts';
import type { Part } from './part.ts';
import { snapshotToSpool } from './read-snapshot.ts';
import { cleanUp } from './cleanup.ts';
import { embeddedOps, failureReason, writeFailureReport } from './failures.ts';
import { spoolWindows } from './spool.ts';
import {
  forgetRun,
  invalidRunError,
  newRun,
  readRun,
  saveCleanup,
  saveNewRun,
  saveProgress,
} from './run-state.ts';
import type { Counters, RunState, StoredRun } from './run-state.ts';

/** Windows embedded ahead of the one being written (each window's texts are one embedding call). */
const WINDOWS_AHEAD = 2;

export interface BackfillOptions {
  part?: string;
  restart?: boolean;
  dryRun?: boolean;
  /** stop after this many eligible rows (0 = all); a capped run is never `completed` */
  maxDrugs?: number;
  /** rows per window: distinct texts of a window are embedded together */
  windowRows?: number;
  /** documents per Redis pipeline */
  batchSize?: number;
  /** pipelines in flight at once (default 2: Redis indexes one while the next is prepared and sent) */
  writeConcurrency?: number;
  /** embed the next windows while the current one is written (default true) */
  lookahead?: boolean;
  /** how the snapshot's binlog position is obtained (default 'auto': by server flavour) */
  snapshotMethod?: SnapshotMethod;
  spoolDir: string;
  schema: string;
  table: string;
  onProgress?: (s: BackfillSummary) => void;
}

export interface BackfillDeps {
  mysql: MysqlPool;
  redis: RedisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  log: Logger;
}

export interface BackfillSummary {
  total_processed: number;
  successful: number;
  failed: number;
  duration_seconds: number;
  drugs_per_second: number;
  completed: boolean;
  embeddings_requested: number;
  embedding_cache_hits: number;
  snapshot_position: string;
  deleted_stale: number;
  part: string;
  resumed: boolean;
  dry_run: boolean;
  /** 'binlog-snapshot' (exact, MariaDB) or 'table-lock' (lower bound, MySQL 8 / Aurora) */
  snapshot_method: string;
  eligible_in_snapshot: number;
  /** seconds the MySQL snapshot transaction was open (reading and spooling rows only) */
  snapshot_seconds: number;
}

type Embedded = { ok: true; r: EmbeddingResult } | { ok: false; error: unknown };

/** One run of a part: what every phase after the snapshot needs. */
interface BackfillRun {
  d: BackfillDeps;
  o: BackfillOptions;
  part: Part;
  state: RunState;
  resumed: boolean;
  runKey: string;
  statusKey: string;
  position: BinlogPosition;
  /** the snapshot's source position: every write of this run is made at it */
  P: SourcePosition;
  total: number;
  counters: Counters;
  doneAtStart: number;
  t0: number;
  /** rows listed as failed by an earlier run leave the list when they are written now */
  clearFailures: boolean;
}

export async function runBackfill(d: BackfillDeps, o: BackfillOptions): Promise<BackfillSummary> {
  const t0 = Date.now();
  const split = await resolvePart(d, o.part, o);
  const runKey = d.keys.backfillRun(split.label);
  if (o.restart && !o.dryRun) await forgetRun(d.redis, runKey);
  if (!o.dryRun) await d.store.ensureIndex();
  const { state, resumed, part } = await openRun(d, o, split, runKey);
  const run: BackfillRun = {
    d,
    o,
    part,
    state,
    resumed,
    runKey,
    statusKey: d.keys.serviceStatus('backfill'),
    position: state.position,
    P: snapshotSourcePosition(state.position),
    total: state.spooled,
    counters: state.counters,
    doneAtStart: state.counters.done,
    t0,
    clearFailures: !o.dryRun && (await d.redis.hlen(d.keys.backfillFailures)) > 0,
  };
  await loadSpool(run);
  return finishRun(run);
}

/**
 * The run's state: the stored one when its spool is complete and still on disk (resume), else a new snapshot.
 * Resume only a complete spool: its snapshot's transaction is gone, so an incomplete spool cannot be
 * continued with the same snapshot; a new snapshot (seconds) is correct, continuing with another one is not.
 * A resumed run keeps the range it was started with (the stored split could have been removed meanwhile).
 */
async function openRun(
  d: BackfillDeps,
  o: BackfillOptions,
  part: Part,
  runKey: string,
): Promise<{ state: RunState; resumed: boolean; part: Part }> {
  const stored: StoredRun = o.dryRun ? { status: 'none' } : await readRun(d.redis, runKey);
  if ((stored.status === 'spooled' || stored.status === 'invalid') && fs.existsSync(stored.spool)) {
    if (stored.status === 'invalid') throw invalidRunError(runKey, stored.problems);
    const { state } = stored;
    d.log.info('resuming the backfill from its checkpoint', {
      part: part.label,
      done: state.counters.done,
      of: state.spooled,
      snapshot: serializePosition(state.position),
    });
    return { state, resumed: true, part: state.range ? { ...part, ...state.range } : part };
  }
  if (stored.status !== 'none')
    d.log.warn(
      stored.status === 'unspooled'
        ? 'previous run had not finished spooling its snapshot: taking a new snapshot'
        : 'the previous run’s spool file is gone: taking a new snapshot',
      { part: part.label, spool: stored.spool },
    );
  const state = newRun(await snapshotToSpool(d, o, part), part);
  if (!o.dryRun) await saveNewRun(d.redis, runKey, state);
  return { state, resumed: false, part };
}

function summarize(run: BackfillRun, completed: boolean): BackfillSummary {
  const { counters, part, state, position } = run;
  const secs = (Date.now() - run.t0) / 1000;
  return {
    total_processed: counters.done,
    successful: counters.successful,
    failed: counters.failed,
    duration_seconds: Math.round(secs * 10) / 10,
    drugs_per_second: Math.round((counters.done - run.doneAtStart) / Math.max(secs, 0.001)),
    completed,
    embeddings_requested: counters.embeddings,
    embedding_cache_hits: counters.hits,
    snapshot_position: `${position.file}:${position.pos}`,
    deleted_stale: counters.deleted,
    part: `${part.index}/${part.count}`,
    resumed: run.resumed,
    dry_run: !!run.o.dryRun,
    snapshot_method: state.method,
    eligible_in_snapshot: run.total,
    snapshot_seconds: state.snapshotSeconds,
  };
}

/** Distinct texts of a window, cache first. Never rejects: the error is returned. */
function embedWindow(run: BackfillRun, win: DrugFields[]): Promise<Embedded> {
  return run.d.embeddings.embedTexts(win.map(embeddingText)).then(
    (r): Embedded => ({ ok: true, r }),
    (error: unknown): Embedded => ({ ok: false, error }),
  );
}

/** A window's upserts in batches, and the rows without a vector with their reason. */
function windowOps(
  run: BackfillRun,
  win: DrugFields[],
  emb: EmbeddingResult,
): { batches: StoreOp[][]; failures: Record<string, string> } {
  const rows = win.map((f) => ({ ndc: f.ndc, pos: run.P, fields: f }));
  const { ops, failures } = embeddedOps(rows, emb, run.d.embeddings);
  const batchSize = Math.max(1, run.o.batchSize ?? 500);
  const batches: StoreOp[][] = [];
  for (let i = 0; i < ops.length; i += batchSize) batches.push(ops.slice(i, i + batchSize));
  return { batches, failures };
}

/** Writes the batches `writeConcurrency` at a time; returns the NDCs written ('stale' counts: a newer change is there). */
async function writeBatches(run: BackfillRun, batches: StoreOp[][]): Promise<string[]> {
  const writeConcurrency = Math.max(1, run.o.writeConcurrency ?? 2);
  let next = 0;
  const written: string[] = [];
  await Promise.all(
    Array.from({ length: Math.min(writeConcurrency, batches.length) }, async () => {
      for (let b = next++; b < batches.length; b = next++) {
        const results = await run.d.store.apply(batches[b] as StoreOp[]);
        run.counters.successful += results.length;
        if (run.clearFailures) for (const r of results) written.push(r.ndc);
      }
    }),
  );
  return written;
}

async function writeWindow(run: BackfillRun, win: DrugFields[], emb: EmbeddingResult): Promise<void> {
  const { d, counters } = run;
  const { batches, failures } = windowOps(run, win, emb);
  const written = await writeBatches(run, batches);
  if (run.clearFailures && written.length) await d.redis.hdel(d.keys.backfillFailures, ...written);
  const nFailed = Object.keys(failures).length;
  if (nFailed) {
    counters.failed += nFailed;
    await d.redis.hset(d.keys.backfillFailures, failures);
    d.log.error('rows failed to embed; listed for `backfill --retry-failed`', {
      count: nFailed,
      example_ndc: Object.keys(failures)[0],
      reason: failureReason(Object.values(failures)[0] as string),
    });
  }
  counters.embeddings += emb.stats.texts - emb.stats.cacheHits; // texts sent to the embedder (retries not counted)
  counters.hits += emb.stats.cacheHits;
}

/**
 * Phase 2: load the spool, window by window; the next windows are embedded while this one is written, so
 * the embedder always has work queued (no idle tail at a window's end). A text shared by two windows is
 * embedded once: the service makes the later window await the call already embedding it.
 */
async function loadSpool(run: BackfillRun): Promise<void> {
  const { o } = run;
  const progress = createProgress({
    label: `backfill ${run.part.label}`,
    total: run.total,
    unit: 'drugs',
    log: run.d.log,
  });
  const windows = spoolWindows(run.state.spool, run.counters.done, o.windowRows ?? 5_000)[
    Symbol.asyncIterator
  ]();
  const ahead: { win: DrugFields[]; emb: Promise<Embedded> | undefined }[] = [];
  let spoolEnded = false;
  const fill = async (n: number) => {
    while (!spoolEnded && ahead.length < n) {
      const r = await windows.next();
      if (r.done) spoolEnded = true;
      else ahead.push({ win: r.value, emb: o.dryRun ? undefined : embedWindow(run, r.value) });
    }
  };
  const depth = 1 + ((o.lookahead ?? true) ? WINDOWS_AHEAD : 0);
  // settle the windows embedding ahead before failing (they never reject; what they embedded is cached)
  const settleAhead = () => Promise.all(ahead.map((a) => a.emb));
  for (;;) {
    await fill(depth);
    const next = ahead.shift();
    if (!next) break;
    if (!o.dryRun) {
      const e = (await next.emb) as Embedded;
      if (!e.ok) {
        await settleAhead();
        throw e.error;
      }
      await fill(depth - 1);
      await writeWindow(run, next.win, e.r).catch(async (err: unknown) => {
        await settleAhead();
        throw err;
      });
    }
    await windowDone(run, next.win.length, progress);
  }
  progress.stop();
}

/** Persists the counters and status after a window, and moves the progress bar. */
async function windowDone(
  run: BackfillRun,
  rows: number,
  progress: ReturnType<typeof createProgress>,
): Promise<void> {
  const { d, counters } = run;
  counters.done += rows;
  if (!run.o.dryRun) {
    await saveProgress(d.redis, run.runKey, counters);
    const s = summarize(run, false);
    await d.redis.hset(run.statusKey, {
      updated_at: new Date().toISOString(),
      part: s.part,
      done: counters.done,
      total: run.total,
      failed: counters.failed,
      snapshot: s.snapshot_position,
    });
    run.o.onProgress?.(s);
  }
  const lookups = counters.hits + counters.embeddings;
  const secs = Math.max(0.001, (Date.now() - run.t0) / 1000);
  progress.update(counters.done, {
    'emb/s': Math.round(counters.embeddings / secs),
    'cache hit': `${lookups ? Math.round((counters.hits / lookups) * 100) : 0}%`,
  });
}

/** Phase 3 (remove documents of this range that the snapshot does not have; never for a capped run), then the summary. */
async function finishRun(run: BackfillRun): Promise<BackfillSummary> {
  const { d, o, state, counters } = run;
  const { capped } = state;
  if (!o.dryRun && !capped && !state.cleaned) {
    counters.deleted = await cleanUp(d, run.part, state.spool, run.P);
    await saveCleanup(d.redis, run.runKey, counters.deleted);
  }
  const completed = !o.dryRun && !capped && counters.failed === 0 && counters.done === run.total;
  const s = summarize(run, completed);
  if (!o.dryRun) {
    if (counters.failed > 0) await writeFailureReport(d, run.part, o.spoolDir);
    await d.redis.hset(run.statusKey, {
      updated_at: new Date().toISOString(),
      completed: String(completed),
      last_summary: JSON.stringify(s),
    });
  }
  d.log.info('backfill finished', { ...s });
  return s;
}
