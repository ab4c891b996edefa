/**
 * Dead-letter queue: where poison records go (undecodable, or a change that failed for good), with the
 * record, the error and the time, so the rest of the batch proceeds and nothing is lost.
 * Locally a Redis stream (keys.deadLetters, XADD); in production SQS (DLQ_QUEUE_URL) — same interface.
 *
 * The message format (our letters, Lambda on-failure records, malformed messages) is dlq-codec.ts's.
 *
 * Dead letters are idempotent per record (shard + sequence number): a marker key beside the queue
 * (`<deadLetters>:seen:<shard>:<sequence number>`, under the state prefix, with a TTL of the tombstone
 * order) is checked before the put, so a poison record read twice (a consumer that stopped before its
 * checkpoint) leaves one letter. Removing a letter (after its replay) removes its marker.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { ErrorCode } from '../core/errors.ts';
import type { RedisClient } from '../core/clients/redis.ts';
import { decodeQueueMessage, encodeDeadLetter, malformedMessage } from './dlq-codec.ts';
import type { DeadLetter, DeadLetterInput, QueueMessage } from './dlq-codec.ts';

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

export interface DeadLetterQueue {
  readonly kind: 'redis' | 'sqs';
  /** Writes letters; a record (shard + sequence number) already dead-lettered is not written again. */
  put(entries: readonly DeadLetterInput[]): Promise<void>;
  /** Our own dead letters, oldest first (other kinds of message: `messages`). */
  list(limit?: number): Promise<DeadLetter[]>;
  /** Every message, decoded (our letters, Lambda on-failure records, malformed ones), oldest first. */
  messages?(limit?: number): Promise<QueueMessage[]>;
  /** Removes the entries (after a successful replay). Returns how many were removed. */
  remove(ids: readonly string[]): Promise<number>;
}

/** Every message of a queue; a queue without `messages` holds only our letters. */
export async function queueMessages(q: DeadLetterQueue, limit?: number): Promise<QueueMessage[]> {
  if (q.messages) return q.messages(limit);
  return (await q.list(limit)).map((letter) => ({ kind: 'letter', id: letter.id, letter }));
}

// ---------------------------------------------------------------- per-record markers

/** Marker TTL when none is given: the tombstone order (TOMBSTONE_TTL_SECONDS' default, 7 days). */
export const DEFAULT_MARKER_TTL_SECONDS = 7 * 24 * 3600;

/** Where a queue's per-record markers live: beside the dead-letter stream key, under the state prefix. */
export function deadLetterMarkerPrefix(deadLettersKey: string): string {
  return `${deadLettersKey}:seen:`;
}

export interface DeadLetterMarkers {
  redis: RedisClient;
  /** `deadLetterMarkerPrefix(keys.deadLetters)` */
  prefix: string;
  ttlSeconds?: number | undefined;
}

const markerKey = (prefix: string, r: { shardId: string; sequenceNumber: string }) =>
  `${prefix}${r.shardId}:${r.sequenceNumber}`;

/** Entries whose record is not yet in this put (the same record twice in one call counts once). */
function uniqueEntries(entries: readonly DeadLetterInput[], prefix: string): DeadLetterInput[] {
  const seen = new Set<string>();
  return entries.filter((e) => {
    const k = markerKey(prefix, e.record);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

// ---------------------------------------------------------------- Redis stream

const FIELD = 'letter';

/**
 * Adds the letter unless the record's marker exists, and sets the marker, atomically.
 * KEYS: stream, marker. ARGV: ttl seconds, max length, letter JSON. Returns the entry id or false.
 */
const PUT_ONCE = `
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', '${FIELD}', ARGV[3])
redis.call('SET', KEYS[2], id, 'EX', tonumber(ARGV[1]))
return id
`;

export interface RedisQueueOptions {
  maxLen?: number;
  /** TTL of the per-record markers (TOMBSTONE_TTL_SECONDS) */
  markerTtlSeconds?: number;
}

/** A stream entry's message: the `letter` field (any other shape is reported as malformed). */
function entryMessage(id: string, fields: string[]): QueueMessage {
  const i = fields.indexOf(FIELD);
  if (i < 0 || i % 2 !== 0) {
    const names = fields.filter((_, k) => k % 2 === 0).join(', ');
    return malformedMessage(
      id,
      fields.join(' '),
      `stream entry without a "${FIELD}" field (fields: ${names || 'none'})`,
    );
  }
  return decodeQueueMessage(id, fields[i + 1]);
}

/** Redis stream implementation: one XADD per letter, field `letter` = JSON. */
export function createRedisDeadLetterQueue(
  redis: RedisClient,
  key: string,
  opts: RedisQueueOptions = {},
): DeadLetterQueue {
  const maxLen = opts.maxLen ?? 1_000_000;
  const ttl = opts.markerTtlSeconds ?? DEFAULT_MARKER_TTL_SECONDS;
  const prefix = deadLetterMarkerPrefix(key);
  const fail = (e: unknown, what: string) =>
    wrapError(e, 'REDIS_UNAVAILABLE', `cannot ${what} the dead-letter stream`, {
      context: { key },
      retryable: true,
      remedy:
        'check that Redis is reachable (`npx drugsync stack status` locally); the batch will be retried',
    });
  const messages = async (limit = 1000): Promise<QueueMessage[]> => {
    let rows: [string, string[]][];
    try {
      rows = (await redis.xrange(key, '-', '+', 'COUNT', limit)) as [string, string[]][];
    } catch (e) {
      throw fail(e, 'read');
    }
    return rows.map(([id, fields]) => entryMessage(id, fields));
  };
  return {
    kind: 'redis',
    async put(entries) {
      if (entries.length === 0) return;
      const now = new Date();
      const pipe = redis.pipeline();
      for (const entry of uniqueEntries(entries, prefix)) {
        const letter = encodeDeadLetter(entry, now);
        pipe.eval(PUT_ONCE, 2, key, markerKey(prefix, entry.record), String(ttl), String(maxLen), letter);
      }
      let res: [Error | null, unknown][] | null;
      try {
        res = await pipe.exec();
      } catch (e) {
        throw fail(e, 'write to');
      }
      for (const [err] of res ?? []) if (err) throw fail(err, 'write to');
    },
    messages,
    async list(limit = 1000) {
      return (await messages(limit)).flatMap((m) => (m.kind === 'letter' ? [m.letter] : []));
    },
    async remove(ids) {
      if (ids.length === 0) return 0;
      try {
        const read = redis.pipeline();
        for (const id of ids) read.xrange(key, id, id);
        const markers: string[] = [];
        for (const [, rows] of (await read.exec()) ?? []) {
          for (const [id, fields] of (rows ?? []) as [string, string[]][]) {
            const m = entryMessage(id, fields);
            if (m.kind === 'letter') markers.push(markerKey(prefix, m.letter));
          }
        }
        const removed = await redis.xdel(key, ...ids);
        if (markers.length > 0) await redis.del(...markers);
        return removed;
      } catch (e) {
        throw fail(e, 'remove entries from');
      }
    },
  };
}

// ---------------------------------------------------------------- SQS

/**
 * Records of `entries` not yet dead-lettered (no marker). SQS and Redis cannot be written atomically, so
 * the marker is set after the send (`markSent`): a process that dies between the two sends the letter
 * again on its retry (a duplicate, never a loss); a marker set before a send that fails would lose it.
 */
async function notYetSent(
  entries: readonly DeadLetterInput[],
  markers: DeadLetterMarkers | undefined,
): Promise<DeadLetterInput[]> {
  if (!markers) return [...entries];
  const unique = uniqueEntries(entries, markers.prefix);
  if (unique.length === 0) return unique;
  const seen = await markers.redis.mget(...unique.map((e) => markerKey(markers.prefix, e.record)));
  return unique.filter((_, i) => seen[i] === null);
}

async function markSent(
  sent: { entry: DeadLetterInput; messageId: string }[],
  markers: DeadLetterMarkers | undefined,
): Promise<void> {
  if (!markers || sent.length === 0) return;
  const ttl = markers.ttlSeconds ?? DEFAULT_MARKER_TTL_SECONDS;
  const pipe = markers.redis.pipeline();
  for (const s of sent) pipe.set(markerKey(markers.prefix, s.entry.record), s.messageId, 'EX', ttl);
  const res = await pipe.exec();
  for (const [err] of res ?? []) if (err) throw err;
}

/** One SendMessageBatch / DeleteMessageBatch call carries at most this many entries. */
const SQS_BATCH = 10;

const chunks = <T>(items: readonly T[]): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += SQS_BATCH) out.push(items.slice(i, i + SQS_BATCH));
  return out;
};

/**
 * SQS implementation. `messages`/`list` receive with a short visibility timeout (they reappear unless
 * removed); `remove` deletes by the receipt handles of the last `messages`/`list`. With `markers`, a
 * record already dead-lettered is not sent again.
 */
class SqsDeadLetterQueue implements DeadLetterQueue {
  readonly kind = 'sqs';
  /** message id → receipt handle of its last receive */
  private readonly receipts = new Map<string, string>();
  /** message id → its record's marker key */
  private readonly markerOf = new Map<string, string>();

  constructor(
    private readonly sqs: SQSClient,
    private readonly queueUrl: string,
    private readonly markers?: DeadLetterMarkers,
  ) {}

  async put(entries: readonly DeadLetterInput[]): Promise<void> {
    const now = new Date();
    let todo: DeadLetterInput[];
    try {
      todo = await notYetSent(entries, this.markers);
    } catch (e) {
      throw this.fail(e, 'DLQ_WRITE_FAILED', 'check the markers of');
    }
    for (const chunk of chunks(todo)) {
      try {
        await this.sendChunk(chunk, now);
      } catch (e) {
        throw this.fail(e, 'DLQ_WRITE_FAILED', 'write to');
      }
    }
  }

  async messages(limit = 100): Promise<QueueMessage[]> {
    const out: QueueMessage[] = [];
    while (out.length < limit) {
      const received = await this.receive(Math.min(SQS_BATCH, limit - out.length));
      if (received.length === 0) break;
      out.push(...received);
    }
    return out;
  }

  async list(limit = 100): Promise<DeadLetter[]> {
    return (await this.messages(limit)).flatMap((m) => (m.kind === 'letter' ? [m.letter] : []));
  }

  async remove(ids: readonly string[]): Promise<number> {
    let removed = 0;
    for (const chunk of chunks(ids.filter((id) => this.receipts.has(id)))) {
      try {
        removed += await this.deleteChunk(chunk);
      } catch (e) {
        throw this.fail(e, 'DLQ_REMOVE_FAILED', 'delete from');
      }
    }
    return removed;
  }

  private async sendChunk(chunk: DeadLetterInput[], now: Date): Promise<void> {
    const out = await this.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: chunk.map((entry, j) => ({
          Id: String(j),
          MessageBody: encodeDeadLetter(entry, now),
        })),
      }),
    );
    const sent = (out.Successful ?? []).map((s) => ({
      entry: chunk[Number(s.Id)] as DeadLetterInput,
      messageId: s.MessageId ?? '',
    }));
    await markSent(sent, this.markers);
    if (out.Failed && out.Failed.length > 0) {
      throw new DrugsyncError('DLQ_WRITE_FAILED', `SQS refused ${out.Failed.length} dead letter(s)`, {
        context: { queue_url: this.queueUrl, reason: out.Failed[0]?.Message },
        retryable: true,
      });
    }
  }

  /** One ReceiveMessage, decoded; remembers each message's receipt handle and marker. */
  private async receive(max: number): Promise<QueueMessage[]> {
    let res;
    try {
      res = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: max,
          VisibilityTimeout: 60,
          WaitTimeSeconds: 1,
        }),
      );
    } catch (e) {
      throw this.fail(e, 'DLQ_READ_FAILED', 'read');
    }
    return (res.Messages ?? []).map((m) => {
      const id = m.MessageId ?? '';
      if (m.ReceiptHandle) this.receipts.set(id, m.ReceiptHandle);
      const decoded = decodeQueueMessage(id, m.Body);
      if (this.markers && decoded.kind === 'letter')
        this.markerOf.set(id, markerKey(this.markers.prefix, decoded.letter));
      return decoded;
    });
  }

  /** Deletes received messages and their records' markers; returns how many SQS deleted. */
  private async deleteChunk(chunk: string[]): Promise<number> {
    const res = await this.sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: this.queueUrl,
        Entries: chunk.map((id, j) => ({ Id: String(j), ReceiptHandle: this.receipts.get(id) as string })),
      }),
    );
    const done = (res.Successful ?? []).map((s) => chunk[Number(s.Id)] as string);
    const keys = done.flatMap((id) => (this.markerOf.has(id) ? [this.markerOf.get(id) as string] : []));
    if (this.markers && keys.length > 0) await this.markers.redis.del(...keys);
    return done.length;
  }

  private fail(e: unknown, code: ErrorCode, what: string): DrugsyncError {
    return wrapError(e, code, `cannot ${what} the SQS dead-letter queue`, {
      context: { queue_url: this.queueUrl },
      retryable: true,
      remedy: 'check DLQ_QUEUE_URL and that this role may call sqs:SendMessage/ReceiveMessage/DeleteMessage',
    });
  }
}

export function createSqsDeadLetterQueue(
  sqs: SQSClient,
  queueUrl: string,
  markers?: DeadLetterMarkers,
): DeadLetterQueue {
  return new SqsDeadLetterQueue(sqs, queueUrl, markers);
}
