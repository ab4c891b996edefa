/**
 * drugsync's row decoder (services/binlog-reader/decoder.ts) against zongji's own, on real MySQL 8 binlog
 * bytes and without a server: the MySQL 8 half of test/decoder.test.ts (which holds the two to each other on
 * a live MariaDB). Re-run both when @vlasky/zongji is upgraded:
 *   npx vitest run test/decoder-mysql8.unit.test.ts test/binlog-mysql8-events.unit.test.ts
 *   npx vitest run --project integration test/decoder.test.ts
 *
 * Every fixture of test/fixtures/mysql8-binlogs/ that carries row events (MySQL 8.0.22–8.4.8, FULL and
 * MINIMAL table-map metadata, rows inside TRANSACTION_PAYLOADs unwrapped) is read by the reader's own source
 * twice, once with each decoder, through zongji's packet and event classes (test/support/zongji-replay.ts):
 * every handler call must be identical, rows value for value, types and key order included. MINIMAL tables
 * get their columns the way the reader does, from INFORMATION_SCHEMA rows (written from upstream's CREATE
 * TABLE). The values are held to upstream's expected reads (zongji's test/parser.js, rust_mysql_common's
 * src/binlog/mod.rs, mysql-binlog-connector-java's tests). Fixtures cut to rndc14's column types
 * (binlog-derive.ts) show drugsync's decoder taking MySQL 8 tables whole, and where it must leave them.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { rowDecoderStats } from '../services/binlog-reader/decoder.ts';
import type { BinlogStream } from './support/binlog-bytes.ts';
import { keepColumns } from './support/binlog-derive.ts';
import {
  FIXTURES_WITH_ROWS,
  RNDC14_TYPE_FIXTURES,
  columnRow,
  derivedColumns,
  derivedStream,
  fixtureColumns,
  fixtureStream,
  rowsStream,
} from './support/mysql8-fixtures.ts';
import type { Mysql8Fixture } from './support/mysql8-fixtures.ts';
import { replayThroughSource } from './support/zongji-replay.ts';
import type { HandlerCall, SourceReplay, ZEvent } from './support/zongji-replay.ts';
import type { ColumnSchema } from '@vlasky/zongji';

type Row = Record<string, unknown>;

interface Read {
  stock: SourceReplay;
  fast: SourceReplay;
  /** rows decoded by drugsync's decoder / by zongji's, in the fast read */
  fastRows: number;
  zongjiRows: number;
}

/** The same stream read by the reader's source with zongji's decoder, then with drugsync's. */
async function readBoth(
  stream: BinlogStream,
  schema: string,
  table: string,
  columns: Record<string, ColumnSchema[]>,
): Promise<Read> {
  const stock = await replayThroughSource({ stream, columns, schema, table, fastRows: false });
  const before = { ...rowDecoderStats };
  const fast = await replayThroughSource({ stream, columns, schema, table, fastRows: true });
  return {
    stock,
    fast,
    fastRows: rowDecoderStats.fastRows - before.fastRows,
    zongjiRows: rowDecoderStats.zongjiRows - before.zongjiRows,
  };
}

const rowsCalls = (calls: HandlerCall[]) => calls.flatMap((c) => (c.call === 'rows' ? [c.event] : []));
const imageCount = (calls: HandlerCall[]) => rowsCalls(calls).reduce((n, e) => n + e.rows.length, 0);
/** Every row image of the calls (update pairs as two images). */
const images = (calls: HandlerCall[]): Row[] =>
  rowsCalls(calls).flatMap((e) =>
    e.op === 'update'
      ? (e.rows as { before: Row; after: Row }[]).flatMap((r) => [r.before, r.after])
      : (e.rows as Row[]),
  );

/** The column names of the fixture table's table map as zongji read it (FULL metadata), else null. */
function binlogColumnNames(r: SourceReplay, table: string): string[] | null {
  const tm = r.zongji.events.find(
    (e) => e.getTypeName() === 'TableMap' && (e as ZEvent & { tableName: string }).tableName === table,
  ) as (ZEvent & { columnNames?: string[] }) | undefined;
  return tm?.columnNames ?? null;
}

beforeAll(async () => {
  // The source hooks zongji's rows-event classes with the first rows event of each kind it meets (that one
  // is decoded by zongji); a long-running reader meets them at once. Meet all three here, so every rows
  // event below goes through the hook.
  await replayThroughSource({
    stream: fixtureStream('mysql84-fullmeta.packets.txt'),
    schema: 'zongji_fixture_capture',
    table: 'capture_types',
    fastRows: true,
  });
});

describe('MySQL 8 binlogs through both row decoders', () => {
  it.each(FIXTURES_WITH_ROWS)(
    "$file ($metadata metadata, rows in $rowsIn): the reader passes on the same rows with drugsync's decoder as with zongji's",
    async (f: Mysql8Fixture) => {
      // Prepare
      const stream = rowsStream(f);

      // Act
      const { stock, fast, fastRows, zongjiRows } = await readBoth(
        stream,
        f.schema,
        f.table,
        fixtureColumns(f),
      );

      // Assess: identical handler calls (rows value for value, types and key order included)
      expect(imageCount(stock.calls)).toBeGreaterThan(0);
      expect(fast.calls).toStrictEqual(stock.calls);
      expect(JSON.stringify(rowsCalls(fast.calls))).toBe(JSON.stringify(rowsCalls(stock.calls)));
      expect(fast.warnings).toEqual([]);
      // the split: drugsync's decoder takes the table only when it reads every column type
      const rows = rowsCalls(fast.calls).reduce((n, e) => n + e.rows.length, 0);
      expect({ fastRows, zongjiRows }).toEqual(
        f.fastDecoder ? { fastRows: rows, zongjiRows: 0 } : { fastRows: 0, zongjiRows: rows },
      );
      // column names: the binlog's own with FULL metadata, INFORMATION_SCHEMA's with MINIMAL
      const names =
        f.metadata === 'FULL'
          ? binlogColumnNames(fast, f.table)
          : (f.columns ?? []).map((c) => c.COLUMN_NAME);
      expect(names?.length).toBeGreaterThan(0);
      for (const image of images(fast.calls)) expect(Object.keys(image)).toEqual(names);
    },
  );

  it.each(RNDC14_TYPE_FIXTURES)(
    "rndc14's column types as MySQL 8 writes them, $name: drugsync's decoder reads every row, as zongji does",
    async (d) => {
      // Prepare: the fixture table cut to those of its columns (values as the server wrote them)
      const stream = derivedStream(d);

      // Act
      const { stock, fast, fastRows, zongjiRows } = await readBoth(
        stream,
        d.from.schema,
        d.from.table,
        derivedColumns(d),
      );

      // Assess
      const rows = imageCount(stock.calls);
      expect(rows).toBeGreaterThan(0);
      expect(fast.calls).toStrictEqual(stock.calls);
      expect({ fastRows, zongjiRows }).toEqual({ fastRows: rows, zongjiRows: 0 });
    },
  );

  it("takes a MySQL 8.4.8 table whole only when every column is of rndc14's types, and reads each such type as zongji", async () => {
    // Prepare: the capture's table cut to its key and one other column, for each of its 25 other columns
    const capture = fixtureStream('mysql84-fullmeta.packets.txt');
    const names = binlogColumnNames(
      await replayThroughSource({
        stream: capture,
        schema: 'zongji_fixture_capture',
        table: 'capture_types',
        fastRows: false,
      }),
      'capture_types',
    )!;
    const taken: string[] = [];

    for (let i = 1; i < names.length; i++) {
      // Act
      const stream = keepColumns(
        capture,
        'zongji_fixture_capture.capture_types',
        [0, i],
        `capture~${names[i]}`,
      );
      const { stock, fast, fastRows } = await readBoth(stream, 'zongji_fixture_capture', 'capture_types', {});

      // Assess: identical either way; which columns drugsync's decoder takes
      expect(fast.calls, names[i]).toStrictEqual(stock.calls);
      if (fastRows > 0) taken.push(names[i] as string);
    }
    // INT (the key), DECIMAL, text VARCHAR/CHAR in utf8mb4, DATETIME(3), DATE: rndc14's kinds; not BIGINT,
    // FLOAT/DOUBLE, BINARY/VARBINARY, TEXT/BLOB, TIMESTAMP, TIME, YEAR, ENUM/SET, BIT, JSON, GEOMETRY, latin1, ucs2
    expect(taken).toEqual(['dec_col', 'vc', 'ch', 'dt', 'd']);
  });

  it('MINIMAL metadata: an unsigned INT is read by the signedness the binlog carries, even when INFORMATION_SCHEMA says signed', async () => {
    // Prepare: the cut MINIMAL table (drugsync's decoder takes it), its col_5 declared `int` (signed) in
    // INFORMATION_SCHEMA: a schema read after an ALTER, say; the table map carries SIGNEDNESS even under MINIMAL
    const d = RNDC14_TYPE_FIXTURES.find((x) => x.from.file === 'minimal_row_metadata.000001')!;
    const mislabelled = {
      'noria.t1': [
        columnRow('col_1', 'int'),
        columnRow('col_3', 'char(2)', 'utf8mb4'),
        columnRow('col_4', 'int'),
        columnRow('col_5', 'int'),
      ],
    };

    // Act
    const { stock, fast, fastRows } = await readBoth(derivedStream(d), 'noria', 't1', mislabelled);

    // Assess: 3230202323 (rust_mysql_common issue 162), not its signed reading -1064764973, from both decoders
    expect(fastRows).toBe(1);
    expect(fast.calls).toStrictEqual(stock.calls);
    expect(images(fast.calls)).toEqual([{ col_1: 1, col_3: 'a', col_4: null, col_5: 3230202323 }]);
  });
});

/** The first rows event of each kind, as the reader's source passes it on with drugsync's decoder. */
async function readFixture(file: string, connectionConfig?: Record<string, unknown>) {
  const f = FIXTURES_WITH_ROWS.find((x) => x.file === file)!;
  const r = await replayThroughSource({
    stream: rowsStream(f),
    columns: fixtureColumns(f),
    schema: f.schema,
    table: f.table,
    fastRows: true,
    ...(connectionConfig ? { connectionConfig } : {}),
  });
  const events = rowsCalls(r.calls);
  const of = (op: string) => events.filter((e) => e.op === op).map((e) => e.rows);
  return {
    replay: r,
    inserts: of('insert') as Row[][],
    updates: of('update') as { before: Row; after: Row }[][],
    deletes: of('delete') as Row[][],
  };
}

// rust_mysql_common's expected strings for mysql-enum-string-set: runs of digits, twice with the 9 left out
const DIGITS = '0123456789';
const F1 = DIGITS.repeat(10);
const LONG = `${DIGITS.repeat(12)}012345678${DIGITS.repeat(12)}012345678${DIGITS.repeat(4)}`;

describe("values, against upstream's expected reads", () => {
  it("MySQL 8.4.8, 26 column types, FULL metadata (zongji test/parser.js): upstream's values with upstream's settings, strings with the reader's", async () => {
    // Act: the capture with the settings it was made with (timezone Z, TIMESTAMP as string), then the reader's
    const upstream = await readFixture('mysql84-fullmeta.packets.txt', {
      timezone: 'Z',
      dateStrings: ['TIMESTAMP'],
    });
    const reader = await readFixture('mysql84-fullmeta.packets.txt');

    // Assess
    const row = upstream.inserts[0]![0]!;
    expect(row).toMatchObject({
      id: 1,
      i_big: '9223372036854775807',
      u_big: '18446744073709551615',
      dec_col: '-12345678901234567.0123456789',
      vc: 'héllo wörld',
      ch: 'abc',
      bin_col: Buffer.from('deadbeef', 'hex'),
      vb: Buffer.from('0102', 'hex'),
      txt: 'text value',
      blb: Buffer.from('cafe', 'hex'),
      flt: 1.25,
      dbl: -2.5,
      ts: '2024-06-15 12:34:56',
      t: '-01:02:03.500',
      y: 2024,
      e: 'b',
      e2: "c'd",
      s: 'x,z',
      bt: Buffer.from([0x02, 0x01]),
      js: { a: 1, big: '9223372036854775807', arr: ['x', true, null], d: 1.5 },
      geo: { x: 1, y: 2 },
      txt_latin1: 'café ñ',
    });
    expect((row.dt as Date).toISOString()).toBe('2024-06-15T12:34:56.789Z');
    expect((row.d as Date).toISOString()).toBe('2024-06-15T00:00:00.000Z');
    // the reader's settings (dateStrings: true, no timezone): the same values, DATETIME and DATE as strings,
    // TIMESTAMP as the same instant in the process's local time (zongji's rendering without a timezone)
    const ours = reader.inserts[0]![0]!;
    expect(ours).toStrictEqual({ ...row, dt: '2024-06-15 12:34:56.789', d: '2024-06-15', ts: ours.ts });
    expect(new Date(String(ours.ts).replace(' ', 'T')).toISOString()).toBe('2024-06-15T12:34:56.000Z');
    const change = reader.updates[0]![0]!;
    expect([change.before.id, change.before.vc, change.after.id, change.after.vc]).toEqual([
      1,
      'héllo wörld',
      2,
      'updated',
    ]);
    expect(reader.deletes[0]![0]!.id).toBe(2);
    const nulls = reader.inserts[1]![0]!;
    expect(Object.entries(nulls).filter(([k, v]) => k !== 'id' && v !== null)).toEqual([]);
    expect(nulls.id).toBe(3);
  });

  it('CHAR, VARCHAR, ENUM, SET, TEXT, FULL metadata with their strings (rust_mysql_common mysql-enum-string-set)', async () => {
    // Act
    const { inserts, updates, deletes } = await readFixture('mysql-enum-string-set.000001');

    // Assess: ENUM index 1 = 'var1', SET 0b0101 = one,three; after: ENUM 2, SET 0b1010
    const first = { f1: F1, f2: LONG, f3: 'var1', f4: 'one,three', f5: DIGITS };
    const second = { f1: 'field1', f2: 'field_2', f3: 'variant2', f4: 'two,four', f5: LONG };
    expect(inserts).toEqual([[first]]);
    expect(updates).toEqual([[{ before: first, after: second }]]);
    expect(deletes).toEqual([[second]]);
  });

  it('BIT(3), TEXT, BIT(8) (rust_mysql_common mysql_type_bit)', async () => {
    const { inserts } = await readFixture('mysql_type_bit.000001');
    expect(inserts).toEqual([[{ a: Buffer.from([0b100]), b: 'foo', c: Buffer.from([0b100000]) }]]);
  });

  it('MINIMAL metadata and a MINIMAL row image (rust_mysql_common minimal_row_metadata): columns not written are null', async () => {
    const { inserts } = await readFixture('minimal_row_metadata.000001');
    // INSERT (col_1, col_3, col_5) VALUES (1, 'a', 3230202323): col_2 and col_4 are not in the image
    expect(inserts).toEqual([[{ col_1: 1, col_2: null, col_3: 'a', col_4: null, col_5: 3230202323 }]]);
  });

  it("TIME past 24 hours (rust_mysql_common time_issue: '-507:48:27')", async () => {
    const { inserts } = await readFixture('time_issue.000001');
    expect(inserts).toEqual([[{ c: '-507:48:27' }]]);
  });

  it("a compressed transaction's UPDATE, once unwrapped (mysql-binlog-connector-java)", async () => {
    // Act
    const { updates } = await readFixture('mysql-bin.compressed');

    // Assess: the values of TransactionPayloadEventDataDeserializerTest, in column order
    const before = [
      1,
      'Once Upon a Time in the West',
      1968,
      'Italy',
      'Western',
      'Claudia Cardinale|Charles Bronson|Henry Fonda|Gabriele Ferzetti|Frank Wolff|Al Mulock|Jason Robards|' +
        'Woody Strode|Jack Elam|Lionel Stander|Paolo Stoppa|Keenan Wynn|Aldo Sambrell',
      'Sergio Leone',
      'Ennio Morricone',
      'Sergio Leone|Sergio Donati|Dario Argento|Bernardo Bertolucci',
      'Tonino Delli Colli',
      'Paramount Pictures',
    ];
    const after = [...before.slice(0, 4), 'Western|Action', ...before.slice(5)];
    expect(updates).toHaveLength(1);
    expect(updates[0]!.map((r) => [Object.values(r.before), Object.values(r.after)])).toEqual([
      [before, after],
    ]);
  });

  it("generated columns agree with the JSON they are generated from (json.binlog: name AS json_col->>'$.name', age AS json_col->'$.age')", async () => {
    const { inserts, updates } = await readFixture('json.binlog.000001');
    const all = [...inserts.flat(), ...updates.flat().flatMap((u) => [u.before, u.after])];
    expect(all.length).toBeGreaterThanOrEqual(6);
    for (const row of all) {
      const json = row.json_col as { name: string; age: number };
      expect([row.name, row.age]).toEqual([json.name, json.age]);
    }
    // each UPDATE adds one year (before and after of the same id)
    for (const u of updates.flat())
      expect([u.after.id, u.after.age]).toEqual([u.before.id, (u.before.age as number) + 1]);
  });

  it('a compressed transaction of one INT column (rust_mysql_common transaction_compression), once unwrapped', async () => {
    const { replay, inserts } = await readFixture('transaction_compression.000001');
    expect(inserts).toHaveLength(1);
    expect(Object.keys(inserts[0]![0]!)).toEqual(['c1']);
    expect(Number.isInteger(inserts[0]![0]!.c1)).toBe(true);
    // the payload's own events: BEGIN, then the row, then the XID commit
    expect(replay.calls.map((c) => c.call)).toEqual(['begin', 'rows', 'commit']);
    expect(replay.zongji.events.map((e) => e.getTypeName())).toEqual([
      'Query',
      'TableMap',
      'WriteRows',
      'Xid',
    ]);
  });
});

describe('the table map event types zongji reads for the source', () => {
  it('decodes the 8.4.8 capture into the event sequence observed when it was captured (zongji eventSummary)', async () => {
    const r = await replayThroughSource({
      stream: fixtureStream('mysql84-fullmeta.packets.txt'),
      schema: 'zongji_fixture_capture',
      table: 'capture_types',
      fastRows: true,
    });
    const transaction = (rows: string, extra: string[] = []) => [
      'Gtid',
      'Query',
      ...extra,
      'TableMap',
      rows,
      'Xid',
    ];
    expect(r.zongji.events.map((e) => e.getTypeName())).toEqual([
      'Rotate',
      'Format',
      'Gtid',
      'Query',
      ...transaction('WriteRows'),
      ...transaction('UpdateRows'),
      ...transaction('DeleteRows'),
      ...transaction('WriteRows', ['RowsQuery']),
      'Rotate',
      'Rotate',
      'Format',
      'PreviousGtids',
    ]);
  });
});
