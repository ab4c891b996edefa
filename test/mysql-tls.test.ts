/**
 * TLS to MySQL (DB_TLS, DB_TLS_CA_FILE) against a MariaDB of our own that requires it
 * (test/support/tls-mariadb.ts: a throw-away CA, a server certificate for 127.0.0.1,
 * --require-secure-transport=ON, the stack's binlog settings, users and grants). Backfill, verify and the
 * binlog reader connect over TLS and read and stream a catalogue; with DB_TLS=false, or a CA that did not
 * sign the server's certificate, each fails with a CONFIG_INVALID naming host:port and the remedy.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import mysql from 'mysql2/promise';
import type { Connection } from 'mysql2/promise';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createMysqlPool, mysqlConnectError, mysqlTlsOptions } from '../services/core/clients/mysql.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { isRowEvent } from '../services/core/events.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import { STATE_DIR } from '../services/core/paths.ts';
import { createTableSql } from '../services/core/rndc14.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { ReaderConfig } from '../services/binlog-reader/reader.ts';
import { createZongjiSource } from '../services/binlog-reader/zongji-source.ts';
import { createStreamTail } from './support/stream-tail.ts';
import { changes, generateCatalogue, insertRows, loadRows } from './support/factories.ts';
import { runCli } from './support/pipeline.ts';
import {
  deleteSuiteStream,
  eventually,
  resetSuite,
  resetSuiteRedis,
  suiteEnv,
  suiteRedis,
} from './support/stack.ts';
import { startTlsMariadb } from './support/tls-mariadb.ts';
import type { TlsMariadb } from './support/tls-mariadb.ts';
import { quoteIdent } from '../services/core/sql.ts';

let server: TlsMariadb;
let env: Env;
let config: ReaderConfig;
let admin: Connection;
let redis: RedisClient;
const catalogue = [...generateCatalogue({ rows: 400, seed: 15 })];
const cred = () => ({ user: config.DB_USER as string, password: config.DB_PASSWORD as string });
const REQUIRES_TLS = /MySQL at 127\.0\.0\.1:13317 requires TLS and DB_TLS is false/;
const REMEDY = "set DB_TLS=true (and DB_TLS_CA_FILE to the server's CA bundle)";

/** The first error a binlog source reports (zongji's two connections, with these TLS options). */
function sourceError(ssl: ReturnType<typeof mysqlTlsOptions>): Promise<unknown> {
  const source = createZongjiSource({
    host: config.DB_HOST,
    port: config.DB_PORT,
    ...cred(),
    ssl,
    serverId: config.DB_SERVER_ID + 1,
    schema: config.DB_NAME,
    table: config.DB_TABLE,
    heartbeatSeconds: 0,
  });
  const noop = () => {};
  return new Promise<unknown>((resolve) => {
    source.start(
      { file: 'binlog.000001', pos: 4 },
      {
        onBegin: noop,
        onRows: noop,
        onCommit: noop,
        onStatement: noop,
        onRotate: noop,
        onHeartbeat: noop,
        onError: resolve,
      },
    );
  }).finally(() => source.stop());
}

beforeAll(async () => {
  server = await startTlsMariadb(13317);
  env = suiteEnv('mysqltls', {
    ...server.env,
    BACKFILL_SPOOL_DIR: path.join(STATE_DIR, 'tls-test', 'spool'),
    READER_LEASE_TTL_MS: '3000',
    READER_MAX_BACKOFF_SECONDS: '1',
  });
  config = decodeConfig(readerConfigShape, env);
  admin = await server.adminConnection();
  const db = config.DB_NAME;
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(db)}`);
  await admin.query(`CREATE DATABASE ${quoteIdent(db)} CHARACTER SET utf8mb4`);
  await admin.query(createTableSql(db, config.DB_TABLE));
  await admin.query(`GRANT SELECT, LOCK TABLES ON ${quoteIdent(db)}.* TO 'drugsync_repl'@'%'`);
  await admin.changeUser({ database: db });
  await loadRows(admin, catalogue, { schema: db, table: config.DB_TABLE });
  redis = suiteRedis(env);
  await resetSuite(env, redis, 1);
}, 180_000);

afterAll(async () => {
  await admin?.end();
  if (redis) {
    await resetSuiteRedis(env, redis);
    await redis.quit();
  }
  if (env) await deleteSuiteStream(env);
  await server?.stop();
}, 60_000);

describe('TLS to MySQL', () => {
  it('opens every pool connection over TLS, and the server refuses a plain one', async () => {
    // Prepare
    const pool = createMysqlPool(config, cred());
    try {
      // Act: three sessions at once, each asking for its own cipher; a plain login beside them
      const sessions = await Promise.all(
        [0, 1, 2].map(() =>
          pool.query<{ Variable_name: string; Value: string }>("SHOW SESSION STATUS LIKE 'Ssl_%'"),
        ),
      );
      const plain = await mysql
        .createConnection({ host: config.DB_HOST, port: config.DB_PORT, ...cred() })
        .then(
          (c) => c.end().then(() => null),
          (e: unknown) => e as { errno?: number },
        );

      // Assess
      for (const rows of sessions) {
        const v = Object.fromEntries(rows.map((r) => [r.Variable_name, r.Value]));
        expect(v.Ssl_cipher).toMatch(/\w/);
        expect(v.Ssl_version).toMatch(/^TLSv1\.[23]$/);
      }
      expect(plain?.errno).toBe(1045); // MariaDB 10.11's answer to a plain login under require_secure_transport
    } finally {
      await pool.end();
    }
  });

  it('backfills, verifies and streams a change committed after the backfill, over TLS', async () => {
    // Prepare / Act: backfill and verify as the CLI runs them
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    const verify = await runCli(env, ['verify', '--json']);
    expect(verify.status, verify.stderr.slice(-2000)).toBe(0);
    const eligible = catalogue.map(mapRow).filter((f) => f !== null).length;
    expect(verify.json).toMatchObject({ source_rows: eligible, redis_docs: eligible, ok: true });

    // a rename and a new drug committed after the backfill; the reader starts at the backfill's position
    const renamed = changes.rename(catalogue[0]!, 1);
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [
      renamed.LN,
      renamed.LN60,
      renamed.NDC,
    ]);
    const added = changes.newNdc(catalogue[1]!, 7);
    await insertRows(admin, [added]);
    const log = createLogger({ service: 'mysqltls-reader' }, { level: 'warn' });
    const result = await startBinlogReader(config, { redis, log }, { onceIdleSeconds: 2 }).done;

    // Assess: both changes are on the suite's stream
    const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
    try {
      const tail = createStreamTail(kinesis, config.KINESIS_STREAM);
      const seen: string[] = [];
      await eventually(
        async () => {
          for (const r of await tail.read())
            if (isRowEvent(r.event)) seen.push(`${r.event.type} ${r.event.ndc}`);
          return seen.includes(`update ${renamed.NDC}`) && seen.includes(`insert ${added.NDC}`);
        },
        30_000,
        `the rename and the insert on the stream (seen: ${seen.join(', ')})`,
      );
      expect(result.reason).toBe('idle');
      expect(result.stats.restarts).toBe(0);
    } finally {
      kinesis.destroy();
    }
  }, 240_000);

  it('with DB_TLS=false, backfill, verify, the binlog reader and the binlog stream fail with CONFIG_INVALID and the remedy', async () => {
    // Prepare
    const plainEnv = { ...env, DB_TLS: 'false' };
    const plain = decodeConfig(readerConfigShape, plainEnv);

    // Act
    const runs = await Promise.all([
      // --restart: a backfill that already completed would not need MySQL at all
      runCli(plainEnv, ['backfill', '--restart', '--json']),
      runCli(plainEnv, ['verify', '--json']),
      runCli(plainEnv, ['binlog-reader', '--once-idle', '1']),
    ]);
    const streamFailure = await mysqlConnectError(await sourceError(undefined), plain, cred());

    // Assess: exit code 2, the server named with the remedy; not retried
    for (const r of runs) {
      expect(r.status, `${r.stdout.slice(-500)} ${r.stderr.slice(-2000)}`).toBe(2);
      expect(r.stderr).toMatch(REQUIRES_TLS);
      expect(r.stderr).toContain(REMEDY);
      expect(r.stderr).not.toMatch(/restarting from its checkpoint/);
    }
    expect(streamFailure?.code).toBe('CONFIG_INVALID');
    expect(streamFailure?.retryable).toBe(false);
    expect(streamFailure?.message).toMatch(REQUIRES_TLS);
    expect(streamFailure?.remedy).toBe(REMEDY);
  }, 180_000);

  it("names DB_TLS_CA_FILE when the server's certificate does not verify or the file cannot be read", async () => {
    // Prepare: a CA that did not sign the server's certificate; a CA file that does not exist
    const wrong = { ...config, DB_TLS_CA_FILE: server.otherCaFile };
    const missing = { ...env, DB_TLS_CA_FILE: path.join(STATE_DIR, 'tls-test', 'no-such-ca.pem') };

    // Act
    const pool = createMysqlPool(wrong, cred());
    const poolFailure = await pool.query('SELECT 1').then(
      () => null,
      (e: unknown) => e,
    );
    await pool.end();
    const streamFailure = await mysqlConnectError(await sourceError(mysqlTlsOptions(wrong)), wrong, cred());
    const cli = await runCli(missing, ['backfill', '--json']);

    // Assess
    for (const e of [poolFailure, streamFailure]) {
      expect(isDrugsyncError(e, 'CONFIG_INVALID'), String(e)).toBe(true);
      if (!isDrugsyncError(e)) continue;
      expect(e.message).toMatch(/TLS to MySQL at 127\.0\.0\.1:13317 failed/);
      expect(e.remedy).toMatch(/DB_TLS_CA_FILE/);
    }
    expect(() => mysqlTlsOptions(missing as unknown as ReaderConfig)).toThrow(/DB_TLS_CA_FILE: cannot read/);
    expect(cli.status, cli.stderr.slice(-2000)).toBe(2);
    expect(cli.stderr).toMatch(/DB_TLS_CA_FILE: cannot read .*no-such-ca\.pem/);
  }, 120_000);
});
