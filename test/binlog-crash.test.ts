/**
 * The binlog reader as a child process (`node bin/drugsync.mjs binlog-reader`), killed with -9 in the
 * middle of a 100,000-row UPDATE and stopped with SIGTERM: after a restart every change after the
 * checkpoint is on the stream at least once.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { isRowEvent } from '../services/core/events.ts';
import { makeKeys } from '../services/core/keys.ts';
import { SERVICE_METRICS, parseEmfLine } from '../services/core/metrics.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import { readerConfigShape } from '../services/binlog-reader/reader.ts';
import { createStreamTail } from './support/stream-tail.ts';
import { generateCatalogue, insertRows, loadRows, makeRow } from './support/factories.ts';
import { eventually, openSuite, suiteEnv } from './support/stack.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ROWS = 100_000;
const env: Env = suiteEnv('binlog_crash', {
  DB_SERVER_ID: String(300_000 + Math.floor(Math.random() * 100_000)),
  READER_LEASE_TTL_MS: '2000',
  READER_METRICS_SECONDS: '1',
  READER_MAX_BACKOFF_SECONDS: '2',
  LOG_FORMAT: 'json',
  LOG_LEVEL: 'info',
});
const config = decodeConfig(readerConfigShape, env);
const keys = makeKeys(config);
let admin: Connection;
let redis: RedisClient;
const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
const children: ChildProcess[] = [];

type Child = ChildProcess & { exited: Promise<number | null>; stderrTail: () => string };

function spawnReader(args: string[]): Child {
  const child = spawn(process.execPath, [path.join(root, 'bin/drugsync.mjs'), 'binlog-reader', ...args], {
    cwd: root,
    env: { ...process.env, ...env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  children.push(child);
  let err = '';
  child.stderr?.on('data', (d: Buffer) => {
    err = (err + d.toString()).slice(-6000);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return Object.assign(child, { exited, stderrTail: () => err });
}

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

async function status(): Promise<Record<string, string>> {
  return redis.hgetall(keys.serviceStatus('binlog-reader'));
}

beforeAll(async () => {
  ({ admin, redis } = await openSuite(env));
  await loadRows(admin, generateCatalogue(ROWS, 11), { schema: config.DB_NAME, table: config.DB_TABLE });
});

afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await admin?.end();
  redis?.disconnect();
  kinesis.destroy();
});

describe('binlog reader process: kill -9 and SIGTERM', () => {
  it('SIGTERM publishes what it holds, checkpoints past the last change and exits 0', async () => {
    const start = await masterStatus();
    const reader = spawnReader(['--from', `${start.file}:${start.pos}`]);
    await eventually(async () => (await status()).state === 'streaming', 60_000, 'reader streaming');
    const row = makeRow({ NDC: '99999999901' }, 3);
    await insertRows(admin, [row]);
    const written = await masterStatus();
    const tail = createStreamTail(kinesis, config.KINESIS_STREAM);
    await eventually(
      async () => (await tail.read()).some((r) => isRowEvent(r.event) && r.event.ndc === row.NDC),
      60_000,
      'insert published',
    );

    reader.kill('SIGTERM');
    const code = await reader.exited;
    expect(code, reader.stderrTail()).toBe(0);
    const cp = await createReaderCheckpointStore(redis, keys).load();
    const end = await masterStatus();
    // the checkpoint is at or past the end of the insert's transaction (the server's position right after
    // its commit), and not past anything the server has written
    expect(cp).not.toBeNull();
    expect(
      compareBinlogPositions(cp!, written),
      `checkpoint ${JSON.stringify(cp)} vs ${JSON.stringify(written)}`,
    ).toBeGreaterThanOrEqual(0);
    expect(compareBinlogPositions(cp!, end)).toBeLessThanOrEqual(0);
    expect(cp!.pos).toBeGreaterThan(start.pos);
    expect(reader.stderrTail()).toMatch(/"msg":"binlog reader stopped"/);
    // under LOG_FORMAT=json the metrics line is followed by its CloudWatch EMF line
    expect(reader.stderrTail()).toMatch(/"msg":"metrics"/);
    const emf = reader
      .stderrTail()
      .split('\n')
      .flatMap((l) => parseEmfLine(l) ?? []);
    expect(Object.keys(emf.at(-1)?.values ?? {}).sort()).toEqual([...SERVICE_METRICS.reader].sort());
    expect((await status()).state).toBe('stopped');
  }, 120_000);

  it('killed with -9 during a 100,000-row UPDATE, restarted: every updated row is on the stream', async () => {
    // Prepare: a reader streaming from here, the table already loaded
    const from = await masterStatus();
    const first = spawnReader(['--from', `${from.file}:${from.pos}`]);
    await eventually(async () => (await status()).state === 'streaming', 60_000, 'first reader streaming');

    // Act: one 100,000-row UPDATE; kill -9 once part of it is published
    await admin.query("UPDATE rndc14 SET LN60 = CONCAT('U1 ', LEFT(IFNULL(LN60, ''), 50))");
    const updateEnd = await masterStatus();
    await eventually(
      async () => Number((await status()).events_total ?? 0) >= 15_000,
      120_000,
      'part of the update published',
    );
    first.kill('SIGKILL');
    await first.exited;
    const cp = await createReaderCheckpointStore(redis, keys).load();
    // the UPDATE was not fully acknowledged: the checkpoint (if written yet) sits before its end
    if (cp !== null) {
      expect(compareBinlogPositions(cp, from)).toBeGreaterThanOrEqual(0);
      expect(compareBinlogPositions(cp, updateEnd)).toBeLessThan(0);
    }

    const second = spawnReader(['--from', `${from.file}:${from.pos}`, '--once-idle', '3']);
    const code = await second.exited;
    expect(code, second.stderrTail()).toBe(0);

    // Assess: every row's update is on the stream at least once, with its new value
    const tail = createStreamTail(kinesis, config.KINESIS_STREAM);
    const updated = new Set<string>();
    let read = 0;
    for (let i = 0; i < 200; i++) {
      const batch = await tail.read();
      if (batch.length === 0) break;
      read += batch.length;
      for (const r of batch) {
        if (isRowEvent(r.event) && r.event.type === 'update' && String(r.event.after?.LN60).startsWith('U1 '))
          updated.add(r.event.ndc);
      }
    }
    expect(read).toBeGreaterThanOrEqual(ROWS);
    const [ndcs] = (await admin.query('SELECT NDC FROM rndc14')) as unknown as [{ NDC: string }[]];
    expect(ndcs.length).toBeGreaterThanOrEqual(ROWS);
    expect(ndcs.filter((r) => !updated.has(r.NDC))).toEqual([]);
    // the restarted reader checkpointed past the UPDATE's commit
    const after = await createReaderCheckpointStore(redis, keys).load();
    expect(compareBinlogPositions(after!, updateEnd)).toBeGreaterThanOrEqual(0);
  }, 300_000);
});
