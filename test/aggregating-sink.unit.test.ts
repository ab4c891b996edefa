import { ListShardsCommand } from '@aws-sdk/client-kinesis';
import type { PutRecordsRequestEntry, Shard, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { describe, expect, it } from 'vitest';
import { createAggregatingSink } from '../services/binlog-reader/aggregating-sink.ts';
import { encodeChangeEvent, rowRecord } from '../services/core/events.ts';
import type { OutRecord } from '../services/core/events.ts';
import { decodeStreamRecord } from '../services/core/stream-record.ts';
import { partitionHash } from '../services/core/shard-map.ts';
import { makeRow } from './support/factories.ts';
import { EventFactory } from './support/events.ts';

const TOP = 2n ** 128n - 1n;

/** Kinesis as far as routing goes: open shards with hash ranges, PutRecords landing by ExplicitHashKey. */
class RoutingKinesis {
  shards: Shard[] = [];
  landed: { shardId: string; data: Uint8Array; partitionKey: string }[] = [];
  refuse = new Set<string>();
  private next = 0;
  constructor(ranges: [bigint, bigint][]) {
    for (const r of ranges) this.add(r);
  }
  add([start, end]: [bigint, bigint]): string {
    const id = `shardId-${String(this.next++).padStart(12, '0')}`;
    this.shards.push({
      ShardId: id,
      HashKeyRange: { StartingHashKey: String(start), EndingHashKey: String(end) },
      SequenceNumberRange: { StartingSequenceNumber: '1' },
    });
    return id;
  }
  /** Splits the open shard holding `at` into [start, at-1] and [at, end]. */
  split(at: bigint): void {
    const s = this.open().find(
      (x) => BigInt(x.HashKeyRange!.StartingHashKey!) < at && at <= BigInt(x.HashKeyRange!.EndingHashKey!),
    )!;
    s.SequenceNumberRange!.EndingSequenceNumber = '99';
    this.add([BigInt(s.HashKeyRange!.StartingHashKey!), at - 1n]);
    this.add([at, BigInt(s.HashKeyRange!.EndingHashKey!)]);
  }
  open(): Shard[] {
    return this.shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
  }
  async send(cmd: unknown): Promise<unknown> {
    if (cmd instanceof ListShardsCommand) return { Shards: this.shards.map((s) => structuredClone(s)) };
    const records = (cmd as PutRecordsCommand).input.Records as PutRecordsRequestEntry[];
    return {
      Records: records.map((r) => {
        const h = BigInt(r.ExplicitHashKey as string);
        const s = this.open().find(
          (x) => BigInt(x.HashKeyRange!.StartingHashKey!) <= h && h <= BigInt(x.HashKeyRange!.EndingHashKey!),
        )!;
        if (this.refuse.has(s.ShardId!))
          return { ErrorCode: 'ProvisionedThroughputExceededException', ErrorMessage: 'slow down' };
        this.landed.push({
          shardId: s.ShardId!,
          data: r.Data as Uint8Array,
          partitionKey: r.PartitionKey as string,
        });
        return { ShardId: s.ShardId, SequenceNumber: String(this.landed.length) };
      }),
    };
  }
  /** Every event that landed, per shard, in order: its partition key. */
  keysByShard(): Map<string, string[]> {
    const m = new Map<string, string[]>();
    for (const l of this.landed) {
      const keys = decodeStreamRecord(l.data, l.partitionKey).map((u) => u.partitionKey);
      m.set(l.shardId, [...(m.get(l.shardId) ?? []), ...keys]);
    }
    return m;
  }
  shardOf(pk: string): string {
    const h = partitionHash(pk);
    return this.open().find(
      (x) => BigInt(x.HashKeyRange!.StartingHashKey!) <= h && h <= BigInt(x.HashKeyRange!.EndingHashKey!),
    )!.ShardId!;
  }
}

const events = new EventFactory();
function rowRecords(n: number, from = 0): OutRecord[] {
  return Array.from({ length: n }, (_, i) => rowRecord(events.insert(makeRow({}, from + i))));
}
const truncate = (): OutRecord => ({
  data: encodeChangeEvent(events.truncate()),
  partitionKey: '#table',
  broadcast: true,
  ndc: null,
});

describe('aggregating Kinesis sink', () => {
  it('packs each event into the aggregate of the shard Kinesis would pick, in order, table events on every shard', async () => {
    // Prepare
    const kinesis = new RoutingKinesis([
      [0n, 2n ** 127n - 1n],
      [2n ** 127n, TOP],
    ]);
    const sink = createAggregatingSink(kinesis, 'drugsync-changes', { compression: 'zstd' });
    const batch = [...rowRecords(120), truncate(), ...rowRecords(80, 120)];
    // Act
    const res = await sink.putRecords(batch);
    // Assess
    expect(res.failed).toEqual([]);
    expect(kinesis.landed).toHaveLength(2);
    for (const [shardId, keys] of kinesis.keysByShard()) {
      const want = batch
        .filter((r) => r.broadcast || kinesis.shardOf(r.partitionKey) === shardId)
        .map((r) => r.partitionKey);
      expect(keys).toEqual(want);
    }
    expect(sink.stats).toMatchObject({ records: 2, events: 202, misrouted: 0 });
  });

  it('keeps every aggregate under its byte bound', async () => {
    const kinesis = new RoutingKinesis([[0n, TOP]]);
    const sink = createAggregatingSink(kinesis, 's', { compression: 'none', maxAggregateBytes: 40_000 });
    const batch = rowRecords(100);
    await sink.putRecords(batch);
    expect(kinesis.landed.length).toBeGreaterThan(2);
    for (const l of kinesis.landed) expect(l.data.length).toBeLessThanOrEqual(40_000);
    expect(kinesis.keysByShard().get('shardId-000000000000')).toEqual(batch.map((r) => r.partitionKey));
  });

  it('a shard split after the map was listed: misrouted aggregates fail as ShardMapStale and the retry lands right', async () => {
    // Prepare
    const kinesis = new RoutingKinesis([
      [0n, 2n ** 127n - 1n],
      [2n ** 127n, TOP],
    ]);
    const sink = createAggregatingSink(kinesis, 's', { compression: 'zstd' });
    await sink.putRecords(rowRecords(10));
    kinesis.split(2n ** 126n);
    const batch = rowRecords(200, 10);
    // Act
    const first = await sink.putRecords(batch);
    const retry = batch.filter((_, i) => first.failed.some((f) => f.index === i));
    const second = await sink.putRecords(retry);
    // Assess
    expect(first.failed.length).toBeGreaterThan(0);
    expect(first.failed.every((f) => f.code === 'ShardMapStale')).toBe(true);
    expect(second.failed).toEqual([]);
    expect(sink.stats.misrouted).toBe(1);
    expect(sink.stats.shardListings).toBe(2);
    const lastLanding = kinesis.landed.slice(-3);
    for (const l of lastLanding) {
      for (const u of decodeStreamRecord(l.data, l.partitionKey))
        expect(kinesis.shardOf(u.partitionKey)).toBe(l.shardId);
    }
  });

  it('a refused aggregate fails exactly its events, with the Kinesis error code', async () => {
    const kinesis = new RoutingKinesis([
      [0n, 2n ** 127n - 1n],
      [2n ** 127n, TOP],
    ]);
    kinesis.refuse.add('shardId-000000000001');
    const sink = createAggregatingSink(kinesis, 's', { compression: 'zstd' });
    const batch = rowRecords(60);
    const res = await sink.putRecords(batch);
    const onRefused = batch.flatMap((r, i) =>
      kinesis.shardOf(r.partitionKey) === 'shardId-000000000001' ? [i] : [],
    );
    expect(res.failed.map((f) => f.index)).toEqual(onRefused);
    expect(new Set(res.failed.map((f) => f.code))).toEqual(
      new Set(['ProvisionedThroughputExceededException']),
    );
  });
});
