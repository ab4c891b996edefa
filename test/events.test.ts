import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChangeEvent } from '../services/core/events.ts';
import {
  changeEventJsonSchema,
  changeEventSchema,
  isChangeEventShape,
  compressRecord,
  decodeChangeEvent,
  encodeChangeEvent,
} from '../services/core/events.ts';
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
