/**
 * The reader's checkpoint is fenced on its lease (services/core/checkpoint.ts), on the real stack: a reader
 * that lost its lease while it was held up cannot move the checkpoint back behind the reader that took
 * over, and the holder itself never moves it backwards on the same source.
 *
 * 1. The store on real Redis with real leases: a writer whose lease was taken over is refused
 *    (READER_LEASE_HELD), the new holder's checkpoint stands; a backwards write is CHECKPOINT_BACKWARDS.
 * 2. Two readers on MariaDB, kinesalite and Redis: reader 1 reads a transaction but cannot get it
 *    acknowledged (its Kinesis connection is cut by our proxy), its lease goes to reader 2 (reader 1's own
 *    renewal is not due for minutes: a paused task), which reads further and checkpoints; when Kinesis
 *    answers reader 1 again, its checkpoint of the older transaction is refused and its session ends.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createRedisLease, leaseOwnerId } from '../services/core/lease.ts';
import { createLogger } from '../services/core/log.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogReaderHandle } from '../services/binlog-reader/reader.ts';
import { insertRows, makeRow } from './support/factories.ts';
import { eventually, openSuite, suiteEnv } from './support/stack.ts';
import { startTcpProxy } from './support/tcp-proxy.ts';
import type { TcpProxy } from './support/tcp-proxy.ts';

const env = suiteEnv('reader_fence', {
  DB_SERVER_ID: String(400_000 + Math.floor(Math.random() * 100_000)),
  READER_METRICS_SECONDS: '60',
  READER_MAX_BACKOFF_SECONDS: '1',
});
const config = decodeConfig(readerConfigShape, env);
const keys = makeKeys(config);
const log = createLogger(
  { service: 'reader-fence-test' },
  { level: (process.env.TEST_LOG_LEVEL as 'warn') ?? 'error' },
);
let admin: Connection;
let redis: RedisClient;
let proxy: TcpProxy;
const readers: BinlogReaderHandle[] = [];
let seq = 0;

async function insertRow(): Promise<string> {
  seq += 1;
  const row = makeRow({ NDC: `6${String(seq).padStart(10, '0')}` }, seq);
  await insertRows(admin, [row]);
  return row.NDC as string;
}

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

async function stored(): Promise<BinlogPosition | null> {
  return createReaderCheckpointStore(redis, keys).load();
}

beforeAll(async () => {
  ({ admin, redis } = await openSuite(env));
  proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(env.KINESIS_ENDPOINT!).port) });
});

afterAll(async () => {
  for (const r of readers) await r.stop().catch(() => undefined);
  await proxy?.close();
  await admin?.end();
  redis?.disconnect();
});

describe('fenced reader checkpoints', () => {
  it('a writer that lost its lease is refused and the new holder’s checkpoint stands; the holder never writes backwards', async () => {
    // Prepare: writer 1 holds the lease and checkpoints; its lease expires and writer 2 takes it
    await redis.del(keys.readerLease, keys.readerCheckpoint);
    const lease1 = createRedisLease(redis, keys.readerLease, leaseOwnerId(), 60_000);
    const lease2 = createRedisLease(redis, keys.readerLease, leaseOwnerId(), 60_000);
    const store1 = createReaderCheckpointStore(redis, keys, lease1);
    const store2 = createReaderCheckpointStore(redis, keys, lease2);
    const source = 'mariadb:1:0';
    expect(await lease1.tryAcquire()).toBe(true);
    await store1.save({ file: 'binlog.000007', pos: 1_200, gtid: '0-1-40', source });
    await redis.del(keys.readerLease); // writer 1 paused past its lease: the key expired
    expect(await lease2.tryAcquire()).toBe(true);
    const newer = { file: 'binlog.000007', pos: 9_800, gtid: '0-1-52', source };
    await store2.save(newer);
    // Act
    const stale = await store1
      .save({ file: 'binlog.000007', pos: 4_400, gtid: '0-1-45', source })
      .catch((e) => e);
    const backwards = await store2
      .save({ file: 'binlog.000006', pos: 99_000, gtid: '0-1-39', source })
      .catch((e) => e);
    // Assess
    expect(isDrugsyncError(stale, 'READER_LEASE_HELD'), String(stale)).toBe(true);
    expect(stale.message).toMatch(/binlog\.000007:4400 .*refused: this reader no longer holds the lease/);
    expect(stale.context.holder).toBe(lease2.owner);
    expect(isDrugsyncError(backwards, 'CHECKPOINT_BACKWARDS'), String(backwards)).toBe(true);
    expect(await stored()).toEqual(newer);
    // an equal position (an upgrade rewriting it with its source) and another source's smaller one (a failover
    // resumed by GTID) are not backwards
    await store2.save({ file: 'binlog.000007', pos: 9_800, gtid: '0-1-52', source });
    const failover = { file: 'binlog.000002', pos: 310, gtid: '0-12-60', source: 'mariadb:12:0' };
    await store2.save(failover);
    expect(await stored()).toEqual(failover);
    await lease2.release();
  });

  it('a reader held up past its lease cannot checkpoint the older transaction it read once the other reader moved on', async () => {
    // Prepare: reader 1 reaches Kinesis through the proxy; its lease renewal is not due for minutes
    await redis.del(keys.readerLease, keys.readerCheckpoint);
    const from = await masterStatus();
    const r1 = startBinlogReader(
      decodeConfig(readerConfigShape, {
        ...env,
        KINESIS_ENDPOINT: `http://127.0.0.1:${proxy.port}`,
        READER_LEASE_TTL_MS: '600000',
      }),
      { log: log.child({ reader: 1 }) },
      { from },
    );
    readers.push(r1);
    await insertRow();
    const c1 = await eventually(async () => r1.stats.checkpoint, 60_000, 'reader 1 checkpoint');
    // reader 1 reads a transaction that Kinesis does not acknowledge
    proxy.cut();
    const rows = r1.stats.rowEvents;
    await insertRow();
    await eventually(async () => r1.stats.rowEvents > rows, 60_000, 'reader 1 read the second row');
    // its lease expires (a paused task) and reader 2 takes over, reads further and checkpoints
    await redis.del(keys.readerLease);
    // (its own replica id: a second binlog connection with reader 1's server_id would be refused)
    const r2config = { ...env, DB_SERVER_ID: String(config.DB_SERVER_ID + 1), READER_LEASE_TTL_MS: '3000' };
    const r2 = startBinlogReader(decodeConfig(readerConfigShape, r2config), {
      log: log.child({ reader: 2 }),
    });
    readers.push(r2);
    await insertRow();
    const end = await masterStatus();
    await eventually(
      async () => r2.stats.checkpoint && compareBinlogPositions(r2.stats.checkpoint, end) >= 0,
      60_000,
      'reader 2 checkpointed past the third row',
    );
    const newest = await stored();
    // Act: Kinesis answers reader 1 again; it checkpoints the second row's transaction
    proxy.restore();
    await eventually(async () => /checkpoint .* refused/.test(r1.stats.lastError ?? ''), 60_000, 'refusal');
    // Assess: refused as a lost lease, reader 1 waits for the lease; the newer checkpoint stands
    expect(r1.stats.lastError).toMatch(/READER_LEASE_HELD.*this reader no longer holds the lease/);
    expect(compareBinlogPositions(r1.stats.checkpoint!, c1)).toBe(0);
    await eventually(
      async () => r1.stats.state === 'waiting-lease',
      30_000,
      'reader 1 waiting for the lease',
    );
    expect(compareBinlogPositions(newest!, end)).toBeGreaterThanOrEqual(0);
    expect(await stored()).toEqual(newest);
    expect(newest!.source).toBe('mariadb:1:0');
  });
});
