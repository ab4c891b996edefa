/**
 * The two dead-letter queue transports held to one contract: the Redis stream (the stack's real Redis) and
 * SQS (a loopback fake SQS through the real AWS SDK, test/support/fake-sqs.ts; its markers in the real
 * Redis). The same messages read the same from either; the same failure raises the same code from either
 * (`DLQ_WRITE_FAILED` / `DLQ_READ_FAILED` / `DLQ_REMOVE_FAILED`, retryable, naming the transport and the
 * queue); a refused write marks nothing, so the record is dead-lettered once the queue takes it again.
 */
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createRedis } from '../services/core/clients/redis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { DrugsyncError } from '../services/core/errors.ts';
import { createRedisDeadLetterQueue, createSqsDeadLetterQueue } from '../services/embedder/dlq.ts';
import type { DeadLetterInput, DeadLetterQueue, QueueMessage } from '../services/embedder/dlq.ts';
import { EventFactory, RecordFactory, makeRow } from './support/events.ts';
import { startFakeSqs } from './support/fake-sqs.ts';
import { lambdaOnFailure } from './support/lambda-on-failure.ts';
import { resetSuiteRedis, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';

const env = suiteEnv('dlq_transports');
const keys = suiteKeys(env);
/** The SQS queue's markers: those of an environment of their own (the Redis queue's are the suite's). */
const sqsKeys = suiteKeys({ ...env, REDIS_STATE_PREFIX: `${env.REDIS_STATE_PREFIX}sqs:` });

/** Records the embedder dead-letters (from one shard): changes Bedrock refused, and an event cut short. */
function poisonEntries(shardId = 'shardId-000000000001'): DeadLetterInput[] {
  const ev = new EventFactory('binlog.000051');
  const rec = new RecordFactory(shardId);
  const refused = [makeRow(21, { LN: 'HYDROCODONE-APAP 5-325 MG TAB' }), makeRow(22)];
  return [
    ...refused.map((row) => ({
      record: rec.record(ev.insert(row)),
      error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected', {
        context: { ndc: String(row.NDC) },
      }),
      ndc: String(row.NDC),
      pos: ev.insert(row).pos,
      stream: env.KINESIS_STREAM as string,
    })),
    {
      record: rec.record(
        Buffer.from('{"v":1,"type":"update","ndc":"00002370001","before":{"NDC":'),
        'poison',
      ),
      error: new DrugsyncError('EVENT_DECODE_FAILED', 'change event is not valid JSON'),
    },
  ];
}

/** A message as both transports must read it: without its queue-given id and the time of the put. */
function comparable(m: QueueMessage): unknown {
  if (m.kind === 'letter') {
    const { id: _i, time: _t, ...letter } = m.letter;
    return { kind: m.kind, letter };
  }
  if (m.kind === 'lambda_batch') return { kind: m.kind, batch: m.batch };
  return { kind: m.kind, code: m.error.code, reason: m.error.context.reason };
}

/** The failure of `run`, as the vocabulary promises it. */
async function failureOf(run: () => Promise<unknown>) {
  const e = await run().then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'the operation fails').toBeInstanceOf(DrugsyncError);
  const err = e as DrugsyncError;
  return {
    code: err.code,
    retryable: err.retryable,
    transport: err.context.transport,
    queue: err.context.queue,
    remedy: err.remedy,
  };
}

/** A port on this machine nothing listens on (taken, then let go). */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

const sqsClient = (endpoint: string) =>
  new SQSClient({
    region: 'us-east-1',
    endpoint,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });

let redis: RedisClient;
beforeAll(() => {
  redis = suiteRedis(env);
});
beforeEach(async () => {
  await resetSuiteRedis(env, redis);
});
afterAll(async () => {
  await resetSuiteRedis(env, redis);
  redis.disconnect();
});

describe('dead-letter transports: one contract', () => {
  it('the same letters, Lambda record and malformed body read the same from the Redis stream and SQS', async () => {
    // Prepare: the same puts on both (twice: a re-read record), the same foreign messages on both
    const sqs = await startFakeSqs();
    const client = sqsClient(sqs.endpoint);
    try {
      const queues: DeadLetterQueue[] = [
        createRedisDeadLetterQueue(redis, keys),
        createSqsDeadLetterQueue(client, sqs.url, { redis, key: sqsKeys.deadLetterMarker }),
      ];
      const entries = poisonEntries();
      const lambda = JSON.stringify(
        lambdaOnFailure({
          shardId: 'shardId-000000000001',
          start: '49650000000000000000000000000000000000000000000001000',
          end: '49650000000000000000000000000000000000000000000009000',
          batchSize: 9,
          streamArn: `arn:aws:kinesis:us-east-1:123456789012:stream/${String(env.KINESIS_STREAM)}`,
        }),
      );
      const cut = lambda.slice(0, 97);
      for (const q of queues) {
        await q.put(entries);
        await q.put(entries.slice(1));
      }
      for (const body of [lambda, cut]) {
        await redis.xadd(keys.deadLetters, '*', 'letter', body);
        sqs.inject(body);
      }

      // Act
      const [fromRedis, fromSqs] = [await queues[0]!.messages(), await queues[1]!.messages()];

      // Assess: one letter per record, then the foreign messages, read alike
      expect(fromRedis.map((m) => m.kind)).toEqual([
        'letter',
        'letter',
        'letter',
        'lambda_batch',
        'malformed',
      ]);
      expect(fromSqs.map(comparable)).toEqual(fromRedis.map(comparable));
      expect(fromRedis.map(comparable).at(-1)).toEqual({
        kind: 'malformed',
        code: 'DLQ_MESSAGE_INVALID',
        reason: 'body is not JSON',
      });

      // Act + Assess: removing every message empties both and drops the markers of their letters
      for (const [q, all] of [
        [queues[0]!, fromRedis],
        [queues[1]!, fromSqs],
      ] as const)
        expect(await q.remove(all.map((m) => m.id))).toBe(5);
      expect(await redis.xlen(keys.deadLetters)).toBe(0);
      expect(sqs.queue).toHaveLength(0);
      expect(await redis.keys(`${keys.deadLetterMarkerPrefix}*`)).toEqual([]);
      expect(await redis.keys(`${sqsKeys.deadLetterMarkerPrefix}*`)).toEqual([]);
    } finally {
      client.destroy();
      await sqs.close();
    }
  });

  it('an unreachable queue fails with the same code for the same operation on either transport', async () => {
    // Prepare: a Redis nobody answers at; an SQS that goes away after a receive (its receipt handles known)
    const port = await closedPort();
    const down = createRedis(
      { REDIS_HOST: '127.0.0.1', REDIS_PORT: port, REDIS_TLS: false },
      { maxRetriesPerRequest: 0, retryStrategy: () => null },
    );
    const connectErrors: Error[] = [];
    down.on('error', (e: Error) => connectErrors.push(e));
    const sqs = await startFakeSqs();
    const client = sqsClient(sqs.endpoint);
    const redisQueue = createRedisDeadLetterQueue(down, keys);
    const sqsQueue = createSqsDeadLetterQueue(client, sqs.url, { redis, key: sqsKeys.deadLetterMarker });
    const entries = poisonEntries();
    try {
      await sqsQueue.put(entries);
      const ids = (await sqsQueue.messages()).map((m) => m.id);
      expect(ids).toHaveLength(3);
      await sqs.close();

      // Act
      const failures = {
        redis: {
          write: await failureOf(() => redisQueue.put(entries)),
          read: await failureOf(() => redisQueue.messages()),
          list: await failureOf(() => redisQueue.list()),
          remove: await failureOf(() => redisQueue.remove(['1764663300123-0'])),
        },
        sqs: {
          // records not sent yet (those of the first put have their markers: nothing to send)
          write: await failureOf(() => sqsQueue.put(poisonEntries('shardId-000000000002'))),
          read: await failureOf(() => sqsQueue.messages()),
          list: await failureOf(() => sqsQueue.list()),
          remove: await failureOf(() => sqsQueue.remove(ids)),
        },
      };

      // Assess: one code per operation, whichever transport; each names where and what to check
      const expected = {
        write: 'DLQ_WRITE_FAILED',
        read: 'DLQ_READ_FAILED',
        list: 'DLQ_READ_FAILED',
        remove: 'DLQ_REMOVE_FAILED',
      };
      for (const [op, code] of Object.entries(expected)) {
        const r = failures.redis[op as keyof typeof expected];
        const s = failures.sqs[op as keyof typeof expected];
        expect([r.code, s.code], op).toEqual([code, code]);
        expect([r.retryable, s.retryable], op).toEqual([true, true]);
        expect(r).toMatchObject({ transport: 'redis', queue: keys.deadLetters });
        expect(s).toMatchObject({ transport: 'sqs', queue: sqs.url });
        expect(r.remedy).toMatch(/Redis is reachable/);
        expect(s.remedy).toMatch(/DLQ_QUEUE_URL/);
      }
      expect(connectErrors.length).toBeGreaterThan(0);
    } finally {
      down.disconnect();
      client.destroy();
    }
  });

  it('markers out of reach: the SQS write fails as a Redis-stream write does, and sends nothing', async () => {
    // Prepare: SQS answers, the Redis of its markers does not
    const port = await closedPort();
    const down = createRedis(
      { REDIS_HOST: '127.0.0.1', REDIS_PORT: port, REDIS_TLS: false },
      { maxRetriesPerRequest: 0, retryStrategy: () => null },
    );
    down.on('error', () => undefined);
    const sqs = await startFakeSqs();
    const client = sqsClient(sqs.endpoint);
    try {
      const queue = createSqsDeadLetterQueue(client, sqs.url, { redis: down, key: sqsKeys.deadLetterMarker });
      // Act
      const failure = await failureOf(() => queue.put(poisonEntries()));
      // Assess
      expect(failure).toMatchObject({ code: 'DLQ_WRITE_FAILED', retryable: true, transport: 'sqs' });
      expect(sqs.queue).toHaveLength(0);
    } finally {
      down.disconnect();
      client.destroy();
      await sqs.close();
    }
  });

  it('a write the queue refuses is DLQ_WRITE_FAILED on either, marks nothing, and lands once it is taken', async () => {
    // Prepare: the stream key holds a string (XADD: WRONGTYPE); SQS refuses the letters of one NDC
    const entries = poisonEntries();
    const refusedNdc = entries[0]!.ndc as string;
    let refusing = true;
    const sqs = await startFakeSqs({ refuse: (body) => refusing && body.includes(`"ndc":"${refusedNdc}"`) });
    const client = sqsClient(sqs.endpoint);
    try {
      const redisQueue = createRedisDeadLetterQueue(redis, keys);
      const sqsQueue = createSqsDeadLetterQueue(client, sqs.url, { redis, key: sqsKeys.deadLetterMarker });
      await redis.set(keys.deadLetters, 'not a stream');

      // Act
      const r = await failureOf(() => redisQueue.put(entries));
      const s = await failureOf(() => sqsQueue.put(entries));

      // Assess: the same code; no marker for a letter that was not written
      expect([r.code, s.code]).toEqual(['DLQ_WRITE_FAILED', 'DLQ_WRITE_FAILED']);
      expect([r.retryable, s.retryable]).toEqual([true, true]);
      expect(await redis.keys(`${keys.deadLetterMarkerPrefix}*`)).toEqual([]);
      expect((await redis.keys(`${sqsKeys.deadLetterMarkerPrefix}*`)).sort()).toEqual(
        entries
          .slice(1)
          .map((e) => sqsKeys.deadLetterMarker(e.record))
          .sort(),
      );

      // Act + Assess: the batch retried once the queue takes it: every record once, on both
      await redis.del(keys.deadLetters);
      refusing = false;
      await redisQueue.put(entries);
      await sqsQueue.put(entries);
      const seqs = entries.map((e) => e.record.sequenceNumber).sort();
      expect((await redisQueue.list()).map((l) => l.sequenceNumber).sort()).toEqual(seqs);
      expect((await sqsQueue.list()).map((l) => l.sequenceNumber).sort()).toEqual(seqs);
    } finally {
      client.destroy();
      await sqs.close();
    }
  });
});
