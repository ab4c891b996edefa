/**
 * The embedder's own Redis state on the real Redis of the local stack: the dead-letter stream and the
 * truncate/resync bookkeeping (shared by every shard, invocation and restart). Plus the SQS dead-letter
 * queue's batching and receipt handling against a recording SQS client (no SQS on the local stack).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { DrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import {
  createRedisDeadLetterQueue,
  createSqsDeadLetterQueue,
  deadLetterRecord,
} from '../services/embedder/dlq.ts';
import { createRedisTableState } from '../services/embedder/table-state.ts';
import { EventFactory, RecordFactory, makeRow } from './support/events.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

describe('embedder state in Redis', () => {
  const env = suiteEnv('embedder_state');
  let redis: RedisClient;
  let keys: Keys;
  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    keys = makeKeys({
      REDIS_INDEX: env.REDIS_INDEX as string,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX as string,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX as string,
    });
  });
  afterAll(async () => {
    await resetSuiteRedis(env, redis);
    redis.disconnect();
  });

  it('dead-letter stream keeps the record, the error and the time; remove deletes only the given ids', async () => {
    const dlq = createRedisDeadLetterQueue(redis, keys);
    const ev = new EventFactory();
    const rec = new RecordFactory('shardId-000000000001');
    const row = makeRow(42);
    const records = [rec.record(ev.insert(row)), rec.record(Buffer.from('\u0000not json'))];
    const putAt = Date.now();
    await dlq.put([
      {
        record: records[0]!,
        error: new DrugsyncError('EMBEDDING_FAILED', 'ValidationException: input rejected', {
          context: { ndc: String(row.NDC) },
        }),
        ndc: String(row.NDC),
        pos: '0000000003:000000000000304:0000000',
        stream: 'drugsync-changes',
      },
      {
        record: records[1]!,
        error: new DrugsyncError('EVENT_DECODE_FAILED', 'not JSON'),
        stream: 'drugsync-changes',
      },
    ]);
    const letters = await dlq.list();
    expect(letters.map((l) => l.error.code)).toEqual(['EMBEDDING_FAILED', 'EVENT_DECODE_FAILED']);
    expect(letters[0]).toMatchObject({
      shardId: 'shardId-000000000001',
      sequenceNumber: records[0]!.sequenceNumber,
      ndc: String(row.NDC),
      stream: 'drugsync-changes',
    });
    expect(Date.parse(letters[0]!.time)).toBeGreaterThanOrEqual(Math.floor(putAt / 1000) * 1000);
    expect(Buffer.from(deadLetterRecord(letters[0]!).data)).toEqual(Buffer.from(records[0]!.data));
    expect(Buffer.from(deadLetterRecord(letters[1]!).data).toString()).toBe('\u0000not json');
    expect(await dlq.remove([letters[0]!.id])).toBe(1);
    expect((await dlq.list()).map((l) => l.id)).toEqual([letters[1]!.id]);
  });

  it('truncate state: newest wins, every shard noted, row activity tracked, completion raises the floor', async () => {
    const state = createRedisTableState(redis, keys);
    const ev = new EventFactory('binlog.000007');
    const t1 = ev.truncate();
    const t2 = ev.truncate();
    expect(await state.recordTruncate(t1, 'shardId-000000000000', 1000)).toBe(true);
    expect(await state.recordTruncate(t1, 'shardId-000000000001', 1100)).toBe(false);
    await state.noteRowActivity(1500);
    let st = await state.read();
    expect(st.truncate).toMatchObject({ pos: t1.pos, seenAt: 1000, lastRowAt: 1500 });
    expect(st.truncate!.shards.sort()).toEqual(['shardId-000000000000', 'shardId-000000000001']);
    expect(await state.recordTruncate(t2, 'shardId-000000000000', 2000)).toBe(true);
    expect(await state.recordTruncate(t1, 'shardId-000000000000', 2100)).toBe(false);
    st = await state.read();
    expect(st.truncate).toMatchObject({ pos: t2.pos, seenAt: 2000, lastRowAt: 2000 });
    await state.completeTruncate(t2.pos);
    st = await state.read();
    expect(st.truncate).toBeNull();
    expect(st.floor).toBe(t2.pos);
    // a redelivered truncate at or below the floor does not come back; row activity without one is a no-op
    expect(await state.recordTruncate(t2, 'shardId-000000000001', 3000)).toBe(false);
    await state.noteRowActivity(3000);
    expect((await state.read()).truncate).toBeNull();
  });

  it('resyncs stay pending, one entry per position with the shards that saw it', async () => {
    const state = createRedisTableState(redis, keys);
    const ev = new EventFactory('binlog.000008');
    const r1 = ev.resync();
    const r2 = ev.resync();
    expect(await state.recordResync(r1, 'shardId-000000000000', 10)).toBe(1);
    expect(await state.recordResync(r1, 'shardId-000000000001', 11)).toBe(1);
    expect(await state.recordResync(r2, 'shardId-000000000000', 12)).toBe(2);
    const st = await state.read();
    expect(st.resyncs.map((r) => [r.pos, r.shards.length])).toEqual([
      [r1.pos, 2],
      [r2.pos, 1],
    ]);
    expect(st.resyncs[0]!.statement).toMatch(/^RENAME TABLE/);
  });
  it('a completed re-sync clears the resyncs at or below its snapshot and ignores later sightings of them', async () => {
    // Prepare: two swaps seen on two shards, and one after the re-sync's snapshot
    await resetSuiteRedis(env, redis);
    const state = createRedisTableState(redis, keys);
    const ev = new EventFactory('binlog.000009');
    const [first, second, snapshot, later] = [ev.resync(), ev.resync(), ev.truncate(), ev.resync()];
    await state.recordResync(first, 'shardId-000000000000', 1);
    await state.recordResync(first, 'shardId-000000000001', 2);
    await state.recordResync(second, 'shardId-000000000000', 3);
    await state.recordResync(later, 'shardId-000000000000', 4);
    expect((await state.read()).resyncs.map((r) => r.pos)).toEqual([first.pos, second.pos, later.pos]);
    // Act: the re-sync ran from a snapshot between `second` and `later`
    await state.completeResync(snapshot.pos);
    // Assess
    const after = await state.read();
    expect(after.resyncFloor).toBe(snapshot.pos);
    expect(after.resyncs.map((r) => r.pos)).toEqual([later.pos]);
    expect(await state.recordResync(second, 'shardId-000000000001', 5)).toBe(1);
    expect((await state.read()).resyncs.map((r) => r.pos)).toEqual([later.pos]);
  });
});

describe('SQS dead-letter queue', () => {
  it('sends in batches of 10 and deletes by the receipt handles of the last list', async () => {
    const sent: { name: string; input: Record<string, unknown> }[] = [];
    const bodies: string[] = [];
    const client = {
      send: async (cmd: { constructor: { name: string }; input: Record<string, unknown> }) => {
        sent.push({ name: cmd.constructor.name, input: cmd.input });
        if (cmd.constructor.name === 'SendMessageBatchCommand') {
          for (const e of cmd.input.Entries as { MessageBody: string }[]) bodies.push(e.MessageBody);
          return { Successful: [], Failed: [] };
        }
        if (cmd.constructor.name === 'ReceiveMessageCommand') {
          const batch = bodies.splice(0, 10);
          return {
            Messages: batch.map((b, i) => ({
              MessageId: `m${sent.length}-${i}`,
              ReceiptHandle: `rh-${i}`,
              Body: b,
            })),
          };
        }
        return { Successful: (cmd.input.Entries as unknown[]).map((_, i) => ({ Id: String(i) })) };
      },
    } as unknown as SQSClient;
    const dlq = createSqsDeadLetterQueue(
      client,
      'https://sqs.us-east-1.amazonaws.com/123456789012/drugsync-dlq',
    );
    const ev = new EventFactory();
    const rec = new RecordFactory();
    const entries = Array.from({ length: 12 }, (_, i) => ({
      record: rec.record(ev.insert(makeRow(i))),
      error: new DrugsyncError('EMBEDDING_FAILED', 'input rejected'),
      ndc: String(makeRow(i).NDC),
    }));
    await dlq.put(entries);
    expect(
      sent.filter((c) => c.name === 'SendMessageBatchCommand').map((c) => (c.input.Entries as []).length),
    ).toEqual([10, 2]);
    const letters = await dlq.list(12);
    expect(letters.length).toBe(12);
    expect(letters[11]!.ndc).toBe(entries[11]!.ndc);
    expect(await dlq.remove(letters.slice(0, 3).map((l) => l.id))).toBe(3);
  });
});
