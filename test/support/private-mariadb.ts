/**
 * A MariaDB of a suite's own, beside the shared stack: the stack's command line (services/stack/stack.ts,
 * binlog ROW/FULL/FULL) plus the suite's arguments (a server id, TLS, replication settings), on a free
 * port unless one is given, with its own data directory under `.drugsync/<name>/` and the stack's users
 * and grants (admin, replication user with SELECT and LOCK TABLES on `fdb`). `fresh` starts from an empty
 * data directory (new binlogs, no GTID history). `stop()` ends exactly that server (its pid) and waits.
 *
 * Used by test/support/tls-mariadb.ts (TLS) and test/source-identity.test.ts (two servers, replication).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Connection, ConnectionOptions } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { createLogger } from '../../services/core/log.ts';
import { STATE_DIR } from '../../services/core/paths.ts';
import {
  configureMariadbUsers,
  mariadbServerArgs,
  prepareMariadbDataDir,
} from '../../services/stack/stack.ts';
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

/** A port free on 127.0.0.1 when asked (listen on port 0, then close). */
export async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => srv.close(() => resolve()));
  return port;
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

/** Ends a server a previous run left behind (its pid file, checked against its command line). */
function stopLeftover(pidFile: string, dataDir: string): void {
  if (!fs.existsSync(pidFile)) return;
  const pid = Number(fs.readFileSync(pidFile, 'utf8').trim());
  try {
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    if (cmd.includes(dataDir)) process.kill(pid, 'SIGKILL');
  } catch {
    // gone already
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

async function rootBySocket(socket: string, p: Passwords): Promise<Connection> {
  const as = (password: string) =>
    mysql.createConnection({ socketPath: socket, user: 'root', password, connectTimeout: 2000 });
  return as(p.admin).catch(() => as(''));
}

async function waitForServer(child: ChildProcess, socket: string, p: Passwords, log: string) {
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) break;
    const conn = await rootBySocket(socket, p).catch(() => null);
    if (conn) return conn;
    await new Promise((r) => setTimeout(r, 200));
  }
  const tail = fs.existsSync(log) ? fs.readFileSync(log, 'utf8').split('\n').slice(-15).join('\n') : '';
  throw new Error(`the private MariaDB did not start; ${log}:\n${tail}`);
}

/** One mariadbd on `port`; resolves once it answers as root with the stack's users configured. */
async function launch(o: PrivateMariadbOptions, dir: string, port: number, p: Passwords) {
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
  const out = fs.openSync(files.logFile, 'a');
  const small = ['--innodb-buffer-pool-size=64M', '--innodb-log-file-size=16M', '--max-connections=100'];
  const child = spawn(mariadbd, [...mariadbServerArgs(files), ...small, ...(o.args ?? [])], {
    stdio: ['ignore', out, out],
  });
  fs.closeSync(out);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(child.pid as number, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 30_000);
      await exited(child);
      clearTimeout(timer);
    }
  };
  try {
    const root = await waitForServer(child, files.socket, p, files.logFile);
    try {
      await configureMariadbUsers(root, { adminPassword: p.admin, replPassword: p.repl, database: 'fdb' });
    } finally {
      await root.end();
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { pid: child.pid as number, stop };
}

export async function startPrivateMariadb(o: PrivateMariadbOptions): Promise<PrivateMariadb> {
  const dir = path.join(STATE_DIR, o.name);
  stopLeftover(path.join(dir, 'mariadb.pid'), path.join(dir, 'data'));
  if (o.fresh) fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const p = passwords(dir);
  // a free port can be taken between the probe and mariadbd's bind: one more try on another
  let port = o.port ?? (await freePort());
  let server: Awaited<ReturnType<typeof launch>>;
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
    DB_USER: 'drugsync_repl',
    DB_PASSWORD: p.repl,
    DB_ADMIN_USER: 'drugsync_admin',
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
    stop: server.stop,
  };
}
