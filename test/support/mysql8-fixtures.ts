/**
 * The real MySQL 8 binlogs of test/fixtures/mysql8-binlogs/ (provenance and licences: NOTICE.md there): how
 * to read each, which table its rows belong to and, for tables whose table maps carry no column names
 * (binlog_row_metadata=MINIMAL), the INFORMATION_SCHEMA.COLUMNS rows zongji's metadata query would return,
 * written from the CREATE TABLE recorded upstream with the fixture.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { ColumnSchema } from '@vlasky/zongji';
import { EventType, readBinlogFixture, readTransactionPayload, readWirePackets } from './binlog-bytes.ts';
import type { BinlogStream } from './binlog-bytes.ts';
import { keepColumns } from './binlog-derive.ts';

export const MYSQL8_FIXTURES = fileURLToPath(new URL('../fixtures/mysql8-binlogs/', import.meta.url));

/** The stream of a fixture file: a binlog file, or the packets of a dump session (`*.packets.txt`). */
export function fixtureStream(file: string): BinlogStream {
  return file.endsWith('.packets.txt')
    ? readWirePackets(readFileSync(MYSQL8_FIXTURES + file, 'utf8'), file)
    : readBinlogFixture(MYSQL8_FIXTURES + file);
}

/**
 * The events of the stream's TRANSACTION_PAYLOAD, as a stream of their own (no checksums: the payload's
 * covers them), named `<file>#payload`.
 */
export function payloadStream(stream: BinlogStream): BinlogStream {
  const payload = stream.events.find((e) => e.type === EventType.TRANSACTION_PAYLOAD);
  if (!payload) throw new Error(`${stream.name} has no TRANSACTION_PAYLOAD event`);
  return {
    name: `${stream.name}#payload`,
    fde: { ...stream.fde, checksum: 'NONE' },
    events: readTransactionPayload(payload).events,
  };
}

/**
 * One INFORMATION_SCHEMA.COLUMNS row as MySQL 8.0 reports it (integer types without display width), in the
 * shape zongji's metadata query selects.
 */
export function columnRow(name: string, type: string, charset: string | null = null): ColumnSchema {
  return {
    COLUMN_NAME: name,
    COLLATION_NAME: charset === null ? null : `${charset}_0900_ai_ci`,
    CHARACTER_SET_NAME: charset,
    COLUMN_COMMENT: '',
    COLUMN_TYPE: type,
  };
}

export interface Mysql8Fixture {
  file: string;
  /** the table the rows belong to (the reader's DB_NAME / DB_TABLE when it reads them) */
  schema: string;
  table: string;
  /** where the rows are: the file's own events, or inside its TRANSACTION_PAYLOAD */
  rowsIn: 'events' | 'payload';
  metadata: 'FULL' | 'MINIMAL';
  /** MINIMAL: the table's INFORMATION_SCHEMA.COLUMNS rows */
  columns?: ColumnSchema[];
  /** every column is of a type drugsync's row decoder reads (else the table is zongji's) */
  fastDecoder: boolean;
}

/** Every fixture that carries row events (mysql-bin.aurora-padding carries none: see the skip test). */
export const FIXTURES_WITH_ROWS: Mysql8Fixture[] = [
  {
    file: 'mysql84-fullmeta.packets.txt',
    schema: 'zongji_fixture_capture',
    table: 'capture_types',
    rowsIn: 'events',
    metadata: 'FULL',
    fastDecoder: false,
  },
  {
    file: 'mysql-enum-string-set.000001',
    schema: 'mysql',
    table: 't',
    rowsIn: 'events',
    metadata: 'FULL',
    fastDecoder: false,
  },
  {
    file: 'binlog-invisible-columns.000001',
    schema: 'mysql',
    table: 't1',
    rowsIn: 'events',
    metadata: 'FULL',
    fastDecoder: false,
  },
  {
    file: 'mysql_type_bit.000001',
    schema: 'mysql',
    table: 'foo',
    rowsIn: 'events',
    metadata: 'FULL',
    fastDecoder: false,
  },
  {
    // rust_mysql_common f6efa3a: CREATE TABLE t1 (col_1 int NOT NULL, col_2 blob, col_3 char(2) DEFAULT NULL,
    // col_4 int, col_5 int unsigned, PRIMARY KEY (col_1)), written with binlog_row_image=minimal
    file: 'minimal_row_metadata.000001',
    schema: 'noria',
    table: 't1',
    rowsIn: 'events',
    metadata: 'MINIMAL',
    fastDecoder: false,
    columns: [
      columnRow('col_1', 'int'),
      columnRow('col_2', 'blob'),
      columnRow('col_3', 'char(2)', 'utf8mb4'),
      columnRow('col_4', 'int'),
      columnRow('col_5', 'int unsigned'),
    ],
  },
  {
    // rust_mysql_common 76161b6: CREATE TABLE t (c TIME)
    file: 'time_issue.000001',
    schema: 'noria',
    table: 't',
    rowsIn: 'events',
    metadata: 'MINIMAL',
    fastDecoder: false,
    columns: [columnRow('c', 'time')],
  },
  {
    // the file's own CREATE TABLE: t(id INT PRIMARY KEY AUTO_INCREMENT, json_col JSON,
    // name VARCHAR(100) AS (json_col->>'$.name'), age INT AS (json_col->'$.age'))
    file: 'json.binlog.000001',
    schema: 'mysql',
    table: 't',
    rowsIn: 'events',
    metadata: 'MINIMAL',
    fastDecoder: false,
    columns: [
      columnRow('id', 'int'),
      columnRow('json_col', 'json'),
      columnRow('name', 'varchar(100)', 'utf8mb4'),
      columnRow('age', 'int'),
    ],
  },
  {
    // no CREATE TABLE upstream: one column, a signed INT by its table map (type 3, signedness 0); named c1
    file: 'transaction_compression.000001',
    schema: 'test',
    table: 'tb1',
    rowsIn: 'payload',
    metadata: 'MINIMAL',
    fastDecoder: true,
    columns: [columnRow('c1', 'int')],
  },
  {
    // no CREATE TABLE upstream (mysql-binlog-connector-java prints the values by position): by its table
    // map INT, VARCHAR, INT and 8 VARCHARs, utf8mb4 (collation 255) of 1024, 1024, 1024, 4096, 2048 and
    // 4 × 1024 bytes; the names are ours, after the values (a film: title, year, country, genres, ...)
    file: 'mysql-bin.compressed',
    schema: 'demo',
    table: 'movies',
    rowsIn: 'payload',
    metadata: 'MINIMAL',
    fastDecoder: true,
    columns: [
      columnRow('id', 'int'),
      columnRow('title', 'varchar(256)', 'utf8mb4'),
      columnRow('year', 'int'),
      columnRow('country', 'varchar(256)', 'utf8mb4'),
      columnRow('genres', 'varchar(256)', 'utf8mb4'),
      columnRow('actors', 'varchar(1024)', 'utf8mb4'),
      columnRow('directors', 'varchar(512)', 'utf8mb4'),
      columnRow('composers', 'varchar(256)', 'utf8mb4'),
      columnRow('screenwriters', 'varchar(256)', 'utf8mb4'),
      columnRow('cinematographer', 'varchar(256)', 'utf8mb4'),
      columnRow('production_companies', 'varchar(256)', 'utf8mb4'),
    ],
  },
];

/** The stream whose rows a fixture's test reads: the file's events, or its payload's. */
export function rowsStream(f: Mysql8Fixture): BinlogStream {
  const stream = fixtureStream(f.file);
  return f.rowsIn === 'payload' ? payloadStream(stream) : stream;
}

/**
 * Tables of rndc14's column types as MySQL 8 wrote them: fixture tables cut to those of their columns
 * (test/support/binlog-derive.ts), values and their metadata as the server wrote them.
 */
export interface DerivedFixture {
  /** what the cut covers */
  name: string;
  from: Mysql8Fixture;
  /** column positions kept */
  keep: number[];
}

function fixture(file: string): Mysql8Fixture {
  const f = FIXTURES_WITH_ROWS.find((x) => x.file === file);
  if (!f) throw new Error(`no fixture ${file}`);
  return f;
}

export const RNDC14_TYPE_FIXTURES: DerivedFixture[] = [
  {
    // id INT, dec_col DECIMAL(30,10), vc VARCHAR(20), ch CHAR(5) (utf8mb4), dt DATETIME(3), d DATE
    name: 'MySQL 8.4.8: INT, DECIMAL(30,10), VARCHAR and CHAR utf8mb4, DATETIME(3), DATE, NULLs; FULL metadata',
    from: fixture('mysql84-fullmeta.packets.txt'),
    keep: [0, 3, 4, 5, 12, 14],
  },
  {
    // f1, f2 INT UNSIGNED INVISIBLE, f3 INT
    name: 'MySQL 8.0.26: INT UNSIGNED INVISIBLE and INT; FULL metadata with column visibility',
    from: fixture('binlog-invisible-columns.000001'),
    keep: [0, 1, 2],
  },
  {
    // f1 CHAR(128), f2 VARCHAR(300): utf8mb4, over 255 bytes, so 2-byte length prefixes
    name: 'MySQL 8.0.28: CHAR(128) and VARCHAR(300) utf8mb4 (2-byte length prefixes); FULL metadata',
    from: fixture('mysql-enum-string-set.000001'),
    keep: [0, 1],
  },
  {
    // col_1 int NOT NULL, col_3 char(2), col_4 int, col_5 int unsigned: col_2 blob left out
    name: 'MySQL 8.0.40: INT, CHAR(2), INT UNSIGNED; MINIMAL metadata and a MINIMAL row image',
    from: fixture('minimal_row_metadata.000001'),
    keep: [0, 2, 3, 4],
  },
];

/** The derived stream of `d`: its table cut to `d.keep`. */
export function derivedStream(d: DerivedFixture): BinlogStream {
  return keepColumns(rowsStream(d.from), `${d.from.schema}.${d.from.table}`, d.keep, `${d.from.file}~cut`);
}

/** The INFORMATION_SCHEMA rows of a derived MINIMAL table (its kept columns), by `schema.table`. */
export function derivedColumns(d: DerivedFixture): Record<string, ColumnSchema[]> {
  const cols = d.from.columns;
  return cols ? { [`${d.from.schema}.${d.from.table}`]: d.keep.map((i) => cols[i] as ColumnSchema) } : {};
}

/** The INFORMATION_SCHEMA rows of a fixture's table, by `schema.table` (none for FULL metadata). */
export function fixtureColumns(f: Mysql8Fixture): Record<string, ColumnSchema[]> {
  return f.columns ? { [`${f.schema}.${f.table}`]: f.columns } : {};
}
