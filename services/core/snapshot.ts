/**
 * A consistent snapshot of the source table and the binlog position it corresponds to.
 *
 * MariaDB: inside `START TRANSACTION WITH CONSISTENT SNAPSHOT`, the status variables
 * `Binlog_snapshot_file` / `Binlog_snapshot_position` give the exact position of the snapshot.
 *
 * MySQL 8 / Aurora MySQL 3 have no such variable, and FLUSH TABLES WITH READ LOCK is not allowed on
 * Aurora. drugsync reads the binlog position *before* opening the snapshot (`SHOW MASTER STATUS`, or
 * `performance_schema.log_status` where granted) and records that lower bound as the snapshot position.
 * Every change committed between that position and the snapshot is already in the snapshot and is also
 * replayed by the binlog reader from that position: row events carry full images and are applied in order
 * per NDC, so the replay converges to the same state, and the never-backwards rule keeps backfilled
 * documents (older position) from overwriting anything the stream wrote. No lock is taken on the writer.
 *
 * Rows are read with keyset pagination on the primary key (`WHERE NDC > ? ORDER BY NDC LIMIT n`), never
 * OFFSET, so every page costs the same and memory is bounded by one page.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { MysqlPool } from './clients/mysql.ts';
import { DrugsyncError, wrapError } from './errors.ts';
import type { BinlogPosition } from './position.ts';
import type { Rndc14Row } from './rndc14.ts';

export type ServerFlavor = 'mariadb' | 'mysql';

export interface Snapshot {
  flavor: ServerFlavor;
  position: BinlogPosition;
  /** true when `position` is exact (MariaDB), false when it is a lower bound (MySQL 8 / Aurora). */
  exact: boolean;
  /** Streams rows of the table in NDC order, NDC in (after, upTo], `pageSize` rows per query. */
  rows(opts: RowRange & { pageSize?: number }): AsyncGenerator<Rndc14Row[]>;
  /** Ends the transaction and releases the connection. Idempotent. */
  close(): Promise<void>;
}

export interface RowRange {
  schema: string;
  table: string;
  /** exclusive lower bound on NDC ('' = from the start) */
  after?: string;
  /** inclusive upper bound on NDC (undefined = to the end) */
  upTo?: string | undefined;
}

async function one<T>(conn: PoolConnection, sql: string): Promise<T | undefined> {
  const [rows] = await conn.query(sql);
  return (rows as T[])[0];
}

export async function serverFlavor(conn: PoolConnection): Promise<ServerFlavor> {
  const v = await one<{ v: string }>(conn, 'SELECT VERSION() AS v');
  return /mariadb/i.test(v?.v ?? '') ? 'mariadb' : 'mysql';
}

async function masterStatus(conn: PoolConnection): Promise<BinlogPosition> {
  const r = await one<Record<string, unknown>>(conn, 'SHOW MASTER STATUS');
  if (!r?.File) {
    throw new DrugsyncError(
      'MYSQL_PREFLIGHT_FAILED',
      'the server has no binary log (SHOW MASTER STATUS is empty)',
      {
        remedy: 'enable the binlog (log_bin, binlog_format=ROW); see README "What production MySQL needs"',
      },
    );
  }
  const gtid =
    typeof r.Executed_Gtid_Set === 'string' && r.Executed_Gtid_Set ? r.Executed_Gtid_Set : undefined;
  return { file: String(r.File), pos: Number(r.Position), gtid };
}

/** Opens a consistent snapshot on a dedicated connection. The caller must close() it. */
export async function openSnapshot(pool: MysqlPool): Promise<Snapshot> {
  const conn = await pool.getConnection();
  let open = true;
  try {
    const flavor = await serverFlavor(conn);
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    let position: BinlogPosition;
    let exact: boolean;
    if (flavor === 'mariadb') {
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
      const [rows] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
      const vars = Object.fromEntries(
        (rows as { Variable_name: string; Value: string }[]).map((r) => [
          r.Variable_name.toLowerCase(),
          r.Value,
        ]),
      );
      const gtid = await one<{ g: string }>(conn, 'SELECT @@gtid_binlog_pos AS g').catch(() => undefined);
      position = {
        file: String(vars.binlog_snapshot_file),
        pos: Number(vars.binlog_snapshot_position),
        gtid: gtid?.g || undefined,
      };
      exact = true;
      if (!position.file || !Number.isFinite(position.pos)) {
        throw new DrugsyncError('MYSQL_PREFLIGHT_FAILED', 'Binlog_snapshot_file/position are empty', {
          remedy: 'enable the binlog (log_bin) on the server',
        });
      }
    } else {
      position = await masterStatus(conn);
      await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      exact = false;
    }
    const close = async () => {
      if (!open) return;
      open = false;
      try {
        await conn.query('COMMIT');
      } finally {
        conn.release();
      }
    };
    return {
      flavor,
      position,
      exact,
      close,
      async *rows({ schema, table, after = '', upTo, pageSize = 5_000 }) {
        let last = after;
        for (;;) {
          if (!open) throw new DrugsyncError('INTERNAL', 'snapshot is closed');
          const params: unknown[] = [last];
          let sql = `SELECT * FROM \`${schema}\`.\`${table}\` WHERE NDC > ?`;
          if (upTo !== undefined) {
            sql += ' AND NDC <= ?';
            params.push(upTo);
          }
          sql += ` ORDER BY NDC LIMIT ${Math.max(1, Math.floor(pageSize))}`;
          let page: Rndc14Row[];
          try {
            const [rows] = await conn.query(sql, params);
            page = rows as Rndc14Row[];
          } catch (e) {
            throw wrapError(
              e,
              'MYSQL_QUERY_FAILED',
              `reading ${schema}.${table} after NDC ${last || '(start)'} failed`,
              {
                context: { schema, table, after_ndc: last },
                retryable: true,
                remedy: 'the run resumes from its checkpoint when started again',
              },
            );
          }
          if (page.length === 0) return;
          yield page;
          last = String((page[page.length - 1] as Rndc14Row).NDC);
          if (page.length < pageSize) return;
        }
      },
    };
  } catch (e) {
    open = false;
    conn.destroy(); // never hand a connection with a half-open transaction back to the pool
    throw wrapError(e, 'MYSQL_QUERY_FAILED', 'cannot open a consistent snapshot', {
      remedy: 'check MySQL connectivity and that the user has SELECT and REPLICATION CLIENT',
    });
  }
}
