/**
 * The dead-letter queue holds three kinds of message and every one is recoverable or reported (the
 * format itself, without a server: test/dlq-codec.unit.test.ts; the two transports held to one error
 * vocabulary: test/dlq-transports.test.ts):
 * - on the real stack (kinesalite + Redis): `drugsync dlq list` shows all three kinds and `drugsync dlq
 *   replay` re-reads a Lambda batch range from Kinesis and applies it (documents appear), turns the poison
 *   record of that range into our own letter, replays our letter and reports (keeps) the malformed one;
 * - a range no longer on the stream is reported with its remedy and kept;
 * - idempotent dead letters: a poison record read twice by the consumer (checkpoint reset) is one letter;
 * - the SQS queue against a loopback fake SQS (JSON protocol, through the real AWS SDK).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  GetShardIteratorCommand,
} from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { SQSClient } from '@aws-sdk/client-sqs';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { listAllShards } from '../services/core/kinesis-shards.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import type { Env } from '../services/core/config.ts';
import { DrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import type { ConsumerStats } from '../services/embedder/consumer.ts';
import {
  createRedisDeadLetterQueue,
  createSqsDeadLetterQueue,
  decodeQueueMessage,
  queueMessages,
} from '../services/embedder/dlq.ts';
import { replayDeadLetters } from '../services/embedder/replay.ts';
import { consumerDeps, createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../services/embedder/runtime.ts';
import { EventFactory, RecordFactory, makeRow } from './support/events.ts';
import { startFakeSqs } from './support/fake-sqs.ts';
import { lambdaOnFailure } from './support/lambda-on-failure.ts';
import { putEvents } from './support/put-events.ts';
import { runCli } from './support/pipeline.ts';
import { resetSuiteRedis, resetSuiteStream, suiteEnv, suiteRedis } from './support/stack.ts';

const SHARD = 'shardId-000000000000';

/** A change event cut short: the kind of record the embedder dead-letters as undecodable. */
const poison = (i: number) => Buffer.from(`{"v":1,"type":"insert","ndc":"${i}","after":{"NDC":`);

interface Suite {
  env: Env;
  rt: EmbedderRuntime;
  redis: RedisClient;
  kinesis: KinesisClient;
}

async function shardRecords(kinesis: KinesisClient, stream: string) {
  const shards = await listAllShards(kinesis, stream);
  const it = await kinesis.send(
    new GetShardIteratorCommand({
      StreamName: stream,
      ShardId: shards[0]!.ShardId,
      ShardIteratorType: 'TRIM_HORIZON',
    }),
  );
  const out: { seq: string; key: string }[] = [];
  let iterator = it.ShardIterator;
  while (iterator) {
    const res = await kinesis.send(new GetRecordsCommand({ ShardIterator: iterator, Limit: 1000 }));
    for (const r of res.Records ?? []) out.push({ seq: r.SequenceNumber!, key: r.PartitionKey! });
    if ((res.Records ?? []).length === 0 && res.MillisBehindLatest === 0) break;
    iterator = res.NextShardIterator;
  }
  return out;
}

async function streamArn(s: Suite): Promise<string> {
  const d = await s.kinesis.send(
    new DescribeStreamSummaryCommand({ StreamName: s.rt.config.KINESIS_STREAM }),
  );
  return d.StreamDescriptionSummary!.StreamARN!;
}

async function jsonGet(s: Suite, ndc: string): Promise<Record<string, unknown> | null> {
  const raw = (await s.redis.call('JSON.GET', s.rt.keys.doc(ndc), '$')) as string | null;
  return raw ? ((JSON.parse(raw) as Record<string, unknown>[])[0] ?? null) : null;
}

function expectDoc(doc: Record<string, unknown> | null, row: Rndc14Row): void {
  expect(doc, String(row.NDC)).not.toBeNull();
  const { embedding: _e, indexed_at: _t, ...fields } = doc as Record<string, unknown>;
  expect(fields).toEqual(mapRow(row));
}

function runConsumer(s: Suite): Promise<ConsumerStats> {
  const cfg = s.rt.config;
  return startEmbedderConsumer(cfg, consumerDeps(s.rt, s.kinesis, s.rt.deps.log), { exitWhenIdleMs: 500 })
    .done;
}

/** A fresh suite state: empty Redis keys, a one-shard stream (one shard keeps every record in order). */
async function resetSuite(s: Suite): Promise<void> {
  await resetSuiteRedis(s.env, s.redis);
  await resetSuiteStream(s.env, 1);
  await s.rt.deps.store.ensureIndex();
}

describe('dlq on kinesalite + Redis', () => {
  let s: Suite;
  beforeAll(async () => {
    const env = suiteEnv('dlq_kinds');
    const config = decodeEmbedderConfig(env);
    const redis = suiteRedis(env);
    const rt = await createEmbedderRuntime(
      config,
      createLogger({ service: 'dlq-test' }, { level: 'error' }),
      {
        redis,
      },
    );
    s = { env, rt, redis, kinesis: createKinesis(config) };
  });
  afterAll(async () => {
    await resetSuiteRedis(s.env, s.redis);
    s.kinesis.destroy();
    await s.rt.close();
    s.redis.disconnect();
  });

  it('`dlq list` shows all three kinds; `dlq replay` applies the Lambda range, replays our letter and keeps the malformed one', async () => {
    // Prepare: 30 inserts and one poison record on the stream; a Lambda gave up on 16 of them
    await resetSuite(s);
    const stream = s.rt.config.KINESIS_STREAM;
    const ev = new EventFactory('binlog.000005');
    const rows = Array.from({ length: 30 }, (_, i) => makeRow(300 + i));
    await putEvents(s.kinesis, stream, [
      ...rows.slice(0, 12).map((r) => ev.insert(r)),
      poison(312),
      ...rows.slice(12).map((r) => ev.insert(r)),
    ]);
    const recs = await shardRecords(s.kinesis, stream);
    expect(recs).toHaveLength(31);
    expect(recs[12]!.key).toBe('poison');
    const range = lambdaOnFailure({
      shardId: SHARD,
      start: recs[5]!.seq,
      end: recs[20]!.seq,
      batchSize: 16,
      streamArn: await streamArn(s),
    });
    const dlqKey = s.rt.keys.deadLetters;
    await s.redis.xadd(dlqKey, '*', 'letter', JSON.stringify(range));
    const cut = JSON.stringify(range).slice(0, 120);
    const malformedId = await s.redis.xadd(dlqKey, '*', 'letter', cut);
    const rejected = makeRow(900, { LN: 'WARFARIN 5 MG TABLET' });
    const rejectedRecord = new RecordFactory(SHARD).record(ev.insert(rejected));
    await s.rt.deps.dlq.put([
      {
        record: rejectedRecord,
        error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected'),
        ndc: String(rejected.NDC),
        stream,
      },
    ]);

    // Act: list
    const listed = await runCli(s.env, ['dlq', 'list', '--json']);
    const text = await runCli(s.env, ['dlq', 'list']);

    // Assess: every kind, with what it needs
    expect(listed.status, listed.stderr).toBe(0);
    const lines = listed.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.kind)).toEqual(['lambda_batch', 'malformed', 'letter']);
    expect(lines[0]).toMatchObject({
      shardId: SHARD,
      startSequenceNumber: recs[5]!.seq,
      endSequenceNumber: recs[20]!.seq,
      batchSize: 16,
      condition: 'RetryAttemptsExhausted',
      stream,
    });
    expect(lines[1]).toMatchObject({ id: malformedId, error: { code: 'DLQ_MESSAGE_INVALID' } });
    expect(lines[2]).toMatchObject({ ndc: String(rejected.NDC), error: { code: 'EMBEDDING_FAILED' } });
    expect(text.status, text.stderr).toBe(0);
    expect(text.stdout).toContain(
      `Lambda batch ${SHARD} ${recs[5]!.seq}..${recs[20]!.seq}  size=16  [RetryAttemptsExhausted, Unhandled]`,
    );
    expect(text.stdout).toMatch(
      new RegExp(`${malformedId}  MALFORMED  \\[DLQ_MESSAGE_INVALID\\] body is not JSON`),
    );
    expect(text.stdout).toContain(
      '1 dead-lettered record(s), 1 Lambda batch record(s), 1 malformed message(s) (redis)',
    );

    // Act: replay
    const replay = await runCli(s.env, ['dlq', 'replay', '--json']);

    // Assess: the range is applied (its poison record is now our letter), our letter applied, the
    // malformed message reported and kept, the exit code says something is left
    expect(replay.status, replay.stderr).toBe(1);
    expect(replay.json).toMatchObject({ considered: 3, applied: 1, removed: 2, left: 1 });
    expect(replay.json.batches).toMatchObject([
      { status: 'applied', records: 16, applied: 15, deadLettered: 1, failed: 0, removed: true },
    ]);
    expect(replay.json.malformed).toMatchObject([
      { id: malformedId, error: { code: 'DLQ_MESSAGE_INVALID' } },
    ]);
    for (const [i, row] of rows.entries()) {
      const inRange = i >= 5 && i <= 19; // records 5..20 are rows 5..11, the poison record, rows 12..19
      if (inRange) expectDoc(await jsonGet(s, String(row.NDC)), row);
      else expect(await jsonGet(s, String(row.NDC)), `row ${i}`).toBeNull();
    }
    expectDoc(await jsonGet(s, String(rejected.NDC)), rejected);
    const left = await queueMessages(s.rt.deps.dlq);
    expect(left.map((m) => m.kind)).toEqual(['malformed', 'letter']);
    expect(left[1]).toMatchObject({
      letter: { shardId: SHARD, sequenceNumber: recs[12]!.seq, error: { code: 'EVENT_DECODE_FAILED' } },
    });

    // Act + Assess: a second replay changes nothing and writes no second letter for the poison record
    const again = await runCli(s.env, ['dlq', 'replay']);
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(
      /still failing 1; Lambda batches 0\/0 replayed; malformed 1; left in the queue 2/,
    );
    expect((await queueMessages(s.rt.deps.dlq)).map((m) => m.id)).toEqual(left.map((m) => m.id));
  });

  it('a range no longer on the stream is reported with `drugsync verify --repair` and kept', async () => {
    // Prepare: a Lambda batch record of a stream that has since been re-created (its records are gone)
    await resetSuite(s);
    const stream = s.rt.config.KINESIS_STREAM;
    const ev = new EventFactory('binlog.000006');
    const rows = Array.from({ length: 6 }, (_, i) => makeRow(400 + i));
    await putEvents(
      s.kinesis,
      stream,
      rows.map((r) => ev.insert(r)),
    );
    const old = await shardRecords(s.kinesis, stream);
    const arn = await streamArn(s);
    // kinesalite's sequence numbers carry the shard's creation second: a stream re-created within the same
    // second would hand out the old numbers again, so the re-created one starts in a later second
    await new Promise((r) => setTimeout(r, 1_050 - (Date.now() % 1_000)));
    await resetSuiteStream(s.env, 1);
    await putEvents(
      s.kinesis,
      stream,
      rows.slice(0, 2).map((r) => ev.update(r, { ...r, PS: '12.000' })),
    );
    await s.redis.xadd(
      s.rt.keys.deadLetters,
      '*',
      'letter',
      JSON.stringify(
        lambdaOnFailure({
          shardId: SHARD,
          start: old[1]!.seq,
          end: old[4]!.seq,
          batchSize: 4,
          streamArn: arn,
          condition: 'RecordAgeExceeded',
        }),
      ),
    );
    // Act
    const report = await replayDeadLetters(s.rt.deps, { kinesis: s.kinesis });
    // Assess
    expect(report.batches).toHaveLength(1);
    const b = report.batches[0]!;
    expect(b.status).toBe('not_on_stream');
    expect(b.removed).toBe(false);
    expect(b.error?.code).toBe('DLQ_REPLAY_FAILED');
    expect(b.error?.remedy).toContain('drugsync verify --repair');
    expect(b.error?.context).toMatchObject({ shard: SHARD, start: old[1]!.seq, end: old[4]!.seq, stream });
    expect(report.left).toBe(1);
    expect((await queueMessages(s.rt.deps.dlq)).map((m) => m.kind)).toEqual(['lambda_batch']);
    for (const row of rows) expect(await jsonGet(s, String(row.NDC))).toBeNull();
  });

  it('a poison record read twice by the consumer (checkpoint reset) is one dead letter', async () => {
    // Prepare
    await resetSuite(s);
    const stream = s.rt.config.KINESIS_STREAM;
    const ev = new EventFactory('binlog.000007');
    const rows = Array.from({ length: 8 }, (_, i) => makeRow(500 + i));
    await putEvents(s.kinesis, stream, [...rows.slice(0, 4).map((r) => ev.insert(r)), poison(504)]);
    await putEvents(
      s.kinesis,
      stream,
      rows.slice(4).map((r) => ev.insert(r)),
    );
    // Act: two passes over the same records, as after a crash before the checkpoint
    const first = await runConsumer(s);
    await s.redis.del(s.rt.keys.shardCheckpoints(stream));
    const second = await runConsumer(s);
    // Assess
    expect(first.totals.records).toBe(9);
    expect(second.totals.records).toBe(9);
    expect(first.totals.deadLettered).toBe(1);
    const letters = await s.rt.deps.dlq.list();
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ partitionKey: 'poison', error: { code: 'EVENT_DECODE_FAILED' } });
    for (const row of rows) expectDoc(await jsonGet(s, String(row.NDC)), row);
  });

  it('the same record dead-lettered twice is one letter; removing the letter removes its marker', async () => {
    // Prepare
    await resetSuiteRedis(s.env, s.redis);
    const dlq = createRedisDeadLetterQueue(s.redis, s.rt.keys, { markerTtlSeconds: 3600 });
    const record = new RecordFactory(SHARD).record(poison(42));
    const entry = { record, error: new DrugsyncError('EVENT_DECODE_FAILED', 'not JSON') };
    const marker = s.rt.keys.deadLetterMarker({ shardId: SHARD, sequenceNumber: record.sequenceNumber });
    // Act
    await dlq.put([entry, entry]);
    await dlq.put([entry]);
    // Assess
    const letters = await dlq.list();
    expect(letters).toHaveLength(1);
    expect(marker.startsWith(s.env.REDIS_STATE_PREFIX as string)).toBe(true);
    expect(await s.redis.get(marker)).toBe(letters[0]!.id);
    const ttl = await s.redis.ttl(marker);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(3600);
    // Act + Assess: replayed (removed) → the marker goes; the record may be dead-lettered again
    expect(await dlq.remove([letters[0]!.id])).toBe(1);
    expect(await s.redis.exists(marker)).toBe(0);
    await dlq.put([entry]);
    expect(await dlq.list()).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- SQS, against a loopback fake (test/support/fake-sqs.ts)

describe('SQS dead-letter queue (loopback fake SQS, real Redis and kinesalite)', () => {
  let s: Suite;
  let sqs: Awaited<ReturnType<typeof startFakeSqs>>;
  let client: SQSClient;
  beforeAll(async () => {
    const env = suiteEnv('dlq_sqs');
    const config = decodeEmbedderConfig(env);
    const redis = suiteRedis(env);
    const rt = await createEmbedderRuntime(config, createLogger({ service: 'dlq-sqs' }, { level: 'error' }), {
      redis,
    });
    s = { env, rt, redis, kinesis: createKinesis(config) };
    sqs = await startFakeSqs();
    client = new SQSClient({
      region: 'us-east-1',
      endpoint: sqs.endpoint,
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    });
  });
  afterAll(async () => {
    await resetSuiteRedis(s.env, s.redis);
    client.destroy();
    await sqs.close();
    s.kinesis.destroy();
    await s.rt.close();
    s.redis.disconnect();
  });

  it('decodes every kind, sends a record once, replays a Lambda range and our letter, keeps the malformed one', async () => {
    // Prepare
    await resetSuite(s);
    const stream = s.rt.config.KINESIS_STREAM;
    const ev = new EventFactory('binlog.000008');
    const rows = Array.from({ length: 10 }, (_, i) => makeRow(600 + i));
    await putEvents(
      s.kinesis,
      stream,
      rows.map((r) => ev.insert(r)),
    );
    const recs = await shardRecords(s.kinesis, stream);
    const markerKey = s.rt.keys.deadLetterMarker;
    const dlq = createSqsDeadLetterQueue(client, sqs.url, {
      redis: s.redis,
      key: markerKey,
      ttlSeconds: 3600,
    });
    const rejected = makeRow(950, { LN: 'ALPRAZOLAM 0.5 MG TABLET' });
    const record = new RecordFactory(SHARD).record(ev.insert(rejected));
    const entry = {
      record,
      error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected'),
      ndc: String(rejected.NDC),
    };
    sqs.inject(
      JSON.stringify(
        lambdaOnFailure({
          shardId: SHARD,
          start: recs[2]!.seq,
          end: recs[6]!.seq,
          batchSize: 5,
          streamArn: await streamArn(s),
        }),
      ),
    );
    sqs.inject('{"requestContext":{"condition":"RetryAttemptsExhausted"},"KinesisBatchInfo":{"shardId":5}}');
    // Act: the same record dead-lettered twice (a re-read before the checkpoint)
    await dlq.put([entry]);
    await dlq.put([entry]);
    const kinds = (await queueMessages(dlq)).map((m) => m.kind);
    // Assess
    expect(sqs.queue).toHaveLength(3);
    expect(kinds).toEqual(['lambda_batch', 'malformed', 'letter']);
    expect(await s.redis.exists(markerKey(record))).toBe(1);

    // Act: replay (the fake makes received messages visible again only after their visibility timeout)
    for (const m of sqs.queue) m.visibleAt = 0;
    const report = await replayDeadLetters({ ...s.rt.deps, dlq }, { kinesis: s.kinesis });
    // Assess
    expect(report.batches).toMatchObject([{ status: 'applied', records: 5, applied: 5, removed: true }]);
    expect(report.applied).toBe(1);
    expect(report.malformed).toHaveLength(1);
    expect(report.left).toBe(1);
    expect(sqs.queue).toHaveLength(1);
    expect(decodeQueueMessage('x', sqs.queue[0]!.body).kind).toBe('malformed');
    for (const [i, row] of rows.entries()) {
      if (i >= 2 && i <= 6) expectDoc(await jsonGet(s, String(row.NDC)), row);
      else expect(await jsonGet(s, String(row.NDC))).toBeNull();
    }
    expectDoc(await jsonGet(s, String(rejected.NDC)), rejected);
    expect(await s.redis.exists(markerKey(record))).toBe(0);
  });
});
