/**
 * Reading a stream back (tests): every event of every shard from TRIM_HORIZON (aggregates
 * deaggregated), decoded as change events, with the shard it sat on.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { decodeChangeEvent } from '../../services/core/events.ts';
import type { ChangeEvent } from '../../services/core/events.ts';
import { listAllShards } from '../../services/core/kinesis-shards.ts';
import { compareBinlogPositions } from '../../services/core/position.ts';
import type { BinlogPosition } from '../../services/core/position.ts';
import type { ShardLister } from '../../services/core/kinesis-shards.ts';
import { decodeStreamRecord, eventId } from '../../services/core/stream-record.ts';

/** An iterator at the oldest record the shard still holds (TRIM_HORIZON); undefined when Kinesis gives none. */
export async function oldestIterator(
  kinesis: ShardLister,
  stream: string,
  shardId: string | undefined,
): Promise<string | undefined> {
  const out = await kinesis.send(
    new GetShardIteratorCommand({ StreamName: stream, ShardId: shardId, ShardIteratorType: 'TRIM_HORIZON' }),
  );
  return out.ShardIterator;
}

export interface ReadBack {
  shardId: string;
  partitionKey: string;
  sequenceNumber: string;
  event: ChangeEvent;
}

/** Incremental reader: each `read()` returns the records added since the previous call. */
export function createStreamTail(kinesis: KinesisClient, stream: string) {
  const iterators = new Map<string, string | null>();
  return {
    async read(): Promise<ReadBack[]> {
      for (const s of await listAllShards(kinesis, stream)) {
        if (!iterators.has(s.ShardId as string)) {
          iterators.set(s.ShardId as string, (await oldestIterator(kinesis, stream, s.ShardId)) ?? null);
        }
      }
      const out: ReadBack[] = [];
      for (const [shardId, iter] of iterators) {
        let it = iter;
        while (it) {
          const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
          for (const rec of r.Records ?? []) {
            // an aggregate's events one by one, named sequence:index (services/core/stream-record.ts)
            for (const u of decodeStreamRecord(rec.Data as Uint8Array, rec.PartitionKey as string)) {
              out.push({
                shardId,
                partitionKey: u.partitionKey,
                sequenceNumber: eventId(rec.SequenceNumber as string, u.subSequence),
                event: decodeChangeEvent(u.json),
              });
            }
          }
          it = r.NextShardIterator ?? null;
          iterators.set(shardId, it);
          if (!r.Records?.length) break;
        }
      }
      return out;
    },
  };
}

/** The end of the last binlog event read back: a checkpoint past every change on the stream is at or past it. */
export function lastEventEnd(records: readonly ReadBack[]): BinlogPosition {
  return records
    .map((r) => ({ file: r.event.binlog.file, pos: r.event.binlog.next }))
    .sort(compareBinlogPositions)
    .at(-1) as BinlogPosition;
}
