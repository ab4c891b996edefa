/**
 * A second MariaDB of our own for the TLS tests: the stack's command line (services/stack/stack.ts) plus a
 * server certificate signed by a throw-away CA and `--require-secure-transport=ON`, on its own port and data
 * directory under `.drugsync/tls-test/`, with the stack's users and grants. `stop()` ends exactly that server
 * (its pid) and waits for it.
 */
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { createLogger } from '../../services/core/log.ts';
import { STATE_DIR } from '../../services/core/paths.ts';
import {
  configureMariadbUsers,
  mariadbServerArgs,
  prepareMariadbDataDir,
} from '../../services/stack/mariadb.ts';

export interface TlsMariadb {
  port: number;
  pid: number;
  /** PEM of the CA that signed the server's certificate */
  caFile: string;
  /** PEM of another CA (a certificate that does not verify) */
  otherCaFile: string;
  /** DB_* settings of the services (replication user, TLS on with the CA) and the admin account */
  env: Env;
  /** A TLS connection as the admin user that may send LOCAL INFILE data. */
  adminConnection(database?: string): Promise<Connection>;
  stop(): Promise<void>;
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
}

/** A CA and a server certificate for 127.0.0.1 / localhost signed by it; another CA beside them. */
function makeCertificates(dir: string): { ca: string; otherCa: string; cert: string; key: string } {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const ca = (name: string) =>
    openssl(
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-keyout',
        `${name}.key`,
        '-out',
        `${name}.pem`,
        '-subj',
        `/CN=drugsync test ${name}`,
        '-addext',
        'basicConstraints=critical,CA:TRUE',
        '-addext',
        'keyUsage=critical,keyCertSign,cRLSign',
      ],
      dir,
    );
  ca('ca');
  ca('other-ca');
  openssl(
    [
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    ],
    dir,
  );
  fs.writeFileSync(
    path.join(dir, 'server.ext'),
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' +
      'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n',
  );
  openssl(
    [
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-days',
      '2',
      '-out',
      'server.pem',
      '-extfile',
      'server.ext',
    ],
    dir,
  );
  return {
    ca: path.join(dir, 'ca.pem'),
    otherCa: path.join(dir, 'other-ca.pem'),
    cert: path.join(dir, 'server.pem'),
    key: path.join(dir, 'server.key'),
  };
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

/** Ends a server a previous run of these tests left behind (its pid file, checked against its command line). */
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
  throw new Error(`the TLS MariaDB did not start; ${log}:\n${tail}`);
}

export async function startTlsMariadb(port = 13317): Promise<TlsMariadb> {
  const dir = path.join(STATE_DIR, 'tls-test');
  const dataDir = path.join(dir, 'data');
  const files = {
    dataDir,
    port,
    socket: path.join(dir, 'mysql.sock'),
    pidFile: path.join(dir, 'mariadb.pid'),
    logFile: path.join(dir, 'mariadb.log'),
    binlog: path.join(dir, 'binlog'),
  };
  fs.mkdirSync(dir, { recursive: true });
  stopLeftover(files.pidFile, dataDir);
  const pki = makeCertificates(path.join(dir, 'pki'));
  const mariadbd = prepareMariadbDataDir(
    dataDir,
    createLogger({ service: 'tls-mariadb' }, { level: 'warn' }),
  );
  const p = passwords(dir);
  const out = fs.openSync(files.logFile, 'a');
  const child = spawn(
    mariadbd,
    [
      ...mariadbServerArgs(files),
      `--ssl-ca=${pki.ca}`,
      `--ssl-cert=${pki.cert}`,
      `--ssl-key=${pki.key}`,
      '--require-secure-transport=ON',
      '--innodb-buffer-pool-size=64M',
      '--max-connections=100',
    ],
    { stdio: ['ignore', out, out] },
  );
  fs.closeSync(out);
  const pid = child.pid as number;
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(pid, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && process.kill(pid, 'SIGKILL'), 30_000);
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
  const env: Env = {
    DB_HOST: '127.0.0.1',
    DB_PORT: String(port),
    DB_USER: 'drugsync_repl',
    DB_PASSWORD: p.repl,
    DB_ADMIN_USER: 'drugsync_admin',
    DB_ADMIN_PASSWORD: p.admin,
    DB_TLS: 'true',
    DB_TLS_CA_FILE: pki.ca,
  };
  return {
    port,
    pid,
    caFile: pki.ca,
    otherCaFile: pki.otherCa,
    env,
    adminConnection: (database?: string) =>
      mysql.createConnection({
        host: '127.0.0.1',
        port,
        user: 'drugsync_admin',
        password: p.admin,
        database,
        ssl: { ca: fs.readFileSync(pki.ca, 'utf8'), rejectUnauthorized: true },
        dateStrings: true,
        supportBigNumbers: true,
        charset: 'utf8mb4_general_ci',
        multipleStatements: true,
        flags: ['+LOCAL_FILES'],
      }),
    stop,
  };
}
