/**
 * Dead-letter queue: where poison records go (undecodable, or a change that failed for good), with the
 * record, the error and the time, so the rest of the batch proceeds and nothing is lost.
 * Locally a Redis stream (keys.deadLetters, XADD); in production SQS (DLQ_QUEUE_URL) — same interface.
 *
 * The queue may hold three kinds of message, and every one is decoded by `decodeQueueMessage`:
 * - our own dead letter (`toDeadLetter`: the record's bytes and the error);
 * - a Lambda on-failure record: what a Kinesis event source mapping sends to its on-failure destination
 *   when it gives up on a batch (no data: the shard and the sequence-number range, to re-read);
 * - anything else: malformed (DLQ_MESSAGE_INVALID naming the message id), reported, never fatal.
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

/**
 * A Lambda Kinesis event source mapping's on-failure record, flattened: the batch it gave up on
 * (`KinesisBatchInfo`) and why (`requestContext.condition`: RetryAttemptsExhausted, RecordAgeExceeded, …).
 */
export interface LambdaBatchRecord {
  shardId: string;
  startSequenceNumber: string;
  endSequenceNumber: string;
  batchSize: number | null;
  streamArn: string | null;
  approximateArrivalOfFirstRecord: string | null;
  approximateArrivalOfLastRecord: string | null;
  condition: string | null;
  requestId: string | null;
  functionArn: string | null;
  approximateInvokeCount: number | null;
  functionError: string | null;
  /** when Lambda wrote the record */
  timestamp: string | null;
}

/** One message of the queue, decoded. */
export type QueueMessage =
  | { kind: 'letter'; id: string; letter: DeadLetter }
  | { kind: 'lambda_batch'; id: string; batch: LambdaBatchRecord }
  | { kind: 'malformed'; id: string; error: DrugsyncError; body: string };

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

// ---------------------------------------------------------------- decoding

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DIGITS = /^\d+$/;

function invalid(id: string, body: string, reason: string): QueueMessage {
  const error = new DrugsyncError('DLQ_MESSAGE_INVALID', `dead-letter queue message ${id}: ${reason}`, {
    context: { message_id: id, reason, body: body.slice(0, 200) },
    remedy:
      'inspect it with `drugsync dlq list --json`; it is kept in the queue and skipped by replay (delete it ' +
      'from the queue by hand once understood)',
  });
  return { kind: 'malformed', id, error, body };
}

function decodeLetter(id: string, body: string, o: Json): QueueMessage {
  const missing = ['shardId', 'sequenceNumber', 'partitionKey', 'data'].filter((k) => str(o[k]) === null);
  const err = o.error;
  if (!isObject(err) || str(err.code) === null || str(err.message) === null) missing.push('error');
  if (missing.length > 0) return invalid(id, body, `dead letter without ${missing.join(', ')}`);
  if (!BASE64.test(o.data as string)) return invalid(id, body, 'dead letter whose data is not base64');
  const e = err as Json;
  const letter: DeadLetter = {
    id,
    time: str(o.time) ?? '',
    stream: str(o.stream),
    shardId: o.shardId as string,
    sequenceNumber: o.sequenceNumber as string,
    partitionKey: o.partitionKey as string,
    approximateArrivalTimestamp: num(o.approximateArrivalTimestamp),
    data: o.data as string,
    ndc: str(o.ndc),
    pos: str(o.pos),
    error: {
      code: e.code as string,
      message: e.message as string,
      retryable: e.retryable === true,
      context: isObject(e.context) ? e.context : {},
    },
  };
  return { kind: 'letter', id, letter };
}

function decodeLambdaBatch(id: string, body: string, o: Json): QueueMessage {
  const info = o.KinesisBatchInfo;
  if (!isObject(info)) return invalid(id, body, 'KinesisBatchInfo is not an object');
  const [shardId, start, end] = [
    str(info.shardId),
    str(info.startSequenceNumber),
    str(info.endSequenceNumber),
  ];
  if (!shardId || !start || !end || !DIGITS.test(start) || !DIGITS.test(end)) {
    return invalid(id, body, 'Lambda on-failure record without shardId and a numeric sequence-number range');
  }
  if (BigInt(start) > BigInt(end)) {
    return invalid(id, body, 'Lambda on-failure record whose startSequenceNumber is after its end');
  }
  const req = isObject(o.requestContext) ? o.requestContext : {};
  const res = isObject(o.responseContext) ? o.responseContext : {};
  const batch: LambdaBatchRecord = {
    shardId,
    startSequenceNumber: start,
    endSequenceNumber: end,
    batchSize: num(info.batchSize),
    streamArn: str(info.streamArn),
    approximateArrivalOfFirstRecord: str(info.approximateArrivalOfFirstRecord),
    approximateArrivalOfLastRecord: str(info.approximateArrivalOfLastRecord),
    condition: str(req.condition),
    requestId: str(req.requestId),
    functionArn: str(req.functionArn),
    approximateInvokeCount: num(req.approximateInvokeCount),
    functionError: str(res.functionError),
    timestamp: str(o.timestamp),
  };
  return { kind: 'lambda_batch', id, batch };
}

/**
 * The one decoder of queue messages: our dead letter, a Lambda on-failure record (Kinesis), or malformed
 * (never throws: a malformed message is reported beside the others, with the reason).
 */
export function decodeQueueMessage(id: string, body: string | null | undefined): QueueMessage {
  const text = body ?? '';
  let o: unknown;
  try {
    o = JSON.parse(text);
  } catch {
    return invalid(id, text, 'body is not JSON');
  }
  if (!isObject(o)) return invalid(id, text, 'body is not a JSON object');
  if ('KinesisBatchInfo' in o) return decodeLambdaBatch(id, text, o);
  if ('DDBStreamBatchInfo' in o) {
    return invalid(id, text, 'a Lambda on-failure record of a DynamoDB stream, not of our Kinesis stream');
  }
  if ('sequenceNumber' in o || 'error' in o || 'data' in o) return decodeLetter(id, text, o);
  return invalid(
    id,
    text,
    'neither a drugsync dead letter nor a Lambda on-failure record (KinesisBatchInfo)',
  );
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
    return invalid(
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
        const letter = JSON.stringify(toDeadLetter(entry, '', now));
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
          MessageBody: JSON.stringify(toDeadLetter(entry, '', now)),
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
