/**
 * MariaDB 10.11, the machine's `mariadbd` (installed with apt when missing), with the binlog drugsync reads
 * (ROW / FULL image / FULL metadata), the admin user and the least-privilege replication user. The stack's
 * server is `mariadb` below; a test that starts a MariaDB of its own (test/support/tls-mariadb.ts) uses the
 * same command line, data directory set-up, readiness and users.
 */
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { Readiness } from './process.ts';
import type { LocalServer } from './server.ts';
import type { ServerFiles } from './settings.ts';
import { runTool, which } from './tools.ts';
import { quoteIdent } from '../core/sql.ts';

/** The users `configureMariadbUsers` creates: admin (everything; local tooling) and replication (the services). */
export const MARIADB_USERS = { admin: 'drugsync_admin', repl: 'drugsync_repl' } as const;

export interface MariadbServerFiles {
  dataDir: string;
  port: number;
  socket: string;
  pidFile: string;
  logFile: string;
  /** binlog base name (files are <binlog>.000001 ...) */
  binlog: string;
}

/**
 * The command line of a drugsync MariaDB: binlog ROW / FULL image / FULL metadata, utf8mb4, zero dates allowed
 * (`sql_mode=''`), on 127.0.0.1 only. Used by the stack and by tests that start a server of their own.
 */
export function mariadbServerArgs(files: MariadbServerFiles): string[] {
  return [
    '--no-defaults',
    '--user=root',
    `--datadir=${files.dataDir}`,
    `--port=${files.port}`,
    '--bind-address=127.0.0.1',
    `--socket=${files.socket}`,
    `--pid-file=${files.pidFile}`,
    `--log-error=${files.logFile}`,
    `--log-bin=${files.binlog}`,
    '--binlog-format=ROW',
    '--binlog-row-image=FULL',
    '--binlog-row-metadata=FULL',
    '--server-id=1',
    '--sql-mode=',
    '--character-set-server=utf8mb4',
    '--skip-name-resolve',
    '--local-infile=1',
  ];
}

function ensureMariadbBinaries(log: Logger): { mariadbd: string; installDb: string } {
  let mariadbd = which('mariadbd');
  let installDb = which('mariadb-install-db');
  if (!mariadbd || !installDb) {
    log.info('installing MariaDB server binaries (apt-get install mariadb-server)');
    if (process.getuid?.() !== 0) {
      throw new DrugsyncError(
        'TOOL_INSTALL_FAILED',
        'mariadbd is not installed and this user cannot apt-get',
        {
          remedy: 'install MariaDB 10.11 (Debian: apt-get install mariadb-server) or run as root',
        },
      );
    }
    runTool('apt-get', ['update', '-q'], 'apt-get update');
    runTool(
      'apt-get',
      ['install', '-y', '-q', '--no-install-recommends', 'mariadb-server'],
      'apt-get install mariadb-server',
    );
    mariadbd = which('mariadbd');
    installDb = which('mariadb-install-db');
    if (!mariadbd || !installDb)
      throw new DrugsyncError('TOOL_INSTALL_FAILED', 'mariadbd still missing after install');
  }
  return { mariadbd, installDb };
}

/** Installs MariaDB when missing and initialises `dataDir` when it has no system tables; returns mariadbd. */
export function prepareMariadbDataDir(dataDir: string, log: Logger): string {
  const bins = ensureMariadbBinaries(log);
  if (!fs.existsSync(path.join(dataDir, 'mysql'))) {
    fs.mkdirSync(dataDir, { recursive: true });
    log.info('initialising MariaDB data directory', { datadir: dataDir });
    runTool(
      bins.installDb,
      [
        '--no-defaults',
        `--datadir=${dataDir}`,
        '--user=root',
        '--auth-root-authentication-method=normal',
        '--skip-test-db',
      ],
      'mariadb-install-db',
    );
  }
  return bins.mariadbd;
}

/** Root over the server's socket: with `password` once set, else with the empty one of a fresh data directory. */
export async function mariadbRootBySocket(socket: string, password: string): Promise<mysql.Connection> {
  const as = (pw: string) =>
    mysql.createConnection({
      socketPath: socket,
      user: 'root',
      password: pw,
      connectTimeout: 3000,
      multipleStatements: true,
    });
  return as(password).catch(() => as(''));
}

/** Started once root answers on the socket (≈0.2 s; up to 60 s). */
export function mariadbReadiness(socket: string, rootPassword: string): Readiness {
  return {
    answer: 'answer',
    timeoutMs: 60_000,
    probe: async () => {
      await (await mariadbRootBySocket(socket, rootPassword)).end();
      return true;
    },
  };
}

/**
 * Idempotent, as root: root password, the admin user (everything), the replication user with the least it
 * needs (replication grants, SELECT and LOCK TABLES on the database), the database itself.
 */
export async function configureMariadbUsers(
  conn: Pick<mysql.Connection, 'query'>,
  o: { adminPassword: string; replPassword: string; database: string },
): Promise<void> {
  const { admin, repl } = MARIADB_USERS;
  const q = async (sql: string, params: unknown[] = []) => conn.query(sql, params);
  await q(`ALTER USER 'root'@'localhost' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`DELETE FROM mysql.global_priv WHERE User = ''`);
  await q(`CREATE USER IF NOT EXISTS '${admin}'@'%' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`ALTER USER '${admin}'@'%' IDENTIFIED BY ?`, [o.adminPassword]);
  await q(`GRANT ALL PRIVILEGES ON *.* TO '${admin}'@'%' WITH GRANT OPTION`);
  await q(`CREATE USER IF NOT EXISTS '${repl}'@'%' IDENTIFIED BY ?`, [o.replPassword]);
  await q(`ALTER USER '${repl}'@'%' IDENTIFIED BY ?`, [o.replPassword]);
  // Replication grants are global (ON fdb.* fails with ERROR 1221); data access is SELECT on fdb only, plus
  // LOCK TABLES for the snapshot's 'table-lock' method (a short read lock to take the binlog position).
  await q(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '${repl}'@'%'`);
  await q(`CREATE DATABASE IF NOT EXISTS ${quoteIdent(o.database)} CHARACTER SET utf8mb4`);
  await q(`GRANT SELECT, LOCK TABLES ON ${quoteIdent(o.database)}.* TO '${repl}'@'%'`);
  await q('FLUSH PRIVILEGES');
}

/** The stack's MariaDB files: data, socket and binlog in its directory, pid file and log where the stack keeps them. */
function stackFiles(port: number, files: ServerFiles): MariadbServerFiles {
  return {
    dataDir: path.join(files.dir, 'data'),
    port,
    socket: path.join(files.dir, 'mysql.sock'),
    pidFile: files.pidFile,
    logFile: files.logFile,
    binlog: path.join(files.dir, 'binlog'),
  };
}

/** The local stack's MariaDB: port DRUGSYNC_MYSQL_PORT (13306), sized for the full catalogue. */
export const mariadb = {
  name: 'mariadb',
  portVariable: 'DRUGSYNC_MYSQL_PORT',
  port: (s) => s.mysqlPort,
  identity: (_s, f) => ({ marker: f.dir }),

  async prepare(ctx, f) {
    const files = stackFiles(ctx.settings.mysqlPort, f);
    const mariadbd = prepareMariadbDataDir(files.dataDir, ctx.log);
    const args = [
      ...mariadbServerArgs(files),
      '--max-connections=500',
      '--max-allowed-packet=256M',
      '--innodb-buffer-pool-size=1G',
      '--innodb-log-file-size=512M',
      // Local development speed; production durability settings are documented in the README.
      '--innodb-flush-log-at-trx-commit=2',
      '--sync-binlog=0',
    ];
    const ready = mariadbReadiness(files.socket, ctx.secrets().mysqlAdminPassword);
    return { command: mariadbd, args, pidFileBy: 'server', ready };
  },

  async configure(ctx, f) {
    const sec = ctx.secrets();
    const conn = await mariadbRootBySocket(path.join(f.dir, 'mysql.sock'), sec.mysqlAdminPassword);
    try {
      await configureMariadbUsers(conn, {
        adminPassword: sec.mysqlAdminPassword,
        replPassword: sec.mysqlReplPassword,
        database: ctx.settings.database,
      });
    } finally {
      await conn.end();
    }
  },

  async health(ctx) {
    const c = await mysql.createConnection({
      host: '127.0.0.1',
      port: ctx.settings.mysqlPort,
      user: MARIADB_USERS.admin,
      password: ctx.secrets().mysqlAdminPassword,
      connectTimeout: 3000,
    });
    try {
      const [rows] = await c.query(
        `SELECT VERSION() AS v, @@log_bin AS log_bin, @@binlog_format AS fmt, @@binlog_row_image AS img, @@binlog_row_metadata AS meta`,
      );
      const r = (rows as Record<string, unknown>[])[0] ?? {};
      return {
        healthy: true,
        version: `MariaDB ${String(r.v)}`,
        detail: `log_bin=${String(r.log_bin)} binlog_format=${String(r.fmt)} row_image=${String(r.img)} row_metadata=${String(r.meta)}`,
      };
    } finally {
      await c.end();
    }
  },

  env: (s, sec) => ({
    DB_HOST: '127.0.0.1',
    DB_PORT: String(s.mysqlPort),
    DB_NAME: s.database,
    DB_TABLE: 'rndc14',
    DB_USER: MARIADB_USERS.repl,
    DB_PASSWORD: sec.mysqlReplPassword,
    DB_ADMIN_USER: MARIADB_USERS.admin,
    DB_ADMIN_PASSWORD: sec.mysqlAdminPassword,
    // the local MariaDB has no certificate: the documented switch for local use (the deploy keeps TLS on)
    DB_TLS: 'false',
  }),
} as const satisfies LocalServer;
