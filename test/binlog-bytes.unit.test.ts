/**
 * The binlog byte reader the MySQL 8 decoder tests stand on (test/support/binlog-bytes.ts) and the derived
 * fixtures (test/support/binlog-derive.ts), on the real MySQL 8 files of test/fixtures/mysql8-binlogs/:
 * every event is found and checked (sizes, end positions, CRC32), the FORMAT_DESCRIPTION read, the wire form
 * is the capture's, a TRANSACTION_PAYLOAD unwraps to what upstream's tests list, and a cut table decodes to
 * the original's values. Expected figures are upstream's (rust_mysql_common src/binlog/mod.rs,
 * mysql-binlog-connector-java's tests, zongji's capture) or the files' provenance (their NOTICE.md).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  BINLOG_MAGIC,
  EventType,
  IGNORABLE_FLAG,
  frameEvent,
  readBinlogFile,
  readTransactionPayload,
  readWirePackets,
  wirePacket,
} from './support/binlog-bytes.ts';
import type { BinlogStream } from './support/binlog-bytes.ts';
import {
  FIXTURES_WITH_ROWS,
  MYSQL8_FIXTURES,
  RNDC14_TYPE_FIXTURES,
  derivedColumns,
  derivedStream,
  fixtureColumns,
  fixtureStream,
} from './support/mysql8-fixtures.ts';
import { replayThroughSource } from './support/zongji-replay.ts';
import type { HandlerCall } from './support/zongji-replay.ts';

/** Server versions, from the provenance of each file (NOTICE.md). */
const WRITTEN_BY: Record<string, string> = {
  'binlog-invisible-columns.000001': '8.0.26',
  'json.binlog.000001': '8.0.22',
  'minimal_row_metadata.000001': '8.0.40',
  'mysql-bin.aurora-padding': '5.7.12-log',
  'mysql-bin.compressed': '8.0.28',
  'mysql-enum-string-set.000001': '8.0.28',
  'mysql84-fullmeta.packets.txt': '8.4.8',
  'mysql_type_bit.000001': '8.0.26',
  'time_issue.000001': '8.0.40',
  'transaction_compression.000001': '8.0.32',
};

/** The post-header lengths zongji 0.9's event classes read as fixed layouts (lib/binlog_event.js, rows_event.js). */
const ZONGJI_POST_HEADERS: Record<number, number> = {
  [EventType.QUERY]: 13,
  [EventType.ROTATE]: 8,
  [EventType.XID]: 0,
  [EventType.TABLE_MAP]: 8,
  [EventType.ROWS_QUERY]: 0,
  [EventType.WRITE_ROWS_V2]: 10,
  [EventType.UPDATE_ROWS_V2]: 10,
  [EventType.DELETE_ROWS_V2]: 10,
  [EventType.PREVIOUS_GTIDS]: 0,
};
/** GTID / ANONYMOUS_GTID: zongji reads flags, UUID and number (25 bytes) and skips the rest of the event. */
const ZONGJI_GTID_BYTES = 1 + 16 + 8;

const fixtureFiles = () => readdirSync(MYSQL8_FIXTURES).filter((f) => f in WRITTEN_BY);

/** The bytes of a binlog file holding `stream`'s events (magic, then the events). */
const fileOf = (stream: BinlogStream) => Buffer.concat([BINLOG_MAGIC, ...stream.events.map((e) => e.bytes)]);

describe('binlog files and packets without a server', () => {
  it('reads every fixture: magic, FORMAT_DESCRIPTION, then events whose sizes, end positions and CRC32 hold', () => {
    // Prepare: every fixture of the directory (each named in its provenance)
    const files = fixtureFiles();
    expect(files.sort()).toEqual(Object.keys(WRITTEN_BY).sort());

    for (const file of files) {
      // Act
      const stream = fixtureStream(file);

      // Assess: the version the provenance names, checksums on, every byte of a file in one event
      expect(stream.fde.serverVersion, file).toBe(WRITTEN_BY[file]);
      expect(stream.fde.binlogVersion, file).toBe(4);
      expect(stream.fde.checksum, file).toBe('CRC32');
      if (file.endsWith('.packets.txt')) continue;
      const size = readFileSync(MYSQL8_FIXTURES + file).length;
      expect(
        stream.events.reduce((n, e) => n + e.size, 4),
        file,
      ).toBe(size);
      expect(stream.events[0]?.type, file).toBe(EventType.FORMAT_DESCRIPTION);
    }
  });

  it('lists the events upstream lists: the Aurora file (mysql-binlog-connector-java) and the 8.4.8 capture (zongji)', () => {
    // Prepare / Act
    const aurora = fixtureStream('mysql-bin.aurora-padding');
    const capture = fixtureStream('mysql84-fullmeta.packets.txt');

    // Assess: SHOW BINLOG EVENTS as quoted in BinaryLogFileReaderIntegrationTest (position, type, end)
    expect(aurora.events.map((e) => [e.at, e.type, e.next])).toEqual([
      [4, EventType.FORMAT_DESCRIPTION, 185],
      [185, EventType.PREVIOUS_GTIDS, 216],
      [216, EventType.ANONYMOUS_GTID, 281],
      [281, EventType.AURORA_PADDING, 1209],
      [1209, EventType.QUERY, 1294],
    ]);
    // the padding is flagged LOG_EVENT_IGNORABLE_F: a reader that does not know type 100 may skip it
    expect((aurora.events[3]?.flags ?? 0) & IGNORABLE_FLAG).toBe(IGNORABLE_FLAG);
    // 29 packets, each one event behind status byte 00, the wire bytes of the capture line for line
    const lines = readFileSync(`${MYSQL8_FIXTURES}mysql84-fullmeta.packets.txt`, 'utf8').trim().split('\n');
    expect(capture.events).toHaveLength(29);
    expect(capture.events.map((e) => wirePacket(e).toString('hex'))).toEqual(lines);
    // the artificial ROTATE the server sends first (end position 0), the real one at the end of the file
    expect([capture.events[0]?.type, capture.events[0]?.next]).toEqual([EventType.ROTATE, 0]);
  });

  it("finds in every FORMAT_DESCRIPTION, MySQL 8.0.22 to 8.4.8 and Aurora 2, the post-header lengths zongji's classes assume", () => {
    for (const file of fixtureFiles()) {
      // Act
      const lengths = fixtureStream(file).fde.postHeaderLengths;

      // Assess: zongji never reads the FDE; these are the layouts it hard-codes
      for (const [type, length] of Object.entries(ZONGJI_POST_HEADERS))
        expect(lengths[Number(type)], `${file}: event type ${type}`).toBe(length);
      expect(lengths[EventType.GTID], file).toBeGreaterThanOrEqual(ZONGJI_GTID_BYTES);
      expect(lengths[EventType.ANONYMOUS_GTID], file).toBeGreaterThanOrEqual(ZONGJI_GTID_BYTES);
    }
  });

  it('frames an event back to the bytes the server wrote (header, body, CRC32)', () => {
    for (const file of fixtureFiles()) {
      for (const e of fixtureStream(file).events) {
        // the FDE of a file copied while open has its in-use flag set after its checksum was taken
        if (e.type === EventType.FORMAT_DESCRIPTION) continue;
        expect(frameEvent(e, e.body, e.checksum).equals(e.bytes), `${file} at ${e.at}`).toBe(true);
      }
    }
  });

  it('refuses bytes that are not a whole binlog, naming where: no magic, a changed byte, a cut event', () => {
    // Prepare: a real file, and three damaged copies of it
    const good = readFileSync(`${MYSQL8_FIXTURES}mysql_type_bit.000001`);
    const stream = readBinlogFile(good, 'bit');
    const rows = stream.events.find((e) => e.type === EventType.WRITE_ROWS_V2)!;
    const flipped = Buffer.from(good);
    flipped.writeUInt8(flipped.readUInt8(rows.at + 25) ^ 0x01, rows.at + 25); // a bit of a row value

    // Act / Assess
    expect(() => readBinlogFile(good.subarray(4), 'headless')).toThrow(/headless: no binlog magic/);
    expect(() => readBinlogFile(flipped, 'flipped')).toThrow(
      new RegExp(`flipped: CRC32 of the event at ${rows.at} \\(type 30\\)`),
    );
    expect(() => readBinlogFile(good.subarray(0, good.length - 10), 'cut')).toThrow(
      /cut: event at \d+ declares/,
    );
    expect(() => readWirePackets('01ff\n', 'wire')).toThrow(
      /wire: line 1 is not a packet with status byte 00/,
    );
  });

  it('unwraps a TRANSACTION_PAYLOAD (zstd) into the transaction the upstream tests list', () => {
    // Prepare
    const small = fixtureStream('transaction_compression.000001');
    const large = fixtureStream('mysql-bin.compressed');
    const payloadOf = (s: BinlogStream) => s.events.find((e) => e.type === EventType.TRANSACTION_PAYLOAD)!;

    // Act
    const smallPayload = readTransactionPayload(payloadOf(small));
    const largePayload = readTransactionPayload(payloadOf(large));

    // Assess: rust_mysql_common: QUERY, TABLE_MAP, WRITE_ROWS, XID, then nothing
    expect(smallPayload.compression).toBe('zstd');
    expect(smallPayload.events.map((e) => e.type)).toEqual([
      EventType.QUERY,
      EventType.TABLE_MAP,
      EventType.WRITE_ROWS_V2,
      EventType.XID,
    ]);
    // mysql-binlog-connector-java: zstd, 451 payload bytes, 960 uncompressed, QUERY, TABLE_MAP,
    // EXT_UPDATE_ROWS, XID; the file holds 5 events
    expect(large.events).toHaveLength(5);
    expect(largePayload).toMatchObject({ compression: 'zstd', payloadSize: 451, uncompressedSize: 960 });
    expect(largePayload.events.map((e) => e.type)).toEqual([
      EventType.QUERY,
      EventType.TABLE_MAP,
      EventType.UPDATE_ROWS_V2,
      EventType.XID,
    ]);
    // inside a payload events carry no checksum and no end position; they follow one another exactly
    for (const p of [smallPayload, largePayload]) {
      expect(p.events.every((e) => e.next === 0 && !e.checksum)).toBe(true);
      expect(p.events.reduce((n, e) => n + e.size, 0)).toBe(p.uncompressedSize);
    }
  });
});

/** The rows the source passes on, keyed `op` and row images. */
const rowsOf = (calls: HandlerCall[]) =>
  calls.flatMap((c) => (c.call === 'rows' ? [{ op: c.event.op, rows: c.event.rows }] : []));

function pick(row: Record<string, unknown>, names: string[]): Record<string, unknown> {
  return Object.fromEntries(names.map((n) => [n, row[n]]));
}

describe('fixtures derived for rndc14 column types', () => {
  it.each(RNDC14_TYPE_FIXTURES)(
    "$name: zongji's decoder reads the cut table's rows as the original's columns",
    async (d) => {
      // Prepare: the original and the cut stream, read by the reader's source with zongji's own decoder
      const table = { schema: d.from.schema, table: d.from.table, fastRows: false };
      const original = await replayThroughSource({
        stream: fixtureStream(d.from.file),
        columns: fixtureColumns(d.from),
        ...table,
      });
      const originalRows = rowsOf(original.calls);
      const names = Object.keys((originalRows[0]?.rows[0] as Record<string, unknown>) ?? {});
      const kept = d.keep.map((i) => names[i] as string);

      // Act
      const derived = derivedStream(d);
      const cut = await replayThroughSource({ stream: derived, columns: derivedColumns(d), ...table });

      // Assess: the same events, each row the original's kept columns; the cut stream is a valid binlog
      const project = (r: unknown) => {
        const row = r as Record<string, unknown>;
        return 'before' in row && 'after' in row
          ? {
              before: pick(row.before as Record<string, unknown>, kept),
              after: pick(row.after as Record<string, unknown>, kept),
            }
          : pick(row, kept);
      };
      expect(originalRows.length).toBeGreaterThan(0);
      expect(rowsOf(cut.calls)).toStrictEqual(
        originalRows.map((e) => ({ op: e.op, rows: e.rows.map(project) })),
      );
      if (derived.events[0]?.type === EventType.FORMAT_DESCRIPTION)
        expect(readBinlogFile(fileOf(derived), derived.name).events).toHaveLength(derived.events.length);
      else
        expect(
          readWirePackets(derived.events.map((e) => wirePacket(e).toString('hex')).join('\n')).events,
        ).toHaveLength(derived.events.length);
    },
  );

  it('leaves every other event as the server wrote it, only its end position moved by the bytes cut before it', () => {
    for (const d of RNDC14_TYPE_FIXTURES) {
      // Prepare / Act
      const original = fixtureStream(d.from.file);
      const derived = derivedStream(d);

      // Assess: same events in the same order; non-table events keep their bodies
      expect(derived.events.map((e) => e.type)).toEqual(original.events.map((e) => e.type));
      derived.events.forEach((e, i) => {
        const o = original.events[i]!;
        const cut = [EventType.TABLE_MAP, 23, 24, 25, 30, 31, 32].includes(e.type);
        if (!cut) expect(e.body.equals(o.body), `${d.from.file} event ${i}`).toBe(true);
        if (cut) expect(e.size, `${d.from.file} event ${i}`).toBeLessThanOrEqual(o.size);
      });
    }
  });
});

describe('fixture rows', () => {
  it('every fixture that carries row events is listed with its table', () => {
    // Prepare / Act: the fixtures whose events (or whose payload's) include rows events
    const withRows = fixtureFiles().filter((file) => {
      const s = fixtureStream(file);
      const inner = s.events
        .filter((e) => e.type === EventType.TRANSACTION_PAYLOAD)
        .flatMap((e) => readTransactionPayload(e).events);
      return [...s.events, ...inner].some((e) => e.type >= 30 && e.type <= 32);
    });

    // Assess
    expect(withRows.sort()).toEqual(FIXTURES_WITH_ROWS.map((f) => f.file).sort());
  });
});
