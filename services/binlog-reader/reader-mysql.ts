/**
 * The reader's MySQL side: the credentials, the binlog source (zongji), the control queries (SHOW BINARY
 * LOGS, the stall probe) and the classification of a failed binlog stream.
 *
 * Credentials come from the process' provider (core/clients/mysql.ts `mysqlCredentials`): every session's
 * two zongji connections and every control connection log in with what it holds now. A login the server
 * refuses (a rotated password) re-reads the secret before the failure ends the session, so the reader's
 * restart, after its backoff, logs in with the new password; the process keeps running.
 *
 * Control queries each run on a short-lived connection with a timeout: a pooled connection could sit on the
 * very network fault the probe is meant to detect.
 */
import mysql from 'mysql2/promise';
import {
  isMysqlLoginRefused,
  mysqlConnectError,
  mysqlConnectionOptions,
  mysqlCredentials,
  mysqlTlsOptions,
} from '../core/clients/mysql.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';
import type { CredentialsProvider } from '../core/clients/credentials.ts';
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
  private readonly creds: CredentialsProvider;
  /** Control queries: `pool` when given (tests), else a short-lived connection per query. */
  readonly sql: ControlSql;

  constructor(
    private readonly config: ReaderConfig,
    private readonly log: Logger,
    pool?: ControlSql,
  ) {
    this.creds = mysqlCredentials(config, { region: config.AWS_REGION, log });
    this.sql = pool ?? { query: <T>(text: string, params?: unknown[]) => this.queryOnce<T>(text, params) };
  }

  /** A zongji source on the configured table with the credentials in force. */
  async openSource(): Promise<BinlogSource> {
    const c = this.config;
    const creds = await this.creds.current();
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
    const config = await mysqlConnectError(e, this.config, this.creds.cached);
    if (config) return config;
    if (isMysqlLoginRefused(e)) return this.loginRefused(e, 'binlog stream');
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

  /**
   * A refused login: the secret is re-read (at most once per CREDENTIALS_REFRESH_MIN_SECONDS) before the
   * retryable error ends the session, so the next session logs in with what the secret holds now.
   */
  private async loginRefused(e: unknown, where: string): Promise<DrugsyncError> {
    await this.creds.refresh(e);
    const arn = this.creds.secretArn;
    return wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL refused the reader's login (${where})`, {
      context: { host: this.config.DB_HOST, port: this.config.DB_PORT, secret_arn: arn },
      retryable: true,
      remedy: arn
        ? 'the reader re-reads the secret and retries; if this repeats, check that the secret and the ' +
          'server hold the same password for the replication user (a rotation that did not finish)'
        : 'check DB_USER / DB_PASSWORD (or name a Secrets Manager secret with DB_SECRET_ARN)',
    });
  }

  private async queryOnce<T>(text: string, params: unknown[] = []): Promise<T[]> {
    const creds = await this.creds.current();
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
      const config = await mysqlConnectError(e, this.config, creds);
      if (config) throw config;
      if (isMysqlLoginRefused(e)) throw await this.loginRefused(e, 'control connection');
      throw wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${text.slice(0, 40)})`, {
        context: { host: this.config.DB_HOST, port: this.config.DB_PORT },
        retryable: true,
        remedy: "check that MySQL is reachable with the reader's credentials",
      });
    } finally {
      clearTimeout(timer);
      conn?.destroy();
    }
  }
}
