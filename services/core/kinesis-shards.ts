/** The shards of a Kinesis stream: one ListShards pager for the reader, the embedder and the CLI. */
import { ListShardsCommand, type KinesisClient, type Shard } from '@aws-sdk/client-kinesis';
import { wrapError } from './errors.ts';

/** What listing shards needs of a Kinesis client (tests pass a fake `send`). */
export type ShardLister = Pick<KinesisClient, 'send'>;

/**
 * Every shard of the stream, open and closed, in the order Kinesis lists them. Pages with NextToken: the
 * first call names the stream, later calls carry the token only (Kinesis refuses both together).
 * Throws KINESIS_LIST_SHARDS_FAILED (retryable) naming the stream.
 */
export async function listAllShards(kinesis: ShardLister, stream: string): Promise<Shard[]> {
  const shards: Shard[] = [];
  let token: string | undefined;
  try {
    do {
      const out = await kinesis.send(
        new ListShardsCommand(token ? { NextToken: token } : { StreamName: stream }),
      );
      shards.push(...(out.Shards ?? []));
      token = out.NextToken;
    } while (token);
  } catch (e) {
    throw wrapError(e, 'KINESIS_LIST_SHARDS_FAILED', `cannot list the shards of stream ${stream}`, {
      context: { stream },
      retryable: true,
      remedy:
        'check the stream exists, KINESIS_ENDPOINT / AWS credentials, and that the role may call kinesis:ListShards',
    });
  }
  return shards;
}

/** An open shard takes new records: it has no ending sequence number (a closed one was split or merged). */
export function isOpenShard(s: Shard): boolean {
  return !s.SequenceNumberRange?.EndingSequenceNumber;
}
