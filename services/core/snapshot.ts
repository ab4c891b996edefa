/**
 * The one consistent snapshot of the source table that backfill, `verify [--repair]` and the re-sync use,
 * and the binlog position it corresponds to. Two methods (config `SNAPSHOT_METHOD`, default 'auto'):
 *
 * - `binlog-snapshot` (MariaDB only, exact): `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then
 *   `SHOW STATUS LIKE 'binlog_snapshot_%'` inside it: `Binlog_snapshot_file` / `Binlog_snapshot_position` are
 *   the binlog coordinates of exactly that read view (MariaDB takes them under its commit-ordering lock).
 * - `table-lock` (MySQL 8 / Aurora MySQL 3; also runs on MariaDB, where the tests exercise it): a sound
 *   lower bound. MySQL has no such status variable, and reading `SHOW MASTER STATUS` just before opening the
 *   snapshot is NOT sound on its own: a transaction is written to the binlog (flush stage) before InnoDB
 *   commits it (commit stage), so a position read at that moment may already include a transaction that the
 *   snapshot opened right after does not see yet, and a reader starting there never sees it either: a lost
 *   change. `FLUSH TABLES WITH READ LOCK` is refused on Aurora/RDS. So a table lock held for milliseconds:
 *     1. `LOCK TABLES <table> READ` (short lock_wait_timeout, retried): it waits until every transaction
 *        that wrote the table has finished, commit included (writers hold their metadata lock to the end
 *        of the transaction), and holds new writers back;
 *     2. `SHOW MASTER STATUS` (`SHOW BINARY LOG STATUS` from MySQL 8.2; 8.4 removed the former): every change
 *        of the table in the binlog before this position is committed in InnoDB;
 *     3. `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` (which releases the table lock).
 *   Changes committed between 2 and 3 are in the snapshot *and* after the position: the binlog reader
 *   replays them, which converges (full row images, applied in order per NDC, position-checked writes).
 *   Needs the LOCK TABLES privilege on the schema (plus SELECT, REPLICATION CLIENT). This is Debezium's
 *   "minimal" idea with a table lock in place of the global read lock managed MySQL refuses; unlike
 *   Debezium on RDS, the lock is not kept while the rows are read.
 *
 * 'auto' picks binlog-snapshot on MariaDB and table-lock on MySQL (`planSnapshot`, a pure decision table);
 * binlog-snapshot asked for on MySQL is a CONFIG_INVALID error, never a silent fallback.
 *
 * Rows are read with keyset pagination on the primary key (`WHERE NDC > ? ORDER BY NDC LIMIT n`), never
 * OFFSET, so every page costs the same and memory is bounded by one page. Only the columns the mapping reads
 * are selected (mapping.ts MAPPED_COLUMNS) unless a caller asks for others.
 */
import type { PoolConnection } from 'mysql2/promise';
import type { MysqlPool } from './clients/mysql.ts';
import { DrugsyncError, wrapError } from './errors.ts';
import { sleep } from './backoff.ts';
import type { BinlogPosition } from './position.ts';
import type { Rndc14Row } from './rndc14.ts';
import { MAPPED_COLUMNS } from './mapping.ts';
import { quoteIdent, quoteTable } from './sql.ts';

export type ServerFlavor = 'mariadb' | 'mysql';
/** How a snapshot finds its binlog position; 'auto': MariaDB → binlog-snapshot, MySQL → table-lock. */
export type SnapshotMethod = 'auto' | 'binlog-snapshot' | 'table-lock';
export type SnapshotMethodUsed = Exclude<SnapshotMethod, 'auto'>;
export type BinlogStatusStatement = 'SHOW MASTER STATUS' | 'SHOW BINARY LOG STATUS';

export interface ServerVersion {
  /** `SELECT VERSION()` as the server answered */
  raw: string;
  flavor: ServerFlavor;
  major: number;
  minor: number;
  /** Aurora MySQL's own version ('3.05.2') when the version string carries it */
  aurora?: string;
}

export interface SnapshotPlan {
  method: SnapshotMethodUsed;
  /** true: the position is the snapshot's exact one; false: a sound lower bound */
  exact: boolean;
  /** the statement that reads the binlog position under the table lock (table-lock only) */
  statusStatement?: BinlogStatusStatement;
}

export interface Snapshot {
  flavor: ServerFlavor;
  /** the method actually used */
  method: SnapshotMethodUsed;
  /** `SELECT VERSION()` of the server */
  server: string;
  position: BinlogPosition;
  /** true when `position` is exact (binlog-snapshot), false when it is a sound lower bound (table-lock). */
  exact: boolean;
  /** milliseconds the table lock was held (table-lock only) */
  lockHeldMs?: number;
  /**
   * Streams rows of the table in NDC order, NDC in (after, upTo], `pageSize` rows per query, with the
   * columns the mapping reads (or `columns`; NDC is always included).
   */
  rows(opts: RowRange & { pageSize?: number; columns?: readonly string[] }): AsyncGenerator<Rndc14Row[]>;
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

export interface SnapshotOptions {
  /** default 'auto' */
  method?: SnapshotMethod;
  /** the table the snapshot is for (table-lock locks it) */
  schema: string;
  table: string;
  /** seconds to wait for the table lock per attempt (lock_wait_timeout, default 5) */
  lockWaitSeconds?: number;
  /** attempts at the table lock before giving up (default 12) */
  lockAttempts?: number;
}

/** Parses `SELECT VERSION()`: '10.11.6-MariaDB-0+deb12u1-log', '8.0.36', '8.4.2', '8.0.mysql_aurora.3.05.2'. */
export function parseServerVersion(raw: string): ServerVersion {
  const m = /^(?:5\.5\.5-)?(\d+)\.(\d+)/.exec(raw.trim());
  if (!m) {
    throw new DrugsyncError('SNAPSHOT_FAILED', `cannot tell the server's version from "${raw}"`, {
      context: { version: raw },
      remedy: 'drugsync supports MariaDB 10.x/11.x and MySQL 8.x (Aurora MySQL 3); check DB_HOST',
    });
  }
  const aurora = /mysql_aurora\.(\d+(?:\.\d+)*)/i.exec(raw)?.[1];
  return {
    raw,
    flavor: /mariadb/i.test(raw) ? 'mariadb' : 'mysql',
    major: Number(m[1]),
    minor: Number(m[2]),
    ...(aurora ? { aurora } : {}),
  };
}

/** MySQL 8.2 added `SHOW BINARY LOG STATUS` and deprecated `SHOW MASTER STATUS`; 8.4 removed the latter. */
function statusStatementFor(s: ServerVersion): BinlogStatusStatement {
  if (s.flavor === 'mysql' && (s.major > 8 || (s.major === 8 && s.minor >= 2)))
    return 'SHOW BINARY LOG STATUS';
  return 'SHOW MASTER STATUS';
}

/** The decision table: server × requested method → the method used, or CONFIG_INVALID. Pure. */
export function planSnapshot(server: ServerVersion, requested: SnapshotMethod): SnapshotPlan {
  const method: SnapshotMethodUsed =
    requested === 'auto' ? (server.flavor === 'mariadb' ? 'binlog-snapshot' : 'table-lock') : requested;
  if (method === 'table-lock') {
    return { method, exact: false, statusStatement: statusStatementFor(server) };
  }
  if (server.flavor !== 'mariadb') {
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `SNAPSHOT_METHOD=binlog-snapshot needs MariaDB, but the server is MySQL ${server.raw} (it has no Binlog_snapshot_position)`,
      {
        context: { SNAPSHOT_METHOD: requested, server: server.raw },
        remedy:
          'set SNAPSHOT_METHOD=auto or table-lock on MySQL 8 / Aurora MySQL 3 (and GRANT LOCK TABLES ON the schema to the drugsync user)',
      },
    );
  }
  return { method, exact: true };
}

async function one<T>(conn: PoolConnection, sql: string): Promise<T | undefined> {
  const [rows] = await conn.query(sql);
  return (rows as T[])[0];
}

/** binlog-snapshot: opens the read view and reads its exact position (MariaDB). */
async function openByBinlogSnapshot(conn: PoolConnection): Promise<BinlogPosition> {
  await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT');
  const [rows] = await conn.query("SHOW STATUS LIKE 'binlog_snapshot_%'");
  const vars = Object.fromEntries(
    (rows as { Variable_name: string; Value: string }[]).map((r) => [r.Variable_name.toLowerCase(), r.Value]),
  );
  const gtid = await one<{ g: string }>(conn, 'SELECT @@gtid_binlog_pos AS g').catch(() => undefined);
  const position = {
    file: String(vars.binlog_snapshot_file ?? ''),
    pos: Number(vars.binlog_snapshot_position),
    gtid: gtid?.g || undefined,
  };
  if (!position.file || !Number.isFinite(position.pos)) {
    throw new DrugsyncError('MYSQL_PREFLIGHT_FAILED', 'Binlog_snapshot_file/position are empty', {
      remedy: 'enable the binlog (log_bin, binlog_format=ROW) on the server',
    });
  }
  return position;
}

async function binaryLogStatus(conn: PoolConnection, sql: BinlogStatusStatement): Promise<BinlogPosition> {
  const row = await one<Record<string, unknown>>(conn, sql);
  if (!row?.File) {
    throw new DrugsyncError('MYSQL_PREFLIGHT_FAILED', `the server has no binary log (${sql} is empty)`, {
      remedy: 'enable the binlog (binlog_format=ROW; on Aurora set it in the cluster parameter group)',
    });
  }
  const gtid =
    typeof row.Executed_Gtid_Set === 'string' && row.Executed_Gtid_Set ? row.Executed_Gtid_Set : undefined;
  return { file: String(row.File), pos: Number(row.Position), gtid };
}

/** A pause of 200 ms to 1 s between LOCK TABLES attempts (random, so that retries do not line up). */
function lockRetryDelay(): number {
  return 200 + Math.random() * 800;
}

/** Takes `LOCK TABLES t READ`, giving way (and retrying) while a long writer transaction holds the table. */
async function lockTable(conn: PoolConnection, opts: SnapshotOptions): Promise<void> {
  const attempts = Math.max(1, opts.lockAttempts ?? 12);
  for (let a = 1; ; a++) {
    try {
      await conn.query(`LOCK TABLES ${quoteTable(opts.schema, opts.table)} READ`);
      return;
    } catch (e) {
      const msg = String((e as Error).message);
      // a pending lock holds new writers back: give way between attempts
      if (/Lock wait timeout/i.test(msg) && a < attempts) {
        await sleep(lockRetryDelay());
        continue;
      }
      const denied = /denied/i.test(msg);
      throw wrapError(
        e,
        'SNAPSHOT_FAILED',
        `cannot lock ${opts.schema}.${opts.table} to read a consistent binlog position`,
        {
          context: { schema: opts.schema, table: opts.table, attempts: a },
          retryable: !denied,
          remedy: denied
            ? `GRANT LOCK TABLES ON ${quoteIdent(opts.schema)}.* TO the drugsync user (held for milliseconds, once per snapshot), or SNAPSHOT_METHOD=binlog-snapshot on MariaDB`
            : 'a long transaction writes the table: retry when it has finished',
        },
      );
    }
  }
}

/** table-lock: lock, read the position, open the read view (which releases the lock). */
async function openByTableLock(
  conn: PoolConnection,
  opts: SnapshotOptions,
  statement: BinlogStatusStatement,
): Promise<{ position: BinlogPosition; lockHeldMs: number }> {
  await conn.query(`SET SESSION lock_wait_timeout = ${Math.max(1, Math.floor(opts.lockWaitSeconds ?? 5))}`);
  await lockTable(conn, opts);
  const locked = performance.now();
  let opened = false;
  try {
    const position = await binaryLogStatus(conn, statement);
    // Opens the read view; implicitly releases the table lock (a new transaction ends LOCK TABLES).
    await conn.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
    opened = true;
    return { position, lockHeldMs: performance.now() - locked };
  } finally {
    if (!opened) await conn.query('UNLOCK TABLES').catch(() => undefined);
  }
}

/** The select list of a keyset page: the columns asked for, NDC always among them. */
function selectList(columns: readonly string[]): string {
  const set = new Set(['NDC', ...columns]);
  return [...set].map(quoteIdent).join(', ');
}

function keysetRows(conn: PoolConnection, isOpen: () => boolean): Snapshot['rows'] {
  return async function* rows({
    schema,
    table,
    after = '',
    upTo,
    pageSize = 5_000,
    columns = MAPPED_COLUMNS,
  }) {
    let last = after;
    const select = selectList(columns);
    for (;;) {
      if (!isOpen()) throw new DrugsyncError('INTERNAL', 'snapshot is closed');
      const params: unknown[] = [last];
      let sql = `SELECT ${select} FROM ${quoteTable(schema, table)} WHERE NDC > ?`;
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
            remedy: 'run it again: it takes a new snapshot',
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

/** Opens a consistent snapshot on a dedicated connection with the method for the server (or the one asked for). */
export async function openSnapshot(pool: MysqlPool, opts: SnapshotOptions): Promise<Snapshot> {
  const conn = await pool.getConnection();
  let plan: SnapshotPlan;
  let server: ServerVersion;
  try {
    server = parseServerVersion((await one<{ v: string }>(conn, 'SELECT VERSION() AS v'))?.v ?? '');
    plan = planSnapshot(server, opts.method ?? 'auto');
  } catch (e) {
    conn.release(); // no transaction, no lock: the connection is clean
    throw wrapError(e, 'SNAPSHOT_FAILED', 'cannot read the server version', {
      remedy: 'check MySQL connectivity (DB_HOST, DB_PORT, credentials)',
    });
  }
  let open = true;
  try {
    await conn.query('SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ');
    const opened =
      plan.method === 'binlog-snapshot'
        ? { position: await openByBinlogSnapshot(conn), lockHeldMs: undefined }
        : await openByTableLock(conn, opts, plan.statusStatement ?? 'SHOW MASTER STATUS');
    const close = async () => {
      if (!open) return;
      open = false;
      try {
        await conn.query('COMMIT');
        if (plan.method === 'table-lock') await conn.query('UNLOCK TABLES');
      } finally {
        conn.release();
      }
    };
    return {
      flavor: server.flavor,
      method: plan.method,
      server: server.raw,
      position: opened.position,
      exact: plan.exact,
      ...(opened.lockHeldMs === undefined ? {} : { lockHeldMs: opened.lockHeldMs }),
      close,
      rows: keysetRows(conn, () => open),
    };
  } catch (e) {
    open = false;
    conn.destroy(); // never hand a locked connection or a half-open transaction back to the pool
    throw wrapError(e, 'SNAPSHOT_FAILED', `cannot open a consistent snapshot (${plan.method})`, {
      context: { schema: opts.schema, table: opts.table, method: plan.method, server: server.raw },
      retryable: true,
      remedy: `check MySQL connectivity and that the user has SELECT${plan.method === 'table-lock' ? ', LOCK TABLES' : ''} and REPLICATION CLIENT`,
    });
  }
}
