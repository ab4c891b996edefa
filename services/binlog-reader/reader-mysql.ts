/**
 * The reader's MySQL side: the credentials (resolved once), the binlog source (zongji), the control queries
 * (SHOW BINARY LOGS, the stall probe) and the classification of a failed binlog stream.
 *
 * Control queries each run on a short-lived connection with a timeout: a pooled connection could sit on the
 * very network fault the probe is meant to detect.
 */
import mysql from 'mysql2/promise';
import {
  mysqlConnectError,
  mysqlConnectionOptions,
  mysqlTlsOptions,
  resolveMysqlCredentials,
} from '../core/clients/mysql.ts';
import type { MysqlCredentials, MysqlPool } from '../core/clients/mysql.ts';
import { DrugsyncError, isDrugsyncError, wrapError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { compareBinlogPositions, formatBinlogPosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import type { ReaderConfig } from './reader-config.ts';
import { createZongjiSource } from './zongji-source.ts';
import type { BinlogSource, StartFrom } from './source.ts';
import type { FilePos } from './stall-watchdog.ts';

export type ControlSql = Pick<MysqlPool, 'query'>;

const CONNECT_TIMEOUT_MS = 10_000;
const QUERY_TIMEOUT_MS = 15_000;

export class ReaderMysql {
  private creds: MysqlCredentials | null = null;
  /** Control queries: `pool` when given (tests), else a short-lived connection per query. */
  readonly sql: ControlSql;

  constructor(
    private readonly config: ReaderConfig,
    private readonly log: Logger,
    pool?: ControlSql,
  ) {
    this.sql = pool ?? { query: <T>(text: string, params?: unknown[]) => this.queryOnce<T>(text, params) };
  }

  /** A zongji source on the configured table with the reader's credentials. */
  async openSource(): Promise<BinlogSource> {
    const c = this.config;
    const creds = await this.credentials();
    return createZongjiSource({
      host: c.DB_HOST,
      port: c.DB_PORT,
      user: creds.user,
      password: creds.password,
      ssl: mysqlTlsOptions(c),
      serverId: c.DB_SERVER_ID,
      schema: c.DB_NAME,
      table: c.DB_TABLE,
      heartbeatSeconds: c.READER_HEARTBEAT_SECONDS,
      fastRows: c.READER_FAST_ROW_DECODER,
      warn: (message) => this.log.warn(message),
    });
  }

  /** Where the server writes its binlog now (null: it does not say). */
  async serverPosition(): Promise<FilePos | null> {
    for (const statement of ['SHOW MASTER STATUS', 'SHOW BINARY LOG STATUS']) {
      try {
        const rows = await this.sql.query<Record<string, unknown>>(statement);
        if (rows[0]) return { file: String(rows[0].File), pos: Number(rows[0].Position) };
        return null;
      } catch (e) {
        if (statement === 'SHOW BINARY LOG STATUS') throw e;
      }
    }
    return null;
  }

  /** Throws BINLOG_PURGED when the server no longer has (or never had) the file of `p`. */
  async checkNotPurged(p: BinlogPosition): Promise<void> {
    const rows = await this.sql.query<Record<string, unknown>>('SHOW BINARY LOGS');
    const files = rows.map((r) => String(r.Log_name));
    if (files.includes(p.file)) return;
    const oldest = files[0] ?? '(none)';
    const purged = files.length > 0 && compareBinlogPositions(p, { file: oldest, pos: 0 }) < 0;
    throw new DrugsyncError(
      'BINLOG_PURGED',
      `binlog file ${p.file} at the start position ${formatBinlogPosition(p)} ${purged ? 'has been purged' : 'does not exist on the server'} (oldest: ${oldest})`,
      {
        context: { file: p.file, pos: p.pos, oldest, host: this.config.DB_HOST, port: this.config.DB_PORT },
        remedy:
          're-run the backfill (`drugsync backfill`) to reload Redis and record a new start position; ' +
          'the reader never skips ahead. Keep binlog retention longer than any reader outage.',
      },
    );
  }

  /**
   * Classifies a failure of the binlog stream: a DrugsyncError as it is (BINLOG_DECODE_FAILED from the row
   * decoders is fatal), configuration (TLS) as CONFIG_INVALID, MySQL error 1236 (binlog gone / position
   * invalid) as BINLOG_PURGED, anything else as a retryable MYSQL_QUERY_FAILED.
   */
  async streamError(e: unknown, start: StartFrom): Promise<DrugsyncError> {
    if (isDrugsyncError(e)) return e;
    const config = await mysqlConnectError(e, this.config, this.creds);
    if (config) return config;
    const err = e as { errno?: number; code?: string; message?: string };
    const text = err?.message ?? String(e);
    const where = 'file' in start ? `${start.file}:${start.pos}` : `gtid ${start.gtid}`;
    if (err?.errno === 1236 || /could not find|purged|first log file name/i.test(text)) {
      return new DrugsyncError('BINLOG_PURGED', `the server cannot send the binlog from ${where}: ${text}`, {
        context: { start: where },
        cause: e,
        remedy:
          'the binlog at the checkpoint is gone: re-run the backfill (`drugsync backfill`), which records a new start position',
      });
    }
    return wrapError(e, 'MYSQL_QUERY_FAILED', `binlog stream failed (from ${where})`, {
      context: { start: where },
      retryable: true,
      remedy: 'the reader restarts from its checkpoint; check MySQL if this repeats',
    });
  }

  private async credentials(): Promise<MysqlCredentials> {
    if (!this.creds) this.creds = await resolveMysqlCredentials(this.config, this.config.AWS_REGION);
    return this.creds;
  }

  private async queryOnce<T>(text: string, params: unknown[] = []): Promise<T[]> {
    const creds = await this.credentials();
    const { connectionLimit: _limit, ...opts } = mysqlConnectionOptions(this.config, creds);
    let conn: mysql.Connection | null = null;
    let timer: NodeJS.Timeout | undefined;
    try {
      conn = await mysql.createConnection({ ...opts, connectTimeout: CONNECT_TIMEOUT_MS });
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error('no answer within 15 s')), QUERY_TIMEOUT_MS);
      });
      const [rows] = await Promise.race([conn.query(text, params), timeout]);
      return rows as T[];
    } catch (e) {
      throw (
        (await mysqlConnectError(e, this.config, creds)) ??
        wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${text.slice(0, 40)})`, {
          context: { host: this.config.DB_HOST, port: this.config.DB_PORT },
          retryable: true,
          remedy: "check that MySQL is reachable with the reader's credentials",
        })
      );
    } finally {
      clearTimeout(timer);
      conn?.destroy();
    }
  }
}
