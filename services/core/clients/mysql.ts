/**
 * MySQL access: mysql2 behind the subset drugsync needs. `dateStrings: true` keeps zero dates and
 * DATETIME(6) microseconds exact; DECIMAL comes back as exact strings; sql_mode '' lets zero dates in.
 *
 * TLS: with DB_TLS (the default) every connection — pool, single connections, the binlog reader's two zongji
 * connections — uses `mysqlTlsOptions`: certificate chain verified (`rejectUnauthorized`), TLS 1.2 or newer,
 * the server name checked when DB_HOST is a name (mysql2 cannot check an IP address), CA = DB_TLS_CA_FILE or
 * Node's CAs. `mysqlConnectError` turns the connection failures that configuration causes (a server that
 * requires TLS, a certificate that does not verify, a server without TLS) into CONFIG_INVALID with the remedy.
 *
 * Credentials: `mysqlCredentials` is the process' one provider of the replication user's login
 * (./credentials.ts). A pool built on it survives a rotation: a login the server refuses
 * (`isMysqlLoginRefused`) re-reads the secret and, when it changed, opens new connections with the new
 * password in a new pool; connections still lent out of the old pool finish their work there, and the old
 * pool is closed once the last one comes back.
 */
import mysql from 'mysql2/promise';
import type { Connection, ConnectionOptions, Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import type { SslOptions } from 'mysql2';
import { backoffDelay, sleep } from '../backoff.ts';
import { DrugsyncError, wrapError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { readCaFile } from './ca-file.ts';
import {
  DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS,
  secretCredentials,
  sharedCredentials,
  staticCredentials,
} from './credentials.ts';
import type { CredentialsProvider } from './credentials.ts';
import { resolveDbCredentials, secretsManagerSource } from './secrets.ts';
import type { SecretSource } from './secrets.ts';

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
  /** Least time between two re-reads of DB_SECRET_ARN after refused logins (config default: 5). */
  CREDENTIALS_REFRESH_MIN_SECONDS?: number | undefined;
}

export interface MysqlCredentials {
  user: string;
  password: string;
}

/** What a pool or connection logs in with: fixed credentials, or a provider that follows a rotation. */
export type MysqlLogin = MysqlCredentials | CredentialsProvider;

export interface CredentialsOptions {
  region?: string | undefined;
  log?: Logger | undefined;
  /** another secret source (tests); default: Secrets Manager (SECRETS_MANAGER_ENDPOINT, else AWS) */
  source?: SecretSource | undefined;
}

/**
 * The replication user's login: this process' one provider of DB_SECRET_ARN (re-read after a refused login,
 * at most once per CREDENTIALS_REFRESH_MIN_SECONDS), or DB_USER / DB_PASSWORD as they are.
 */
export function mysqlCredentials(
  settings: MysqlSettings,
  opts: CredentialsOptions = {},
): CredentialsProvider {
  const arn = settings.DB_SECRET_ARN;
  if (!arn)
    return staticCredentials('MySQL', { user: settings.DB_USER ?? '', password: settings.DB_PASSWORD ?? '' });
  return sharedCredentials(`mysql ${arn} ${settings.DB_USER ?? ''}`, () => {
    const source = opts.source ?? secretsManagerSource({ region: opts.region });
    return secretCredentials({
      what: 'MySQL',
      secretArn: arn,
      read: () => resolveDbCredentials(settings, { source }),
      minIntervalMs:
        1000 * (settings.CREDENTIALS_REFRESH_MIN_SECONDS ?? DEFAULT_CREDENTIALS_REFRESH_MIN_SECONDS),
      log: opts.log,
    });
  });
}

function providerOf(login: MysqlLogin): CredentialsProvider {
  return 'current' in login ? login : staticCredentials('MySQL', login);
}

/**
 * The server refused the login itself (wrong password, user unknown or locked, password expired): MySQL
 * and MariaDB ER_ACCESS_DENIED_ERROR 1045, ER_ACCESS_DENIED_NO_PASSWORD_ERROR 1698,
 * ER_MUST_CHANGE_PASSWORD_LOGIN 1862, ER_ACCOUNT_HAS_BEEN_LOCKED 3118 — the errors a rotated password gives.
 */
export function isMysqlLoginRefused(e: unknown): boolean {
  const err = e as { errno?: unknown; code?: unknown } | null;
  if (typeof err?.errno === 'number' && LOGIN_REFUSED.has(err.errno)) return true;
  return typeof err?.code === 'string' && LOGIN_REFUSED_CODES.has(err.code);
}

const LOGIN_REFUSED = new Set([1045, 1698, 1862, 3118]);
const LOGIN_REFUSED_CODES = new Set([
  'ER_ACCESS_DENIED_ERROR',
  'ER_ACCESS_DENIED_NO_PASSWORD_ERROR',
  'ER_MUST_CHANGE_PASSWORD_LOGIN',
  'ER_ACCOUNT_HAS_BEEN_LOCKED',
]);

export type MysqlTlsSettings = Pick<MysqlSettings, 'DB_TLS' | 'DB_TLS_CA_FILE'>;

/**
 * mysql2's `ssl` options for every MySQL connection drugsync opens, or undefined when DB_TLS is false.
 * A DB_TLS_CA_FILE that cannot be read or holds no PEM certificate is CONFIG_INVALID.
 */
export function mysqlTlsOptions(settings: MysqlTlsSettings): SslOptions | undefined {
  if (!settings.DB_TLS) return undefined;
  const tls: SslOptions = { rejectUnauthorized: true, verifyIdentity: true, minVersion: 'TLSv1.2' };
  if (!settings.DB_TLS_CA_FILE) return tls;
  const ca = readCaFile(
    'DB_TLS_CA_FILE',
    settings.DB_TLS_CA_FILE,
    "the server's CA (Aurora: the RDS CA bundle)",
  );
  return ca === undefined ? tls : { ...tls, ca };
}

/** MySQL ER_SECURE_TRANSPORT_REQUIRED (3159) and MariaDB's (4036): the server refuses a plain connection. */
const SECURE_TRANSPORT_REQUIRED = new Set([3159, 4036]);
const ACCESS_DENIED = 1045;
/** mysql2's code for a failed TLS handshake (certificate not verified ...), and Node/OpenSSL's own codes. */
const TLS_FAILURE =
  /^(HANDSHAKE_SSL_ERROR$|ERR_TLS_|ERR_SSL_|EPROTO$|CERT_|UNABLE_TO_|SELF_SIGNED_CERT|DEPTH_ZERO_SELF_SIGNED_CERT)/;

type ConnectSettings = Pick<MysqlSettings, 'DB_HOST' | 'DB_PORT' | 'DB_TLS'>;

function tlsRequired(settings: ConnectSettings, e: unknown, how: string): DrugsyncError {
  return new DrugsyncError(
    'CONFIG_INVALID',
    `MySQL at ${settings.DB_HOST}:${settings.DB_PORT} requires TLS and DB_TLS is false (${how})`,
    {
      context: { host: settings.DB_HOST, port: settings.DB_PORT, tls: settings.DB_TLS },
      cause: e,
      remedy: "set DB_TLS=true (and DB_TLS_CA_FILE to the server's CA bundle)",
    },
  );
}

/** The failures configuration causes that the error itself identifies. */
function knownConfigFailure(e: unknown, settings: ConnectSettings): DrugsyncError | null {
  const err = e as { errno?: unknown; code?: unknown; message?: unknown } | null;
  const code = typeof err?.code === 'string' ? err.code : '';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  const where = `${settings.DB_HOST}:${settings.DB_PORT}`;
  const context = {
    host: settings.DB_HOST,
    port: settings.DB_PORT,
    tls: settings.DB_TLS,
    ...(code ? { error_code: code } : {}),
  };
  if (
    (typeof err?.errno === 'number' && SECURE_TRANSPORT_REQUIRED.has(err.errno)) ||
    /insecure transport are prohibited/i.test(message)
  )
    return tlsRequired(settings, e, 'the server refuses connections without TLS');
  if (code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return new DrugsyncError('CONFIG_INVALID', `MySQL at ${where} does not offer TLS and DB_TLS is true`, {
      context,
      cause: e,
      remedy:
        'enable TLS on the server; only for a local server without a certificate (the local stack) set DB_TLS=false',
    });
  }
  if (settings.DB_TLS && TLS_FAILURE.test(code)) {
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
async function acceptsOverTls(settings: ConnectSettings, cred: MysqlCredentials): Promise<boolean> {
  try {
    const probe = await mysql.createConnection({
      host: settings.DB_HOST,
      port: settings.DB_PORT,
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
  settings: ConnectSettings,
  cred?: MysqlCredentials | null,
): Promise<DrugsyncError | null> {
  if (e instanceof DrugsyncError) return null;
  const known = knownConfigFailure(e, settings);
  if (known) return known;
  const errno = (e as { errno?: unknown } | null)?.errno;
  if (!settings.DB_TLS && cred && errno === ACCESS_DENIED && (await acceptsOverTls(settings, cred)))
    return tlsRequired(settings, e, 'it denies the plain login and accepts the same credentials over TLS');
  return null;
}

export function mysqlConnectionOptions(settings: MysqlSettings, cred: MysqlCredentials): PoolOptions {
  const ssl = mysqlTlsOptions(settings);
  return {
    ...(ssl ? { ssl } : {}),
    host: settings.DB_HOST,
    port: settings.DB_PORT,
    user: cred.user,
    password: cred.password,
    database: settings.DB_NAME,
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
}

/** Retries of an operation whose login was refused: 0.5 s, 1 s, 2 s, 4 s (the secret re-read meanwhile). */
const LOGIN_RETRIES = 4;
const LOGIN_BACKOFF = { baseMs: 500, maxMs: 4_000 } as const;

/**
 * A mysql2 pool on the credentials in force. When they change (a re-read after a refused login), the next
 * operation gets a new pool; the old one is closed as soon as none of its connections is lent out.
 */
class LoginPool {
  private pool: Pool | null = null;
  private version = -1;
  private readonly lent = new Map<Pool, number>();
  private readonly retired = new Set<Pool>();

  constructor(
    private readonly settings: MysqlSettings,
    readonly creds: CredentialsProvider,
    private readonly extra: Partial<PoolOptions>,
  ) {}

  async current(): Promise<Pool> {
    const cred = await this.creds.current();
    if (this.pool && this.version === this.creds.version) return this.pool;
    if (this.pool) this.retire(this.pool);
    this.version = this.creds.version;
    const pool = mysql.createPool({ ...mysqlConnectionOptions(this.settings, cred), ...this.extra });
    this.lent.set(pool, 0);
    pool.on('acquire', () => this.lent.set(pool, (this.lent.get(pool) ?? 0) + 1));
    pool.on('release', () => {
      const n = (this.lent.get(pool) ?? 1) - 1;
      this.lent.set(pool, n);
      if (n === 0 && this.retired.has(pool)) void this.close(pool);
    });
    this.pool = pool;
    return pool;
  }

  /**
   * Runs `op` on the current pool. A refused login re-reads the secret and runs it again (up to
   * LOGIN_RETRIES times, backing off while the secret still holds the refused credentials).
   */
  async run<T>(op: (pool: Pool) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const pool = await this.current();
      try {
        return await op(pool);
      } catch (e) {
        if (!isMysqlLoginRefused(e) || !this.creds.secretArn || attempt >= LOGIN_RETRIES) throw e;
        const before = this.creds.version;
        await this.creds.refresh(e);
        if (this.creds.version === before) await sleep(backoffDelay(attempt, LOGIN_BACKOFF));
      }
    }
  }

  private retire(pool: Pool): void {
    this.retired.add(pool);
    if ((this.lent.get(pool) ?? 0) === 0) void this.close(pool);
  }

  private async close(pool: Pool): Promise<void> {
    this.retired.delete(pool);
    this.lent.delete(pool);
    await pool.end().catch(() => undefined);
  }

  async end(): Promise<void> {
    const all = [...this.retired, ...(this.pool ? [this.pool] : [])];
    this.retired.clear();
    this.pool = null;
    await Promise.all(all.map((p) => p.end()));
  }
}

/** The MySQL secret in an error's context (which secret the refused credentials came from). */
function secretContext(creds: CredentialsProvider): { secret_arn?: string } {
  return creds.secretArn ? { secret_arn: creds.secretArn } : {};
}

export function createMysqlPool(
  settings: MysqlSettings,
  login: MysqlLogin,
  extra: Partial<PoolOptions> = {},
): MysqlPool {
  const pools = new LoginPool(settings, providerOf(login), extra);
  const configError = (e: unknown) => mysqlConnectError(e, settings, pools.creds.cached);
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      try {
        return await pools.run(async (pool) => (await pool.query(sql, params))[0] as T[]);
      } catch (e) {
        throw (
          (await configError(e)) ??
          wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${sql.slice(0, 60)})`, {
            context: {
              host: settings.DB_HOST,
              port: settings.DB_PORT,
              database: settings.DB_NAME,
              ...secretContext(pools.creds),
            },
            retryable: true,
            remedy:
              'check that MySQL is reachable with these credentials (`npx drugsync stack status` locally)',
          })
        );
      }
    },
    async getConnection(): Promise<PoolConnection> {
      try {
        return await pools.run((pool) => pool.getConnection());
      } catch (e) {
        throw (await configError(e)) ?? e;
      }
    },
    end: () => pools.end(),
  };
}

/**
 * One connection with drugsync's options (TLS included); configuration failures mapped as for the pool. A
 * refused login re-reads the provider's secret before the error is thrown (the caller's retry then logs
 * in with what the secret holds now).
 */
export async function createMysqlConnection(
  settings: MysqlSettings,
  login: MysqlLogin,
  extra: Partial<ConnectionOptions> = {},
): Promise<Connection> {
  const creds = providerOf(login);
  const cred = await creds.current();
  const { connectionLimit: _limit, ...opts } = mysqlConnectionOptions(settings, cred);
  try {
    return await mysql.createConnection({ ...opts, ...extra });
  } catch (e) {
    if (isMysqlLoginRefused(e)) await creds.refresh(e);
    throw (await mysqlConnectError(e, settings, cred)) ?? e;
  }
}
