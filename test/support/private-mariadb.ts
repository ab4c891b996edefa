/**
 * A MariaDB of a suite's own, beside the shared stack: the stack's command line (services/stack/mariadb.ts,
 * binlog ROW/FULL/FULL) plus the suite's arguments (a server id, TLS, replication settings), on a free
 * port unless one is given, with its own data directory under `.drugsync/<name>/` and the stack's users
 * and grants (admin, replication user with SELECT and LOCK TABLES on `fdb`). `fresh` starts from an empty
 * data directory (new binlogs, no GTID history). Launched, waited for and stopped with the stack's own blocks
 * (services/stack/process.ts): `stop()` ends exactly that server (its pid) and waits.
 *
 * Used by test/support/tls-mariadb.ts (TLS) and test/source-identity.test.ts (two servers, replication).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { createLogger } from '../../services/core/log.ts';
import { STATE_DIR } from '../../services/core/paths.ts';
import {
  configureMariadbUsers,
  MARIADB_USERS,
  mariadbReadiness,
  mariadbRootBySocket,
  mariadbServerArgs,
  prepareMariadbDataDir,
} from '../../services/stack/mariadb.ts';
import type { ServerProcess } from '../../services/stack/process.ts';
import { freePort, launchServer, runningPid, stopProcess } from '../../services/stack/process.ts';
import { adminConnection } from './stack.ts';

export interface PrivateMariadbOptions {
  /** directory under .drugsync/ (one server per name at a time) */
  name: string;
  /** default: a free port */
  port?: number;
  /** appended to the stack's arguments (a later one wins, e.g. `--server-id=11`) */
  args?: string[];
  /** start from an empty data directory (default: keep the one of an earlier run) */
  fresh?: boolean;
}

export interface PrivateMariadb {
  port: number;
  pid: number;
  /** the server's directory (data, socket, binlogs, log) */
  dir: string;
  /** DB_* settings of the services (the replication user, no TLS) and the admin account */
  env: Env;
  /** A connection as the admin user, with the stack's client options; `extra` adds e.g. `ssl`. */
  adminConnection(database?: string, extra?: ConnectionOptions): Promise<Connection>;
  stop(): Promise<void>;
}

interface Passwords {
  admin: string;
  repl: string;
}

/** Kept with the data directory (root's password is set on the first start). */
function passwords(dir: string): Passwords {
  const file = path.join(dir, 'passwords.json');
  if (fs.existsSync(file)) return JSON.parse(fs.readFileSync(file, 'utf8')) as Passwords;
  const gen = () => crypto.randomBytes(12).toString('base64url');
  const p = { admin: gen(), repl: gen() };
  fs.writeFileSync(file, JSON.stringify(p), { mode: 0o600 });
  return p;
}

/** One mariadbd on `port`; resolves once it answers as root with the stack's users configured. */
async function launch(
  o: PrivateMariadbOptions,
  dir: string,
  port: number,
  p: Passwords,
): Promise<ServerProcess> {
  const files = {
    dataDir: path.join(dir, 'data'),
    port,
    socket: path.join(dir, 'mysql.sock'),
    pidFile: path.join(dir, 'mariadb.pid'),
    logFile: path.join(dir, 'mariadb.log'),
    binlog: path.join(dir, 'binlog'),
  };
  const mariadbd = prepareMariadbDataDir(
    files.dataDir,
    createLogger({ service: 'private-mariadb' }, { level: 'warn' }),
  );
  const small = ['--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M', '--max-connections=100'];
  const server = await launchServer({
    name: o.name,
    port,
    logFile: files.logFile,
    pidFile: files.pidFile,
    pidFileBy: 'server',
    command: mariadbd,
    args: [...mariadbServerArgs(files), ...small, ...(o.args ?? [])],
    identity: { marker: files.dataDir },
    ready: mariadbReadiness(files.socket, p.admin),
    detached: false,
  });
  try {
    const root = await mariadbRootBySocket(files.socket, p.admin);
    try {
      await configureMariadbUsers(root, { adminPassword: p.admin, replPassword: p.repl, database: 'fdb' });
    } finally {
      await root.end();
    }
  } catch (e) {
    await server.stop();
    throw e;
  }
  return server;
}

export async function startPrivateMariadb(o: PrivateMariadbOptions): Promise<PrivateMariadb> {
  const dir = path.join(STATE_DIR, o.name);
  // A server a previous run left behind (its pid file, checked against its command line).
  const identity = { marker: path.join(dir, 'data') };
  const leftover = runningPid(path.join(dir, 'mariadb.pid'), identity);
  if (leftover !== null) await stopProcess(leftover, identity, o.name);
  if (o.fresh) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const p = passwords(dir);
  // a free port can be taken between the probe and mariadbd's bind: one more try on another
  let port = o.port ?? (await freePort());
  let server: ServerProcess;
  try {
    server = await launch(o, dir, port, p);
  } catch (e) {
    if (o.port !== undefined) throw e;
    port = await freePort();
    server = await launch(o, dir, port, p);
  }
  const env: Env = {
    DB_HOST: '127.0.0.1',
    DB_PORT: String(port),
    DB_USER: MARIADB_USERS.repl,
    DB_PASSWORD: p.repl,
    DB_ADMIN_USER: MARIADB_USERS.admin,
    DB_ADMIN_PASSWORD: p.admin,
    DB_TLS: 'false',
  };
  return {
    port,
    pid: server.pid,
    dir,
    env,
    adminConnection: (database?: string, extra: ConnectionOptions = {}) =>
      adminConnection(env, database, extra),
    stop: () => server.stop(),
  };
}
