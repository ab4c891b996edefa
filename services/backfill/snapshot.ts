/**
 * The backfill's consistent snapshot and the binlog position it corresponds to, per server flavour.
 *
 * - MariaDB (`VERSION()` contains "MariaDB"): `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then
 *   `SHOW STATUS LIKE 'binlog_snapshot_%'` inside it gives the exact position (services/core/snapshot.ts).
 * - MySQL 8 / Aurora MySQL 3 have no such status variable, and `FLUSH TABLES WITH READ LOCK` is refused on
 *   Aurora/RDS. Reading `SHOW MASTER STATUS` just before opening the snapshot is NOT sound on its own: a
 *   transaction is written to the binlog (flush stage) before InnoDB commits it (commit stage), so a
 *   position read at that moment may already include a transaction that the snapshot opened right after it
 *   does not see yet, and the reader starting there would never see it either: a lost change.
 *   drugsync's 'table-lock' method closes that window with a lock held for milliseconds:
 *     1. `LOCK TABLES <table> READ` (short lock_wait_timeout, retried): it waits until every transaction
 *        that wrote the table has finished, commit included (writers hold their metadata lock to the end
 *        of the transaction), and holds new writers back;
 *     2. `SHOW MASTER STATUS` (`SHOW BINARY LOG STATUS` on 8.4): every change of the table in the binlog
 *        before this position is committed in InnoDB;
 *     3. `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` (which releases the table lock).
 *   Changes committed between 2 and 3 are in the snapshot *and* after the position: the binlog reader
 *   replays them, which converges (full row images, applied in order per NDC) — the position is a sound
 *   lower bound. Needs the LOCK TABLES privilege on the schema (plus SELECT, REPLICATION CLIENT).
 *   This is Debezium's "minimal" idea (lock, read the position, open the snapshot, unlock) with a table
 *   lock in place of the global read lock that managed MySQL refuses; unlike Debezium on RDS, the lock is
 *   not kept while the rows are read.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { MysqlPool } from '../core/clients/mysql.ts';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { BinlogPosition } from '../core/position.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { openSnapshot, serverFlavor } from '../core/snapshot.ts';
import type { RowRange, ServerFlavor, Snapshot } from '../core/snapshot.ts';

/** 'auto': MariaDB → binlog-snapshot, MySQL → table-lock. */
export type SnapshotMethod = 'auto' | 'binlog-snapshot' | 'table-lock';

export interface BackfillSnapshot extends Snapshot {
  method: Exclude<SnapshotMethod, 'auto'>;
  /** milliseconds the table lock was held (table-lock only) */
  lockHeldMs?: number;
}

export interface SnapshotOptions {
  method?: SnapshotMethod;
  schema: string;
  table: string;
  /** seconds to wait for the table lock per attempt (lock_wait_timeout) */
  lockWaitSeconds?: number;
  lockAttempts?: number;
}

async function binaryLogStatus(conn: PoolConnection): Promise<BinlogPosition> {
  let row: Record<string, unknown> | undefined;
  try {
    const [rows] = await conn.query('SHOW MASTER STATUS');
    row = (rows as Record<string, unknown>[])[0];
  } catch (e) {
    // MySQL 8.4 removed SHOW MASTER STATUS in favour of SHOW BINARY LOG STATUS.
    if (!/syntax|deprecated|removed/i.test(String((e as Error).message))) throw e;
    const [rows] = await conn.query('SHOW BINARY LOG STATUS');
    row = (rows as Record<string, unknown>[])[0];
  }
  if (!row?.File) {
    throw new DrugsyncError(
      'MYSQL_PREFLIGHT_FAILED',
      'the server has no binary log (SHOW MASTER STATUS is empty)',
      {
        remedy: 'enable the binlog (binlog_format=ROW; on Aurora set it in the cluster parameter group)',
      },
    );
  }
  const gtid =
    typeof row.Executed_Gtid_Set === 'string' && row.Executed_Gtid_Set ? row.Executed_Gtid_Set : undefined;
  return { file: String(row.File), pos: Number(row.Position), gtid };
}

function keysetRows(
  conn: PoolConnection,
  isOpen: () => boolean,
): (opts: RowRange & { pageSize?: number }) => AsyncGenerator<Rndc14Row[]> {
  return async function* rows({ schema, table, after = '', upTo, pageSize = 5_000 }) {
    let last = after;
    for (;;) {
      if (!isOpen()) throw new DrugsyncError('INTERNAL', 'snapshot is closed');
      const params: unknown[] = [last];
      let sql = `SELECT * FROM \`${schema}\`.\`${table}\` WHERE NDC > ?`;
      if (upTo !== undefined) {
        sql += ' AND NDC <= ?';
        params.push(upTo);
      }
      sql += ` ORDER BY NDC LIMIT ${Math.max(1, Math.floor(pageSize))}`;
      let page: Rndc14Row[];
      try {
        const [r] = await conn.query(sql, params);
        page = r as Rndc14Row[];
      } catch (e) {
        throw wrapError(
          e,
          'MYSQL_QUERY_FAILED',
          `reading ${schema}.${table} after NDC ${last || '(start)'} failed`,
          {
            context: { schema, table, after_ndc: last },
            retryable: true,
            remedy: 'the run takes a new snapshot when started again',
          },
        );
      }
      if (page.length === 0) return;
      yield page;
      last = String((page[page.length - 1] as Rndc14Row).NDC);
      if (page.length < pageSize) return;
    }
  };
}

/** The table-lock method (MySQL 8 / Aurora MySQL 3; also works on MariaDB, where tests exercise it). */
async function openTableLockSnapshot(
  pool: MysqlPool,
  o: SnapshotOptions,
  flavor: ServerFlavor,
): Promise<BackfillSnapshot> {
  const conn = await pool.getConnection();
  let open = true;
  const table = `\`${o.schema}\`.\`${o.table}\``;
  try {
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    await conn.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.floor(o.lockWaitSeconds ?? 5))}`);
    const attempts = Math.max(1, o.lockAttempts ?? 12);
    let position: BinlogPosition | undefined;
    let lockHeldMs = 0;
    for (let a = 1; !position; a++) {
      try {
        await conn.query(`LOCK TABLES ${table} READ`);
      } catch (e) {
        const msg = String((e as Error).message);
        // A long writer transaction holds the table: give way (a pending lock would hold writers back) and retry.
        if (/Lock wait timeout/i.test(msg) && a < attempts) {
          await new Promise((r) => setTimeout(r, 200 + Math.random() * 800));
          continue;
        }
        throw wrapError(
          e,
          'MYSQL_QUERY_FAILED',
          `cannot lock ${o.schema}.${o.table} to read a consistent binlog position`,
          {
            context: { schema: o.schema, table: o.table, attempts: a },
            remedy: /denied/i.test(msg)
              ? `GRANT LOCK TABLES ON \`${o.schema}\`.* TO the drugsync user (held for milliseconds, once per snapshot)`
              : 'a long transaction writes the table: retry when it has finished',
          },
        );
      }
      const locked = performance.now();
      try {
        position = await binaryLogStatus(conn);
        // Opens the read view; implicitly releases the table lock (a new transaction ends LOCK TABLES).
        await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      } finally {
        lockHeldMs = performance.now() - locked;
        if (!position) await conn.query('UNLOCK TABLES');
      }
    }
    const close = async () => {
      if (!open) return;
      open = false;
      try {
        await conn.query('COMMIT');
        await conn.query('UNLOCK TABLES');
      } finally {
        conn.release();
      }
    };
    return {
      flavor,
      method: 'table-lock',
      position,
      exact: false,
      lockHeldMs,
      close,
      rows: keysetRows(conn, () => open),
    };
  } catch (e) {
    open = false;
    conn.destroy(); // never hand a locked connection or a half-open transaction back to the pool
    throw e instanceof DrugsyncError
      ? e
      : wrapError(e, 'MYSQL_QUERY_FAILED', 'cannot open a consistent snapshot', {
          remedy: 'check MySQL connectivity and that the user has SELECT, LOCK TABLES and REPLICATION CLIENT',
        });
  }
}

/** Opens the backfill's snapshot with the method for the server (or the one asked for). */
export async function openBackfillSnapshot(pool: MysqlPool, o: SnapshotOptions): Promise<BackfillSnapshot> {
  const conn = await pool.getConnection();
  let flavor: ServerFlavor;
  try {
    flavor = await serverFlavor(conn);
  } finally {
    conn.release();
  }
  const method =
    !o.method || o.method === 'auto' ? (flavor === 'mariadb' ? 'binlog-snapshot' : 'table-lock') : o.method;
  if (method === 'binlog-snapshot') {
    if (flavor !== 'mariadb') {
      throw new DrugsyncError(
        'CONFIG_INVALID',
        'BACKFILL_SNAPSHOT_METHOD=binlog-snapshot needs MariaDB (MySQL has no Binlog_snapshot_position)',
        { remedy: 'use BACKFILL_SNAPSHOT_METHOD=auto or table-lock on MySQL 8 / Aurora MySQL 3' },
      );
    }
    return { ...(await openSnapshot(pool)), method };
  }
  return openTableLockSnapshot(pool, o, flavor);
}
