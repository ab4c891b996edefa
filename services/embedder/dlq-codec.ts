/**
 * The dead-letter queue's message format, its one owner: what a message body is, written and read side by
 * side. A queue (Redis stream or SQS, dlq-redis.ts / dlq-sqs.ts) may hold three kinds of message, and every
 * one is decoded by `decodeQueueMessage`, which never throws:
 * - our own dead letter (`encodeDeadLetter` / `toDeadLetter`: the record's bytes and the error),
 *   `deadLetterBodySchema`;
 * - a Lambda on-failure record: what a Kinesis event source mapping of an earlier deployment sent to its
 *   on-failure destination when it gave up on a batch (no data: the shard and the sequence-number range, to
 *   re-read), `lambdaOnFailureSchema`;
 * - anything else: malformed (`DLQ_MESSAGE_INVALID` naming the message id and what is wrong), reported,
 *   never fatal.
 * `peekDeadLetterRecord` says which record a body's letter is about (its per-record marker) without the caller
 * handling the kinds.
 */
import { z } from 'zod';
import { DrugsyncError } from '../core/errors.ts';
import type { StreamRecord } from './types.ts';

export interface DeadLetterInput {
  record: StreamRecord;
  error: DrugsyncError;
  /** what we know of the change, when it decoded */
  ndc?: string | null | undefined;
  pos?: string | null | undefined;
  stream?: string | undefined;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
const DIGITS = /^\d+$/;

/** A field a reader can do without: a value of another type reads as the fallback, never as malformed. */
const optionalString = z.string().nullable().catch(null);
const optionalNumber = z.number().nullable().catch(null);

/** Our dead letter as a message body (the JSON `encodeDeadLetter` writes). */
export const deadLetterBodySchema = z.object({
  time: z.string().catch(''),
  stream: optionalString,
  shardId: z.string(),
  sequenceNumber: z.string(),
  partitionKey: z.string(),
  approximateArrivalTimestamp: optionalNumber,
  /** the record's bytes, base64 */
  data: z.string().regex(BASE64, 'not base64'),
  ndc: optionalString,
  pos: optionalString,
  error: z.object({
    code: z.string(),
    message: z.string(),
    retryable: z.boolean().catch(false),
    context: z.record(z.string(), z.unknown()).catch({}),
  }),
});

/** The fields a letter cannot do without, in the order a reason names them. */
const LETTER_REQUIRED = ['shardId', 'sequenceNumber', 'partitionKey', 'data', 'error'] as const;

export type DeadLetter = z.infer<typeof deadLetterBodySchema> & {
  /** queue-specific id: Redis stream entry id, or the SQS message id */
  id: string;
};

const sequenceNumber = z.string().regex(DIGITS, 'not a sequence number (digits)');

/**
 * A Lambda Kinesis event source mapping's on-failure record (the documented shape): the batch it gave up on
 * (`KinesisBatchInfo`) and why (`requestContext.condition`: RetryAttemptsExhausted, RecordAgeExceeded, …).
 */
export const lambdaOnFailureSchema = z.object({
  KinesisBatchInfo: z
    .object({
      shardId: z.string(),
      startSequenceNumber: sequenceNumber,
      endSequenceNumber: sequenceNumber,
      batchSize: optionalNumber,
      streamArn: optionalString,
      approximateArrivalOfFirstRecord: optionalString,
      approximateArrivalOfLastRecord: optionalString,
    })
    .refine(
      (b) =>
        // a range of numbers only (an invalid one is reported by its field)
        !DIGITS.test(b.startSequenceNumber) ||
        !DIGITS.test(b.endSequenceNumber) ||
        BigInt(b.startSequenceNumber) <= BigInt(b.endSequenceNumber),
      { message: 'startSequenceNumber is after endSequenceNumber' },
    ),
  requestContext: z
    .object({
      condition: optionalString,
      requestId: optionalString,
      functionArn: optionalString,
      approximateInvokeCount: optionalNumber,
    })
    .catch({ condition: null, requestId: null, functionArn: null, approximateInvokeCount: null }),
  responseContext: z.object({ functionError: optionalString }).catch({ functionError: null }),
  timestamp: optionalString,
});

/** A Lambda on-failure record, flattened: the batch's range, what Lambda said, and when. */
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

// ---------------------------------------------------------------- encoding

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

/** The message body of a letter, as every queue stores it (the queue gives it its id). */
export function encodeDeadLetter(input: DeadLetterInput, time: Date): string {
  return JSON.stringify(toDeadLetter(input, '', time));
}

/** The record a letter holds, as `applyBatch` takes it (replay). */
export function deadLetterRecord(d: DeadLetter): StreamRecord {
  return {
    sequenceNumber: d.sequenceNumber,
    partitionKey: d.partitionKey,
    shardId: d.shardId,
    data: Buffer.from(d.data, 'base64'),
    approximateArrivalTimestamp: d.approximateArrivalTimestamp ?? undefined,
  };
}

export function letterMessage(letter: DeadLetter): QueueMessage {
  return { kind: 'letter', id: letter.id, letter };
}

/** Our letters among the messages, in order. */
export function lettersOf(messages: readonly QueueMessage[]): DeadLetter[] {
  return messages.flatMap((m) => (m.kind === 'letter' ? [m.letter] : []));
}

// ---------------------------------------------------------------- decoding

/**
 * A message no reader can use: `DLQ_MESSAGE_INVALID` naming it and what is wrong. Kept in the queue and
 * reported beside the others (a transport uses it too, for an entry that carries no body).
 */
export function malformedMessage(id: string, body: string, reason: string): QueueMessage {
  const error = new DrugsyncError('DLQ_MESSAGE_INVALID', `dead-letter queue message ${id}: ${reason}`, {
    context: { message_id: id, reason, body: body.slice(0, 200) },
    remedy:
      'inspect it with `drugsync dlq list --json`; it is kept in the queue and skipped by replay (delete it ' +
      'from the queue by hand once understood)',
  });
  return { kind: 'malformed', id, error, body };
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const issuePath = (i: z.core.$ZodIssue) => i.path.map(String).join('.');

/** Why a letter does not decode: the fields it lacks (or has of another type), else what else is wrong. */
function letterProblem(issues: readonly z.core.$ZodIssue[]): string {
  const lacking = new Set(
    issues
      .filter((i) => i.code === 'invalid_type')
      .map((i) => String(i.path[0]))
      .filter((k) => (LETTER_REQUIRED as readonly string[]).includes(k)),
  );
  if (lacking.size > 0)
    return `dead letter without ${LETTER_REQUIRED.filter((k) => lacking.has(k)).join(', ')}`;
  if (issues.some((i) => i.path[0] === 'data')) return 'dead letter whose data is not base64';
  return `dead letter with ${issues.map((i) => `${issuePath(i)}: ${i.message}`).join('; ')}`;
}

function decodeLetter(id: string, body: string, o: Record<string, unknown>): QueueMessage {
  const parsed = deadLetterBodySchema.safeParse(o);
  if (!parsed.success) return malformedMessage(id, body, letterProblem(parsed.error.issues));
  return letterMessage({ id, ...parsed.data });
}

function decodeLambdaBatch(id: string, body: string, o: Record<string, unknown>): QueueMessage {
  if (!isObject(o.KinesisBatchInfo)) return malformedMessage(id, body, 'KinesisBatchInfo is not an object');
  const parsed = lambdaOnFailureSchema.safeParse(o);
  if (!parsed.success) {
    const what = parsed.error.issues.map((i) => `${issuePath(i)}: ${i.message}`).join('; ');
    return malformedMessage(id, body, `Lambda on-failure record with ${what}`);
  }
  const { KinesisBatchInfo: info, requestContext: req, responseContext: res, timestamp } = parsed.data;
  const batch: LambdaBatchRecord = {
    ...info,
    condition: req.condition,
    requestId: req.requestId,
    functionArn: req.functionArn,
    approximateInvokeCount: req.approximateInvokeCount,
    functionError: res.functionError,
    timestamp,
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
    return malformedMessage(id, text, 'body is not JSON');
  }
  if (!isObject(o)) return malformedMessage(id, text, 'body is not a JSON object');
  if ('KinesisBatchInfo' in o) return decodeLambdaBatch(id, text, o);
  if ('DDBStreamBatchInfo' in o) {
    return malformedMessage(
      id,
      text,
      'a Lambda on-failure record of a DynamoDB stream, not of our Kinesis stream',
    );
  }
  if ('sequenceNumber' in o || 'error' in o || 'data' in o) return decodeLetter(id, text, o);
  return malformedMessage(
    id,
    text,
    'neither a drugsync dead letter nor a Lambda on-failure record (KinesisBatchInfo)',
  );
}

/** The record (shard, sequence number) a body's letter is about; null for any other kind of message. */
export function peekDeadLetterRecord(
  body: string | null | undefined,
): { shardId: string; sequenceNumber: string } | null {
  const m = decodeQueueMessage('', body);
  return m.kind === 'letter' ? { shardId: m.letter.shardId, sequenceNumber: m.letter.sequenceNumber } : null;
}
