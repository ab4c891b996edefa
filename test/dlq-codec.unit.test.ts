/**
 * The dead-letter queue's message format (services/embedder/dlq-codec.ts), without a server: each of the
 * three kinds of message round-trips (our letter through encode and decode, the documented Lambda on-failure
 * record of a Kinesis event source mapping, a malformed body kept as it was), the peek agrees with the
 * decoder, and malformed input is `DLQ_MESSAGE_INVALID` naming the message and what is wrong.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DrugsyncError } from '../services/core/errors.ts';
import {
  deadLetterRecord,
  decodeQueueMessage,
  encodeDeadLetter,
  peekDeadLetterRecord,
  toDeadLetter,
} from '../services/embedder/dlq.ts';
import type { DeadLetterInput, QueueMessage } from '../services/embedder/dlq.ts';
import { EventFactory, RecordFactory, makeRow } from './support/events.ts';
import { lambdaOnFailure } from './support/lambda-on-failure.ts';

const SHARD = 'shardId-000000000000';

type Kind<K extends QueueMessage['kind']> = Extract<QueueMessage, { kind: K }>;

describe('decodeQueueMessage (beside toDeadLetter)', () => {
  it('decodes our letter as toDeadLetter wrote it, byte for byte', () => {
    // Prepare
    const ev = new EventFactory();
    const row = makeRow(7);
    const record = new RecordFactory('shardId-000000000001').record(ev.insert(row));
    const written = toDeadLetter(
      {
        record,
        error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected', {
          context: { ndc: String(row.NDC) },
        }),
        ndc: String(row.NDC),
        pos: ev.insert(row).pos,
        stream: 'drugsync-changes',
      },
      '',
      new Date('2026-12-01T10:00:00.000Z'),
    );
    // Act
    const m = decodeQueueMessage('1765-0', JSON.stringify(written));
    // Assess
    expect(m.kind).toBe('letter');
    const letter = (m as Extract<QueueMessage, { kind: 'letter' }>).letter;
    expect(letter).toEqual({ ...written, id: '1765-0' });
    expect(Buffer.from(letter.data, 'base64')).toEqual(Buffer.from(record.data));
  });

  it('decodes the documented Lambda on-failure record of a Kinesis event source mapping', () => {
    // Prepare
    const body = lambdaOnFailure({
      shardId: 'shardId-000000000001',
      start: '49601189658422359378836298521827638475320189012309704722',
      end: '49601189658422359378836298522902373528957594348623495186',
      batchSize: 500,
      streamArn: 'arn:aws:kinesis:us-east-1:123456789012:stream/drugsync-prod-changes',
    });
    // Act
    const m = decodeQueueMessage('c9b8fa9f-sqs', JSON.stringify(body));
    // Assess
    expect(m).toMatchObject({
      kind: 'lambda_batch',
      id: 'c9b8fa9f-sqs',
      batch: {
        shardId: 'shardId-000000000001',
        startSequenceNumber: body.KinesisBatchInfo.startSequenceNumber,
        endSequenceNumber: body.KinesisBatchInfo.endSequenceNumber,
        batchSize: 500,
        condition: 'RetryAttemptsExhausted',
        functionError: 'Unhandled',
        approximateInvokeCount: 4,
        timestamp: body.timestamp,
        streamArn: body.KinesisBatchInfo.streamArn,
      },
    });
  });

  it('reports anything else as DLQ_MESSAGE_INVALID naming the message and why, without throwing', () => {
    // Prepare
    const full = JSON.stringify(
      lambdaOnFailure({ shardId: SHARD, start: '1', end: '2', batchSize: 2, streamArn: 'x' }),
    );
    const ddb = JSON.stringify({ requestContext: {}, DDBStreamBatchInfo: { shardId: 's' } });
    const noError = JSON.stringify({ shardId: SHARD, sequenceNumber: '1', partitionKey: 'k', data: 'AA==' });
    const cases: [string, string | undefined, RegExp][] = [
      ['m-cut', full.slice(0, 90), /not JSON/],
      ['m-ddb', ddb, /DynamoDB/],
      ['m-noerr', noError, /without error/],
      ['m-array', '[1,2]', /not a JSON object/],
      ['m-empty', undefined, /not JSON/],
      ['m-other', '{"hello":"world"}', /neither/],
    ];
    for (const [id, body, why] of cases) {
      // Act
      const m = decodeQueueMessage(id, body);
      // Assess
      expect(m.kind, id).toBe('malformed');
      const err = (m as Extract<QueueMessage, { kind: 'malformed' }>).error;
      expect(err.code).toBe('DLQ_MESSAGE_INVALID');
      expect(err.message).toContain(id);
      expect(err.message).toMatch(why);
      expect(err.remedy).toBeTruthy();
    }
  });
});

/** What the embedder dead-letters: a change Bedrock refused, an event of an aggregate, bytes no framing reads. */
function poisonEntries(): DeadLetterInput[] {
  const ev = new EventFactory('binlog.000042');
  const rec = new RecordFactory('shardId-000000000003');
  const refused = makeRow(11, { LN: 'ALPRAZOLAM 0.5 MG TABLET' });
  const updated = makeRow(4);
  const update = ev.update(updated, { ...updated, PS: '90.000', LN: 'INSULIN GLARGINE 100 UNIT/ML VIAL' });
  const fromAggregate = rec.record(update);
  return [
    {
      record: rec.record(ev.insert(refused)),
      error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected', {
        context: { ndc: String(refused.NDC), model: 'amazon.titan-embed-text-v2:0' },
      }),
      ndc: String(refused.NDC),
      pos: ev.insert(refused).pos,
      stream: 'drugsync-prod-changes',
    },
    {
      // one event of a KPL aggregate: `sequence:index`, its own partition key
      record: { ...fromAggregate, sequenceNumber: `${fromAggregate.sequenceNumber}:17` },
      error: new DrugsyncError('INTERNAL', 'stored text kept changing under the write', {
        context: { ndc: update.ndc, shards: ['shardId-000000000003', 'shardId-000000000004'] },
        retryable: true,
      }),
      ndc: update.ndc,
      pos: update.pos,
      stream: 'drugsync-prod-changes',
    },
    {
      // a record no framing reads: the whole record, nothing known of the change
      record: rec.record(Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(700)]), 'x'),
      error: new DrugsyncError('STREAM_RECORD_INVALID', 'zstd frame does not decompress'),
    },
  ];
}

describe('dead-letter codec: each kind round-trips', () => {
  it('our letter: encode → decode gives the letter, its record byte for byte and the same body back', () => {
    // Prepare
    const time = new Date('2026-12-02T08:15:00.123Z');
    for (const [i, entry] of poisonEntries().entries()) {
      const body = encodeDeadLetter(entry, time);
      const id = `1764663300123-${i}`;
      // Act
      const m = decodeQueueMessage(id, body);
      // Assess
      expect(m.kind, id).toBe('letter');
      const letter = (m as Kind<'letter'>).letter;
      expect(letter).toEqual(toDeadLetter(entry, id, time));
      expect(deadLetterRecord(letter)).toEqual({ ...entry.record, data: Buffer.from(entry.record.data) });
      expect(letter.error).toEqual({
        code: entry.error.code,
        message: entry.error.message,
        retryable: entry.error.retryable,
        context: entry.error.context,
      });
      // the decoded letter is the encoded one field for field, in the same order (`dlq list --json`)
      expect(JSON.stringify({ ...letter, id: '' })).toBe(body);
      expect(peekDeadLetterRecord(body)).toEqual({
        shardId: entry.record.shardId,
        sequenceNumber: entry.record.sequenceNumber,
      });
    }
  });

  it('a Lambda on-failure record: every field of the documented shape, flattened; no letter to peek', () => {
    // Prepare: both conditions Lambda gives up with, and a record without its request/response contexts
    const arn = 'arn:aws:kinesis:us-east-1:123456789012:stream/drugsync-prod-changes';
    const range = {
      shardId: 'shardId-000000000002',
      start: '49601189658422359378836298521827638475320189012309704722',
      end: '49601189658422359378836298522902373528957594348623495186',
      batchSize: 100,
      streamArn: arn,
    };
    const exhausted = lambdaOnFailure(range);
    const aged = lambdaOnFailure({ ...range, condition: 'RecordAgeExceeded' });
    const { requestContext: _r, responseContext: _s, ...bare } = lambdaOnFailure(range);
    for (const [name, record] of [
      ['exhausted', exhausted],
      ['aged', aged],
    ] as const) {
      const body = JSON.stringify(record);
      // Act
      const m = decodeQueueMessage(name, body);
      // Assess
      expect(m).toEqual({
        kind: 'lambda_batch',
        id: name,
        batch: {
          ...record.KinesisBatchInfo,
          condition: record.requestContext.condition,
          requestId: record.requestContext.requestId,
          functionArn: record.requestContext.functionArn,
          approximateInvokeCount: record.requestContext.approximateInvokeCount,
          functionError: record.responseContext.functionError,
          timestamp: record.timestamp,
        },
      });
      expect(peekDeadLetterRecord(body)).toBeNull();
    }
    const m = decodeQueueMessage('bare', JSON.stringify(bare));
    expect(m).toMatchObject({
      kind: 'lambda_batch',
      batch: { shardId: range.shardId, condition: null, requestId: null, functionError: null },
    });
  });

  it('a malformed message: kept as it was, with its id; no letter to peek', () => {
    // Prepare: a letter cut short in transit
    const body = encodeDeadLetter(poisonEntries()[0]!, new Date('2026-12-02T08:15:00.000Z')).slice(0, 150);
    // Act
    const m = decodeQueueMessage('b1f1c7d2-sqs', body);
    // Assess
    expect(m).toMatchObject({ kind: 'malformed', id: 'b1f1c7d2-sqs', body });
    expect((m as Kind<'malformed'>).error.context).toMatchObject({
      message_id: 'b1f1c7d2-sqs',
      reason: 'body is not JSON',
      body,
    });
    expect(peekDeadLetterRecord(body)).toBeNull();
  });

  it('fields a reader can do without read as null (or false, or empty) when of another type', () => {
    // Prepare: a letter written by hand, its optional fields of the wrong type
    const letter = JSON.parse(encodeDeadLetter(poisonEntries()[0]!, new Date())) as Record<string, unknown>;
    const body = JSON.stringify({
      ...letter,
      time: 1764663300,
      stream: false,
      approximateArrivalTimestamp: 'yesterday',
      ndc: 12345678901,
      error: { code: 'EMBEDDING_FAILED', message: 'input rejected', retryable: 'yes', context: [1, 2] },
    });
    // Act
    const m = decodeQueueMessage('hand-1', body);
    // Assess
    expect(m.kind).toBe('letter');
    expect((m as Kind<'letter'>).letter).toMatchObject({
      time: '',
      stream: null,
      approximateArrivalTimestamp: null,
      ndc: null,
      error: { code: 'EMBEDDING_FAILED', message: 'input rejected', retryable: false, context: {} },
    });
  });
});

describe('dead-letter codec: malformed input is DLQ_MESSAGE_INVALID naming what is wrong', () => {
  it('names the missing or wrong fields of a letter and of a Lambda record', () => {
    // Prepare
    const letter = JSON.parse(encodeDeadLetter(poisonEntries()[1]!, new Date())) as Record<string, unknown>;
    const { shardId: _s, error: _e, ...withoutShardAndError } = letter;
    const range = { shardId: SHARD, start: '1000', end: '2000', batchSize: 2, streamArn: 'arn' };
    const lambda = lambdaOnFailure(range);
    const cases: [string, unknown, RegExp][] = [
      ['l-missing', withoutShardAndError, /^dead letter without shardId, error$/],
      ['l-seq-number', { ...letter, sequenceNumber: 4960 }, /^dead letter without sequenceNumber$/],
      ['l-error-code', { ...letter, error: { message: 'x' } }, /^dead letter without error$/],
      ['l-base64', { ...letter, data: '{"v":1,"type":"insert"}' }, /^dead letter whose data is not base64$/],
      [
        'k-reversed',
        { ...lambda, KinesisBatchInfo: { ...lambda.KinesisBatchInfo, startSequenceNumber: '3000' } },
        /KinesisBatchInfo: startSequenceNumber is after endSequenceNumber/,
      ],
      [
        'k-not-digits',
        { ...lambda, KinesisBatchInfo: { ...lambda.KinesisBatchInfo, endSequenceNumber: 'LATEST' } },
        /KinesisBatchInfo\.endSequenceNumber: not a sequence number/,
      ],
      [
        'k-shard',
        { ...lambda, KinesisBatchInfo: { ...lambda.KinesisBatchInfo, shardId: 2 } },
        /KinesisBatchInfo\.shardId/,
      ],
      [
        'k-info',
        { ...lambda, KinesisBatchInfo: 'shardId-000000000000' },
        /^KinesisBatchInfo is not an object$/,
      ],
    ];
    for (const [id, value, why] of cases) {
      const body = JSON.stringify(value);
      // Act
      const m = decodeQueueMessage(id, body);
      // Assess
      expect(m.kind, id).toBe('malformed');
      const err = (m as Kind<'malformed'>).error;
      expect(err.code, id).toBe('DLQ_MESSAGE_INVALID');
      expect(String(err.context.reason), id).toMatch(why);
      expect(err.message, id).toBe(`dead-letter queue message ${id}: ${String(err.context.reason)}`);
      expect(err.context.message_id).toBe(id);
      expect(err.retryable).toBe(false);
      expect(err.remedy).toMatch(/drugsync dlq list --json/);
      expect(peekDeadLetterRecord(body), id).toBeNull();
    }
  });
});
