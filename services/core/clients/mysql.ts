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
const ACCESS_DENIED = 1045;
/** mysql2's code for a failed TLS handshake (certificate not verified ...), and Node/OpenSSL's own codes. */
const TLS_FAILURE =
  /^(HANDSHAKE_SSL_ERROR$|ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT)/;

type ConnectSettings = Pick<MysqlSettings, 'DB_HOST' | 'DB_PORT' | 'DB_TLS'>;

function tlsRequired(s: ConnectSettings, e: unknown, how: string): DrugsyncError {
  return new DrugsyncError(
    'CONFIG_INVALID',
    `MySQL at ${s.DB_HOST}:${s.DB_PORT} requires TLS and DB_TLS is false (${how})`,
    {
      context: { host: s.DB_HOST, port: s.DB_PORT, tls: s.DB_TLS },
      cause: e,
      remedy: "set DB_TLS=true (and DB_TLS_CA_FILE to the server's CA bundle)",
    },
  );
}

/** The failures configuration causes that the error itself identifies. */
function knownConfigFailure(e: unknown, s: ConnectSettings): DrugsyncError | null {
  const err = e as { errno?: unknown; code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const where = `${s.DB_HOST}:${s.DB_PORT}`;
  const context = { host: s.DB_HOST, port: s.DB_PORT, tls: s.DB_TLS, ...(code ? { error_code: code } : {}) };
  if (
    (typeof err?.errno === 'number' && SECURE_TRANSPORT_REQUIRED.has(err.errno)) ||
    /insecure transport are prohibited/i.test(message)
  )
    return tlsRequired(s, e, 'the server refuses connections without TLS');
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

/**
 * True when the server accepts these credentials over TLS. Asked only after a plain connection was denied
 * (DB_TLS=false), to tell a server that requires TLS from a wrong password: MariaDB 10.11 answers a plain
 * login to a server with require_secure_transport=ON with "Access denied" (1045), nothing more. The probe's
 * certificate is not verified: it only asks, and ends at once.
 */
async function acceptsOverTls(s: ConnectSettings, cred: MysqlCredentials): Promise<boolean> {
  try {
    const probe = await mysql.createConnection({
      host: s.DB_HOST,
      port: s.DB_PORT,
      user: cred.user,
      password: cred.password,
      ssl: { rejectUnauthorized: false, minVersion: 'TLSv1.2' },
      connectTimeout: 5_000,
    });
    probe.destroy();
    return true;
  } catch {
    return false;
  }
}

/**
 * The one mapping of MySQL connection failures that configuration causes (wherever connections are opened:
 * pool, single connections, the reader's control queries and binlog stream): CONFIG_INVALID, not retryable,
 * naming host:port and the remedy — a server that requires TLS while DB_TLS is false, a server without TLS
 * while DB_TLS is true, a certificate that does not verify. Any other failure: null (the caller wraps it as
 * usual). With `cred`, an "Access denied" under DB_TLS=false is checked against a login over TLS.
 */
export async function mysqlConnectError(
  e: unknown,
  s: ConnectSettings,
  cred?: MysqlCredentials | null,
): Promise<DrugsyncError | null> {
  if (e instanceof DrugsyncError) return null;
  const known = knownConfigFailure(e, s);
  if (known) return known;
  const errno = (e as { errno?: unknown } | null)?.errno;
  if (!s.DB_TLS && cred && errno === ACCESS_DENIED && (await acceptsOverTls(s, cred)))
    return tlsRequired(s, e, 'it denies the plain login and accepts the same credentials over TLS');
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
          (await mysqlConnectError(e, s, cred)) ??
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
        throw (await mysqlConnectError(e, s, cred)) ?? e;
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
    throw (await mysqlConnectError(e, s, cred)) ?? e;
  }
}
