/**
 * The fast row decoder (services/binlog-reader/row-image.ts, hooked in by decoder.ts) against zongji's own, on real binlog events of
 * the stack's MariaDB: the same binlog range is read by two sources at once, one with each decoder, and
 * every row image must be identical, value for value and key for key. Realistic catalogue rows plus a
 * table of edge values (integer bounds, negative and long DECIMALs, every DATETIME precision, zero dates,
 * 4-byte UTF-8, 2-byte length prefixes, NULLs, MINIMAL row images); a table with column types the fast
 * decoder does not handle must fall back to zongji.
 *
 * Its MySQL 8 half, on real MySQL 8.0.22–8.4.8 and Aurora binlogs without a server:
 * test/decoder-mysql8.unit.test.ts and test/binlog-mysql8-events.unit.test.ts. An upgrade of @vlasky/zongji
 * re-runs all three (docs/binlog-reader.md, "MySQL 8 binlog bytes").
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { decodeConfig } from '../services/core/config.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { ReaderConfig } from '../services/binlog-reader/reader.ts';
import { hookRowsEventClass, rowDecoderFaults, rowDecoderStats } from '../services/binlog-reader/decoder.ts';
import { rowPlan } from '../services/binlog-reader/row-image.ts';
import type { ZTableMap } from '../services/binlog-reader/row-image.ts';
import { readSourceRange, suiteSource } from './support/binlog.ts';
import { changes, generateCatalogue, insertRows } from './support/factories.ts';
import {
  createSuiteDatabase,
  deleteSuiteStream,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const env = suiteEnv('row_decoder', { DB_SERVER_ID: String(300_000 + Math.floor(Math.random() * 100_000)) });
let config: ReaderConfig;
let admin: Connection;

const EDGE_TABLE = `CREATE TABLE edge (
  id INT NOT NULL PRIMARY KEY,
  t TINYINT, tu TINYINT UNSIGNED, s SMALLINT, su SMALLINT UNSIGNED,
  m MEDIUMINT, mu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED,
  d1 DECIMAL(5,3), d2 DECIMAL(11,3), d3 DECIMAL(20,10), d4 DECIMAL(30,0), d5 DECIMAL(9,9),
  d6 DECIMAL(18,4), d7 DECIMAL(4,2), d8 DECIMAL(65,30),
  c CHAR(10), v VARCHAR(300), e VARCHAR(20) CHARACTER SET utf8mb3,
  dt0 DATETIME, dt1 DATETIME(1), dt2 DATETIME(2), dt3 DATETIME(3), dt4 DATETIME(4), dt5 DATETIME(5),
  dt6 DATETIME(6), dd DATE
) CHARACTER SET utf8mb4`;

// a table the fast decoder leaves to zongji (BIGINT, FLOAT, TIMESTAMP, TEXT, JSON, latin1)
const OTHER_TABLE = `CREATE TABLE other (
  id INT NOT NULL PRIMARY KEY, b BIGINT, f FLOAT, ts TIMESTAMP(3) NULL, txt TEXT, j JSON,
  l VARCHAR(10) CHARACTER SET latin1
) CHARACTER SET utf8mb4`;

const EDGE_COLUMNS = [
  'id',
  't',
  'tu',
  's',
  'su',
  'm',
  'mu',
  'i',
  'iu',
  'd1',
  'd2',
  'd3',
  'd4',
  'd5',
  'd6',
  'd7',
  'd8',
  'c',
  'v',
  'e',
  'dt0',
  'dt1',
  'dt2',
  'dt3',
  'dt4',
  'dt5',
  'dt6',
  'dd',
] as const;
type EdgeValues = (string | number | null)[];

function edgeRows(): EdgeValues[] {
  const maxD8 = `${'9'.repeat(35)}.${'9'.repeat(30)}`;
  const z = '0000-00-00 00:00:00';
  return [
    // minimums, negatives, zero dates
    [
      1,
      -128,
      0,
      -32768,
      0,
      -8388608,
      0,
      -2147483648,
      0,
      '-99.999',
      '-99999999.999',
      '-9999999999.9999999999',
      '-999999999999999999999999999999',
      '-0.999999999',
      '-99999999999999.9999',
      '-99.99',
      `-${maxD8}`,
      '',
      '',
      '',
      z,
      `${z}.0`,
      `${z}.00`,
      `${z}.000`,
      `${z}.0000`,
      `${z}.00000`,
      `${z}.000000`,
      '0000-00-00',
    ],
    // maximums
    [
      2,
      127,
      255,
      32767,
      65535,
      8388607,
      16777215,
      2147483647,
      4294967295,
      '99.999',
      '99999999.999',
      '9999999999.9999999999',
      '999999999999999999999999999999',
      '0.999999999',
      '99999999999999.9999',
      '99.99',
      maxD8,
      'ZZZZZZZZZZ',
      'x'.repeat(300),
      'ÄÖÜ ß é',
      '9999-12-31 23:59:59',
      '9999-12-31 23:59:59.9',
      '9999-12-31 23:59:59.99',
      '9999-12-31 23:59:59.999',
      '9999-12-31 23:59:59.9999',
      '9999-12-31 23:59:59.99999',
      '9999-12-31 23:59:59.999999',
      '9999-12-31',
    ],
    // small fractions, zero parts of dates, 4-byte UTF-8 in a 2-byte-prefixed VARCHAR
    [
      3,
      0,
      1,
      -1,
      1,
      -1,
      1,
      -1,
      1,
      '0.000',
      '-0.001',
      '0.0000000001',
      '0',
      '0.000000001',
      '-0.0001',
      '0.01',
      '-0.000000000000000000000000000001',
      'A',
      `💊 ${'𝔸'.repeat(70)} 🧪`,
      'é',
      '1000-01-01 00:00:00',
      '2024-02-29 12:34:56.5',
      '2024-02-29 12:34:56.05',
      '2024-02-29 12:34:56.005',
      '2024-02-29 12:34:56.0005',
      '2024-02-29 12:34:56.00005',
      '2024-02-29 12:34:56.000001',
      '2020-00-00',
    ],
    // every nullable column NULL
    [4, ...EDGE_COLUMNS.slice(1).map(() => null)],
    // ordinary values
    [
      5,
      42,
      200,
      1234,
      54321,
      -70000,
      70000,
      123456789,
      3000000000,
      '12.500',
      '1000.000',
      '-1.5',
      '42',
      '0.123456789',
      '1234.5678',
      '-5.05',
      '3.141592653589793238462643383279',
      'CHAR',
      'LISINOPRIL 10 MG TABLET',
      'utf8mb3 ü',
      '2019-06-01 00:00:00',
      '2019-06-01 00:00:00.1',
      '2019-06-01 08:30:00.25',
      '2019-06-01 08:30:00.125',
      '2019-06-01 08:30:00.1250',
      '2019-06-01 08:30:00.12345',
      '2019-06-01 08:30:00.123456',
      '2019-06-01',
    ],
  ];
}

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

interface Decoded {
  key: string;
  table: string;
  op: string;
  rows: unknown[];
}

/** Every rows event of the suite's database in [from, to), as one source decodes it. */
async function readRange(
  from: BinlogPosition,
  to: BinlogPosition,
  fastRows: boolean,
  serverId: number,
  burstMs?: number,
) {
  const out: Decoded[] = [];
  const warnings: string[] = [];
  const source = suiteSource(config, {
    serverId,
    fastRows,
    warn: (m) => warnings.push(m),
    ...(burstMs !== undefined ? { burstMs } : {}),
  });
  // the source filters tables in the reader; here every table of the database is wanted
  await readSourceRange(source, from, to, (e) => {
    out.push({ key: `${e.file}:${e.pos}`, table: e.table, op: e.op, rows: e.rows });
  });
  const yields = source.yields ?? 0;
  await source.stop();
  return { out, warnings, yields };
}

beforeAll(async () => {
  config = decodeConfig(readerConfigShape, env);
  admin = await createSuiteDatabase(env);
  await admin.query(EDGE_TABLE);
  await admin.query(OTHER_TABLE);
});

afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
  await admin?.end();
});

/** Writes catalogue changes to rndc14 (inserts, renames, price updates, deletes); returns their range. */
async function writeChanges(seed: number): Promise<{ from: BinlogPosition; to: BinlogPosition }> {
  const from = await masterStatus();
  const rows = [...generateCatalogue(40, seed)];
  // one statement per kind and per half, so each rows-event class occurs more than once
  for (const half of [rows.slice(0, 20), rows.slice(20)]) await insertRows(admin, half);
  for (const r of rows.slice(0, 10).map((row, i) => changes.rename(row, i)))
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [r.LN, r.LN60, r.NDC]);
  for (const r of rows.slice(10, 20).map((row) => changes.priceList(row)))
    await admin.query('UPDATE rndc14 SET PS = ?, HCFA_PS = ? WHERE NDC = ?', [r.PS, r.HCFA_PS, r.NDC]);
  await admin.query('DELETE FROM rndc14 WHERE NDC IN (?)', [rows.slice(30).map((r) => r.NDC)]);
  return { from, to: await masterStatus() };
}

function withFaults<T>(f: typeof rowDecoderFaults, fn: () => Promise<T>): Promise<T> {
  Object.assign(rowDecoderFaults, f);
  return fn().finally(() => Object.assign(rowDecoderFaults, { table: null, column: null, zongji: false }));
}

describe('fast row decoder', () => {
  it('decodes every row image of real binlog events exactly as zongji does, and falls back where it must', async () => {
    // Prepare: the source only passes on rows of the configured table, so every table is read as rndc14 in
    // turn by pointing the sources' table filter at it
    const catalogue = [...generateCatalogue(600, 11)];
    const tables: Record<string, { from: BinlogPosition; to: BinlogPosition }> = {};

    let from = await masterStatus();
    await insertRows(admin, catalogue);
    for (const r of catalogue.slice(0, 100).map((row, i) => changes.rename(row, i)))
      await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [r.LN, r.LN60, r.NDC]);
    for (const r of catalogue.slice(100, 200).map((row) => changes.priceList(row)))
      await admin.query('UPDATE rndc14 SET PS = ?, HCFA_PS = ?, DUPDC = ?, HCFA_TYP = ? WHERE NDC = ?', [
        r.PS,
        r.HCFA_PS,
        r.DUPDC,
        r.HCFA_TYP,
        r.NDC,
      ]);
    await admin.query("UPDATE rndc14 SET PS = PS + 0.5, OBSDTEC = '2026-12-01 10:00:00.123456' LIMIT 300");
    await admin.query('DELETE FROM rndc14 LIMIT 50');
    tables.rndc14 = { from, to: await masterStatus() };

    from = await masterStatus();
    await admin.query("SET SESSION sql_mode = ''");
    const edges = edgeRows();
    await admin.query(`INSERT INTO edge (${EDGE_COLUMNS.join(',')}) VALUES ?`, [edges]);
    await admin.query("UPDATE edge SET v = CONCAT(v, '!'), d8 = -d8, dt6 = dt0, dd = NULL");
    // MINIMAL images: only the key before, only the changed columns after (sparse column bitmaps)
    await admin.query("SET SESSION binlog_row_image = 'MINIMAL'");
    await admin.query("UPDATE edge SET t = 7, dt3 = '2001-01-01 01:01:01.001' WHERE id IN (1, 3, 5)");
    await admin.query('DELETE FROM edge WHERE id = 4');
    await admin.query("SET SESSION binlog_row_image = 'FULL'");
    await admin.query('SET SESSION sql_mode = DEFAULT');
    tables.edge = { from, to: await masterStatus() };

    from = await masterStatus();
    await admin.query('INSERT INTO other VALUES ?', [
      [
        [1, '-9223372036854775808', 1.5, '2024-01-01 00:00:00.123', 'text', '{"a":[1,2]}', 'café'],
        [2, '9007199254740993', null, null, null, null, null],
      ],
    ]);
    await admin.query("UPDATE other SET txt = 'changed'");
    tables.other = { from, to: await masterStatus() };

    for (const [table, range] of Object.entries(tables)) {
      // Act: both decoders over the same range
      config = decodeConfig(readerConfigShape, { ...env, DB_TABLE: table });
      const before = { ...rowDecoderStats };
      // (and a third source that yields to the event loop after every event: nothing lost or reordered)
      const [stock, fast, yielding] = await Promise.all([
        readRange(range.from, range.to, false, config.DB_SERVER_ID + 1),
        readRange(range.from, range.to, true, config.DB_SERVER_ID + 2),
        readRange(range.from, range.to, true, config.DB_SERVER_ID + 3, 0),
      ]);
      expect(yielding.yields).toBeGreaterThan(0);
      expect(yielding.out).toStrictEqual(fast.out);
      const fastRows = rowDecoderStats.fastRows - before.fastRows;
      const zongjiRows = rowDecoderStats.zongjiRows - before.zongjiRows;

      // Assess: identical events, rows and values (types and key order included)
      expect(fast.warnings).toEqual([]);
      expect(stock.out.length).toBeGreaterThan(0);
      expect(fast.out.map((e) => e.key)).toEqual(stock.out.map((e) => e.key));
      for (let i = 0; i < stock.out.length; i++) {
        const s = stock.out[i]!;
        const f = fast.out[i]!;
        expect({ table: f.table, op: f.op, n: f.rows.length }).toEqual({
          table: s.table,
          op: s.op,
          n: s.rows.length,
        });
        expect(f.rows, `${table} ${s.op} at ${s.key}`).toStrictEqual(s.rows);
        expect(JSON.stringify(f.rows)).toBe(JSON.stringify(s.rows));
      }
      const rowCount = stock.out.reduce((n, e) => n + e.rows.length, 0);
      if (table === 'other') {
        expect(fastRows).toBe(0);
        expect(zongjiRows).toBeGreaterThan(0);
      } else {
        // all but the events each class decoded before it was hooked (the first of each kind); two sources
        expect(fastRows).toBeGreaterThan(rowCount);
        expect(zongjiRows).toBe(0);
      }
      expect(fastRows + zongjiRows).toBeLessThanOrEqual(2 * rowCount);
    }
    // the values themselves are what MySQL holds (spot checks of the edge table, through zongji's decoding)
    const [edgeBack] = (await admin.query('SELECT d8, v, dt5 FROM edge WHERE id = 3')) as unknown as [
      { d8: string; v: string; dt5: string }[],
    ];
    expect(edgeBack[0]).toEqual({
      d8: '0.000000000000000000000000000001',
      v: `💊 ${'𝔸'.repeat(70)} 🧪!`,
      dt5: '2024-02-29 12:34:56.00005',
    });
  });

  it("decodes a row image drugsync's decoder cannot read with zongji's, and says so once per table", async () => {
    // Prepare: catalogue changes; drugsync's decoder fails on PS in every row image of rndc14
    config = decodeConfig(readerConfigShape, env);
    const range = await writeChanges(21);
    const before = { ...rowDecoderStats };

    // Act: zongji's decoder alone, and drugsync's with the fault, over the same range
    const stock = await readRange(range.from, range.to, false, config.DB_SERVER_ID + 4);
    const fast = await withFaults({ table: 'rndc14', column: 'PS', zongji: false }, () =>
      readRange(range.from, range.to, true, config.DB_SERVER_ID + 5),
    );

    // Assess: the same events and values; one warning naming the table, the event's place and the column
    expect(stock.out.length).toBeGreaterThanOrEqual(6);
    expect(fast.out).toStrictEqual(stock.out);
    expect(rowDecoderStats.fastRows - before.fastRows).toBe(0);
    expect(rowDecoderStats.fallbackRows - before.fallbackRows).toBeGreaterThan(0);
    expect(fast.warnings).toHaveLength(1);
    const places = new Set(stock.out.map((e) => e.key));
    const m = /of fdb_row_decoder\.rndc14 at (\S+:\d+) \(column PS\)/.exec(fast.warnings[0] ?? '');
    expect(m, fast.warnings[0]).not.toBeNull();
    expect(places.has(m![1]!), `${m![1]} is one of ${[...places].join(' ')}`).toBe(true);
  });

  it('stops the reader with BINLOG_DECODE_FAILED (no restarts) when neither decoder can read a row image', async () => {
    // Prepare: the suite's stream and state, catalogue changes; both decoders fail on LN60 of rndc14
    const readerEnv = { ...env, READER_MAX_BACKOFF_SECONDS: '1', READER_LEASE_TTL_MS: '3000' };
    config = decodeConfig(readerConfigShape, readerEnv);
    const redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    await resetSuiteStream(env, 1);
    const range = await writeChanges(22);
    const stock = await readRange(range.from, range.to, false, config.DB_SERVER_ID + 6);
    const log = createLogger({ service: 'decoder-test' }, { level: 'error' });

    try {
      // Act
      const failure = await withFaults({ table: 'rndc14', column: 'LN60', zongji: true }, async () => {
        const reader = startBinlogReader(config, { redis, log }, { from: range.from });
        const outcome = await reader.done.then(
          () => null,
          (e: unknown) => e,
        );
        return { outcome, stats: reader.stats };
      });

      // Assess: fatal, at a rows event of the range, naming file, position, table and column; no restart
      const e = failure.outcome;
      expect(isDrugsyncError(e, 'BINLOG_DECODE_FAILED'), String(e)).toBe(true);
      if (!isDrugsyncError(e)) return;
      expect(e.retryable).toBe(false);
      expect(e.context.table).toBe('fdb_row_decoder.rndc14');
      expect(e.context.column).toBe('LN60');
      expect(stock.out.map((x) => x.key)).toContain(`${e.context.file}:${e.context.pos}`);
      expect(e.message).toContain(`${e.context.file}:${e.context.pos} (column LN60)`);
      expect(e.remedy).toMatch(/backfill/);
      expect(failure.stats.restarts).toBe(0);
      expect(failure.stats.state).toBe('failed');
    } finally {
      await deleteSuiteStream(env);
      await resetSuiteRedis(env, redis);
      await redis.quit();
    }
  });

  it('plans only tables whose every column it decodes', () => {
    // Prepare: table maps as zongji builds them from binlog_row_metadata=FULL
    const col = (
      name: string,
      type: number,
      metadata: Record<string, number>,
      charset: string | null = null,
    ) => ({
      name,
      type,
      metadata,
      charset,
    });
    const supported: ZTableMap = {
      parentSchema: 'fdb',
      tableName: 'rndc14',
      columns: [
        col('NDC', 15, { max_length: 44 }, 'utf8mb4'),
        col('GCN_SEQNO', 9, {}),
        col('PS', 246, { precision: 11, decimals: 3 }),
        col('DADDNC', 18, { decimals: 6 }),
      ],
      columnSchemas: [
        { COLUMN_TYPE: 'varchar(11)' },
        { COLUMN_TYPE: 'mediumint', UNSIGNED: false },
        { COLUMN_TYPE: 'decimal(11,3)' },
        { COLUMN_TYPE: 'datetime(6)' },
      ],
    };
    const withBigint: ZTableMap = {
      ...supported,
      columns: [...supported.columns, col('B', 8, {})],
      columnSchemas: [...supported.columnSchemas, { COLUMN_TYPE: 'bigint' }],
    };
    const withLatin1: ZTableMap = {
      ...supported,
      columns: [col('L', 15, { max_length: 10 }, 'latin1')],
      columnSchemas: [{ COLUMN_TYPE: 'varchar(10)' }],
    };
    const withVarbinary: ZTableMap = {
      ...supported,
      columns: [col('V', 15, { max_length: 10 }, null)],
      columnSchemas: [{ COLUMN_TYPE: 'varbinary(10)' }],
    };

    // Act / Assess
    expect(rowPlan(supported)?.columns.map((c) => c.name)).toEqual(['NDC', 'GCN_SEQNO', 'PS', 'DADDNC']);
    expect(rowPlan(withBigint)).toBeNull();
    expect(rowPlan(withLatin1)).toBeNull();
    expect(rowPlan(withVarbinary)).toBeNull();
  });

  it('does not hook a rows event class that does not look like zongji 0.9', () => {
    // Prepare: an object of another class, without zongji's fields
    class NotARowsEvent {
      _fetchOneRow() {
        return 'original';
      }
    }
    const e = new NotARowsEvent();

    // Act
    const why = hookRowsEventClass(e);

    // Assess: the reason is given, the method is untouched
    expect(why).toMatch(/NotARowsEvent\) does not look as expected/);
    expect(Object.prototype.hasOwnProperty.call(NotARowsEvent.prototype, '_fetchOneRow')).toBe(true);
    expect(e._fetchOneRow()).toBe('original');
    expect(hookRowsEventClass(e)).toBeNull();
  });
});
