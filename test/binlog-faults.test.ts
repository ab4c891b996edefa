/**
 * Binlog reader faults on the real stack: Kinesis unavailable for 30 s (a private kinesalite, killed and
 * restarted on the same data directory), the MySQL connection cut, and a stalled binlog socket (a TCP
 * proxy that stops forwarding without closing). Each ends with every change on the stream.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { isRowEvent } from '../services/core/events.ts';
import { createLogger } from '../services/core/log.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogReaderHandle } from '../services/binlog-reader/reader.ts';
import { createStreamTail } from './support/stream-tail.ts';
import type { ServerProcess } from '../services/stack/process.ts';
import { freePort } from '../services/stack/process.ts';
import { insertRows, makeRow } from './support/factories.ts';
import { startPrivateKinesalite } from './support/private-kinesalite.ts';
import { createSuiteDatabase, eventually, resetSuite, suiteEnv, suiteRedis } from './support/stack.ts';

const log = createLogger(
  { service: 'binlog-faults-test' },
  { level: (process.env.TEST_LOG_LEVEL as 'warn') ?? 'error' },
);
let admin: Connection;
let redis: RedisClient;
let seq = 0;

function freshRows(n: number, prefix: string): Rndc14Row[] {
  return Array.from({ length: n }, () => {
    seq += 1;
    return makeRow({ NDC: `${prefix}${String(seq).padStart(11 - prefix.length, '0')}` }, seq);
  });
}

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

/** A TCP proxy whose live connections can be cut or frozen (new ones pass through). */
async function startProxy(target: { host: string; port: number }) {
  const pairs = new Set<{ a: net.Socket; b: net.Socket; frozen: boolean }>();
  const server = net.createServer((a) => {
    const b = net.connect(target.port, target.host);
    const pair = { a, b, frozen: false };
    pairs.add(pair);
    const forward = (from: net.Socket, to: net.Socket) =>
      from.on('data', (d) => {
        if (!pair.frozen) to.write(d);
      });
    forward(a, b);
    forward(b, a);
    const close = () => {
      a.destroy();
      b.destroy();
      pairs.delete(pair);
    };
    a.on('close', close).on('error', close);
    b.on('close', close).on('error', close);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as net.AddressInfo).port,
    /** destroys every live connection (a lost MySQL connection) */
    cut() {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
    },
    /** live connections stop forwarding without closing (a stalled socket) */
    freeze() {
      for (const p of pairs) p.frozen = true;
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function publishedNdcs(
  tail: ReturnType<typeof createStreamTail>,
  into: Set<string>,
): Promise<Set<string>> {
  for (const r of await tail.read()) if (isRowEvent(r.event)) into.add(r.event.ndc);
  return into;
}

beforeAll(async () => {
  admin = await createSuiteDatabase(suiteEnv('binlog_faults'));
  redis = suiteRedis(suiteEnv('binlog_faults'));
});

afterAll(async () => {
  await admin?.end();
  redis?.disconnect();
});

describe('binlog reader faults', () => {
  let kinesalite: ServerProcess | null = null;
  let reader: BinlogReaderHandle | null = null;
  afterAll(async () => {
    await reader?.stop().catch(() => undefined);
    await kinesalite?.stop();
  });

  it('Kinesis unavailable for 30 s: reading pauses at the queue bound, nothing is lost, it catches up', async () => {
    // Prepare: a private kinesalite (the shared one is never stopped)
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-kinesalite-'));
    const startKinesalite = () => startPrivateKinesalite(port, dir);
    kinesalite = await startKinesalite();
    const env: Env = suiteEnv('binlog_faults', {
      KINESIS_ENDPOINT: `http://127.0.0.1:${port}`,
      KINESIS_STREAM: 'faults-outage',
      DB_SERVER_ID: String(400_000 + Math.floor(Math.random() * 100_000)),
      READER_QUEUE_RECORDS: '600',
      READER_QUEUE_BYTES: String(1024 * 1024),
      READER_MAX_BACKOFF_SECONDS: '2',
      READER_STALL_SECONDS: '60',
    });
    const config = decodeConfig(readerConfigShape, env);
    await resetSuite(env, redis);
    const kinesis = createKinesis(config);
    reader = startBinlogReader(config, { log }, { from: await masterStatus() });
    await eventually(async () => reader!.stats.state === 'streaming', 60_000, 'streaming');
    let maxQueue = 0;
    let sawPaused = false;
    const sampler = setInterval(() => {
      maxQueue = Math.max(maxQueue, reader!.stats.queueRecords);
      sawPaused ||= reader!.stats.paused;
    }, 20);

    // Act: rows before, during and after the outage
    const before = freshRows(200, '1');
    await insertRows(admin, before);
    const tail = createStreamTail(kinesis, config.KINESIS_STREAM);
    const got = new Set<string>();
    await eventually(
      async () => before.every((r) => got.has(String(r.NDC))) || (await publishedNdcs(tail, got), false),
      60_000,
      'rows before the outage',
    );
    process.kill(kinesalite.pid, 'SIGKILL');
    const during: Rndc14Row[] = [];
    for (let i = 0; i < 15; i++) {
      const rows = freshRows(200, '2');
      await insertRows(admin, rows);
      during.push(...rows);
      await new Promise((r) => setTimeout(r, 2000));
    }
    kinesalite = await startKinesalite();
    const after = freshRows(200, '3');
    await insertRows(admin, after);

    // Assess
    const all = [...before, ...during, ...after].map((r) => String(r.NDC));
    await eventually(
      async () => (await publishedNdcs(tail, got), all.every((n) => got.has(n))),
      120_000,
      'every row after the outage',
    );
    clearInterval(sampler);
    expect(all.filter((n) => !got.has(n))).toEqual([]);
    expect(sawPaused).toBe(true);
    // bounded: the queue never grows past its bound by more than one rows event (MariaDB packs ≤ ~8 KB each)
    expect(maxQueue).toBeLessThan(Number(env.READER_QUEUE_RECORDS) + 100);
    expect(reader.stats.publisher.retriedRecords + reader.stats.restarts).toBeGreaterThan(0);
    await reader.stop();
    reader = null;
    kinesis.destroy();
  }, 240_000);

  it('a cut MySQL connection and a stalled binlog socket each end in a restart from the checkpoint', async () => {
    const proxy = await startProxy({ host: '127.0.0.1', port: Number(suiteEnv('x').DB_PORT) });
    const env: Env = suiteEnv('binlog_faults', {
      DB_PORT: String(proxy.port),
      KINESIS_STREAM: 't-binlog-faults-mysql',
      REDIS_STATE_PREFIX: 't_binlog_faults_mysql:ds:',
      DB_SERVER_ID: String(500_000 + Math.floor(Math.random() * 100_000)),
      READER_STALL_SECONDS: '3',
      READER_HEARTBEAT_SECONDS: '1',
      READER_MAX_BACKOFF_SECONDS: '1',
    });
    const config = decodeConfig(readerConfigShape, env);
    await resetSuite(env, redis);
    const kinesis = createKinesis(config);
    const tail = createStreamTail(kinesis, config.KINESIS_STREAM);
    const got = new Set<string>();
    reader = startBinlogReader(config, { log }, { from: await masterStatus() });
    await eventually(async () => reader!.stats.state === 'streaming', 60_000, 'streaming');

    // Act 1: cut every connection, write meanwhile
    const a = freshRows(50, '4');
    await insertRows(admin, a);
    proxy.cut();
    const b = freshRows(50, '5');
    await insertRows(admin, b);
    await eventually(
      async () => (await publishedNdcs(tail, got), [...a, ...b].every((r) => got.has(String(r.NDC)))),
      60_000,
      'rows around the cut',
    );
    expect(reader.stats.restarts).toBeGreaterThanOrEqual(1);
    const restartsAfterCut = reader.stats.restarts;

    // Act 2: freeze the live binlog socket (no FIN, no RST), write: the watchdog sees the server move on
    await eventually(async () => reader!.stats.state === 'streaming', 60_000, 'streaming again');
    proxy.freeze();
    const c = freshRows(50, '6');
    await insertRows(admin, c);
    await eventually(
      async () => (await publishedNdcs(tail, got), c.every((r) => got.has(String(r.NDC)))),
      60_000,
      'rows after the stall',
    );
    expect(reader.stats.restarts).toBeGreaterThan(restartsAfterCut);
    expect(reader.stats.lastError).toMatch(/BINLOG_STALLED/);

    await reader.stop();
    reader = null;
    await proxy.close();
    kinesis.destroy();
  }, 180_000);
});
