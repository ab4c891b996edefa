/**
 * What the reader's own source (services/binlog-reader/zongji-source.ts) makes of MySQL 8's events, on
 * real MySQL 8 and Aurora binlogs without a server (test/support/zongji-replay.ts): GTID / ANONYMOUS_GTID /
 * PREVIOUS_GTIDS and the positions it reports, Aurora's event type 100 (skipped), TRANSACTION_PAYLOAD and
 * PARTIAL_UPDATE_ROWS (refused: BINLOG_DECODE_FAILED naming the server setting, never a restart loop or a
 * silent skip), and the FULL table-map metadata the decoders build their columns from. With
 * test/decoder-mysql8.unit.test.ts, re-run when @vlasky/zongji is upgraded.
 */
import { describe, expect, it } from 'vitest';
import { isDrugsyncError } from '../services/core/errors.ts';
import { EventType } from './support/binlog-bytes.ts';
import type { BinlogEvent, BinlogStream } from './support/binlog-bytes.ts';
import { FIXTURES_WITH_ROWS, fixtureColumns, fixtureStream } from './support/mysql8-fixtures.ts';
import { replayThroughSource } from './support/zongji-replay.ts';
import type { HandlerCall, SourceReplay, ZEvent } from './support/zongji-replay.ts';
import type { ColumnSchema } from '@vlasky/zongji';

/** A fixture file read by the reader's source, configured for the fixture's table (any table for the others). */
async function readFile(file: string): Promise<{ stream: BinlogStream; replay: SourceReplay }> {
  const f = FIXTURES_WITH_ROWS.find((x) => x.file === file);
  const stream = fixtureStream(file);
  const replay = await replayThroughSource({
    stream,
    columns: f ? fixtureColumns(f) : {},
    schema: f?.schema ?? 'fdb',
    table: f?.table ?? 'rndc14',
    fastRows: true,
  });
  return { stream, replay };
}

/** The place (pos, next, ts) a handler call reports, where it has one. */
function placeOf(c: HandlerCall): { pos: number; next: number; ts: number; gtid: string | null } | null {
  if (c.call === 'rows') return c.event;
  if (c.call === 'begin' || c.call === 'commit' || c.call === 'statement') return c.place;
  return null;
}

/** Transactions as the source reports them: the calls from a GTID's begin to its commit or statement. */
function transactions(calls: HandlerCall[]): HandlerCall[][] {
  const out: HandlerCall[][] = [];
  for (const c of calls) {
    const last = out[out.length - 1];
    const open = last && !last.some((x) => x.call === 'commit' || x.call === 'statement');
    if (open) last.push(c);
    else if (c.call === 'begin') out.push([c]);
  }
  return out;
}

const FILES_WITH_GTIDS = [
  'mysql-enum-string-set.000001',
  'binlog-invisible-columns.000001',
  'mysql_type_bit.000001',
];
const ANONYMOUS_FILES = ['json.binlog.000001', 'minimal_row_metadata.000001', 'time_issue.000001'];

describe("MySQL 8 events in the reader's source", () => {
  it('GTID events begin transactions with uuid:n, consecutive, carried by every call of the transaction', async () => {
    for (const file of [...FILES_WITH_GTIDS, 'mysql84-fullmeta.packets.txt']) {
      // Act
      const { replay } = await readFile(file);

      // Assess
      const txs = transactions(replay.calls);
      expect(txs.length, file).toBeGreaterThanOrEqual(3);
      const gtids = txs.map((tx) => placeOf(tx[0]!)?.gtid ?? '');
      const [uuid] = (gtids[0] ?? '').split(':');
      expect(uuid, file).toMatch(/^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$/);
      gtids.forEach((g, i) => expect(g, file).toBe(`${uuid}:${Number(gtids[0]!.split(':')[1]) + i}`));
      for (const [i, tx] of txs.entries())
        for (const c of tx) if (placeOf(c)) expect(placeOf(c)!.gtid, `${file} ${c.call}`).toBe(gtids[i]);
    }
  });

  it('ANONYMOUS_GTID events begin transactions without a GTID (gtid null), so the txid is the position', async () => {
    for (const file of ANONYMOUS_FILES) {
      const { stream, replay } = await readFile(file);
      expect(stream.events.some((e) => e.type === EventType.ANONYMOUS_GTID)).toBe(true);
      const placed = replay.calls.map(placeOf).filter((p) => p !== null);
      expect(placed.length, file).toBeGreaterThan(0);
      expect(
        placed.every((p) => p.gtid === null),
        file,
      ).toBe(true);
    }
  });

  it('reports the position, end and time of every event as the byte reader finds them', async () => {
    for (const file of [...FILES_WITH_GTIDS, ...ANONYMOUS_FILES, 'mysql84-fullmeta.packets.txt']) {
      // Prepare: the events by end position (unique within one file)
      const { stream, replay } = await readFile(file);
      const byEnd = new Map<number, BinlogEvent>(
        stream.events.filter((e) => e.next > 0).map((e) => [e.next, e]),
      );

      // Act / Assess
      const placed = replay.calls.map(placeOf).filter((p) => p !== null);
      expect(placed.length, file).toBeGreaterThan(0);
      for (const p of placed) {
        const e = byEnd.get(p.next);
        expect(e, `${file}: no event ends at ${p.next}`).toBeDefined();
        expect([p.pos, p.ts], `${file} at ${p.pos}`).toEqual([e!.at, e!.timestamp * 1000]);
      }
    }
  });

  it("PREVIOUS_GTIDS: the next file's set of the 8.4.8 capture holds every GTID the capture committed", async () => {
    // Act
    const { replay } = await readFile('mysql84-fullmeta.packets.txt');

    // Assess: the set zongji reads (the resume seed of a dump from a file's start) = uuid:1-<last committed>
    const previous = replay.zongji.events.filter((e) => e.getTypeName() === 'PreviousGtids') as (ZEvent & {
      gtidSet: string;
    })[];
    const last = transactions(replay.calls)
      .map((tx) => placeOf(tx[0]!)?.gtid ?? '')
      .pop()!;
    const [uuid, n] = last.split(':');
    expect(previous.map((p) => p.gtidSet)).toEqual([`${uuid}:1-${n}`]);
  });

  it("skips Aurora's own event type 100 (Aurora_padding, ignorable) and reads on past it, without an error", async () => {
    // Act
    const { stream, replay } = await readFile('mysql-bin.aurora-padding');

    // Assess: zongji knows no class for it (Unknown), the source counts it as a sign of life; the BEGIN after
    // it is reported at the padding's end
    const padding = stream.events.find((e) => e.type === EventType.AURORA_PADDING)!;
    expect(replay.zongji.events.map((e) => e.getTypeName())).toEqual([
      'Format',
      'PreviousGtids',
      'AnonymousGtid',
      'Unknown',
      'Query',
    ]);
    expect(replay.calls.map((c) => c.call)).toEqual(['begin', 'begin']);
    expect(placeOf(replay.calls[1]!)?.pos).toBe(padding.at + padding.size);
    expect(replay.heartbeats).toBe(3);
  });

  it.each(['transaction_compression.000001', 'mysql-bin.compressed'])(
    '%s: a TRANSACTION_PAYLOAD stops the reader with BINLOG_DECODE_FAILED naming binlog_transaction_compression',
    async (file) => {
      // Act
      const { stream, replay } = await readFile(file);

      // Assess: an error at the payload event, fatal (no restart into it), nothing of its rows passed on
      const payload = stream.events.find((e) => e.type === EventType.TRANSACTION_PAYLOAD)!;
      const last = replay.calls[replay.calls.length - 1]!;
      expect(replay.calls.filter((c) => c.call === 'rows')).toEqual([]);
      expect(last.call).toBe('error');
      const e = last.call === 'error' ? last.error : null;
      expect(isDrugsyncError(e, 'BINLOG_DECODE_FAILED'), String(e)).toBe(true);
      if (!isDrugsyncError(e)) return;
      expect(e.retryable).toBe(false);
      expect(e.context).toEqual({
        file,
        pos: payload.at,
        event: 'TRANSACTION_PAYLOAD_EVENT',
        setting: 'binlog_transaction_compression',
      });
      expect(e.message).toContain(`${file}:${payload.at}`);
      expect(e.remedy).toMatch(/binlog_transaction_compression=OFF.*backfill --restart/s);
      // zongji's own complaint is kept as the cause
      expect(String((e.cause as Error).message)).toMatch(/^Server sent a TRANSACTION_PAYLOAD_EVENT/);
    },
  );

  it('a PARTIAL_UPDATE_ROWS stops the reader with BINLOG_DECODE_FAILED naming binlog_row_value_options, after every row before it', async () => {
    // Act
    const { stream, replay } = await readFile('json.binlog.000001');

    // Assess
    const partial = stream.events.find((e) => e.type === EventType.PARTIAL_UPDATE_ROWS)!;
    const rowsEvents = stream.events.filter((e) => e.type >= 30 && e.type <= 32);
    expect(replay.calls.filter((c) => c.call === 'rows')).toHaveLength(rowsEvents.length);
    const last = replay.calls[replay.calls.length - 1]!;
    const e = last.call === 'error' ? last.error : null;
    expect(isDrugsyncError(e, 'BINLOG_DECODE_FAILED'), String(e)).toBe(true);
    if (!isDrugsyncError(e)) return;
    expect(e.context).toMatchObject({ pos: partial.at, setting: 'binlog_row_value_options' });
    expect(e.remedy).toMatch(/binlog_row_value_options='' \(the default\)/);
  });
});

interface TableMapRead extends ZEvent {
  tableName: string;
  columnNames: string[];
  columnVisibility?: boolean[];
  signedness?: (boolean | undefined)[];
  primaryKey?: number[];
  buildColumnSchemas(): ColumnSchema[];
}

async function tableMapOf(file: string): Promise<{ tm: TableMapRead; byName: Record<string, ColumnSchema> }> {
  const { replay } = await readFile(file);
  const tm = replay.zongji.events.find((e) => e.getTypeName() === 'TableMap') as TableMapRead;
  const byName = Object.fromEntries(tm.buildColumnSchemas().map((s) => [s.COLUMN_NAME, s]));
  return { tm, byName };
}

describe('FULL table-map metadata, as the decoders get their columns from it', () => {
  it('COLUMN_VISIBILITY and SIGNEDNESS (binlog-invisible-columns: f1, f2 INT UNSIGNED INVISIBLE, f3 INT, f4 TEXT, f5 BLOB, f6 BIGINT UNSIGNED INVISIBLE)', async () => {
    const { tm, byName } = await tableMapOf('binlog-invisible-columns.000001');
    expect(tm.columnNames).toEqual(['f1', 'f2', 'f3', 'f4', 'f5', 'f6']);
    expect(tm.columnVisibility).toEqual([false, false, true, true, true, false]);
    expect(tm.signedness).toEqual([true, true, false, undefined, undefined, true]);
    // invisible columns are in every row image all the same (the decoders read them like any column)
    expect([byName.f1?.COLUMN_TYPE, byName.f3?.COLUMN_TYPE, byName.f6?.COLUMN_TYPE]).toEqual([
      'int unsigned',
      'int',
      'bigint unsigned',
    ]);
    expect([byName.f4?.CHARACTER_SET_NAME, byName.f5?.CHARACTER_SET_NAME]).toEqual(['utf8mb4', null]);
  });

  it("ENUM and SET strings and the default charset (mysql-enum-string-set: ENUM('var1', 'variant2', 'foo'), SET('one', 'two', 'three', 'four'))", async () => {
    const { byName } = await tableMapOf('mysql-enum-string-set.000001');
    expect(byName.f3?.ENUM_VALUES).toEqual(['var1', 'variant2', 'foo']);
    expect(byName.f4?.SET_VALUES).toEqual(['one', 'two', 'three', 'four']);
    // CHAR(128) / VARCHAR(300) in utf8mb4: widths recovered from byte lengths over 255 (2-byte prefixes)
    expect([byName.f1?.COLUMN_TYPE, byName.f2?.COLUMN_TYPE]).toEqual(['char(128)', 'varchar(300)']);
    expect([byName.f1?.CHARACTER_SET_NAME, byName.f2?.CHARACTER_SET_NAME]).toEqual(['utf8mb4', 'utf8mb4']);
  });

  it('charsets per column, the primary key and signedness of the 8.4.8 capture (zongji test/parser.js)', async () => {
    const { tm, byName } = await tableMapOf('mysql84-fullmeta.packets.txt');
    expect(tm.columnNames.slice(0, 4)).toEqual(['id', 'i_big', 'u_big', 'dec_col']);
    expect(tm.primaryKey).toEqual([0]);
    expect(tm.columnVisibility?.every(Boolean)).toBe(true);
    expect(tm.signedness?.[2]).toBe(true);
    expect(tm.signedness?.[4]).toBeUndefined();
    expect(byName.e2?.ENUM_VALUES).toEqual(['a,b', "c'd", 'plain']);
    expect(byName.e2?.COLUMN_TYPE).toBe("enum('a,b','c''d','plain')");
    expect(byName.vc?.CHARACTER_SET_NAME).toBe('utf8mb4');
    expect(byName.txt_latin1?.CHARACTER_SET_NAME).toBe('latin1');
    expect(byName.vc_ucs2?.CHARACTER_SET_NAME).toBe('ucs2');
    expect([byName.bin_col?.COLUMN_TYPE, byName.bin_col?.CHARACTER_SET_NAME]).toEqual(['binary(4)', null]);
    expect([byName.dt?.COLUMN_TYPE, byName.u_big?.COLUMN_TYPE]).toEqual(['datetime(3)', 'bigint unsigned']);
  });
});
