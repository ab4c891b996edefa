/**
 * MySQL access: mysql2 behind the subset drugsync needs. `dateStrings: true` keeps zero dates and
 * DATETIME(6) microseconds exact; DECIMAL comes back as exact strings; sql_mode '' lets zero dates in.
 *
 * TLS: with DB_TLS (the default) every connection — pool, single connections, the binlog reader's two zongji
 * connections — uses `mysqlTlsOptions`: certificate chain verified (`rejectUnauthorized`), TLS 1.2 or newer,
 * the server name checked when DB_HOST is a name (mysql2 cannot check an IP address), CA = DB_TLS_CA_FILE or
 * Node's CAs. `mysqlConnectError` turns the connection failures that configuration causes (a server that
 * requires TLS, a certificate that does not verify, a server without TLS) into CONFIG_INVALID with the remedy.
 */
import fs from 'node:fs';
import mysql from 'mysql2/promise';
import type { Connection, ConnectionOptions, Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import type { SslOptions } from 'mysql2';
import { DrugsyncError, wrapError } from '../errors.ts';
import { resolveDbCredentials } from './secrets.ts';

export interface MysqlSettings {
  DB_HOST: string;
  DB_PORT: number;
  DB_NAME: string;
  DB_USER?: string | undefined;
  DB_PASSWORD?: string | undefined;
  DB_SECRET_ARN?: string | undefined;
  /** TLS on every connection, certificate verified (config default: true). */
  DB_TLS: boolean;
  /** PEM bundle of the CA(s) that signed the server's certificate (default: Node's CAs). */
  DB_TLS_CA_FILE?: string | undefined;
}

export interface MysqlCredentials {
  user: string;
  password: string;
}

/** Reads user/password from Secrets Manager (RDS secret JSON: {"username","password"}) or the settings. */
export async function resolveMysqlCredentials(s: MysqlSettings, region?: string): Promise<MysqlCredentials> {
  return resolveDbCredentials(s, { region });
}

export type MysqlTlsSettings = Pick<MysqlSettings, 'DB_TLS' | 'DB_TLS_CA_FILE'>;

/**
 * mysql2's `ssl` options for every MySQL connection drugsync opens, or undefined when DB_TLS is false.
 * A DB_TLS_CA_FILE that cannot be read or holds no PEM certificate is CONFIG_INVALID.
 */
export function mysqlTlsOptions(s: MysqlTlsSettings): SslOptions | undefined {
  if (!s.DB_TLS) return undefined;
  const tls: SslOptions = { rejectUnauthorized: true, verifyIdentity: true, minVersion: 'TLSv1.2' };
  if (!s.DB_TLS_CA_FILE) return tls;
  let ca: string;
  try {
    ca = fs.readFileSync(s.DB_TLS_CA_FILE, 'utf8');
  } catch (e) {
    throw new DrugsyncError('CONFIG_INVALID', `DB_TLS_CA_FILE: cannot read ${s.DB_TLS_CA_FILE}`, {
      context: { variable: 'DB_TLS_CA_FILE', file: s.DB_TLS_CA_FILE },
      cause: e,
      remedy: "point DB_TLS_CA_FILE at a readable PEM bundle of the server's CA (Aurora: the RDS CA bundle)",
    });
  }
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `DB_TLS_CA_FILE: ${s.DB_TLS_CA_FILE} holds no PEM certificate`,
      {
        context: { variable: 'DB_TLS_CA_FILE', file: s.DB_TLS_CA_FILE },
        remedy: "point DB_TLS_CA_FILE at a PEM bundle of the server's CA (Aurora: the RDS CA bundle)",
      },
    );
  }
  return { ...tls, ca };
}

/** MySQL ER_SECURE_TRANSPORT_REQUIRED (3159) and MariaDB's (4036): the server refuses a plain connection. */
const SECURE_TRANSPORT_REQUIRED = new Set([3159, 4036]);
/** Node/OpenSSL codes of a TLS handshake or certificate verification failure. */
const TLS_FAILURE =
  /^(ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT|HOSTNAME_MISMATCH)/;

/**
 * The one mapping of MySQL connection failures that configuration causes (wherever connections are opened:
 * pool, single connections, binlog stream): CONFIG_INVALID, not retryable, naming host:port and the remedy.
 * Any other failure: null (the caller wraps it as usual).
 */
export function mysqlConnectError(
  e: unknown,
  s: Pick<MysqlSettings, 'DB_HOST' | 'DB_PORT' | 'DB_TLS'>,
): DrugsyncError | null {
  if (e instanceof DrugsyncError) return null;
  const err = e as { errno?: unknown; code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const where = `${s.DB_HOST}:${s.DB_PORT}`;
  const context = { host: s.DB_HOST, port: s.DB_PORT, tls: s.DB_TLS, ...(code ? { error_code: code } : {}) };
  if (
    (typeof err?.errno === 'number' && SECURE_TRANSPORT_REQUIRED.has(err.errno)) ||
    /insecure transport are prohibited/i.test(message)
  ) {
    return new DrugsyncError('CONFIG_INVALID', `MySQL at ${where} requires TLS and DB_TLS is false`, {
      context,
      cause: e,
      remedy: "set DB_TLS=true (and DB_TLS_CA_FILE to the server's CA bundle)",
    });
  }
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return new DrugsyncError('CONFIG_INVALID', `MySQL at ${where} does not offer TLS and DB_TLS is true`, {
      context,
      cause: e,
      remedy:
        'enable TLS on the server; only for a local server without a certificate (the local stack) set DB_TLS=false',
    });
  }
  if (s.DB_TLS && TLS_FAILURE.test(code)) {
    return new DrugsyncError('CONFIG_INVALID', `TLS to MySQL at ${where} failed: ${message}`, {
      context,
      cause: e,
      remedy:
        "set DB_TLS_CA_FILE to the PEM bundle of the CA that signed the server's certificate (Aurora: the RDS " +
        'global bundle) and connect by the name the certificate holds',
    });
  }
  return null;
}

export function mysqlConnectionOptions(s: MysqlSettings, cred: MysqlCredentials): PoolOptions {
  const ssl = mysqlTlsOptions(s);
  return {
    ...(ssl ? { ssl } : {}),
    host: s.DB_HOST,
    port: s.DB_PORT,
    user: cred.user,
    password: cred.password,
    database: s.DB_NAME,
    dateStrings: true,
    decimalNumbers: false,
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'utf8mb4_general_ci',
    timezone: 'Z',
    connectionLimit: 4,
    enableKeepAlive: true,
    multipleStatements: false,
  };
}

/** The subset of a mysql2 pool that drugsync uses. */
export interface MysqlPool {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  getConnection(): Promise<PoolConnection>;
  end(): Promise<void>;
  readonly raw: Pool;
}

export function createMysqlPool(
  s: MysqlSettings,
  cred: MysqlCredentials,
  extra: Partial<PoolOptions> = {},
): MysqlPool {
  const pool = mysql.createPool({ ...mysqlConnectionOptions(s, cred), ...extra });
  return {
    raw: pool,
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      try {
        const [rows] = await pool.query(sql, params);
        return rows as T[];
      } catch (e) {
        throw (
          mysqlConnectError(e, s) ??
          wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${sql.slice(0, 60)})`, {
            context: { host: s.DB_HOST, port: s.DB_PORT, database: s.DB_NAME },
            retryable: true,
            remedy:
              'check that MySQL is reachable with these credentials (`npx drugsync stack status` locally)',
          })
        );
      }
    },
    async getConnection(): Promise<PoolConnection> {
      try {
        return await pool.getConnection();
      } catch (e) {
        throw mysqlConnectError(e, s) ?? e;
      }
    },
    end: () => pool.end(),
  };
}

/** One connection with drugsync's options (TLS included); configuration failures mapped as for the pool. */
export async function createMysqlConnection(
  s: MysqlSettings,
  cred: MysqlCredentials,
  extra: Partial<ConnectionOptions> = {},
): Promise<Connection> {
  const { connectionLimit: _limit, ...opts } = mysqlConnectionOptions(s, cred);
  try {
    return await mysql.createConnection({ ...opts, ...extra });
  } catch (e) {
    throw mysqlConnectError(e, s) ?? e;
  }
}
