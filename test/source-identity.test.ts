/**
 * The reader meets another server behind its settings, on real servers: two private MariaDBs of this suite
 * (test/support/private-mariadb.ts, free ports, fresh data directories), A (server_id 11) and B (server_id
 * 12), with the stack's Redis and kinesalite.
 *
 * 1. A checkpoint written on A is refused on B, a server with another history: BINLOG_SOURCE_CHANGED naming
 *    both servers and the position; the reader stops, the checkpoint is left as it was.
 * 2. A checkpoint written before sources were recorded is upgraded on the first resume (A's identity written
 *    with it), logged once; the next start finds it recorded and logs nothing.
 * 3. A failover that keeps GTIDs: B becomes A's replica (MariaDB GTID replication, log_slave_updates, its
 *    binlog numbered from 100), A takes more writes while the reader is down, B is promoted and A stopped,
 *    B takes writes of its own. The reader, still holding A's checkpoint, resumes on B by GTID (logged):
 *    every change after the checkpoint, A's and B's, is on the stream, and the last event of each NDC is
 *    B's row. Its checkpoints are B's from then on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createMysqlPool } from '../services/core/clients/mysql.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { isRowEvent } from '../services/core/events.ts';
import type { RowChangeEvent } from '../services/core/events.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createLogger } from '../services/core/log.ts';
import { compareSourcePositions } from '../services/core/position.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { stampPosition } from '../services/core/source-identity.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import { createStreamTail } from './support/stream-tail.ts';
import type { ReadBack } from './support/stream-tail.ts';
import { changes, insertRows, makeRow } from './support/factories.ts';
import { startPrivateMariadb } from './support/private-mariadb.ts';
import type { PrivateMariadb } from './support/private-mariadb.ts';
import { createSuiteDatabase, openSuite, suiteEnv } from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const base = suiteEnv('source_identity', {
  DB_SERVER_ID: String(500_000 + Math.floor(Math.random() * 100_000)),
  READER_LEASE_TTL_MS: '3000',
  READER_MAX_BACKOFF_SECONDS: '1',
  READER_METRICS_SECONDS: '60',
});
let a: PrivateMariadb;
let b: PrivateMariadb;
let envA: Env;
let envB: Env;
let adminA: Connection;
let adminB: Connection;
let redis: RedisClient;
/** A's GTID position before the suite's database existed: where B starts replicating */
let aBefore: string;
const kinesis = createKinesis({ KINESIS_ENDPOINT: base.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
let tail: ReturnType<typeof createStreamTail>;
const seen: ReadBack[] = [];
const keys = makeKeys(decodeConfig(readerConfigShape, base));
let seq = 0;

function freshRows(n: number): Rndc14Row[] {
  return Array.from({ length: n }, () => {
    seq += 1;
    return makeRow({ NDC: `5${String(seq).padStart(10, '0')}` }, seq);
  });
}

const insert = (conn: Connection, rows: Rndc14Row[]): Promise<void> => insertRows(conn, rows);

/** A First Databank rename of `row` (a new label name), written on `conn`. */
async function rename(conn: Connection, row: Rndc14Row, tag: string): Promise<void> {
  const r = changes.rename(row, tag);
  await conn.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [r.LN, r.LN60, row.NDC]);
}

async function one<T>(conn: Connection, sql: string): Promise<T> {
  const [rows] = (await conn.query(sql)) as unknown as [T[]];
  return rows[0] as T;
}

async function masterStatus(conn: Connection): Promise<BinlogPosition> {
  const r = await one<{ File: string; Position: number }>(conn, 'SHOW MASTER STATUS');
  return { file: r.File, pos: Number(r.Position) };
}

/** Runs the reader on `env` until it is idle (or fails); its log lines are returned as objects. */
async function runReader(env: Env, options: { from?: BinlogPosition } = {}) {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { service: 'source-identity-test' },
    { level: 'info', json: true, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  const reader = startBinlogReader(
    decodeConfig(readerConfigShape, env),
    { log },
    { ...options, onceIdleSeconds: 1 },
  );
  const outcome = await reader.done.then(
    (r) => ({ ok: true as const, stats: r.stats }),
    (e: unknown) => ({ ok: false as const, error: e }),
  );
  return { outcome, lines, stats: reader.stats };
}

const checkpoint = () => createReaderCheckpointStore(redis, keys).load();

async function stream(): Promise<RowChangeEvent[]> {
  seen.push(...(await tail.read()));
  return seen.map((r) => r.event).filter(isRowEvent);
}

beforeAll(async () => {
  // two private servers, each with its own server_id and a fresh history
  [a, b] = await Promise.all([
    startPrivateMariadb({ name: 'identity-a', fresh: true, args: ['--server-id=11', '--log-slave-updates'] }),
    startPrivateMariadb({ name: 'identity-b', fresh: true, args: ['--server-id=12', '--log-slave-updates'] }),
  ]);
  envA = { ...base, ...a.env };
  envB = { ...base, ...b.env };
  const rootA = await a.adminConnection();
  aBefore = (await one<{ p: string }>(rootA, 'SELECT @@gtid_binlog_pos AS p')).p;
  await rootA.end();
  ({ admin: adminA, redis } = await openSuite(envA));
  adminB = await createSuiteDatabase(envB); // B's own copy of the schema: a server with another history
  tail = createStreamTail(kinesis, base.KINESIS_STREAM as string);
});

afterAll(async () => {
  await adminA?.end().catch(() => undefined);
  await adminB?.end().catch(() => undefined);
  redis?.disconnect();
  kinesis.destroy();
  await Promise.all([a?.stop(), b?.stop()]);
});

describe('the source server behind the reader’s settings', () => {
  it('a checkpoint from server A is refused on server B: BINLOG_SOURCE_CHANGED naming both, the checkpoint untouched', async () => {
    // Prepare: the reader checkpoints on A
    const from = await masterStatus(adminA);
    await insert(adminA, freshRows(3));
    const onA = await runReader(envA, { from });
    const cp = await checkpoint();
    // Act: the same settings now reach B
    const onB = await runReader(envB);
    // Assess
    expect(onA.outcome.ok).toBe(true);
    expect(cp).toMatchObject({
      file: from.file,
      source: 'mariadb:11:0',
      gtid: expect.stringMatching(/^0-11-\d+$/),
    });
    expect(onB.outcome.ok).toBe(false);
    const e = (onB.outcome as { error: unknown }).error;
    expect(isDrugsyncError(e, 'BINLOG_SOURCE_CHANGED'), String(e)).toBe(true);
    const err = e as Error & { context: Record<string, unknown>; remedy: string };
    expect(err.message).toContain('MariaDB server_id 11 (gtid_domain_id 0)');
    expect(err.message).toContain('MariaDB server_id 12 (gtid_domain_id 0)');
    expect(err.message).toContain(`checkpoint ${cp!.file}:${cp!.pos} (gtid ${cp!.gtid})`);
    expect(err.message).toMatch(/does not reach GTID 0-11-/);
    expect(err.context).toMatchObject({
      recorded_source: 'MariaDB server_id 11 (gtid_domain_id 0)',
      key: keys.readerCheckpoint,
    });
    expect(err.remedy).toMatch(/backfill --restart/);
    expect(await checkpoint()).toEqual(cp);
  });

  it('a checkpoint written before sources were recorded is upgraded on the first resume, logged once', async () => {
    // Prepare: the checkpoint as an older drugsync wrote it (no source), at a real position of A
    const cp = (await checkpoint())!;
    await createReaderCheckpointStore(redis, keys).save({ file: cp.file, pos: cp.pos, gtid: cp.gtid });
    // Act: two starts, a change in between
    const first = await runReader(envA);
    const upgraded = await checkpoint();
    await insert(adminA, freshRows(1));
    const second = await runReader(envA);
    // Assess
    const upgrades = (r: typeof first) => r.lines.filter((l) => /checkpoint upgraded/.test(String(l.msg)));
    expect(first.outcome.ok && second.outcome.ok).toBe(true);
    expect(upgraded).toEqual({ ...cp, source: 'mariadb:11:0' });
    expect(upgrades(first)).toHaveLength(1);
    expect(upgrades(first)[0]).toMatchObject({ server: 'MariaDB server_id 11 (gtid_domain_id 0)' });
    expect(upgrades(second)).toHaveLength(0);
    expect(second.stats.startedFrom).toBe(`checkpoint ${cp.file}:${cp.pos} (gtid ${cp.gtid})`);
  });

  it('the backfill’s snapshot position is stamped with its server and the exact GTID there', async () => {
    const pool = createMysqlPool(decodeConfig(readerConfigShape, envA), {
      user: a.env.DB_USER!,
      password: a.env.DB_PASSWORD!,
    });
    try {
      const at = await masterStatus(adminA);
      const gtid = (await one<{ p: string }>(adminA, 'SELECT @@gtid_binlog_pos AS p')).p;
      expect(await stampPosition(pool, { ...at, gtid: 'read later, inexact' })).toEqual({
        ...at,
        gtid,
        source: 'mariadb:11:0',
      });
    } finally {
      await pool.end();
    }
  });

  it('a failover that keeps GTIDs continuous resumes by GTID on the promoted replica, nothing lost', async () => {
    // Prepare: B replicates A from before the suite's database, binlog numbered from 100
    await adminB.query(`DROP DATABASE ${quoteIdent(base.DB_NAME as string)}`);
    await adminB.query('RESET MASTER TO 100');
    await adminB.query('SET GLOBAL gtid_slave_pos = ?', [aBefore]);
    await adminB.query(
      `CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=${a.port}, MASTER_USER=?, MASTER_PASSWORD=?, MASTER_USE_GTID=slave_pos`,
      [a.env.DB_USER, a.env.DB_PASSWORD],
    );
    await adminB.query('START SLAVE');
    // the reader checkpoints on A, then A takes more writes while the reader is down
    const before = freshRows(4);
    await insert(adminA, before);
    expect((await runReader(envA)).outcome.ok).toBe(true);
    const cp = (await checkpoint())!;
    const whileDown = freshRows(3);
    await insert(adminA, whileDown);
    await rename(adminA, before[0]!, 'A');
    // failover: B has everything A wrote; it is promoted and A goes away
    const aPos = (await one<{ p: string }>(adminA, 'SELECT @@gtid_binlog_pos AS p')).p;
    expect((await one<{ w: number }>(adminB, `SELECT MASTER_GTID_WAIT('${aPos}', 60) AS w`)).w).toBe(0);
    await adminB.query('STOP SLAVE');
    await adminB.query('RESET SLAVE ALL');
    await adminA.end();
    await a.stop();
    await adminB.changeUser({ database: base.DB_NAME });
    const onB = freshRows(2);
    await insert(adminB, onB);
    await rename(adminB, whileDown[0]!, 'B');
    await adminB.query('DELETE FROM rndc14 WHERE NDC = ?', [before[1]!.NDC]);
    const earlier = await stream();
    const seenBefore = earlier.length;
    // Act: the reader, holding A's checkpoint, now reaches B
    const run = await runReader(envB);
    // Assess: resumed by GTID (logged), every change after the checkpoint is on the stream
    expect(run.outcome.ok, String((run.outcome as { error?: unknown }).error)).toBe(true);
    const resumed = run.lines.filter((l) => /resuming by GTID/.test(String(l.msg)));
    expect(resumed).toHaveLength(1);
    expect(resumed[0]).toMatchObject({ gtid: cp.gtid, server: 'MariaDB server_id 12 (gtid_domain_id 0)' });
    expect(run.stats.startedFrom).toContain(`→ GTID ${cp.gtid}`);
    const after = (await stream()).slice(seenBefore);
    const last = new Map<string, RowChangeEvent>();
    for (const e of after) last.set(e.ndc, e);
    const [rowsB] = (await adminB.query('SELECT NDC, LN FROM rndc14 ORDER BY NDC')) as unknown as [
      { NDC: string; LN: string }[],
    ];
    const changedAfterCheckpoint = new Set([...whileDown, ...onB].map((r) => String(r.NDC)));
    changedAfterCheckpoint.add(String(before[0]!.NDC)).add(String(before[1]!.NDC));
    expect(new Set(last.keys())).toEqual(changedAfterCheckpoint);
    for (const r of rowsB.filter((x) => changedAfterCheckpoint.has(x.NDC))) {
      const e = last.get(r.NDC)!;
      expect(e.type, r.NDC).not.toBe('delete');
      expect(e.after?.LN, r.NDC).toBe(r.LN);
    }
    expect(last.get(String(before[1]!.NDC))?.type).toBe('delete');
    // B's binlog positions order after every change read from A: the position-checked store takes them
    const newestFromA = earlier
      .map((e) => e.pos)
      .sort(compareSourcePositions)
      .at(-1)!;
    for (const e of after) expect(compareSourcePositions(e.pos, newestFromA), e.ndc).toBeGreaterThan(0);
    // from now on the checkpoint is B's
    expect(await checkpoint()).toMatchObject({
      file: expect.stringMatching(/^binlog\.0001\d\d$/),
      source: 'mariadb:12:0',
    });
  });
});
