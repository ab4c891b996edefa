/**
 * Re-sync by difference (issue 9): when a new `rndc14` is put in place (RENAME TABLE swap, DROP + CREATE,
 * ALTER ... RENAME) the binlog holds no row events for the rows it brings, only a DDL `query` event. The
 * binlog reader publishes it as a `resync` table event (in order, to every shard); the embedder records it
 * as pending (table-state.ts) and this runner brings Redis to the new table:
 *
 * 1. opens a consistent snapshot of the source table, at position P (taken after the resync event was read,
 *    so P is newer than the swap);
 * 2. compares it with Redis by NDC and content hash (the `verify` comparison, reading the content hash each
 *    document's bookkeeping recorded rather than the documents: ~150 bytes an NDC);
 * 3. writes only what differs, at P, through the position-checked store: a document the stream has since
 *    rewritten (newer than P) is left alone, and a row event older than P arriving later is refused; deletes
 *    what is gone (tombstones at P); embeds only names the embedding cache does not know;
 * 4. clears the pending resyncs at or below P (the resync floor), and logs one line with what it did.
 *
 * One runner at a time across processes (a lease in Redis, renewed while it runs); the row stream is not
 * paused: batches keep being applied while it runs, and the position rule arbitrates. A failure leaves the
 * resync pending: it is retried with backoff, and `drugsync status` shows it with its last error.
 */
import { randomUUID } from 'node:crypto';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { DrugsyncError, isDrugsyncError, wrapError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import type { EmbeddingService, EmbeddingStats } from '../core/embedding/types.ts';
import { backoffDelay } from '../core/backoff.ts';
import type { BackoffOptions } from '../core/backoff.ts';
import { repair, verifyOnce } from '../core/reconcile.ts';
import type { RepairResult, VerifyReport } from '../core/reconcile.ts';
import type { RedisDrugStore } from '../core/redis/drug-store.ts';
import type { SnapshotMethod } from '../core/snapshot.ts';
import { resyncStatus } from '../core/status/resync.ts';
import type { ResyncStatus } from '../core/status/resync.ts';
import type { PendingResync, TableState } from './table-state.ts';

export interface ResyncDeps {
  mysql: MysqlPool;
  redis: RedisClient;
  keys: Keys;
  store: RedisDrugStore;
  embeddings: EmbeddingService;
  tableState: TableState;
  log: Logger;
  schema: string;
  table: string;
  /** SNAPSHOT_METHOD from the configuration ('auto': MariaDB → binlog-snapshot, MySQL → table-lock) */
  snapshotMethod: SnapshotMethod;
}

/** What the comparison found (as `verify` reports it), what was written, and what it cost. */
export interface ResyncOutcome extends Pick<
  VerifyReport,
  'source_rows' | 'redis_docs' | 'missing' | 'extra' | 'stale' | 'in_flight' | 'snapshot_method'
> {
  /** the snapshot position the re-sync reflects */
  position: string;
  resyncs: string[];
  written: number;
  deleted: number;
  refused: number;
  /** distinct names sent to the embedder (not found in the cache) */
  names_embedded: number;
  embeddings_requested: number;
  cache_hits: number;
  seconds: number;
}

export interface ResyncRunner {
  /** Starts a re-sync in the background for these pending resyncs unless one is running or backing off. */
  kick(pending: readonly PendingResync[]): void;
  /** Runs one now and waits for it (the `drugsync resync` command, tests). */
  runNow(pending: readonly PendingResync[]): Promise<ResyncOutcome | null>;
  readonly running: boolean;
  /** Aborts a running re-sync at its next page (it stays pending) and waits for it to end. */
  stop(): Promise<void>;
}

const LEASE_MS = 60_000;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
/** A failed re-sync is retried after 2 s, 4 s, … up to a minute. */
const FAILURE_BACKOFF: BackoffOptions = { baseMs: 1_000, maxMs: 60_000, jitter: 'none' };
/** The status hash shows the comparison's progress at most this often. */
const PROGRESS_STATUS_EVERY_MS = 500;

/** Adds to the re-sync's status hash (its schema: ../core/status/resync.ts); `updated_at` is the writer's. */
type StatusWriter = (fields: Omit<ResyncStatus, 'updated_at'>) => Promise<void>;

/**
 * Takes the cross-process re-sync lease and renews it while held. null: another process runs a re-sync.
 * The returned function stops the renewal and releases the lease (if still ours).
 */
async function takeResyncLease(deps: ResyncDeps, key: string): Promise<(() => Promise<void>) | null> {
  const token = randomUUID();
  if ((await deps.redis.set(key, token, 'PX', LEASE_MS, 'NX')) !== 'OK') return null;
  const renew = setInterval(() => {
    deps.redis.eval(RENEW, 1, key, token, String(LEASE_MS)).catch((e: unknown) => {
      deps.log.warn('could not renew the re-sync lease', { key, error: String(e) });
    });
  }, LEASE_MS / 3);
  return async () => {
    clearInterval(renew);
    await deps.redis.eval(RELEASE, 1, key, token).catch(() => undefined);
  };
}

/** The comparison with Redis at a fresh snapshot; refuses a snapshot older than the resync events. */
async function compareAtSnapshot(
  deps: ResyncDeps,
  status: StatusWriter,
  pending: readonly PendingResync[],
  signal: AbortSignal,
): Promise<Awaited<ReturnType<typeof verifyOnce>>> {
  let lastStatus = 0;
  const found = await verifyOnce(deps, {
    repair: true,
    trustMeta: true,
    signal,
    onProgress: (phase, done, total) => {
      if (Date.now() - lastStatus < PROGRESS_STATUS_EVERY_MS) return;
      lastStatus = Date.now();
      void status({ phase, done, total }).catch(() => undefined);
    },
  });
  const floor = pending.reduce((m, p) => (p.pos > m ? p.pos : m), '');
  if (found.diff.P < floor) {
    // cannot happen when the snapshot is opened after the event was read; refuse rather than guess
    throw new DrugsyncError('INTERNAL', 'the re-sync snapshot is older than the resync event', {
      context: { pos: floor, snapshot: found.diff.P },
      remedy: 'the resync stays pending and is retried',
    });
  }
  return found;
}

function outcomeOf(
  report: VerifyReport,
  fixed: RepairResult,
  base: { position: string; resyncs: string[]; before: EmbeddingStats; after: EmbeddingStats; ms: number },
): ResyncOutcome {
  const { before, after } = base;
  return {
    position: base.position,
    resyncs: base.resyncs,
    source_rows: report.source_rows,
    redis_docs: report.redis_docs,
    missing: report.missing,
    extra: report.extra,
    stale: report.stale,
    in_flight: report.in_flight,
    snapshot_method: report.snapshot_method,
    written: fixed.written,
    deleted: fixed.deleted,
    refused: fixed.refused,
    names_embedded: after.texts - before.texts - (after.cacheHits - before.cacheHits),
    embeddings_requested: after.requests - before.requests,
    cache_hits: after.cacheHits - before.cacheHits,
    seconds: Math.round(base.ms / 100) / 10,
  };
}

/** Compares, writes what differs, clears the pending resyncs and reports; holds the lease meanwhile. */
async function resyncByDifference(
  deps: ResyncDeps,
  status: StatusWriter,
  pending: readonly PendingResync[],
  signal: AbortSignal,
): Promise<ResyncOutcome> {
  const t0 = Date.now();
  const before = deps.embeddings.totals();
  const resyncs = pending.map((p) => p.pos);
  await status({ phase: 'scan', resyncs, started_at: t0 });
  deps.log.warn('re-sync by difference started: the table was replaced', {
    resyncs,
    statements: pending.map((p) => p.statement),
  });
  const { report, diff } = await compareAtSnapshot(deps, status, pending, signal);
  let fixed: RepairResult = { written: 0, deleted: 0, refused: 0, failed: 0 };
  if (!report.ok) {
    await status({ phase: 'write', missing: report.missing, extra: report.extra, stale: report.stale });
    fixed = await repair(deps, diff);
  }
  await deps.tableState.completeResync(diff.P);
  const ms = Date.now() - t0;
  const outcome = outcomeOf(report, fixed, {
    position: diff.P,
    resyncs,
    before,
    after: deps.embeddings.totals(),
    ms,
  });
  await status({ phase: 'done', ...outcome, finished_at: Date.now() });
  deps.log.info('re-sync by difference finished', { ...outcome });
  return outcome;
}

class Runner implements ResyncRunner {
  private current: Promise<unknown> | null = null;
  private abort: AbortController | null = null;
  private failures = 0;
  private notBefore = 0;
  constructor(private readonly d: ResyncDeps) {}

  get running(): boolean {
    return this.current !== null;
  }

  kick(pending: readonly PendingResync[]): void {
    if (this.current || pending.length === 0 || Date.now() < this.notBefore) return;
    this.abort = new AbortController();
    this.current = this.run(pending, this.abort.signal)
      .catch((e: unknown) => this.onFailure(e, pending))
      .finally(() => {
        this.current = null;
        this.abort = null;
      });
  }

  async runNow(pending: readonly PendingResync[]): Promise<ResyncOutcome | null> {
    if (this.current) await this.current;
    this.abort = new AbortController();
    const p = this.run(pending, this.abort.signal);
    this.current = p.catch(() => undefined);
    try {
      return await p;
    } finally {
      this.current = null;
      this.abort = null;
    }
  }

  async stop(): Promise<void> {
    this.abort?.abort();
    if (this.current) await this.current;
  }

  private async run(pending: readonly PendingResync[], signal: AbortSignal): Promise<ResyncOutcome | null> {
    const { d } = this;
    const { resyncLease, resyncStatus: statusKey } = d.keys;
    const release = await takeResyncLease(d, resyncLease);
    if (!release) {
      d.log.info('a re-sync is already running in another process; not starting one here', {
        key: resyncLease,
      });
      return null;
    }
    const status: StatusWriter = async (fields) => {
      await d.redis.hset(statusKey, resyncStatus.encode({ ...fields, updated_at: Date.now() }));
    };
    try {
      await d.redis.del(statusKey);
      const outcome = await resyncByDifference(d, status, pending, signal);
      this.failures = 0;
      return outcome;
    } catch (e) {
      const err = isDrugsyncError(e)
        ? e
        : wrapError(e, 'INTERNAL', 're-sync by difference failed', {
            context: { resyncs: pending.map((p) => p.pos) },
          });
      await status({ phase: 'failed', error: `${err.code}: ${err.message}` }).catch(() => undefined);
      throw err;
    } finally {
      await release();
    }
  }

  /** A background re-sync failed: it stays pending and is retried after a backoff (an abort is no failure). */
  private onFailure(e: unknown, pending: readonly PendingResync[]): void {
    if (isDrugsyncError(e, 'ABORTED')) {
      this.d.log.info('re-sync stopped; it stays pending', {});
      return;
    }
    this.failures++;
    const backoff = backoffDelay(this.failures, FAILURE_BACKOFF);
    this.notBefore = Date.now() + backoff;
    this.d.log.error('re-sync by difference failed; it stays pending and is retried', {
      error: e,
      backoff_ms: backoff,
      resyncs: pending.map((p) => p.pos),
    });
  }
}

export function createResyncRunner(d: ResyncDeps): ResyncRunner {
  return new Runner(d);
}
