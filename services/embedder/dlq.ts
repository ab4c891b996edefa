/**
 * Dead-letter queue: where poison records go (undecodable, or a change that failed for good), with the
 * record, the error and the time, so the rest of the batch proceeds and nothing is lost.
 * Locally a Redis stream (keys.deadLetters, XADD); in production SQS (DLQ_QUEUE_URL) — same interface.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import type { StreamRecord } from './types.ts';

export interface DeadLetterInput {
  record: StreamRecord;
  error: DrugsyncError;
  /** what we know of the change, when it decoded */
  ndc?: string | null | undefined;
  pos?: string | null | undefined;
  stream?: string | undefined;
}

export interface DeadLetter {
  /** queue-specific id: Redis stream entry id, or the SQS message id */
  id: string;
  time: string;
  stream: string | null;
  shardId: string;
  sequenceNumber: string;
  partitionKey: string;
  approximateArrivalTimestamp: number | null;
  /** the record's bytes, base64 */
  data: string;
  ndc: string | null;
  pos: string | null;
  error: { code: string; message: string; retryable: boolean; context: Record<string, unknown> };
}

export interface DeadLetterQueue {
  readonly kind: 'redis' | 'sqs';
  put(entries: readonly DeadLetterInput[]): Promise<void>;
  /** Oldest first. */
  list(limit?: number): Promise<DeadLetter[]>;
  /** Removes the entries (after a successful replay). Returns how many were removed. */
  remove(ids: readonly string[]): Promise<number>;
}

export function toDeadLetter(input: DeadLetterInput, id: string, time: Date): DeadLetter {
  const e = input.error;
  return {
    id,
    time: time.toISOString(),
    stream: input.stream ?? null,
    shardId: input.record.shardId,
    sequenceNumber: input.record.sequenceNumber,
    partitionKey: input.record.partitionKey,
    approximateArrivalTimestamp: input.record.approximateArrivalTimestamp ?? null,
    data: Buffer.from(input.record.data).toString('base64'),
    ndc: input.ndc ?? null,
    pos: input.pos ?? null,
    error: { code: e.code, message: e.message, retryable: e.retryable, context: { ...e.context } },
  };
}

export function deadLetterRecord(d: DeadLetter): StreamRecord {
  return {
    sequenceNumber: d.sequenceNumber,
    partitionKey: d.partitionKey,
    shardId: d.shardId,
    data: Buffer.from(d.data, 'base64'),
    approximateArrivalTimestamp: d.approximateArrivalTimestamp ?? undefined,
  };
}

const FIELD = 'letter';

/** Redis stream implementation: one XADD per letter, field `letter` = JSON. */
export function createRedisDeadLetterQueue(
  redis: RedisClient,
  key: string,
  maxLen = 1_000_000,
): DeadLetterQueue {
  const fail = (e: unknown, what: string) =>
    wrapError(e, 'REDIS_UNAVAILABLE', `cannot ${what} the dead-letter stream`, {
      context: { key },
      retryable: true,
      remedy:
        'check that Redis is reachable (`npx drugsync stack status` locally); the batch will be retried',
    });
  return {
    kind: 'redis',
    async put(entries) {
      if (entries.length === 0) return;
      const now = new Date();
      const pipe = redis.pipeline();
      for (const entry of entries) {
        const letter = toDeadLetter(entry, '', now);
        pipe.xadd(key, 'MAXLEN', '~', String(maxLen), '*', FIELD, JSON.stringify(letter));
      }
      let res: [Error | null, unknown][] | null;
      try {
        res = await pipe.exec();
      } catch (e) {
        throw fail(e, 'write to');
      }
      for (const [err] of res ?? []) if (err) throw fail(err, 'write to');
    },
    async list(limit = 1000) {
      let rows: [string, string[]][];
      try {
        rows = (await redis.xrange(key, '-', '+', 'COUNT', limit)) as [string, string[]][];
      } catch (e) {
        throw fail(e, 'read');
      }
      return rows.map(([id, fields]) => {
        const i = fields.indexOf(FIELD);
        const letter = JSON.parse(fields[i + 1] ?? '{}') as DeadLetter;
        return { ...letter, id };
      });
    },
    async remove(ids) {
      if (ids.length === 0) return 0;
      try {
        return await redis.xdel(key, ...ids);
      } catch (e) {
        throw fail(e, 'remove entries from');
      }
    },
  };
}

/**
 * SQS implementation. `list` receives messages with a short visibility timeout (they reappear unless
 * removed); `remove` deletes by the receipt handles of the last `list`.
 */
export function createSqsDeadLetterQueue(sqs: SQSClient, queueUrl: string): DeadLetterQueue {
  const receipts = new Map<string, string>();
  const fail = (e: unknown, what: string) =>
    wrapError(e, 'INTERNAL', `cannot ${what} the SQS dead-letter queue`, {
      context: { queue_url: queueUrl },
      retryable: true,
      remedy: 'check DLQ_QUEUE_URL and that this role may call sqs:SendMessage/ReceiveMessage/DeleteMessage',
    });
  return {
    kind: 'sqs',
    async put(entries) {
      const now = new Date();
      for (let i = 0; i < entries.length; i += 10) {
        const chunk = entries.slice(i, i + 10);
        try {
          const out = await sqs.send(
            new SendMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((entry, j) => ({
                Id: String(j),
                MessageBody: JSON.stringify(toDeadLetter(entry, '', now)),
              })),
            }),
          );
          if (out.Failed && out.Failed.length > 0) {
            throw new DrugsyncError('INTERNAL', `SQS refused ${out.Failed.length} dead letter(s)`, {
              context: { queue_url: queueUrl, reason: out.Failed[0]?.Message },
              retryable: true,
            });
          }
        } catch (e) {
          throw fail(e, 'write to');
        }
      }
    },
    async list(limit = 100) {
      const out: DeadLetter[] = [];
      while (out.length < limit) {
        let res;
        try {
          res = await sqs.send(
            new ReceiveMessageCommand({
              QueueUrl: queueUrl,
              MaxNumberOfMessages: Math.min(10, limit - out.length),
              VisibilityTimeout: 60,
              WaitTimeSeconds: 1,
            }),
          );
        } catch (e) {
          throw fail(e, 'read');
        }
        const msgs = res.Messages ?? [];
        if (msgs.length === 0) break;
        for (const m of msgs) {
          const id = m.MessageId ?? '';
          if (m.ReceiptHandle) receipts.set(id, m.ReceiptHandle);
          out.push({ ...(JSON.parse(m.Body ?? '{}') as DeadLetter), id });
        }
      }
      return out;
    },
    async remove(ids) {
      let removed = 0;
      const known = ids.filter((id) => receipts.has(id));
      for (let i = 0; i < known.length; i += 10) {
        const chunk = known.slice(i, i + 10);
        try {
          const res = await sqs.send(
            new DeleteMessageBatchCommand({
              QueueUrl: queueUrl,
              Entries: chunk.map((id, j) => ({ Id: String(j), ReceiptHandle: receipts.get(id) as string })),
            }),
          );
          removed += res.Successful?.length ?? 0;
        } catch (e) {
          throw fail(e, 'delete from');
        }
      }
      return removed;
    },
  };
}
