/**
 * A second MariaDB of our own for the TLS tests: the stack's command line (services/stack/mariadb.ts) plus a
 * server certificate signed by a throw-away CA and `--require-secure-transport=ON`, on its own port and data
 * directory under `.drugsync/tls-test/`, with the stack's users and grants. Launched, waited for and stopped
 * with the stack's own blocks (services/stack/process.ts): `stop()` ends exactly that server and waits for it.
 */
import { spawnSync } from 'node:child_process';
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
  MARIADB_USERS,
  mariadbReadiness,
  mariadbRootBySocket,
  mariadbServerArgs,
  prepareMariadbDataDir,
} from '../../services/stack/mariadb.ts';
import { launchServer, runningPid, stopProcess } from '../../services/stack/process.ts';

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
  const identity = { marker: dataDir };
  fs.mkdirSync(dir, { recursive: true });
  // A server a previous run of these tests left behind (its pid file, checked against its command line).
  const leftover = runningPid(files.pidFile, identity);
  if (leftover !== null) await stopProcess(leftover, identity, 'tls-mariadb');
  const pki = makeCertificates(path.join(dir, 'pki'));
  const mariadbd = prepareMariadbDataDir(
    dataDir,
    createLogger({ service: 'tls-mariadb' }, { level: 'warn' }),
  );
  const p = passwords(dir);
  const server = await launchServer({
    name: 'tls-mariadb',
    port,
    logFile: files.logFile,
    pidFile: files.pidFile,
    pidFileBy: 'server',
    command: mariadbd,
    args: [
      ...mariadbServerArgs(files),
      `--ssl-ca=${pki.ca}`,
      `--ssl-cert=${pki.cert}`,
      `--ssl-key=${pki.key}`,
      '--require-secure-transport=ON',
      '--innodb-buffer-pool-size=64M',
      '--max-connections=100',
    ],
    identity,
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
  const env: Env = {
    DB_HOST: '127.0.0.1',
    DB_PORT: String(port),
    DB_USER: MARIADB_USERS.repl,
    DB_PASSWORD: p.repl,
    DB_ADMIN_USER: MARIADB_USERS.admin,
    DB_ADMIN_PASSWORD: p.admin,
    DB_TLS: 'true',
    DB_TLS_CA_FILE: pki.ca,
  };
  return {
    port,
    pid: server.pid,
    caFile: pki.ca,
    otherCaFile: pki.otherCa,
    env,
    adminConnection: (database?: string) =>
      mysql.createConnection({
        host: '127.0.0.1',
        port,
        user: MARIADB_USERS.admin,
        password: p.admin,
        database,
        ssl: { ca: fs.readFileSync(pki.ca, 'utf8'), rejectUnauthorized: true },
        dateStrings: true,
        supportBigNumbers: true,
        charset: 'utf8mb4_general_ci',
        multipleStatements: true,
        flags: ['+LOCAL_FILES'],
      }),
    stop: () => server.stop(),
  };
}
