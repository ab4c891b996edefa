import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent, RowChangeEvent, TableEvent } from '../services/core/events.ts';
import {
  changeEventJsonSchema,
  changeEventSchema,
  isChangeEventShape,
  compressRecord,
  decodeChangeEvent,
  encodeChangeEvent,
  peekChangeEvent,
  rowRecord,
  tableRecord,
  TABLE_EVENT_PARTITION_KEY,
} from '../services/core/events.ts';
import { rowChangeEvents, tableEvent } from '../services/binlog-reader/row-events.ts';
import type { RowsEvent } from '../services/binlog-reader/source.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { sourcePosition } from '../services/core/position.ts';
import { EventFactory, makeRow } from './support/events.ts';

const update: ChangeEvent = {
  v: 1,
  type: 'update',
  schema: 'fdb',
  table: 'rndc14',
  ndc: '00071015523',
  before: {
    NDC: '00071015523',
    LN: 'LIPITOR 10 MG TABLET',
    PS: '90.000',
    OBSDTEC: '0000-00-00 00:00:00.000000',
  },
  after: {
    NDC: '00071015523',
    LN: 'LIPITOR 10 MG TABLET',
    PS: '30.000',
    OBSDTEC: '0000-00-00 00:00:00.000000',
  },
  pos: sourcePosition('binlog.000003', 91_234, 2),
  binlog: { file: 'binlog.000003', pos: 91_234, row: 2, next: 95_001 },
  gtid: '0-1-4711',
  ts: 1_763_880_000_000,
  txid: '88213',
};

describe('change-event format v1', () => {
  it('round-trips a row event exactly (decimals as strings, zero dates kept)', () => {
    expect(decodeChangeEvent(encodeChangeEvent(update))).toEqual(update);
  });

  it('encodes UTF-8 exactly, whatever the characters of the names (ASCII, Latin-1, 4-byte, lone surrogates)', () => {
    // Prepare: the same event with label names of every kind of text
    const names = [
      'LIPITOR 10 MG TABLET',
      'CAFÉ-AU-LAIT CRÈME 1 %',
      'ÿ',
      '💊 ASPIRIN 81 MG 𝔸',
      'BROKEN \ud800 SURROGATE',
      'QUOTE " BACKSLASH \\ TAB \t',
    ];
    for (const LN of names) {
      const e: ChangeEvent = { ...update, after: { ...update.after, LN } } as ChangeEvent;
      // Act
      const bytes = encodeChangeEvent(e);
      // Assess: the bytes of the UTF-8 encoding of the JSON, and the event back as JSON gives it
      expect(bytes.equals(Buffer.from(JSON.stringify(e), 'utf8'))).toBe(true);
      const back = decodeChangeEvent(bytes);
      expect(back).toEqual(JSON.parse(JSON.stringify(e)));
    }
  });

  it('refuses records that are not JSON, of another version, or off the schema, naming why', () => {
    const cases: [string, string][] = [
      ['{"v":1,"type":"upsert"', 'EVENT_DECODE_FAILED'],
      [JSON.stringify({ ...update, v: 2 }), 'EVENT_VERSION_UNSUPPORTED'],
      [JSON.stringify({ ...update, pos: 'binlog.000003:91234' }), 'EVENT_DECODE_FAILED'],
      [JSON.stringify({ ...update, ndc: '' }), 'EVENT_DECODE_FAILED'],
    ];
    for (const [text, code] of cases) {
      let err: unknown;
      try {
        decodeChangeEvent(text, { shard: 'shardId-000000000001', sequence: '4960' });
      } catch (e) {
        err = e;
      }
      expect(isDrugsyncError(err, code as never), text).toBe(true);
      expect((err as { context: Record<string, string> }).context.shard).toBe('shardId-000000000001');
    }
  });

  it('accepts exactly what the schema accepts: the fast check agrees with zod on valid events and on every mutation of them', () => {
    // Prepare: realistic events of every type, then each with one field removed or given a wrong value
    const f = new EventFactory('binlog.000007');
    const a = makeRow(1, { LN: 'ELIQUIS 5 MG TABLET', PS: '60.000' });
    const b = makeRow(1, { LN: 'ELIQUIS 5 MG TABLET', PS: '180.000' });
    const valid: ChangeEvent[] = [
      f.insert(a),
      f.update(a, b),
      f.delete(b),
      ...f.ndcChange(a, makeRow(2)),
      f.truncate(),
      f.commit('0-1-99'),
      f.resync(),
      { ...f.insert(a), gtid: null },
    ];
    const wrong: unknown[] = [undefined, null, 1, 1.5, '', 'x', true, [], {}, { A: true }, { A: [1] }];
    const mutants: unknown[] = [];
    for (const e of valid) {
      const o = e as unknown as Record<string, unknown>;
      for (const k of Object.keys(o)) {
        const { [k]: _gone, ...without } = o;
        mutants.push(without);
        for (const w of wrong) mutants.push({ ...o, [k]: w });
      }
      for (const k of ['file', 'pos', 'row', 'next'])
        for (const w of wrong) mutants.push({ ...o, binlog: { ...(o.binlog as object), [k]: w } });
      for (const w of wrong) mutants.push({ ...o, ndc_change: { from: '1', to: w } });
      mutants.push({ ...o, pos: String(o.pos).slice(1) }, { ...o, type: 'upsert' }, { ...o, extra: 1 });
    }
    // Act + Assess
    for (const e of valid) expect(isChangeEventShape(e)).toBe(true);
    let refused = 0;
    for (const m of mutants) {
      const zod = changeEventSchema.safeParse(m).success;
      expect(isChangeEventShape(m), JSON.stringify(m)?.slice(0, 200)).toBe(zod);
      if (!zod) refused++;
    }
    expect(mutants.length).toBeGreaterThan(1000);
    expect(refused).toBeGreaterThan(mutants.length / 2);
  });

  it('keeps docs/change-event.schema.json in step with the code', () => {
    const committed = JSON.parse(
      fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'change-event.schema.json'), 'utf8'),
    );
    expect(committed).toEqual(changeEventJsonSchema());
  });

  it('decodes gzip-compressed records exactly as plain ones, and names a corrupt one', async () => {
    // Prepare
    const plain = encodeChangeEvent(update);
    const packed = compressRecord(plain);
    // Act / Assess
    expect(packed.length).toBeLessThan(plain.length);
    expect(decodeChangeEvent(packed)).toEqual(decodeChangeEvent(plain));
    const corrupt = Buffer.concat([packed.subarray(0, 12), Buffer.from('not gzip')]);
    const err = (() => {
      try {
        decodeChangeEvent(corrupt, { shard: 'shardId-000000000000' });
      } catch (e) {
        return e;
      }
    })();
    expect(isDrugsyncError(err, 'EVENT_DECODE_FAILED')).toBe(true);
    expect((err as { context: Record<string, string> }).context.shard).toBe('shardId-000000000000');
  });
});

/** Binlog rows of every operation, as the reader gets them, with odd characters in values and the txid. */
function binlogEvents(txid: string): ChangeEvent[] {
  const place = { file: 'mysql-bin.000042', next: 88_120, ts: 1_763_880_000_000, gtid: txid };
  const a = makeRow(3, { LN: 'QUOTE " BACKSLASH \\ "type":"delete" 💊', BN: 'CAFÉ\u0000\n' });
  const b = makeRow(3, { LN: '"txid":"forged"', PS: '180.000' });
  const c = makeRow(4, { LN: 'ÿ \t TAB' });
  const tx = { txid, gtid: txid, ts: place.ts };
  const rows = (op: RowsEvent['op'], pos: number, r: RowsEvent['rows']): RowsEvent => ({
    ...place,
    op,
    pos,
    schema: 'fdb',
    table: 'rndc14',
    rows: r,
  });
  const stmt = { ...place, pos: 88_000, query: 'TRUNCATE TABLE `fdb`.`rndc14` /* "type":"insert" */', txid };
  return [
    ...rowChangeEvents(rows('insert', 87_100, [a]), tx),
    ...rowChangeEvents(rows('update', 87_400, [{ before: a, after: b }]), tx),
    ...rowChangeEvents(rows('update', 87_700, [{ before: b, after: c }]), tx),
    ...rowChangeEvents(rows('delete', 87_900, [c]), tx),
    tableEvent('truncate', stmt, 'fdb', 'rndc14'),
    tableEvent(
      'resync',
      { ...stmt, query: 'RENAME TABLE rndc14 TO rndc14_old, rndc14_new TO rndc14' },
      'fdb',
      'rndc14',
    ),
    tableEvent('commit', { ...stmt, query: 'COMMIT' }, 'fdb', 'rndc14'),
  ];
}

describe('peekChangeEvent', () => {
  it('agrees with decode on every event kind, whatever the characters of values and txid', () => {
    // Prepare: every kind, built by the reader's own builders, under txids plain and odd
    const txids = ['0-1-4711', 'mysql-bin.000042:87000', 'odd "quoted" \\ txid \u2028 ✓', '3E11FA47-71CA:23'];
    const events = txids.flatMap(binlogEvents);
    // Act
    const peeked = events.map((e) => peekChangeEvent(encodeChangeEvent(e)));
    // Assess
    expect(new Set(events.map((e) => e.type))).toEqual(
      new Set(['insert', 'update', 'delete', 'truncate', 'resync', 'commit']),
    );
    events.forEach((e, i) => {
      const decoded = decodeChangeEvent(encodeChangeEvent(e));
      expect(peeked[i]).toEqual({ type: decoded.type, txid: decoded.txid });
    });
  });

  it('reads the event from the bytes of its record, at an offset inside a larger buffer', () => {
    // Prepare: a record's bytes as a view into a bigger buffer (as a Kinesis response hands them over)
    const [ev] = binlogEvents('0-1-9');
    const bytes = rowRecord(ev as RowChangeEvent).data;
    const big = Buffer.concat([Buffer.from('{"v":1,"type":"resync","txid":"other"}'), bytes]);
    // Act
    const peeked = peekChangeEvent(big.subarray(big.length - bytes.length));
    // Assess
    expect(peeked).toEqual({ type: 'insert', txid: '0-1-9' });
  });

  it('relies on the encoder writing txid and type before the row images (the fixed key order)', () => {
    // Prepare: the keys of every encoded event, in order
    const events = binlogEvents('0-1-9');
    // Act
    const orders = events.map((e) => Object.keys(JSON.parse(encodeChangeEvent(e).toString('utf8'))));
    // Assess: the common fields, then type, before anything carrying row data or statements
    for (const keys of orders) {
      const last = Math.max(keys.indexOf('txid'), keys.indexOf('type'));
      const data = ['before', 'after', 'statement', 'ndc_change']
        .map((k) => keys.indexOf(k))
        .filter((i) => i >= 0);
      expect(keys.slice(0, 3)).toContain('v');
      expect(Math.min(...data)).toBeGreaterThan(last);
    }
    // and the order matters: a row image first would be read instead of the event
    const [insert] = events as [RowChangeEvent];
    const { before: _none, ...rest } = insert;
    const reordered = Buffer.from(JSON.stringify({ before: { type: 'delete', txid: 'x' }, ...rest }));
    expect(peekChangeEvent(reordered)).toEqual({ type: 'delete', txid: 'x' });
  });

  it('answers null where a record has no type or txid, or is not JSON', () => {
    // Prepare
    const texts = ['', 'not json', '{"v":1,"type":"upsert","txid":"1"}', '{"v":1,"txid":"unterminated'];
    // Act
    const peeked = texts.map((t) => peekChangeEvent(Buffer.from(t)));
    // Assess
    expect(peeked).toEqual([
      { type: null, txid: null },
      { type: null, txid: null },
      { type: null, txid: '1' },
      { type: null, txid: null },
    ]);
  });
});

describe('Kinesis records of events', () => {
  it('partitions a row event by its NDC and marks a table event for every shard', () => {
    // Prepare
    const events = binlogEvents('0-1-12');
    const insert = events[0] as RowChangeEvent;
    const truncate = events.find((e) => e.type === 'truncate') as TableEvent;
    // Act
    const row = rowRecord(insert);
    const table = tableRecord(truncate);
    // Assess
    expect(row).toEqual({ data: encodeChangeEvent(insert), partitionKey: insert.ndc, ndc: insert.ndc });
    expect(table).toMatchObject({ partitionKey: TABLE_EVENT_PARTITION_KEY, broadcast: true, ndc: null });
    expect(decodeChangeEvent(table.data)).toEqual(truncate);
  });
});
