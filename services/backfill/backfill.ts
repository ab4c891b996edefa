/**
 * The backfill: makes Redis a full copy of the eligible catalogue, once, resumably, and records the binlog
 * position its snapshot is consistent with, where the binlog reader continues.
 *
 * 1. Snapshot + spool (./read-snapshot.ts): a consistent snapshot of the part's range, every eligible row
 *    mapped into a local spool file (./spool.ts); the MySQL transaction is open only while rows are read.
 *    Its position is handed to the binlog reader as soon as the snapshot is open (./handoff.ts).
 * 2. Load (./load.ts): the spool in windows, distinct texts embedded once, documents written through the
 *    position-checked store at the snapshot's position; rows without a vector listed (./failures.ts). The
 *    run state (./run-state.ts: snapshot, spool, lines done, counters) is in Redis after every window: a
 *    killed run continues where it stopped; re-writing the last window is harmless (same content →
 *    'unchanged').
 * 3. Clean up (./cleanup.ts): documents of this part's key range whose NDC is not an eligible row of the
 *    snapshot are deleted at the snapshot's position (a newer write is kept).
 *
 * `--part i/n` (./part.ts) splits the NDC key space into n ranges; each part has its own snapshot, spool,
 * state and cleanup. `--retry-failed`: ./retry.ts.
 */
import fs from 'node:fs';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { EmbeddingService } from '../core/embedding/types.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { serializePosition, snapshotSourcePosition } from '../core/position.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import { cleanUp } from './cleanup.ts';
import { writeFailureReport } from './failures.ts';
import { loadSpool } from './load.ts';
import type { LoadJob, LoadSettings } from './load.ts';
import { resolvePart } from './part.ts';
import type { Part } from './part.ts';
import { snapshotToSpool } from './read-snapshot.ts';
import type { SnapshotReadSettings } from './read-snapshot.ts';
import {
  forgetRun,
  invalidRunError,
  newRun,
  readRun,
  saveCleanup,
  saveNewRun,
  saveProgress,
} from './run-state.ts';
import type { RunState, StoredRun } from './run-state.ts';

export interface BackfillOptions extends SnapshotReadSettings, LoadSettings {
  part?: string;
  restart?: boolean;
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

/** One run of a part as its summary, status hash and run state report it. */
interface RunRecord {
  part: Part;
  state: RunState;
  resumed: boolean;
  dryRun: boolean;
  runKey: string;
  /** spool lines already loaded when this process started (rows per second counts only the new ones) */
  doneAtStart: number;
  startedAt: number;
}

export async function runBackfill(deps: BackfillDeps, options: BackfillOptions): Promise<BackfillSummary> {
  const startedAt = Date.now();
  const dryRun = !!options.dryRun;
  const split = await resolvePart(deps, options.part, options);
  const runKey = deps.keys.backfillRun(split.label);
  if (options.restart && !dryRun) await forgetRun(deps.redis, runKey);
  if (!dryRun) await deps.store.ensureIndex();
  const { state, resumed, part } = await openRun(deps, options, split, runKey);
  const record: RunRecord = {
    part,
    state,
    resumed,
    dryRun,
    runKey,
    doneAtStart: state.counters.done,
    startedAt,
  };
  const job: LoadJob = {
    label: part.label,
    spool: state.spool,
    total: state.spooled,
    writePosition: snapshotSourcePosition(state.position),
    counters: state.counters,
    startedAt,
    clearFailures: !dryRun && (await deps.redis.hlen(deps.keys.backfillFailures)) > 0,
  };
  await loadSpool(deps, job, options, () => windowDone(deps, record, options.onProgress));
  return finishRun(deps, record, options.spoolDir);
}

/**
 * The run's state: the stored one when its spool is complete and still on disk (resume), else a new snapshot.
 * Resume only a complete spool: its snapshot's transaction is gone, so an incomplete spool cannot be
 * continued with the same snapshot; a new snapshot (seconds) is correct, continuing with another one is not.
 * A resumed run keeps the range it was started with (the stored split could have been removed meanwhile).
 */
async function openRun(
  deps: BackfillDeps,
  options: BackfillOptions,
  part: Part,
  runKey: string,
): Promise<{ state: RunState; resumed: boolean; part: Part }> {
  const stored: StoredRun = options.dryRun ? { status: 'none' } : await readRun(deps.redis, runKey);
  if ((stored.status === 'spooled' || stored.status === 'invalid') && fs.existsSync(stored.spool)) {
    if (stored.status === 'invalid') throw invalidRunError(runKey, stored.problems);
    const { state } = stored;
    deps.log.info('resuming the backfill from its checkpoint', {
      part: part.label,
      done: state.counters.done,
      of: state.spooled,
      snapshot: serializePosition(state.position),
    });
    return { state, resumed: true, part: state.range ? { ...part, ...state.range } : part };
  }
  if (stored.status !== 'none')
    deps.log.warn(
      stored.status === 'unspooled'
        ? 'previous run had not finished spooling its snapshot: taking a new snapshot'
        : 'the previous run’s spool file is gone: taking a new snapshot',
      { part: part.label, spool: stored.spool },
    );
  const state = newRun(await snapshotToSpool(deps, options, part), part);
  if (!options.dryRun) await saveNewRun(deps.redis, runKey, state);
  return { state, resumed: false, part };
}

function summarize(record: RunRecord, completed: boolean): BackfillSummary {
  const { part, state } = record;
  const { counters, position } = state;
  const seconds = (Date.now() - record.startedAt) / 1000;
  return {
    total_processed: counters.done,
    successful: counters.successful,
    failed: counters.failed,
    duration_seconds: Math.round(seconds * 10) / 10,
    drugs_per_second: Math.round((counters.done - record.doneAtStart) / Math.max(seconds, 0.001)),
    completed,
    embeddings_requested: counters.embeddings,
    embedding_cache_hits: counters.hits,
    snapshot_position: `${position.file}:${position.pos}`,
    deleted_stale: counters.deleted,
    part: `${part.index}/${part.count}`,
    resumed: record.resumed,
    dry_run: record.dryRun,
    snapshot_method: state.method,
    eligible_in_snapshot: state.spooled,
    snapshot_seconds: state.snapshotSeconds,
  };
}

/** After a window: the counters saved, the status published, the caller told (nothing of it in a dry run). */
async function windowDone(
  deps: BackfillDeps,
  record: RunRecord,
  onProgress: ((s: BackfillSummary) => void) | undefined,
): Promise<void> {
  if (record.dryRun) return;
  const { counters } = record.state;
  await saveProgress(deps.redis, record.runKey, counters);
  const summary = summarize(record, false);
  await deps.redis.hset(deps.keys.serviceStatus('backfill'), {
    updated_at: new Date().toISOString(),
    part: summary.part,
    done: counters.done,
    total: record.state.spooled,
    failed: counters.failed,
    snapshot: summary.snapshot_position,
  });
  onProgress?.(summary);
}

/** Phase 3 (remove documents of this range that the snapshot does not have; never for a capped run), then the summary. */
async function finishRun(deps: BackfillDeps, record: RunRecord, spoolDir: string): Promise<BackfillSummary> {
  const { state, part, dryRun } = record;
  const { counters } = state;
  if (!dryRun && !state.capped && !state.cleaned) {
    counters.deleted = await cleanUp(deps, part, state.spool, snapshotSourcePosition(state.position));
    await saveCleanup(deps.redis, record.runKey, counters.deleted);
  }
  const completed = !dryRun && !state.capped && counters.failed === 0 && counters.done === state.spooled;
  const summary = summarize(record, completed);
  if (!dryRun) {
    if (counters.failed > 0) await writeFailureReport(deps, part, spoolDir);
    await deps.redis.hset(deps.keys.serviceStatus('backfill'), {
      updated_at: new Date().toISOString(),
      completed: String(completed),
      last_summary: JSON.stringify(summary),
    });
  }
  deps.log.info('backfill finished', { ...summary });
  return summary;
}
