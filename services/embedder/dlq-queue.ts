/**
 * What every dead-letter queue transport is (the subset the embedder, `dlq list` and `dlq replay` need), how
 * each of them fails (one vocabulary: the same code for the same failure whichever transport), and the
 * per-record markers that make a letter idempotent. The transports: dlq-redis.ts (a Redis stream, local) and
 * dlq-sqs.ts (SQS, production); the message format: dlq-codec.ts.
 */
import { wrapError } from '../core/errors.ts';
import type { DrugsyncError, ErrorCode } from '../core/errors.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { ShardRecordId } from '../core/keys.ts';
import type { DeadLetter, DeadLetterInput, QueueMessage } from './dlq-codec.ts';

export type DeadLetterTransport = 'redis' | 'sqs';

export interface DeadLetterQueue {
  readonly kind: DeadLetterTransport;
  /** Writes letters; a record (shard + sequence number) already dead-lettered is not written again. */
  put(entries: readonly DeadLetterInput[]): Promise<void>;
  /** Every message, decoded (our letters, Lambda on-failure records, malformed ones), oldest first. */
  messages(limit?: number): Promise<QueueMessage[]>;
  /** Our own dead letters, oldest first (the other kinds: `messages`). */
  list(limit?: number): Promise<DeadLetter[]>;
  /** Removes the messages (after a successful replay) and their letters' markers. Returns how many went. */
  remove(ids: readonly string[]): Promise<number>;
}

// ---------------------------------------------------------------- one error vocabulary

/** What a queue was doing when it failed: each has its code, on every transport. */
export type QueueOperation = 'write' | 'read' | 'remove';

const CODES: Record<QueueOperation, ErrorCode> = {
  write: 'DLQ_WRITE_FAILED',
  read: 'DLQ_READ_FAILED',
  remove: 'DLQ_REMOVE_FAILED',
};

const NEXT: Record<QueueOperation, string> = {
  write: 'the batch is retried (nothing was checkpointed past it)',
  read: 'run the command again',
  remove: 'run `drugsync dlq replay` again (a letter not removed is applied again, which changes nothing)',
};

/** Where a queue lives, as its failures name it. */
export interface QueuePlace {
  transport: DeadLetterTransport;
  /** the Redis stream key, or the SQS queue URL */
  queue: string;
  /** what to check first when the transport fails */
  check: string;
}

/**
 * A queue's failure: `DLQ_WRITE_FAILED` / `DLQ_READ_FAILED` / `DLQ_REMOVE_FAILED` by operation, retryable,
 * with the transport and the queue in its context and what to check. An error already coded is kept.
 */
export function queueFailure(e: unknown, op: QueueOperation, place: QueuePlace): DrugsyncError {
  const name = place.transport === 'redis' ? 'Redis-stream' : 'SQS';
  const verb = op === 'write' ? 'write to' : op === 'read' ? 'read' : 'remove messages from';
  return wrapError(e, CODES[op], `cannot ${verb} the ${name} dead-letter queue`, {
    context: { transport: place.transport, queue: place.queue },
    retryable: true,
    remedy: `${place.check}; ${NEXT[op]}`,
  });
}

/** Runs one operation of a queue, its failure in the vocabulary above. */
export async function queueOp<T>(op: QueueOperation, place: QueuePlace, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (e) {
    throw queueFailure(e, op, place);
  }
}

// ---------------------------------------------------------------- per-record markers

/** Marker TTL when none is given: the tombstone order (TOMBSTONE_TTL_SECONDS' default, 7 days). */
export const DEFAULT_MARKER_TTL_SECONDS = 7 * 24 * 3600;

export interface DeadLetterMarkers {
  redis: RedisClient;
  /** A record's marker key: keys.deadLetterMarker (`<state>dlq:seen:<shard>:<sequence number>`). */
  key: (record: ShardRecordId) => string;
  ttlSeconds?: number | undefined;
}

/** Entries whose record is not yet in this put (the same record twice in one call counts once). */
export function uniqueEntries(
  entries: readonly DeadLetterInput[],
  markerKey: DeadLetterMarkers['key'],
): DeadLetterInput[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const marker = markerKey(e.record);
    if (seen.has(marker)) return false;
    seen.add(marker);
    return true;
  });
}
