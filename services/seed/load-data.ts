/**
 * Loading rows into MySQL fast: LOAD DATA LOCAL INFILE fed from a stream of tab-separated lines (mysql2's
 * infileStreamFactory), in chunks so progress is visible and no single statement is unbounded; and what a
 * load needs around it: the admin connection that may send LOCAL INFILE data (also `drugsync run`'s) and
 * the table's DROP + CREATE.
 */
import { Readable } from 'node:stream';
import mysql from 'mysql2/promise';
import type { Connection, ResultSetHeader } from 'mysql2/promise';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import { RNDC14_COLUMN_LIST, RNDC14_COLUMN_NAMES, createTableSql } from '../core/rndc14.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { quoteIdent, quoteTable } from '../core/sql.ts';

export interface AdminSettings {
  DB_HOST: string;
  DB_PORT: number;
  DB_ADMIN_USER?: string | undefined;
  DB_ADMIN_PASSWORD?: string | undefined;
}

const NEEDS_ESCAPE = /[\\\t\n\r]/;

/** One TSV field: \N for NULL; backslash, tab, newline and carriage return escaped as LOAD DATA expects. */
function field(v: string | number | null | undefined): string {
  if (v === null || v === undefined) return '\\N';
  if (typeof v === 'number') return String(v);
  if (v.length === 0 || !NEEDS_ESCAPE.test(v)) return v;
  return v.replace(/\\/g, '\\\\').replace(/\t/g, '\\t').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/**
 * One row as a LOAD DATA line (FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'), columns
 * in table order. Any text is safe: escapes are applied where needed, non-ASCII passes through as UTF-8.
 */
export function tsvLine(row: Rndc14Row, columns: readonly string[] = RNDC14_COLUMN_NAMES): string {
  let s = field(row[columns[0] as string]);
  for (let i = 1; i < columns.length; i++) s += '\t' + field(row[columns[i] as string]);
  return s + '\n';
}

/** An admin connection that may send LOCAL INFILE data; fails with the host and port named. */
export async function adminConnection(settings: AdminSettings, database?: string): Promise<Connection> {
  try {
    return await mysql.createConnection({
      host: settings.DB_HOST,
      port: settings.DB_PORT,
      user: settings.DB_ADMIN_USER,
      password: settings.DB_ADMIN_PASSWORD,
      database,
      dateStrings: true,
      supportBigNumbers: true,
      charset: 'utf8mb4_general_ci',
      flags: ['+LOCAL_FILES'],
    });
  } catch (e) {
    throw wrapError(
      e,
      'MYSQL_QUERY_FAILED',
      `cannot connect to MySQL at ${settings.DB_HOST}:${settings.DB_PORT} as admin`,
      {
        context: { host: settings.DB_HOST, port: settings.DB_PORT, user: settings.DB_ADMIN_USER ?? '' },
        remedy:
          'start the local stack (`npx drugsync stack up`) or check DB_HOST, DB_PORT, DB_ADMIN_USER, DB_ADMIN_PASSWORD',
        retryable: true,
      },
    );
  }
}

/** DROP + CREATE the table (and its database when missing), in a session that accepts zero dates. */
export async function recreateTable(conn: Connection, schema: string, table: string): Promise<void> {
  await conn.query(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(schema)} CHARACTER SET utf8mb4`);
  await conn.query(`DROP TABLE IF EXISTS ${quoteTable(schema, table)}`);
  await conn.query(createTableSql(schema, table));
}

export interface LoadOptions {
  schema: string;
  table: string;
  /** rows per LOAD DATA statement (one transaction each); 50,000 measured best here */
  chunkRows?: number;
  /** rows handed to the server so far (called often; committed rows are the return value) */
  onProgress?: (sent: number) => void;
}

/** Loads rows (any iterable) with LOAD DATA LOCAL INFILE. Returns the number of rows loaded. */
export async function loadRows(
  conn: Connection,
  rows: Iterable<Rndc14Row>,
  opts: LoadOptions,
): Promise<number> {
  await conn.query(`SET SESSION sql_mode = '', SESSION unique_checks = 0, SESSION foreign_key_checks = 0`);
  const chunkRows = opts.chunkRows ?? 50_000;
  const it = rows[Symbol.iterator]();
  let loaded = 0;
  let sent = 0;
  let done = false;
  while (!done) {
    let inChunk = 0;
    const stream = new Readable({
      // Let generation run ahead of the socket so client and server overlap.
      highWaterMark: 1 << 20,
      read() {
        // A few hundred lines per read keep the server busy without buffering the whole chunk.
        let batch = '';
        let k = 0;
        for (; k < 256 && inChunk < chunkRows; k++, inChunk++) {
          const n = it.next();
          if (n.done) {
            done = true;
            break;
          }
          batch += tsvLine(n.value);
        }
        if (batch) {
          this.push(batch);
          sent += k;
          opts.onProgress?.(sent);
        }
        if (done || inChunk >= chunkRows) this.push(null);
      },
    });
    let header: ResultSetHeader;
    try {
      // The stream is handed to this one statement (mysql2's per-query infileStreamFactory).
      [header] = await conn.query<ResultSetHeader>({
        sql:
          `LOAD DATA LOCAL INFILE 'drugsync-rows.tsv' INTO TABLE ${quoteTable(opts.schema, opts.table)} CHARACTER SET utf8mb4 ` +
          `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${RNDC14_COLUMN_LIST})`,
        infileStreamFactory: () => stream,
      });
    } catch (e) {
      throw wrapError(e, 'SEED_FAILED', `LOAD DATA into ${opts.schema}.${opts.table} failed`, {
        context: { schema: opts.schema, table: opts.table, rows_loaded: loaded },
        remedy: 'check that the server allows local_infile=1 and the admin user may write the table',
      });
    }
    // LOCAL implies IGNORE: duplicate keys and truncated values only show up as warnings. Nothing is lost
    // silently: any warning, or fewer rows than sent, fails the load with the server's first warnings.
    if (header.affectedRows !== inChunk || header.warningStatus > 0) {
      const [warnings] = await conn.query('SHOW WARNINGS LIMIT 5');
      const text = (warnings as { Message: string }[]).map((w) => w.Message).join('; ');
      throw new DrugsyncError(
        'SEED_FAILED',
        `LOAD DATA into ${opts.schema}.${opts.table} took ${header.affectedRows} of ${inChunk} rows with ${header.warningStatus} warning(s): ${text}`,
        {
          context: { schema: opts.schema, table: opts.table, rows_loaded: loaded, chunk_rows: inChunk },
          remedy: 'fix the rows named in the warnings (duplicate NDC, value too long for its column)',
        },
      );
    }
    loaded += inChunk;
  }
  return loaded;
}
