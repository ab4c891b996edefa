/**
 * A second MariaDB of our own for the TLS tests: a private MariaDB (./private-mariadb.ts: the stack's command
 * line, users and grants) plus a server certificate signed by a throw-away CA and
 * `--require-secure-transport=ON`, on its own port and data directory under `.drugsync/tls-test/`. `stop()`
 * ends exactly that server (its pid) and waits for it.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { STATE_DIR } from '../../services/core/paths.ts';
import { startPrivateMariadb } from './private-mariadb.ts';

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

export async function startTlsMariadb(port = 13317): Promise<TlsMariadb> {
  const dir = path.join(STATE_DIR, 'tls-test');
  fs.mkdirSync(dir, { recursive: true });
  const pki = makeCertificates(path.join(dir, 'pki'));
  const server = await startPrivateMariadb({
    name: 'tls-test',
    port,
    args: [
      `--ssl-ca=${pki.ca}`,
      `--ssl-cert=${pki.cert}`,
      `--ssl-key=${pki.key}`,
      '--require-secure-transport=ON',
    ],
  });
  const ssl = { ca: fs.readFileSync(pki.ca, 'utf8'), rejectUnauthorized: true };
  return {
    port,
    pid: server.pid,
    caFile: pki.ca,
    otherCaFile: pki.otherCa,
    env: { ...server.env, DB_TLS: 'true', DB_TLS_CA_FILE: pki.ca },
    adminConnection: (database?: string) => server.adminConnection(database, { ssl }),
    stop: server.stop,
  };
}
