/**
 * Reading a stream back (tests and the benchmark): every record of every shard from TRIM_HORIZON, decoded
 * as change events, with the shard it sat on. Not used by the service itself.
 */
import { GetRecordsCommand, GetShardIteratorCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { decodeChangeEvent } from '../core/events.ts';
import type { ChangeEvent } from '../core/events.ts';
import { listAllShards } from '../core/kinesis-shards.ts';

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
          const it = await kinesis.send(
            new GetShardIteratorCommand({
              StreamName: stream,
              ShardId: s.ShardId,
              ShardIteratorType: 'TRIM_HORIZON',
            }),
          );
          iterators.set(s.ShardId as string, it.ShardIterator ?? null);
        }
      }
      const out: ReadBack[] = [];
      for (const [shardId, iter] of iterators) {
        let it = iter;
        while (it) {
          const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
          for (const rec of r.Records ?? []) {
            out.push({
              shardId,
              partitionKey: rec.PartitionKey as string,
              sequenceNumber: rec.SequenceNumber as string,
              event: decodeChangeEvent(rec.Data as Uint8Array),
            });
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
