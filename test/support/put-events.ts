/** Puts change events on a stream of the shared stack, as the binlog reader would (integration tests). */
import { ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import { compressRecord, encodeChangeEvent } from '../../services/core/events.ts';
import type { ChangeEvent, RowChangeEvent } from '../../services/core/events.ts';

/**
 * Puts change events on a stream as the binlog reader would: row events with the NDC as partition key,
 * table events (truncate, resync) once to every open shard (ExplicitHashKey = the shard's start key).
 */
export async function putEvents(
  kinesis: Pick<KinesisClient, 'send'>,
  stream: string,
  events: readonly (ChangeEvent | Uint8Array)[],
): Promise<void> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const open = shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
  const entries: PutRecordsRequestEntry[] = [];
  for (const e of events) {
    if (e instanceof Uint8Array) {
      entries.push({ Data: e, PartitionKey: 'poison' });
    } else if (e.type === 'truncate' || e.type === 'resync' || e.type === 'commit') {
      for (const s of open)
        entries.push({
          Data: encodeChangeEvent(e),
          PartitionKey: 'table',
          ExplicitHashKey: s.HashKeyRange?.StartingHashKey,
        });
    } else {
      // row events compressed, as the binlog reader writes them by default; table events plain (both occur)
      entries.push({
        Data: compressRecord(encodeChangeEvent(e)),
        PartitionKey: (e as RowChangeEvent).ndc,
      });
    }
  }
  // sequential calls keep each shard's order equal to the events' order
  for (let i = 0; i < entries.length; i += 500) {
    const out = await kinesis.send(
      new PutRecordsCommand({ StreamName: stream, Records: entries.slice(i, i + 500) }),
    );
    if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records were not put on ${stream}`);
  }
}
