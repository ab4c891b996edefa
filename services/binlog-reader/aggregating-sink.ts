/**
 * The Kinesis sink that packs change events into KPL aggregates (../core/kpl.ts), one or more per shard per
 * call, so a shard's 1,000 records/s and 1 MB/s carry ~10,000 events/s instead of ≤ 1,000.
 *
 * - Each event goes to the open shard Kinesis itself would choose for its partition key (MD5 against the
 *   shards' hash-key ranges, ../core/shard-map.ts); its aggregate is sent with that shard's ExplicitHashKey.
 *   Events keep their order inside an aggregate, aggregates of one shard keep the order of the call, and the
 *   publisher never has two calls in flight holding the same NDC: per-NDC order holds as before.
 * - A table event (`broadcast`) is put in every open shard's aggregate, at its place in that shard's order.
 * - Resharding: Kinesis answers each record with the shard it landed on. A record that landed elsewhere than
 *   planned (the map is stale: a split or merge happened) counts as failed: the map is listed again and the
 *   publisher retries those events (and every later event of their keys) on the new map. The copy that landed
 *   on the wrong shard is a duplicate, older than anything later of its NDC: the embedder's position rule
 *   makes it a no-op.
 * - Failure granularity is the aggregate: a refused aggregate fails every event in it.
 */
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { OutRecord } from '../core/events.ts';
import { listAllShards } from '../core/kinesis-shards.ts';
import { AggregateBuilder } from '../core/kpl.ts';
import { ShardMap } from '../core/shard-map.ts';
import type { ShardRange } from '../core/shard-map.ts';
import { frameAggregate } from '../core/stream-record.ts';
import type { AggregateCompression } from '../core/stream-record.ts';
import type { KinesisSink, PutResult } from './kinesis-sink.ts';

/** Uncompressed bound of one aggregate: below Kinesis' 1 MiB record limit whatever compression does. */
export const MAX_AGGREGATE_BYTES = 1_000_000;
/**
 * What one publisher call carries with this sink: 10,000 events or 8 MiB of them before compression (a few
 * aggregates per shard; split into several PutRecords calls if over Kinesis' 500 records / 5 MiB).
 */
export const AGGREGATED_BATCH = { maxBatchRecords: 10_000, maxBatchBytes: 8 * 1024 * 1024 } as const;
const MAX_CALL_RECORDS = 500;
const MAX_CALL_BYTES = 5 * 1024 * 1024;

export interface AggregatingSinkOptions {
  compression: AggregateCompression;
  maxAggregateBytes?: number;
  /** Frames (compresses) aggregates, e.g. on a worker thread; default: on the calling thread. */
  frame?: (aggregates: Buffer[]) => Promise<Buffer[]>;
  close?: () => Promise<void>;
}

export interface AggregationStats {
  /** Kinesis records sent (aggregates) */
  records: number;
  /** events in them (a table event counts once per shard) */
  events: number;
  /** bytes of record data sent (after compression) */
  bytes: number;
  /** records that landed on another shard than planned (resharding) */
  misrouted: number;
  /** times the shard map was listed */
  shardListings: number;
}

/** One planned Kinesis record: the aggregate of a shard and the request indexes of its events. */
interface Planned {
  shard: ShardRange;
  /** the outer record's partition key: its first event's, as the KPL does (the ExplicitHashKey routes) */
  partitionKey: string;
  members: number[];
  kpl: Buffer;
}

/** Packs events into per-shard aggregates, in request order, each ≤ maxBytes. */
export function planAggregates(records: readonly OutRecord[], map: ShardMap, maxBytes: number): Planned[] {
  const open = new Map<string, { shard: ShardRange; builder: AggregateBuilder; members: number[] }>();
  const out: Planned[] = [];
  const flush = (o: { shard: ShardRange; builder: AggregateBuilder; members: number[] }) => {
    if (o.builder.count === 0) return;
    const first = records[o.members[0] as number] as OutRecord;
    out.push({
      shard: o.shard,
      partitionKey: first.partitionKey,
      members: o.members,
      kpl: o.builder.build(),
    });
    o.members = [];
  };
  records.forEach((r, index) => {
    for (const shard of targetsOf(r, map)) {
      let o = open.get(shard.shardId);
      if (!o) open.set(shard.shardId, (o = { shard, builder: new AggregateBuilder(), members: [] }));
      const sub = r.broadcast
        ? { partitionKey: r.partitionKey, explicitHashKey: shard.startingHashKey, data: r.data }
        : { partitionKey: r.partitionKey, data: r.data };
      if (o.builder.count > 0 && !o.builder.fits(sub, maxBytes)) flush(o);
      o.builder.add(sub);
      o.members.push(index);
    }
  });
  for (const o of open.values()) flush(o);
  return out;
}

function targetsOf(r: OutRecord, map: ShardMap): readonly ShardRange[] {
  return r.broadcast ? map.ranges : [map.shardFor(r.partitionKey)];
}

/** Consecutive runs of entries within PutRecords' limits (500 records, 5 MiB). */
function callsOf(entries: PutRecordsRequestEntry[]): PutRecordsRequestEntry[][] {
  const calls: PutRecordsRequestEntry[][] = [];
  let cur: PutRecordsRequestEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const size = (e.Data as Uint8Array).length + Buffer.byteLength(e.PartitionKey as string);
    if (cur.length && (cur.length >= MAX_CALL_RECORDS || bytes + size > MAX_CALL_BYTES)) {
      calls.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += size;
  }
  if (cur.length) calls.push(cur);
  return calls;
}

export function createAggregatingSink(
  kinesis: Pick<KinesisClient, 'send'>,
  stream: string,
  opts: AggregatingSinkOptions,
): KinesisSink & { readonly stats: AggregationStats } {
  const maxBytes = opts.maxAggregateBytes ?? MAX_AGGREGATE_BYTES;
  const frame =
    opts.frame ?? (async (kpls: Buffer[]) => kpls.map((k) => frameAggregate(k, opts.compression)));
  const stats: AggregationStats = { records: 0, events: 0, bytes: 0, misrouted: 0, shardListings: 0 };
  let map: ShardMap | null = null;
  const shardMap = async (): Promise<ShardMap> => {
    if (!map) {
      stats.shardListings += 1;
      map = new ShardMap(await listAllShards(kinesis, stream));
    }
    return map;
  };

  async function send(planned: Planned[], data: Buffer[], failed: Map<number, PutResult['failed'][number]>) {
    const entries: PutRecordsRequestEntry[] = planned.map((p, i) => ({
      Data: data[i],
      PartitionKey: p.partitionKey,
      ExplicitHashKey: p.shard.startingHashKey,
    }));
    let at = 0;
    for (const call of callsOf(entries)) {
      const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records: call }));
      (out.Records ?? []).forEach((r, j) => {
        const p = planned[at + j] as Planned;
        const misrouted = !r.ErrorCode && r.ShardId !== undefined && r.ShardId !== p.shard.shardId;
        if (misrouted) {
          stats.misrouted += 1;
          map = null;
        }
        if (r.ErrorCode || misrouted) {
          const code = r.ErrorCode ?? 'ShardMapStale';
          const message =
            r.ErrorMessage ?? `landed on ${r.ShardId}, planned ${p.shard.shardId}: shards changed`;
          for (const index of p.members) failed.set(index, { index, code, message });
        } else {
          stats.records += 1;
          stats.events += p.members.length;
          stats.bytes += (data[at + j] as Buffer).length;
        }
      });
      at += call.length;
    }
  }

  return {
    stats,
    async close() {
      await opts.close?.();
    },
    async putRecords(records) {
      if (records.some((r) => r.broadcast)) map = null; // a table event goes to the shards open now
      const planned = planAggregates(records, await shardMap(), maxBytes);
      const data = await frame(planned.map((p) => p.kpl));
      const failed = new Map<number, PutResult['failed'][number]>();
      await send(planned, data, failed);
      return { failed: [...failed.values()].sort((a, b) => a.index - b.index) };
    },
  };
}
