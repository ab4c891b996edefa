/**
 * MySQL access: mysql2 behind the subset drugsync needs. `dateStrings: true` keeps zero dates and
 * DATETIME(6) microseconds exact; DECIMAL comes back as exact strings; sql_mode '' lets zero dates in.
 */
import mysql from 'mysql2/promise';
import type { Pool, PoolConnection, PoolOptions } from 'mysql2/promise';
import { wrapError } from '../errors.ts';
import { resolveDbCredentials } from './secrets.ts';

export interface MysqlSettings {
  DB_HOST: string;
  DB_PORT: number;
  DB_NAME: string;
  DB_USER?: string | undefined;
  DB_PASSWORD?: string | undefined;
  DB_SECRET_ARN?: string | undefined;
}

export interface MysqlCredentials {
  user: string;
  password: string;
}

/** Reads user/password from Secrets Manager (RDS secret JSON: {"username","password"}) or the settings. */
export async function resolveMysqlCredentials(s: MysqlSettings, region?: string): Promise<MysqlCredentials> {
  return resolveDbCredentials(s, { region });
}

export function mysqlConnectionOptions(s: MysqlSettings, cred: MysqlCredentials): PoolOptions {
  return {
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
        throw wrapError(e, 'MYSQL_QUERY_FAILED', `MySQL query failed (${sql.slice(0, 60)})`, {
          context: { host: s.DB_HOST, port: s.DB_PORT, database: s.DB_NAME },
          retryable: true,
          remedy:
            'check that MySQL is reachable with these credentials (`npx drugsync stack status` locally)',
        });
      }
    },
    getConnection: () => pool.getConnection(),
    end: () => pool.end(),
  };
}
