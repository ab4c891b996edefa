/**
 * Kinesis' own routing, computed on our side: a record goes to the open shard whose hash-key range holds the
 * MD5 of its partition key, read as a 128-bit unsigned big-endian integer (or holds its ExplicitHashKey when
 * one is given). The binlog reader packs the events bound for one shard into one record and sends it with
 * that shard's ExplicitHashKey, so every event of one NDC still lands on the shard Kinesis would have chosen.
 */
import crypto from 'node:crypto';
import type { Shard } from '@aws-sdk/client-kinesis';

/** The hash key Kinesis derives from a partition key. */
export function partitionHash(partitionKey: string): bigint {
  return BigInt(`0x${crypto.createHash('md5').update(partitionKey, 'utf8').digest('hex')}`);
}

export interface ShardRange {
  shardId: string;
  start: bigint;
  end: bigint;
  /** the shard's StartingHashKey as Kinesis writes it: an ExplicitHashKey that routes to this shard */
  startingHashKey: string;
}

/** The open shards' hash-key ranges, sorted, with a lookup by partition key. */
export class ShardMap {
  readonly ranges: readonly ShardRange[];

  constructor(shards: readonly Shard[]) {
    this.ranges = shards
      .filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber)
      .map((s) => ({
        shardId: s.ShardId as string,
        start: BigInt(s.HashKeyRange?.StartingHashKey ?? '0'),
        end: BigInt(s.HashKeyRange?.EndingHashKey ?? '0'),
        startingHashKey: s.HashKeyRange?.StartingHashKey ?? '0',
      }))
      .sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  }

  get size(): number {
    return this.ranges.length;
  }

  /** The open shard a hash key falls in (ranges of open shards cover the whole key space). */
  shardForHash(h: bigint): ShardRange {
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((this.ranges[mid] as ShardRange).start <= h) lo = mid;
      else hi = mid - 1;
    }
    const r = this.ranges[lo];
    if (!r || h < r.start || h > r.end) {
      throw new Error(`no open shard holds hash key ${h} (${this.ranges.length} open shards)`);
    }
    return r;
  }

  shardFor(partitionKey: string): ShardRange {
    return this.shardForHash(partitionHash(partitionKey));
  }
}
