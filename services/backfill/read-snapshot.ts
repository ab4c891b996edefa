/**
 * Phase 1: a consistent snapshot of the part's range (../core/snapshot.ts: exact on MariaDB, a sound lower
 * bound via a millisecond table lock on MySQL 8 / Aurora), read by keyset pages on NDC (never OFFSET), every
 * eligible row mapped into the part's spool file (./spool.ts). The MySQL transaction is open only while rows
 * are read, never while they are embedded; its position is handed to the binlog reader as soon as it is open.
 */
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { Keys } from '../core/keys.ts';
import type { Logger } from '../core/log.ts';
import { mapRow } from '../core/mapping.ts';
import type { DrugFields } from '../core/mapping.ts';
import { serializePosition } from '../core/position.ts';
import { createProgress } from '../core/progress.ts';
import { openSnapshot } from '../core/snapshot.ts';
import { quoteTable } from '../core/sql.ts';
import type { Snapshot, SnapshotMethod } from '../core/snapshot.ts';
import { handOff } from './handoff.ts';
import type { Part } from './part.ts';
import type { SpooledSnapshot } from './run-state.ts';
import { newSpoolFile, spoolWriter } from './spool.ts';
import type { SpoolWriter } from './spool.ts';

/** What the snapshot read needs of the backfill's options. */
export interface SnapshotReadSettings {
  schema: string;
  table: string;
  snapshotMethod?: SnapshotMethod;
  spoolDir: string;
  /** read and map only: no hand-off, a spool directory of its own */
  dryRun?: boolean;
  /** stop after this many eligible rows (0 or undefined = all) */
  maxDrugs?: number;
}

type Progress = ReturnType<typeof createProgress>;

/** Rows read from the snapshot, eligible rows spooled, and whether --max-drugs stopped the read. */
interface SpoolCount {
  rows: number;
  spooled: number;
  capped: boolean;
}

/** Phase 1: a consistent snapshot of the part's range, eligible rows mapped into a new spool file. */
export async function snapshotToSpool(
  deps: { mysql: MysqlPool; redis: RedisClient; keys: Keys; log: Logger },
  settings: SnapshotReadSettings,
  part: Part,
): Promise<SpooledSnapshot> {
  const spool = newSpoolFile(settings.spoolDir, deps.keys, part.label, !!settings.dryRun);
  const out = spoolWriter(spool);
  const opened = performance.now();
  const snap = await openSnapshot(deps.mysql, {
    method: settings.snapshotMethod,
    schema: settings.schema,
    table: settings.table,
  });
  let seconds: number;
  let read: SpoolCount;
  const progress = createProgress({
    label: `backfill ${part.label}: read snapshot`,
    total: await rowsToRead(deps.mysql, settings, part),
    unit: 'rows',
    log: deps.log,
  });
  try {
    // The reader's start is recorded as soon as the snapshot exists (see handOff).
    if (!settings.dryRun) await handOff(deps, part, snap.position);
    read = await spoolRows(snap, settings, part, out, progress);
  } finally {
    progress.stop();
    await snap.close(); // the MySQL transaction ends before anything is embedded
    seconds = (performance.now() - opened) / 1000;
    await out.close();
  }
  deps.log.info('snapshot spooled', {
    part: part.label,
    rows_read: read.rows,
    eligible: read.spooled,
    position: serializePosition(snap.position),
    exact: snap.exact,
    transaction_open_seconds: Math.round(seconds * 10) / 10,
    rows_per_second: Math.round(read.rows / Math.max(seconds, 0.001)),
    method: snap.method,
    ...(snap.lockHeldMs === undefined ? {} : { lock_held_ms: Math.round(snap.lockHeldMs * 10) / 10 }),
  });
  const { spooled, capped } = read;
  return { position: snap.position, exact: snap.exact, method: snap.method, spool, spooled, capped, seconds };
}

/** Rows to read, for the progress bar's ETA (outside the snapshot: an estimate, never used for correctness). */
async function rowsToRead(mysql: MysqlPool, table: SnapshotReadSettings, part: Part): Promise<number> {
  const counted = await mysql.query<{ n: number }>(
    `SELECT COUNT(*) AS n FROM ${quoteTable(table.schema, table.table)} WHERE NDC > ?${part.upTo === undefined ? '' : ' AND NDC <= ?'}`,
    part.upTo === undefined ? [part.after] : [part.after, part.upTo],
  );
  return Number(counted[0]?.n ?? 0);
}

/** The part's rows through the snapshot's keyset pages, the eligible ones mapped into the spool. */
async function spoolRows(
  snap: Snapshot,
  settings: SnapshotReadSettings,
  part: Part,
  out: SpoolWriter,
  progress: Progress,
): Promise<SpoolCount> {
  const max = settings.maxDrugs ?? 0;
  let rows = 0;
  let spooled = 0;
  let capped = false;
  for await (const page of snap.rows({
    schema: settings.schema,
    table: settings.table,
    after: part.after,
    upTo: part.upTo,
    pageSize: 5_000,
  })) {
    const eligible: DrugFields[] = [];
    for (const row of page) {
      rows++;
      const fields = mapRow(row);
      if (!fields) continue;
      if (max > 0 && spooled >= max) {
        capped = true;
        break;
      }
      eligible.push(fields);
      spooled++;
    }
    await out.write(eligible);
    progress.update(rows, { eligible: spooled });
    if (capped) break;
  }
  return { rows, spooled, capped };
}
