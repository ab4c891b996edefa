import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  AggregateBuilder,
  KPL_MAGIC,
  decodeAggregate,
  encodeAggregate,
  isAggregate,
} from '../services/core/kpl.ts';
import type { SubRecord } from '../services/core/kpl.ts';
import { ShardMap, partitionHash } from '../services/core/shard-map.ts';
import { encodeChangeEvent } from '../services/core/events.ts';
import { makeRow } from './support/factories.ts';
import { EventFactory } from './support/events.ts';

const events = new EventFactory();

function catalogueRecords(n: number): SubRecord[] {
  return Array.from({ length: n }, (_, i) => {
    const ev = events.insert(makeRow({}, i));
    return { partitionKey: ev.ndc, data: encodeChangeEvent(ev) };
  });
}

describe('KPL aggregated record format', () => {
  it('round-trips catalogue events in order, with a table event carrying its explicit hash key', () => {
    // Prepare
    const records = catalogueRecords(50);
    const table = events.truncate();
    records.splice(20, 0, {
      partitionKey: '#table',
      explicitHashKey: '170141183460469231731687303715884105728',
      data: encodeChangeEvent(table),
    });
    // Act
    const agg = encodeAggregate(records);
    const back = decodeAggregate(agg);
    // Assess
    expect(isAggregate(agg)).toBe(true);
    expect(agg.subarray(0, 4).equals(KPL_MAGIC)).toBe(true);
    expect(back).toHaveLength(51);
    expect(back.map((r) => r.partitionKey)).toEqual(records.map((r) => r.partitionKey));
    expect(back[20]?.explicitHashKey).toBe('170141183460469231731687303715884105728');
    expect(back[21]?.explicitHashKey).toBeUndefined();
    back.forEach((r, i) => expect(Buffer.from(r.data).equals(Buffer.from(records[i]!.data))).toBe(true));
  });

  it('the builder knows the exact size before building, so an aggregate never passes its bound', () => {
    // Prepare
    const b = new AggregateBuilder();
    const bound = 64 * 1024;
    const records = catalogueRecords(200);
    const sizes: number[] = [];
    // Act
    const out: Buffer[] = [];
    for (const r of records) {
      if (!b.fits(r, bound)) {
        sizes.push(b.bytes);
        out.push(b.build());
      }
      b.add(r);
    }
    sizes.push(b.bytes);
    out.push(b.build());
    // Assess
    expect(out.length).toBeGreaterThan(2);
    out.forEach((agg, i) => {
      expect(agg.length).toBe(sizes[i]);
      expect(agg.length).toBeLessThanOrEqual(bound);
    });
    expect(out.flatMap((a) => decodeAggregate(a)).map((r) => r.partitionKey)).toEqual(
      records.map((r) => r.partitionKey),
    );
  });

  it('a repeated partition key is stored once in the key table', () => {
    const ev = encodeChangeEvent(events.insert(makeRow({}, 3)));
    const one = encodeAggregate([{ partitionKey: '00002012345', data: ev }]);
    const two = encodeAggregate([
      { partitionKey: '00002012345', data: ev },
      { partitionKey: '00002012345', data: ev },
    ]);
    // the second record adds its body only: tag + length + (index field + data field)
    expect(two.length - one.length).toBe(one.length - 4 - 16 - (1 + 1 + 11));
  });

  it('a corrupted aggregate is refused with the reason (digest), not read as garbage', () => {
    const agg = encodeAggregate(catalogueRecords(3));
    agg[40] = (agg[40] as number) ^ 0xff;
    expect(() => decodeAggregate(agg)).toThrow(/MD5 digest/);
    expect(() => decodeAggregate(Buffer.from('{"v":1}'))).toThrow(/no magic/);
  });
});

describe('shard routing as Kinesis does it', () => {
  const twoShards = [
    {
      ShardId: 'shardId-000000000001',
      HashKeyRange: {
        StartingHashKey: '170141183460469231731687303715884105728',
        EndingHashKey: String(2n ** 128n - 1n),
      },
      SequenceNumberRange: { StartingSequenceNumber: '1' },
    },
    {
      ShardId: 'shardId-000000000000',
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: '170141183460469231731687303715884105727' },
      SequenceNumberRange: { StartingSequenceNumber: '1' },
    },
    {
      ShardId: 'shardId-closed',
      HashKeyRange: { StartingHashKey: '0', EndingHashKey: String(2n ** 128n - 1n) },
      SequenceNumberRange: { StartingSequenceNumber: '1', EndingSequenceNumber: '9' },
    },
  ];

  it('hashes a partition key with MD5 as a 128-bit big-endian number', () => {
    const hex = crypto.createHash('md5').update('00002012345').digest('hex');
    expect(partitionHash('00002012345')).toBe(BigInt(`0x${hex}`));
  });

  it('routes each NDC to the open shard whose range holds its hash, and closed shards never', () => {
    const map = new ShardMap(twoShards);
    expect(map.size).toBe(2);
    for (let i = 0; i < 200; i++) {
      const ndc = String(makeRow({}, i).NDC);
      const h = partitionHash(ndc);
      const want = h < 2n ** 127n ? 'shardId-000000000000' : 'shardId-000000000001';
      expect(map.shardFor(ndc).shardId).toBe(want);
    }
    expect(map.shardForHash(0n).startingHashKey).toBe('0');
    expect(map.shardForHash(2n ** 128n - 1n).shardId).toBe('shardId-000000000001');
  });
});
