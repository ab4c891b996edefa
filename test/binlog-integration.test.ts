/**
 * Binlog reader on the real stack (MariaDB binlog → zongji → kinesalite, checkpoint in Redis), read back
 * from kinesalite. The binlog is server-wide and other suites write to other databases meanwhile: the
 * reader filters by this suite's database, and starts at SHOW MASTER STATUS taken at suite start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { ChangeEvent, RowChangeEvent } from '../services/core/events.ts';
import { isRowEvent } from '../services/core/events.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import { ZERO_DATE } from '../services/core/rndc14.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { quoteIdent } from '../services/core/sql.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { BinlogReaderHandle, ReaderConfig } from '../services/binlog-reader/reader.ts';
import { createStreamTail } from './support/stream-tail.ts';
import { preflight, preflightError } from '../services/binlog-reader/preflight.ts';
import { createMysqlPool } from '../services/core/clients/mysql.ts';
import type { ReadBack } from './support/stream-tail.ts';
import { createLogger } from '../services/core/log.ts';
import { changes, insertRows, makeRow } from './support/factories.ts';
import { eventually, openSuite, suiteEnv } from './support/stack.ts';

const env = suiteEnv('binlog_events', {
  DB_SERVER_ID: String(200_000 + Math.floor(Math.random() * 100_000)),
  READER_LEASE_TTL_MS: '2000',
  READER_STALL_SECONDS: '10',
  READER_METRICS_SECONDS: '2',
  READER_MAX_BACKOFF_SECONDS: '2',
});
const log = createLogger({ service: 'binlog-reader-test' }, { level: 'warn' });
let config: ReaderConfig;
let admin: Connection;
let redis: RedisClient;
let startPos: BinlogPosition;
let reader: BinlogReaderHandle | null = null;
const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
let tail: ReturnType<typeof createStreamTail>;
const seen: ReadBack[] = [];

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

async function selectRow(ndc: string): Promise<Rndc14Row> {
  const [rows] = (await admin.query('SELECT * FROM rndc14 WHERE NDC = ?', [ndc])) as unknown as [Rndc14Row[]];
  return rows[0]!;
}

/** Everything read back so far (incremental). */
async function stream(): Promise<ReadBack[]> {
  seen.push(...(await tail.read()));
  return seen;
}

/** Waits until `pred` holds for the events read back. */
async function waitFor(what: string, pred: (events: ChangeEvent[]) => boolean, timeoutMs = 60_000) {
  return eventually(
    async () => {
      const all = (await stream()).map((r) => r.event);
      return pred(all) ? all : false;
    },
    timeoutMs,
    what,
  );
}

const rowEvents = (all: ChangeEvent[], ndc: string): RowChangeEvent[] =>
  all.filter((e): e is RowChangeEvent => isRowEvent(e) && e.ndc === ndc);

function start(opts: { from?: BinlogPosition } = {}): BinlogReaderHandle {
  return startBinlogReader(config, { log }, { from: opts.from ?? startPos });
}

let seq = 0;
/** A realistic row with a fresh NDC of this suite. */
function freshRow(over: Partial<Rndc14Row> = {}): Rndc14Row {
  seq += 1;
  return makeRow({ NDC: `7${String(seq).padStart(10, '0')}`, ...over }, seq);
}

beforeAll(async () => {
  config = decodeConfig(readerConfigShape, env);
  ({ admin, redis } = await openSuite(env));
  await admin.query("SET SESSION sql_mode = ''");
  tail = createStreamTail(kinesis, config.KINESIS_STREAM);
  startPos = await masterStatus();
  reader = start();
  await eventually(async () => reader!.stats.state === 'streaming', 60_000, 'reader streaming');
});

afterAll(async () => {
  await reader?.stop();
  await admin?.end();
  redis?.disconnect();
  kinesis.destroy();
});

describe('binlog reader → Kinesis (real MariaDB binlog, kinesalite)', () => {
  it('publishes inserts with exact values: DECIMAL strings, DATETIME(6), zero dates, 4-byte UTF-8', async () => {
    // Prepare
    const a = freshRow({ PS: '100.000', HCFA_PS: '0.125', NDL_GDGE: '12.500' });
    const b = freshRow({ OBSDTEC: ZERO_DATE, GPIDC: ZERO_DATE, DUPDC: '2024-02-29 13:14:15.123456' });
    const c = freshRow({ LN60: 'INSULIN 😀 GLARGINE 𝔘 100 UNIT/ML', BN: 'LANTUS 🩺' });
    // Act
    await insertRows(admin, [a, b, c]);
    // Assess
    const all = await waitFor('3 inserts', (e) =>
      [a, b, c].every((r) => rowEvents(e, String(r.NDC)).length > 0),
    );
    for (const r of [a, b, c]) {
      const [ev] = rowEvents(all, String(r.NDC));
      expect(ev!.type).toBe('insert');
      expect(ev!.before).toBeNull();
      expect(ev!.after).toEqual(await selectRow(String(r.NDC)));
      expect(ev!.schema).toBe(config.DB_NAME);
      expect(ev!.gtid).toMatch(/^\d+-\d+-\d+$/);
      expect(ev!.txid).toBe(ev!.gtid);
    }
    const evB = rowEvents(all, String(b.NDC))[0]!;
    expect(evB.after!.OBSDTEC).toBe(ZERO_DATE);
    expect(evB.after!.DUPDC).toBe('2024-02-29 13:14:15.123456');
    expect(rowEvents(all, String(a.NDC))[0]!.after!.PS).toBe('100.000');
    expect(rowEvents(all, String(c.NDC))[0]!.after!.LN60).toBe('INSULIN 😀 GLARGINE 𝔘 100 UNIT/ML');
    // one transaction: same txid, positions increasing by row
    const evs = [a, b, c].map((r) => rowEvents(all, String(r.NDC))[0]!);
    expect(new Set(evs.map((e) => e.txid)).size).toBe(1);
    expect([...evs.map((e) => e.pos)].sort()).toEqual(evs.map((e) => e.pos));
  });

  it('publishes updates with before/after images, deletes with the before image', async () => {
    const r = freshRow();
    await insertRows(admin, [r]);
    const changed = changes.priceList(r);
    await admin.query('UPDATE rndc14 SET PS = ?, HCFA_PS = ?, DUPDC = ? WHERE NDC = ?', [
      changed.PS,
      changed.HCFA_PS,
      changed.DUPDC,
      r.NDC,
    ]);
    const afterUpdate = await selectRow(String(r.NDC));
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [r.NDC]);

    const all = await waitFor('insert, update, delete', (e) => rowEvents(e, String(r.NDC)).length >= 3);
    const evs = rowEvents(all, String(r.NDC));
    expect(evs.map((e) => e.type)).toEqual(['insert', 'update', 'delete']);
    expect(evs[1]!.before!.PS).toBe(r.PS);
    expect(evs[1]!.after).toEqual(afterUpdate);
    expect(evs[2]!.before).toEqual(afterUpdate);
    expect(evs[2]!.after).toBeNull();
    expect(evs[0]!.pos < evs[1]!.pos && evs[1]!.pos < evs[2]!.pos).toBe(true);
    // the deleting transaction ends with a commit event on every shard, after its delete
    const del = evs[2]!;
    await waitFor(
      'commit events',
      (e) => e.filter((x) => x.type === 'commit' && x.txid === del.txid).length >= 2,
    );
    const commits = seen.filter((x) => x.event.type === 'commit' && x.event.txid === del.txid);
    expect(new Set(commits.map((x) => x.shardId)).size).toBe(2);
    expect(commits.every((x) => x.event.pos > del.pos)).toBe(true);
    // a transaction without deletes has none
    expect(seen.filter((x) => x.event.type === 'commit' && x.event.txid === evs[1]!.txid)).toEqual([]);
  });

  it('turns an NDC change into a delete of the old key and an insert of the new, both marked', async () => {
    const r = freshRow();
    await insertRows(admin, [r]);
    const moved = { ...r, NDC: `8${String(r.NDC).slice(1)}` };
    await admin.query('UPDATE rndc14 SET NDC = ? WHERE NDC = ?', [moved.NDC, r.NDC]);

    const all = await waitFor(
      'NDC change',
      (e) =>
        rowEvents(e, String(moved.NDC)).length > 0 &&
        rowEvents(e, String(r.NDC)).some((x) => x.type === 'delete'),
    );
    const del = rowEvents(all, String(r.NDC)).find((e) => e.type === 'delete')!;
    const ins = rowEvents(all, String(moved.NDC))[0]!;
    expect(del.ndc_change).toEqual({ from: r.NDC, to: moved.NDC });
    expect(ins.ndc_change).toEqual({ from: r.NDC, to: moved.NDC });
    expect(del.before!.NDC).toBe(r.NDC);
    expect(ins.type).toBe('insert');
    expect(ins.after).toEqual(await selectRow(String(moved.NDC)));
  });

  it('keeps a multi-row transaction together and publishes nothing for a rolled-back one', async () => {
    const rows = [freshRow(), freshRow(), freshRow(), freshRow()];
    const ghost = freshRow();
    const marker = freshRow();
    await admin.query('BEGIN');
    await insertRows(admin, rows);
    await admin.query('UPDATE rndc14 SET LN60 = CONCAT(LN60, " X") WHERE NDC = ?', [rows[0]!.NDC]);
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [rows[1]!.NDC]);
    await admin.query('COMMIT');
    await admin.query('BEGIN');
    await insertRows(admin, [ghost]);
    await admin.query('UPDATE rndc14 SET LN = "ROLLED BACK" WHERE NDC = ?', [rows[2]!.NDC]);
    await admin.query('ROLLBACK');
    await insertRows(admin, [marker]);

    const all = await waitFor(
      'marker and the whole committed transaction',
      (e) =>
        rowEvents(e, String(marker.NDC)).length > 0 &&
        rows.flatMap((r) => rowEvents(e, String(r.NDC))).length >= 6,
    );
    const txEvents = rows.flatMap((r) => rowEvents(all, String(r.NDC)));
    expect(txEvents).toHaveLength(6);
    expect(new Set(txEvents.map((e) => e.txid)).size).toBe(1);
    expect(rowEvents(all, String(ghost.NDC))).toHaveLength(0);
    expect(rowEvents(all, String(rows[2]!.NDC)).map((e) => e.type)).toEqual(['insert']);
  });

  it('sends TRUNCATE as a truncate table event to every shard, and RENAME swaps as resync', async () => {
    const r = freshRow();
    await insertRows(admin, [r]);
    await admin.query('TRUNCATE TABLE rndc14');
    await admin.query('CREATE TABLE rndc14_new LIKE rndc14');
    await admin.query('RENAME TABLE rndc14 TO rndc14_old, rndc14_new TO rndc14');
    await admin.query('DROP TABLE rndc14_old');
    const r2 = freshRow();
    await insertRows(admin, [r2]);

    await waitFor(
      'row after the swap and the table events',
      (e) =>
        rowEvents(e, String(r2.NDC)).length > 0 &&
        e.filter((x) => x.type === 'truncate').length >= 2 &&
        e.filter((x) => x.type === 'resync').length >= 2,
    );
    const records = await stream();
    const truncates = records.filter((x) => x.event.type === 'truncate');
    const resyncs = records.filter((x) => x.event.type === 'resync');
    expect(new Set(truncates.map((x) => x.shardId)).size).toBe(2);
    expect(truncates[0]!.event).toMatchObject({ schema: config.DB_NAME, table: 'rndc14' });
    expect((truncates[0]!.event as { statement: string }).statement).toMatch(/TRUNCATE/i);
    // RENAME (swap) and DROP of rndc14_old (not our table) → one resync per shard, for the RENAME
    expect(resyncs.map((x) => (x.event as { statement: string }).statement)).toEqual([
      expect.stringMatching(/^RENAME/),
      expect.stringMatching(/^RENAME/),
    ]);
    // table events sit between the rows in each shard's order
    const shardOf = records.find(
      (x) => x.event.type !== 'truncate' && isRowEvent(x.event) && x.event.ndc === r.NDC,
    )!;
    const onShard = records.filter((x) => x.shardId === shardOf.shardId).map((x) => x.event.pos);
    expect([...onShard].sort()).toEqual(onShard);
  });

  it('keeps decoding across ADD/DROP COLUMN mid-stream', async () => {
    await admin.query('ALTER TABLE rndc14 ADD COLUMN EXTRA_NOTE varchar(20) DEFAULT "new" AFTER LN60');
    const a = freshRow();
    await insertRows(admin, [a]);
    await admin.query('ALTER TABLE rndc14 DROP COLUMN EXTRA_NOTE, DROP COLUMN TOP50GEN');
    const b = freshRow();
    const { TOP50GEN: _dropped, ...bCols } = b;
    // every column but the dropped one: the table's own list no longer matches
    const cols = Object.keys(bCols).map(quoteIdent).join(',');
    await admin.query(`INSERT INTO rndc14 (${cols}) VALUES (?)`, [Object.values(bCols)]);
    const all = await waitFor('rows around ALTERs', (e) =>
      [a, b].every((x) => rowEvents(e, String(x.NDC)).length > 0),
    );
    const evA = rowEvents(all, String(a.NDC))[0]!;
    const evB = rowEvents(all, String(b.NDC))[0]!;
    expect(evA.after!.EXTRA_NOTE).toBe('new');
    expect(evA.after!.LN60).toBe(a.LN60);
    expect(evB.after).not.toHaveProperty('EXTRA_NOTE');
    expect(evB.after).not.toHaveProperty('TOP50GEN');
    expect(evB.after).toEqual(await selectRow(String(b.NDC)));
    await admin.query('ALTER TABLE rndc14 ADD COLUMN TOP50GEN varchar(2) DEFAULT NULL AFTER TOP200');
  });

  it('resumes from its checkpoint after a graceful stop, across FLUSH BINARY LOGS and a backlog of ALTERs', async () => {
    // Prepare: everything so far is checkpointed, then stop
    const before = freshRow();
    await insertRows(admin, [before]);
    await waitFor('row before stop', (e) => rowEvents(e, String(before.NDC)).length > 0);
    const stopped = await reader!.stop();
    expect(stopped.reason).toBe('stopped');
    const cp = await createReaderCheckpointStore(redis, makeKeys(config)).load();
    expect(cp).not.toBeNull();
    expect(compareBinlogPositions(cp!, startPos)).toBeGreaterThan(0);

    // Act: a backlog written while no reader runs: ALTER ADD, row, rotation, ALTER DROP, row
    await admin.query('ALTER TABLE rndc14 ADD COLUMN BACKLOG_COL int DEFAULT 7');
    const x = freshRow();
    await insertRows(admin, [x]);
    await admin.query('FLUSH BINARY LOGS');
    await admin.query('ALTER TABLE rndc14 DROP COLUMN BACKLOG_COL');
    const y = freshRow();
    await insertRows(admin, [y]);
    reader = start();

    // Assess
    const all = await waitFor('backlog rows', (e) =>
      [x, y].every((r) => rowEvents(e, String(r.NDC)).length > 0),
    );
    const evX = rowEvents(all, String(x.NDC))[0]!;
    const evY = rowEvents(all, String(y.NDC))[0]!;
    expect(evX.after!.BACKLOG_COL).toBe(7);
    expect(evY.after).not.toHaveProperty('BACKLOG_COL');
    expect(evY.after).toEqual(await selectRow(String(y.NDC)));
    expect(evY.binlog.file > evX.binlog.file).toBe(true);
    expect(evY.pos > evX.pos).toBe(true);
    // the checkpoint moves into the new file
    await eventually(
      async () => {
        const p = await createReaderCheckpointStore(redis, makeKeys(config)).load();
        return p && p.file === evY.binlog.file && p.pos >= evY.binlog.next;
      },
      30_000,
      'checkpoint in the new binlog file',
    );
    expect(reader.stats.startedFrom).toMatch(/^checkpoint /);
  });

  it('a second reader waits for the lease, publishes nothing, and takes over when the first stops', async () => {
    const second = start();
    await eventually(async () => second.stats.state === 'waiting-lease', 30_000, 'second reader waiting');
    const r = freshRow();
    await insertRows(admin, [r]);
    await waitFor('row published by the first', (e) => rowEvents(e, String(r.NDC)).length > 0);
    expect(second.stats.rowEvents).toBe(0);
    expect(second.stats.state).toBe('waiting-lease');

    await reader!.stop();
    reader = second;
    await eventually(async () => second.stats.state === 'streaming', 30_000, 'second reader streaming');
    const r2 = freshRow();
    await insertRows(admin, [r2]);
    await waitFor('row published by the second', (e) => rowEvents(e, String(r2.NDC)).length > 0);
    expect(second.stats.rowEvents).toBeGreaterThan(0);
  });

  it('keeps every NDC in order on its shard', async () => {
    const records = await stream();
    const byNdc = new Map<string, ReadBack[]>();
    for (const x of records) {
      if (!isRowEvent(x.event)) continue;
      const list = byNdc.get(x.event.ndc) ?? [];
      list.push(x);
      byNdc.set(x.event.ndc, list);
    }
    expect(byNdc.size).toBeGreaterThan(10);
    for (const [ndc, list] of byNdc) {
      expect(new Set(list.map((x) => x.shardId)).size, ndc).toBe(1);
      // duplicates after a restart are allowed (at-least-once); each position's first copy is in order
      const firstCopies = list.map((x) => x.event.pos).filter((p, i, a) => a.indexOf(p) === i);
      expect([...firstCopies].sort(), ndc).toEqual(firstCopies);
    }
  });

  it('preflight passes for the replication user and lists every missing grant of a bare user at once', async () => {
    const ok = createMysqlPool(config, { user: config.DB_USER!, password: config.DB_PASSWORD! });
    const report = await preflight(ok, config.DB_NAME, config.DB_TABLE);
    await ok.end();
    expect(report.problems).toEqual([]);
    expect(report.mariadb).toBe(true);

    await admin.query("DROP USER IF EXISTS 'binlog_events_bare'@'%'");
    await admin.query("CREATE USER 'binlog_events_bare'@'%' IDENTIFIED BY 'bare-pass-1'");
    const bare = createMysqlPool(
      { ...config, DB_NAME: 'information_schema' },
      { user: 'binlog_events_bare', password: 'bare-pass-1' },
    );
    try {
      const r = await preflight(bare, config.DB_NAME, config.DB_TABLE);
      expect(r.problems).toEqual([
        expect.stringMatching(/REPLICATION SLAVE/),
        expect.stringMatching(/BINLOG MONITOR/),
        expect.stringMatching(new RegExp(`SELECT on ${config.DB_NAME}`)),
      ]);
      expect(preflightError(r, config.DB_HOST, config.DB_PORT).code).toBe('MYSQL_PREFLIGHT_FAILED');
    } finally {
      await bare.end();
      await admin.query("DROP USER IF EXISTS 'binlog_events_bare'@'%'");
    }
  });

  it('stops with BINLOG_PURGED naming the file when the checkpoint file is gone', async () => {
    await reader!.stop();
    const [logs] = (await admin.query('SHOW BINARY LOGS')) as unknown as [{ Log_name: string }[]];
    const oldest = logs[0]!.Log_name;
    const base = oldest.replace(/\.\d+$/, '');
    const gone = `${base}.${'0'.repeat(oldest.length - base.length - 1)}`;
    await createReaderCheckpointStore(redis, makeKeys(config)).save({ file: gone, pos: 4 });
    reader = start();
    await expect(reader.done).rejects.toMatchObject({
      code: 'BINLOG_PURGED',
      context: expect.objectContaining({ file: gone }),
      remedy: expect.stringMatching(/backfill/),
    });
    reader = null;
  });
});
