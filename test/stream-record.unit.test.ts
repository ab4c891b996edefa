import zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { encodeAggregate } from '../services/core/kpl.ts';
import type { SubRecord } from '../services/core/kpl.ts';
import {
  decodeStreamRecord,
  eventId,
  frameAggregate,
  framingOf,
  isAtOrBefore,
  iteratorAfter,
  parseEventId,
} from '../services/core/stream-record.ts';
import { decodeChangeEvent, encodeChangeEvent } from '../services/core/events.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { makeRow } from './support/factories.ts';
import { EventFactory } from './support/events.ts';

const events = new EventFactory();
const rowEvents = Array.from({ length: 300 }, (_, i) => {
  const row = makeRow({}, i);
  return i % 2 ? events.update(row, { ...row, PS: '100.000' }) : events.insert(row);
});
const subs: SubRecord[] = rowEvents.map((e) => ({ partitionKey: e.ndc, data: encodeChangeEvent(e) }));

describe('stream record framing', () => {
  it('an aggregate, zstd-framed or plain, decodes to its events in order with their sub-sequence', () => {
    for (const compression of ['zstd', 'none'] as const) {
      // Act
      const data = frameAggregate(encodeAggregate(subs), compression);
      const out = decodeStreamRecord(data, subs[0]!.partitionKey);
      // Assess
      expect(framingOf(data)).toBe(compression === 'zstd' ? 'kpl+zstd' : 'kpl');
      expect(out.map((u) => u.subSequence)).toEqual(subs.map((_, i) => i));
      expect(out.map((u) => decodeChangeEvent(u.json))).toEqual(rowEvents);
    }
  });

  it('zstd makes catalogue events several times smaller than one-at-a-time gzip', () => {
    const zstd = frameAggregate(encodeAggregate(subs), 'zstd').length / subs.length;
    const gzipEach = subs.reduce((n, s) => n + zlib.gzipSync(s.data, { level: 1 }).length, 0) / subs.length;
    expect(zstd * 4).toBeLessThan(gzipEach);
  });

  it('single-event records from before aggregation (gzip or plain JSON) still decode', () => {
    const e = rowEvents[1]!;
    for (const data of [zlib.gzipSync(encodeChangeEvent(e)), encodeChangeEvent(e)]) {
      const out = decodeStreamRecord(data, e.ndc);
      expect(out).toHaveLength(1);
      expect(out[0]).toMatchObject({ partitionKey: e.ndc, subSequence: null });
      expect(decodeChangeEvent(out[0]!.json)).toEqual(e);
    }
  });

  it('unreadable data is STREAM_RECORD_INVALID naming the framing and the reason', () => {
    const broken = frameAggregate(encodeAggregate(subs.slice(0, 3)), 'zstd').subarray(0, 40);
    for (const data of [broken, Buffer.from('not an event')]) {
      try {
        decodeStreamRecord(data, 'k');
        expect.unreachable();
      } catch (e) {
        expect(isDrugsyncError(e, 'STREAM_RECORD_INVALID')).toBe(true);
        expect((e as { context: { reason: string } }).context.reason.length).toBeGreaterThan(5);
      }
    }
  });
});

describe('event ids on a shard', () => {
  it('names an aggregate event sequence:index and a single record by its sequence number', () => {
    expect(eventId('4965', 3)).toBe('4965:3');
    expect(eventId('4965', null)).toBe('4965');
    expect(parseEventId('4965:3')).toEqual({ sequenceNumber: '4965', subSequence: 3 });
    expect(parseEventId('4965')).toEqual({ sequenceNumber: '4965', subSequence: null });
  });

  it('re-reads an aggregate checkpointed inside it, and reads after a whole record', () => {
    expect(iteratorAfter('4965:3')).toEqual({
      ShardIteratorType: 'AT_SEQUENCE_NUMBER',
      StartingSequenceNumber: '4965',
    });
    expect(iteratorAfter('4965')).toEqual({
      ShardIteratorType: 'AFTER_SEQUENCE_NUMBER',
      StartingSequenceNumber: '4965',
    });
  });

  it('skips exactly the events at or before the checkpoint', () => {
    expect(isAtOrBefore('4965:3', '4965:3')).toBe(true);
    expect(isAtOrBefore('4965:4', '4965:3')).toBe(false);
    expect(isAtOrBefore('4964:9', '4965:3')).toBe(true);
    expect(isAtOrBefore('49650000000000000000000000001:0', '9965:3')).toBe(false);
    expect(isAtOrBefore('4965', '4965')).toBe(true);
    expect(isAtOrBefore('4965:7', '4965')).toBe(true);
  });
});
