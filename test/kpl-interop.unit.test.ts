/**
 * Our KPL codec against the awslabs library (`aws-kinesis-agg`, what Lambda consumers use to deaggregate):
 * each side reads what the other writes, on real catalogue change events.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { decodeAggregate, encodeAggregate } from '../services/core/kpl.ts';
import type { SubRecord } from '../services/core/kpl.ts';
import { encodeChangeEvent } from '../services/core/events.ts';
import { makeRow } from './support/factories.ts';
import { EventFactory } from './support/events.ts';

interface AwsUserRecord {
  partitionKey: string;
  explicitPartitionKey?: string;
  sequenceNumber: string;
  subSequenceNumber: number;
  data: string;
}
interface AwsAgg {
  aggregate(
    records: { partitionKey: string; explicitHashKey?: string; data: Buffer }[],
    onRecord: (r: { partitionKey: string; data: Buffer }, done: (err?: Error) => void) => void,
    after: () => void,
    onError: (e: Error) => void,
  ): void;
  deaggregateSync(
    record: { partitionKey: string; data: string; sequenceNumber: string },
    computeChecksums: boolean,
    cb: (err: Error | null, records?: AwsUserRecord[]) => void,
  ): void;
}
const agg = createRequire(import.meta.url)('aws-kinesis-agg') as AwsAgg;

const events = new EventFactory();
function catalogue(n: number): SubRecord[] {
  const out: SubRecord[] = Array.from({ length: n }, (_, i) => {
    const before = makeRow({}, i);
    const ev = i % 3 === 0 ? events.update(before, { ...before, PS: '90.000' }) : events.insert(before);
    return { partitionKey: ev.ndc, data: encodeChangeEvent(ev) };
  });
  out.push({
    partitionKey: '#table',
    explicitHashKey: '0',
    data: encodeChangeEvent(events.commit('0-1-77')),
  });
  return out;
}

describe('KPL format interoperability with awslabs aws-kinesis-agg', () => {
  it('the awslabs deaggregator reads our aggregate: keys, explicit hash key, data and sub-sequence order', () => {
    // Prepare
    const records = catalogue(40);
    const data = encodeAggregate(records).toString('base64');
    // Act
    let got: AwsUserRecord[] = [];
    agg.deaggregateSync(
      { partitionKey: records[0]!.partitionKey, data, sequenceNumber: '4965' },
      true,
      (err, rs) => {
        if (err) throw err;
        got = rs ?? [];
      },
    );
    // Assess
    expect(got).toHaveLength(records.length);
    got.forEach((r, i) => {
      expect(r.subSequenceNumber).toBe(i);
      expect(r.partitionKey).toBe(records[i]!.partitionKey);
      expect(Buffer.from(r.data, 'base64').equals(Buffer.from(records[i]!.data))).toBe(true);
    });
    expect(got.at(-1)?.explicitPartitionKey).toBe('0');
  });

  it('we read an aggregate made by the awslabs aggregator', async () => {
    // Prepare
    const records = catalogue(40);
    // Act
    const made: Buffer[] = [];
    await new Promise<void>((resolve, reject) =>
      agg.aggregate(
        records.map((r) => ({ ...r, data: Buffer.from(r.data) })),
        (enc, done) => {
          made.push(enc.data);
          done();
        },
        resolve,
        reject,
      ),
    );
    const back = made.flatMap((m) => decodeAggregate(m));
    // Assess
    expect(made.length).toBeGreaterThanOrEqual(1);
    expect(back.map((r) => r.partitionKey)).toEqual(records.map((r) => r.partitionKey));
    back.forEach((r, i) => expect(Buffer.from(r.data).equals(Buffer.from(records[i]!.data))).toBe(true));
    expect(back.at(-1)?.explicitHashKey).toBe('0');
  });
});
