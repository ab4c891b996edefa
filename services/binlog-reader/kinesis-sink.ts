/**
 * The subset of Kinesis the publisher (publisher.ts) needs — `KinesisSink`: send these records, answer which
 * failed — and its plainest implementation, `createKinesisSink`: one Kinesis record per event
 * (`KINESIS_AGGREGATION=false`; the format before aggregation). The default sink packs events into KPL
 * aggregates instead (aggregating-sink.ts).
 */
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { RecordCompressor } from '../core/compressor.ts';
import type { OutRecord } from '../core/events.ts';
import { isOpenShard, listAllShards } from '../core/kinesis-shards.ts';

export interface PutResult {
  /** indexes (into the request) of the records Kinesis refused, with its error code */
  failed: { index: number; code: string; message: string }[];
}

/** The subset of Kinesis the publisher needs. */
export interface KinesisSink {
  /** Sends the records (a `broadcast` one to every open shard); answers which request indexes failed. */
  putRecords(records: OutRecord[]): Promise<PutResult>;
  /** Releases what the sink holds (its compression worker). */
  close?(): Promise<void>;
}

/**
 * One Kinesis record per event (`KINESIS_AGGREGATION=false`; the format before aggregation), gzip-compressed
 * when a compressor is given. A broadcast record goes to every open shard, listed for that call
 * (ExplicitHashKey = the shard's StartingHashKey); it fails when any of its copies fails.
 */
export function createKinesisSink(
  kinesis: KinesisClient,
  stream: string,
  opts: { compress?: RecordCompressor | null } = {},
): KinesisSink {
  const compressor = opts.compress ?? null;
  return {
    async close() {
      await compressor?.close();
    },
    async putRecords(records) {
      const keys = records.some((r) => r.broadcast) ? await openShardHashKeys(kinesis, stream) : [];
      const sent: { r: OutRecord; index: number; explicitHashKey?: string }[] = records.flatMap((r, index) =>
        r.broadcast ? keys.map((k) => ({ r, index, explicitHashKey: k })) : [{ r, index }],
      );
      // compressed here, per call, a batch at a time (on a worker thread: see services/core/compressor.ts)
      const data = compressor ? await compressor.compress(sent.map((x) => x.r.data)) : null;
      const Records: PutRecordsRequestEntry[] = sent.map((x, i) => ({
        Data: data ? data[i] : x.r.data,
        PartitionKey: x.r.partitionKey,
        ...(x.explicitHashKey ? { ExplicitHashKey: x.explicitHashKey } : {}),
      }));
      const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records }));
      const failed = new Map<number, PutResult['failed'][number]>();
      if ((out.FailedRecordCount ?? 0) > 0) {
        (out.Records ?? []).forEach((r, i) => {
          const index = (sent[i] as { index: number }).index;
          if (r.ErrorCode) failed.set(index, { index, code: r.ErrorCode, message: r.ErrorMessage ?? '' });
        });
      }
      return { failed: [...failed.values()] };
    },
  };
}

/** StartingHashKey of every open shard. */
async function openShardHashKeys(kinesis: KinesisClient, stream: string): Promise<string[]> {
  const shards = await listAllShards(kinesis, stream);
  return shards.flatMap((s) =>
    isOpenShard(s) && s.HashKeyRange?.StartingHashKey ? [s.HashKeyRange.StartingHashKey] : [],
  );
}
