/**
 * Dead-letter queue: where poison records go (undecodable, or a change that failed for good), with the
 * record, the error and the time, so the rest of the batch proceeds and nothing is lost. What the rest of
 * the embedder imports; the parts:
 * - dlq-codec.ts: the message format, its one owner (our letters, the Lambda on-failure records of an
 *   earlier deployment, malformed messages; zod schemas, encode / decode / peek);
 * - dlq-queue.ts: the `DeadLetterQueue` interface every transport implements, its one error vocabulary
 *   (`DLQ_WRITE_FAILED` / `DLQ_READ_FAILED` / `DLQ_REMOVE_FAILED` whichever transport) and the per-record
 *   markers;
 * - dlq-redis.ts: a Redis stream (locally: keys.deadLetters, XADD); dlq-sqs.ts: SQS (production:
 *   DLQ_QUEUE_URL).
 *
 * Dead letters are idempotent per record (shard + sequence number): a marker key beside the queue
 * (keys.deadLetterMarker: `<state>dlq:seen:<shard>:<sequence number>`, with a TTL of the tombstone
 * order) is checked before the put, so a poison record read twice (a consumer that stopped before its
 * checkpoint) leaves one letter. Removing a letter (after its replay) removes its marker.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { RedisClient } from '../core/clients/redis.ts';
import type { QueueMessage } from './dlq-codec.ts';
import type { DeadLetterMarkers, DeadLetterQueue } from './dlq-queue.ts';
import { RedisStreamDeadLetterQueue } from './dlq-redis.ts';
import type { RedisQueueKeys, RedisQueueOptions } from './dlq-redis.ts';
import { SqsDeadLetterQueue } from './dlq-sqs.ts';

export {
  deadLetterBodySchema,
  deadLetterRecord,
  decodeQueueMessage,
  encodeDeadLetter,
  lambdaOnFailureSchema,
  letterMessage,
  lettersOf,
  malformedMessage,
  peekDeadLetterRecord,
  toDeadLetter,
} from './dlq-codec.ts';
export type { DeadLetter, DeadLetterInput, LambdaBatchRecord, QueueMessage } from './dlq-codec.ts';
export { DEFAULT_MARKER_TTL_SECONDS, queueFailure } from './dlq-queue.ts';
export type { DeadLetterMarkers, DeadLetterQueue, DeadLetterTransport, QueueOperation } from './dlq-queue.ts';
export { RedisStreamDeadLetterQueue } from './dlq-redis.ts';
export type { RedisQueueKeys, RedisQueueOptions } from './dlq-redis.ts';
export { SqsDeadLetterQueue } from './dlq-sqs.ts';

/** Every message of a queue, decoded, oldest first. */
export async function queueMessages(q: DeadLetterQueue, limit?: number): Promise<QueueMessage[]> {
  return q.messages(limit);
}

/** The Redis-stream queue (field `letter` = the message body) at keys.deadLetters. */
export function createRedisDeadLetterQueue(
  redis: RedisClient,
  keys: RedisQueueKeys,
  opts: RedisQueueOptions = {},
): DeadLetterQueue {
  return new RedisStreamDeadLetterQueue(redis, keys, opts);
}

/** The SQS queue; with `markers`, a record already dead-lettered is not sent again. */
export function createSqsDeadLetterQueue(
  sqs: SQSClient,
  queueUrl: string,
  markers?: DeadLetterMarkers,
): DeadLetterQueue {
  return new SqsDeadLetterQueue(sqs, queueUrl, markers);
}
