/**
 * Kinesis aggregation on the local stack (test/aggregation.test.ts): a shard split, the stream read back shard
 * by shard with each shard's parents, the events of one NDC in the order a consumer must apply them, records
 * as the pre-aggregation reader wrote them, the awslabs aggregator, and an in-process embedder consumer.
 */
import { createRequire } from 'node:module';
import {
  DescribeStreamSummaryCommand,
  GetRecordsCommand,
  PutRecordsCommand,
  SplitShardCommand,
} from '@aws-sdk/client-kinesis';
import type { KinesisClient, Shard, _Record } from '@aws-sdk/client-kinesis';
import { createKinesis } from '../../services/core/clients/kinesis.ts';
import type { RedisClient } from '../../services/core/clients/redis.ts';
import type { Env } from '../../services/core/config.ts';
import {
  compressRecord,
  decodeChangeEvent,
  encodeChangeEvent,
  isRowEvent,
} from '../../services/core/events.ts';
import type { ChangeEvent, RowChangeEvent } from '../../services/core/events.ts';
import { listAllShards } from '../../services/core/kinesis-shards.ts';
import { oldestIterator } from './stream-tail.ts';
import type { Logger } from '../../services/core/log.ts';
import { ShardMap, partitionHash } from '../../services/core/shard-map.ts';
import { decodeStreamRecord, eventId, framingOf } from '../../services/core/stream-record.ts';
import type { RecordFraming } from '../../services/core/stream-record.ts';
import { startEmbedderConsumer } from '../../services/embedder/consumer.ts';
import type { EmbedderConsumer } from '../../services/embedder/consumer.ts';
import {
  consumerDeps,
  createEmbedderRuntime,
  decodeEmbedderConfig,
} from '../../services/embedder/runtime.ts';
import type { EmbedderRuntime } from '../../services/embedder/runtime.ts';
import { eventually, suiteKeys } from './stack.ts';

export function suiteKinesis(env: Env): KinesisClient {
  return createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: env.AWS_REGION ?? 'us-east-1' });
}

/**
 * Splits `shardId` at the middle of its hash-key range and waits until the stream is ACTIVE again with the
 * two children listed. Returns the children's ids.
 */
export async function splitShard(kinesis: KinesisClient, stream: string, shardId: string): Promise<string[]> {
  const shard = (await listAllShards(kinesis, stream)).find((s) => s.ShardId === shardId);
  if (!shard?.HashKeyRange) throw new Error(`shard ${shardId} is not listed on stream ${stream}`);
  const start = BigInt(shard.HashKeyRange.StartingHashKey as string);
  const end = BigInt(shard.HashKeyRange.EndingHashKey as string);
  await kinesis.send(
    new SplitShardCommand({
      StreamName: stream,
      ShardToSplit: shardId,
      NewStartingHashKey: (start + (end - start) / 2n).toString(),
    }),
  );
  return eventually(
    async () => {
      const summary = await kinesis.send(new DescribeStreamSummaryCommand({ StreamName: stream }));
      if (summary.StreamDescriptionSummary?.StreamStatus !== 'ACTIVE') return null;
      const children = (await listAllShards(kinesis, stream)).filter((s) => s.ParentShardId === shardId);
      return children.length === 2 ? children.map((s) => s.ShardId as string) : null;
    },
    30_000,
    `the split of ${shardId} to finish`,
  );
}

/** One shard as read back: its listing (parents, hash-key range) and its records in sequence order. */
export interface ShardRecords {
  shard: Shard;
  records: _Record[];
}

/** Every record of every shard (open and closed), from TRIM_HORIZON to the tip. */
export async function readShards(kinesis: KinesisClient, stream: string): Promise<ShardRecords[]> {
  const out: ShardRecords[] = [];
  for (const shard of await listAllShards(kinesis, stream)) {
    const records: _Record[] = [];
    let it = await oldestIterator(kinesis, stream, shard.ShardId);
    while (it) {
      const r = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: 10_000 }));
      records.push(...(r.Records ?? []));
      it = r.Records?.length ? r.NextShardIterator : undefined;
    }
    out.push({ shard, records });
  }
  return out;
}

/** A change event read back, with the shard it sat on and its id (`sequence` or `sequence:index`). */
export interface ReadEvent {
  shardId: string;
  id: string;
  framing: RecordFraming | null;
  event: ChangeEvent;
}

/** The events of one shard's records, deaggregated, in order. */
export function eventsOf(s: ShardRecords): ReadEvent[] {
  return s.records.flatMap((r) =>
    decodeStreamRecord(r.Data as Uint8Array, r.PartitionKey as string).map((u) => ({
      shardId: s.shard.ShardId as string,
      id: eventId(r.SequenceNumber as string, u.subSequence),
      framing: framingOf(r.Data as Uint8Array),
      event: decodeChangeEvent(u.json),
    })),
  );
}

/**
 * The shards a record of `ndc` went through, oldest first: the ancestors (parents before children) of the open
 * shard whose hash-key range holds the NDC's hash. A consumer reads them in that order.
 */
export function lineageOf(shards: readonly Shard[], ndc: string): string[] {
  const h = partitionHash(ndc);
  const byId = new Map(shards.map((s) => [s.ShardId as string, s]));
  const chain = [new ShardMap(shards).shardForHash(h).shardId];
  for (;;) {
    const s = byId.get(chain[0] as string) as Shard;
    const parent = [s.ParentShardId, s.AdjacentParentShardId]
      .map((id) => (id ? byId.get(id) : undefined))
      .find(
        (p) =>
          p &&
          BigInt(p.HashKeyRange?.StartingHashKey ?? '0') <= h &&
          h <= BigInt(p.HashKeyRange?.EndingHashKey ?? '0'),
      );
    if (!parent) return chain;
    chain.unshift(parent.ShardId as string);
  }
}

/** The row events of one NDC read back (the event, its shard and id). */
export type NdcEvent = ReadEvent & { event: RowChangeEvent };

/**
 * The row events of each NDC: `lineage` in the order a consumer applies them (shard by shard along the NDC's
 * lineage, each shard in sequence order); `elsewhere`, copies on other shards (a record sent on a stale shard
 * map lands on a sibling; the publisher then re-sends its events on the right shard).
 */
export function historiesByNdc(
  shards: readonly ShardRecords[],
): Map<string, { lineage: NdcEvent[]; elsewhere: NdcEvent[] }> {
  const listing = shards.map((s) => s.shard);
  const byNdc = new Map<string, NdcEvent[]>();
  for (const s of shards)
    for (const e of eventsOf(s)) {
      if (!isRowEvent(e.event)) continue;
      const list = byNdc.get(e.event.ndc) ?? [];
      list.push(e as NdcEvent);
      byNdc.set(e.event.ndc, list);
    }
  const out = new Map<string, { lineage: NdcEvent[]; elsewhere: NdcEvent[] }>();
  for (const [ndc, events] of byNdc) {
    const lineage = lineageOf(listing, ndc);
    out.set(ndc, {
      lineage: lineage.flatMap((id) => events.filter((e) => e.shardId === id)),
      elsewhere: events.filter((e) => !lineage.includes(e.shardId)),
    });
  }
  return out;
}

/**
 * Puts row events as the binlog reader wrote them before aggregation: one event per record, partition key
 * the NDC, in order; `framing(i)` picks plain JSON or gzip (core/events.ts compressRecord) for event i.
 */
export async function putSingleEventRecords(
  kinesis: KinesisClient,
  stream: string,
  events: readonly RowChangeEvent[],
  framing: (i: number) => 'json' | 'gzip',
): Promise<void> {
  const Records = events.map((e, i) => ({
    Data: framing(i) === 'gzip' ? compressRecord(encodeChangeEvent(e)) : encodeChangeEvent(e),
    PartitionKey: e.ndc,
  }));
  const out = await kinesis.send(new PutRecordsCommand({ StreamName: stream, Records }));
  if (out.FailedRecordCount)
    throw new Error(`${out.FailedRecordCount} old-style records were not put on ${stream}`);
}

/** A KPL record as the awslabs library (`aws-kinesis-agg`) encodes it. */
export interface AwslabsRecord {
  partitionKey: string;
  explicitHashKey?: string;
  data: Buffer;
}

interface AwsKinesisAgg {
  aggregate(
    records: { partitionKey: string; explicitHashKey?: string; data: Buffer }[],
    onRecord: (r: AwslabsRecord, done: (err?: Error) => void) => void,
    after: () => void,
    onError: (e: Error) => void,
  ): void;
}

/** The records the awslabs aggregator makes of `records` (one unless they exceed its size bound). */
export function awslabsAggregate(
  records: { partitionKey: string; data: Buffer }[],
): Promise<AwslabsRecord[]> {
  const agg = createRequire(import.meta.url)('aws-kinesis-agg') as AwsKinesisAgg;
  const made: AwslabsRecord[] = [];
  return new Promise((resolve, reject) =>
    agg.aggregate(
      records,
      (r, done) => {
        made.push(r);
        done();
      },
      () => resolve(made),
      reject,
    ),
  );
}

/** The embedder consumer in-process on the suite's stream (as `drugsync embedder` runs it), and its stop. */
export interface TestConsumer {
  rt: EmbedderRuntime;
  consumer: EmbedderConsumer;
  stop(): Promise<void>;
}

export async function startTestConsumer(env: Env, log: Logger, redis: RedisClient): Promise<TestConsumer> {
  const rt = await createEmbedderRuntime(
    decodeEmbedderConfig({ ...env, EMBEDDER_IDLE_POLL_MS: '100' }),
    log,
    {
      redis,
    },
  );
  await rt.deps.store.ensureIndex();
  const kinesis = suiteKinesis(env);
  const consumer = startEmbedderConsumer(rt.config, consumerDeps(rt, kinesis, log), {
    discoverEveryMs: 1_000,
  });
  return {
    rt,
    consumer,
    async stop() {
      consumer.stop();
      await consumer.done;
      await rt.close();
      kinesis.destroy();
    },
  };
}

/** The document fields of `ndc` without the vector and the write time (null: no document). */
export async function docFields(
  redis: RedisClient,
  env: Env,
  ndc: string,
): Promise<Record<string, unknown> | null> {
  const raw = (await redis.call('JSON.GET', suiteKeys(env).doc(ndc), '$')) as string | null;
  const doc = raw ? (JSON.parse(raw) as Record<string, unknown>[])[0] : undefined;
  if (!doc) return null;
  const { embedding: _e, indexed_at: _i, ...fields } = doc;
  return fields;
}

/** How many of the suite's documents hold each gcn_seqno (FT.AGGREGATE over the index). */
export async function gcnCounts(redis: RedisClient, env: Env): Promise<Map<number, number>> {
  const reply = (await redis.call(
    'FT.AGGREGATE',
    env.REDIS_INDEX as string,
    '*',
    'GROUPBY',
    '1',
    '@gcn_seqno',
    'REDUCE',
    'COUNT',
    '0',
    'AS',
    'n',
    'LIMIT',
    '0',
    '10000',
  )) as [number, ...string[][]];
  const out = new Map<number, number>();
  for (const row of reply.slice(1) as string[][]) {
    const f = new Map<string, string>();
    for (let i = 0; i + 1 < row.length; i += 2) f.set(row[i] as string, row[i + 1] as string);
    out.set(Number(f.get('gcn_seqno')), Number(f.get('n')));
  }
  return out;
}
