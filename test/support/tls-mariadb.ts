/**
 * A second MariaDB of our own for the TLS tests: a private MariaDB (./private-mariadb.ts: the stack's command
 * line, users and grants) plus a server certificate signed by a throw-away CA and
 * `--require-secure-transport=ON`, on its own port and data directory under `.drugsync/tls-test/`. `stop()`
 * ends exactly that server (its pid) and waits for it.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../../services/core/config.ts';
import { STATE_DIR } from '../../services/core/paths.ts';
import { makeCertificates } from './certificates.ts';
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
