/**
 * The binlog reader's progress heartbeat on the real stack (MariaDB, Redis, kinesalite), read back from the
 * EMF lines it emits: an idle database reads healthy however long it stays idle (the server's heartbeats
 * say so), and each way the reader's progress can stop while its process lives makes ReaderStallSeconds grow
 * past the stall alarm's threshold (the larger of the stages' defaults): MariaDB refusing its login, its lease
 * held by another reader, its connection blackholed by a proxy. The test clock jumps past the threshold once
 * progress has stopped, so minutes of stall take seconds; each fault is then lifted and the reader catches up.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { STAGES, STAGE_DEFAULTS } from '../infra/config.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createRedisLease } from '../services/core/lease.ts';
import { METRICS, SERVICE_METRICS } from '../services/core/metrics.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogReaderHandle, ReaderConfig } from '../services/binlog-reader/reader.ts';
import { masterStatus } from './support/binlog.ts';
import { insertRows, makeRow } from './support/factories.ts';
import { expectStallPastThreshold, faultLog, jumpClock, watchMetrics } from './support/metric-watch.ts';
import type { JumpClock, MetricWatch, StallCheck } from './support/metric-watch.ts';
import { createSuiteDatabase, eventually, resetSuite, suiteEnv, suiteRedis } from './support/stack.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import type { TcpProxy } from './support/tcp-proxy.ts';
import { quoteIdent } from '../services/core/sql.ts';

const STALL = METRICS.ReaderStallSeconds;
const LAG = METRICS.ReaderLagSeconds;
/** the stall alarm's threshold, the larger of the stages' defaults (infra/config.ts) */
const THRESHOLD = Math.max(...STAGES.map((s) => STAGE_DEFAULTS[s].readerStallAlarmSeconds));
/** a healthy reader's stall stays below this (heartbeats and metric lines every second) */
const HEALTHY = 4;
const USER = 'drugsync_stall_reader';
const PASSWORD = 'stall-reader-pass-1';

const log = faultLog('reader-stall-test');
let admin: Connection;
let redis: RedisClient;
let proxy: TcpProxy;
let seq = 0;

function freshRows(n: number): Rndc14Row[] {
  return Array.from({ length: n }, () => {
    seq += 1;
    return makeRow({ NDC: `7${String(seq).padStart(10, '0')}` }, seq);
  });
}

/** Closes every connection of the reader's user (MariaDB side): the reader must log in again. */
async function killReaderConnections(): Promise<void> {
  const [rows] = (await admin.query('SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?', [
    USER,
  ])) as unknown as [{ ID: number }[]];
  for (const r of rows) await admin.query(`KILL ${Number(r.ID)}`).catch(() => undefined);
}

interface Watched {
  config: ReaderConfig;
  reader: BinlogReaderHandle;
  metrics: MetricWatch;
  clock: JumpClock;
  /** ReaderStallSeconds against the alarm threshold while the reader runs */
  stall: StallCheck;
}

let running: Watched | null = null;

/** A reader through the proxy, as the stall user, its metrics every second, caught up on the table. */
async function startWatchedReader(name: string): Promise<Watched> {
  const env: Env = suiteEnv('reader_stall', {
    DB_PORT: String(proxy.port),
    DB_USER: USER,
    DB_PASSWORD: PASSWORD,
    KINESIS_STREAM: `t-reader-stall-${name}`,
    DB_SERVER_ID: String(500_000 + Math.floor(Math.random() * 100_000)),
    READER_METRICS_SECONDS: '1',
    READER_HEARTBEAT_SECONDS: '1',
    READER_STALL_SECONDS: '3',
    READER_LEASE_TTL_MS: '3000',
    READER_MAX_BACKOFF_SECONDS: '1',
  });
  const config = decodeConfig(readerConfigShape, env);
  await resetSuite(env, redis, 1);
  const metrics = watchMetrics('reader');
  const clock = jumpClock();
  const reader = startBinlogReader(
    config,
    { log, metrics: metrics.emitter, clock: clock.now },
    { from: await masterStatus(admin) },
  );
  const stall = { metrics, clock, name: STALL, threshold: THRESHOLD, healthy: HEALTHY, done: reader.done };
  running = { config, reader, metrics, clock, stall };
  await eventually(async () => reader.stats.state === 'streaming', 60_000, 'streaming');
  return running;
}

/** The fault lifted: the rows written meanwhile are read and checkpointed, and the stall falls back. */
async function expectRecovery(w: Watched, rows: number, rowEventsBefore: number): Promise<void> {
  await eventually(
    async () => w.reader.stats.rowEvents >= rowEventsBefore + rows,
    90_000,
    'rows written during the fault',
  );
  await w.metrics.waitFor(STALL, (v) => v < HEALTHY, w.metrics.records.length, 'caught up again');
}

beforeAll(async () => {
  const env = suiteEnv('reader_stall');
  admin = await createSuiteDatabase(env);
  redis = suiteRedis(env);
  await admin.query(`DROP USER IF EXISTS ?@'%'`, [USER]);
  await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [USER, PASSWORD]);
  await admin.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ?@'%'`, [USER]);
  await admin.query(`GRANT SELECT ON ${quoteIdent(env.DB_NAME as string)}.* TO ?@'%'`, [USER]);
  proxy = await startTcpProxy({ host: env.DB_HOST ?? '127.0.0.1', port: Number(env.DB_PORT) });
});

afterEach(async () => {
  proxy.restore();
  await running?.reader.stop().catch(() => undefined);
  running = null;
});

afterAll(async () => {
  await proxy?.close();
  await admin?.query(`DROP USER IF EXISTS ?@'%'`, [USER]).catch(() => undefined);
  await admin?.end();
  redis?.disconnect();
});

describe('reader stall metric', () => {
  it('reads healthy on an idle database however long it is idle: the server’s heartbeats prove it', async () => {
    // Prepare: a reader that read and checkpointed some rows, then nothing happens
    const w = await startWatchedReader('idle');
    await insertRows(admin, freshRows(20));
    const end = await masterStatus(admin);
    await eventually(
      async () => w.reader.stats.checkpoint?.file === end.file && w.reader.stats.checkpoint.pos >= end.pos,
      60_000,
      'everything checkpointed',
    );
    await w.metrics.next(STALL, 2, w.metrics.records.length); // sampled since
    // Act: ten minutes of idleness pass on the reader's clock
    const from = w.metrics.records.length;
    w.clock.jump(600_000);
    const healthyAt = await w.metrics.waitFor(STALL, (v) => v < HEALTHY, from + 1, 'idle reads healthy');
    // Assess: healthy again within a few lines, lag too; every reader metric is emitted
    expect(healthyAt - from).toBeLessThanOrEqual(4);
    expect(w.metrics.values(LAG, healthyAt)[0]).toBeLessThan(HEALTHY);
    const names = new Set(w.metrics.records.flatMap((r) => Object.keys(r.values)));
    expect([...names].sort()).toEqual([...SERVICE_METRICS.reader].sort());
    expect(w.metrics.records.every((r) => r.dimensions.Service === 'binlog-reader')).toBe(true);
  });

  it('grows past the threshold while MariaDB refuses its login, and falls once it logs in again', async () => {
    // Prepare
    const w = await startWatchedReader('login');
    const before = w.reader.stats.rowEvents;
    // Act: the password changes under the reader, its connections are closed; rows are written meanwhile
    await admin.query(`ALTER USER ?@'%' IDENTIFIED BY ?`, [USER, 'rotated-elsewhere-2']);
    await killReaderConnections();
    await insertRows(admin, freshRows(30));
    await eventually(
      async () => /Access denied/.test(w.reader.stats.lastError ?? ''),
      60_000,
      'a refused login',
    );
    // Assess
    const stalls = await expectStallPastThreshold(w.stall);
    expect(w.metrics.values(LAG).slice(-1)[0]).toBeGreaterThan(THRESHOLD);
    expect(stalls).toHaveLength(3);
    await admin.query(`ALTER USER ?@'%' IDENTIFIED BY ?`, [USER, PASSWORD]);
    await expectRecovery(w, 30, before);
  });

  it('grows past the threshold while another reader holds its lease, and falls once it has it back', async () => {
    // Prepare
    const w = await startWatchedReader('lease');
    const before = w.reader.stats.rowEvents;
    const key = makeKeys(w.config).readerLease;
    const other = createRedisLease(redis, key, 'reader-2.internal:7:other', 120_000);
    // Act: another reader takes the lease; rows are written meanwhile
    await redis.del(key);
    expect(await other.tryAcquire()).toBe(true);
    await insertRows(admin, freshRows(30));
    await eventually(async () => w.reader.stats.state === 'waiting-lease', 60_000, 'waiting for the lease');
    // Assess
    await expectStallPastThreshold(w.stall);
    await other.release();
    await expectRecovery(w, 30, before);
  });

  it('grows past the threshold while its connection to MariaDB is blackholed, and falls once it is not', async () => {
    // Prepare
    const w = await startWatchedReader('blackhole');
    const before = w.reader.stats.rowEvents;
    // Act: every packet between reader and MariaDB is lost, nothing closes; rows are written meanwhile
    proxy.blackhole();
    await insertRows(admin, freshRows(30));
    // Assess
    await expectStallPastThreshold(w.stall);
    expect(w.reader.stats.rowEvents).toBe(before);
    proxy.restore();
    await expectRecovery(w, 30, before);
  });
});
