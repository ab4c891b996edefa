/**
 * Kinesis aggregation (issue 17) on the real local stack: MariaDB binlog → binlog reader (KPL aggregates,
 * zstd) → kinesalite → embedder consumer (deaggregating, checkpointing `sequence:index`) → Redis Stack.
 *
 * 1. Each NDC's events keep binlog order across aggregates and across a shard split made while a writer runs.
 * 2. kill -9 of the reader and of the consumer in the middle of bursts: restarted, Redis equals MySQL, no
 *    event lost.
 * 3. A stream holding single-event records (plain JSON, gzip: what readers wrote before aggregation) followed
 *    by aggregates drains in order.
 * 4. A KPL record made by the awslabs library (`aws-kinesis-agg`) is consumed.
 *
 * Each case has its own suite database, Redis prefixes / index and Kinesis stream (test/support/stack.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { PutRecordCommand } from '@aws-sdk/client-kinesis';
import type { Connection } from 'mysql2/promise';
import { createAggregatingSink } from '../services/binlog-reader/aggregating-sink.ts';
import { readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { encodeChangeEvent } from '../services/core/events.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { compareBinlogPositions, compareSourcePositions, sourcePosition } from '../services/core/position.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import {
  awslabsAggregate,
  docFields,
  eventsOf,
  gcnCounts,
  historiesByNdc,
  putSingleEventRecords,
  readShards,
  splitShard,
  startTestConsumer,
  suiteKinesis,
} from './support/aggregation.ts';
import type { NdcEvent } from './support/aggregation.ts';
import { EventFactory } from './support/events.ts';
import { generateCatalogue, insertRows } from './support/factories.ts';
import { startStreamingPipeline } from './support/pipeline.ts';
import {
  createSuiteDatabase,
  deleteSuiteStream,
  eventually,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from './support/stack.ts';
import { convergedVerify } from './support/writer.ts';
import { quoteIdent } from '../services/core/sql.ts';

const log = createLogger({ service: 'aggregation-test' }, { level: 'error' });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Teardown of every case, run last to first (also after a failure). */
const cleanups: (() => Promise<unknown>)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

/** A suite's settings with its own replication server id (two readers with one id cut each other off). */
function caseEnv(name: string, over: Env = {}): Env {
  return suiteEnv(name, { DB_SERVER_ID: String(400_000 + Math.floor(Math.random() * 100_000)), ...over });
}

/** A fresh suite: database with an empty table, Redis keys and a 2-shard stream; torn down after the file. */
async function freshSuite(env: Env): Promise<{ admin: Connection; redis: RedisClient }> {
  const admin = await createSuiteDatabase(env);
  const redis = suiteRedis(env);
  await resetSuiteRedis(env, redis);
  await resetSuiteStream(env, 2);
  cleanups.push(() => teardown(env, admin, redis));
  return { admin, redis };
}

async function teardown(env: Env, admin: Connection, redis: RedisClient): Promise<void> {
  await resetSuiteRedis(env, redis);
  await deleteSuiteStream(env);
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
  await admin.end();
  redis.disconnect();
}

async function masterStatus(admin: Connection): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

/**
 * Where the events of one NDC break binlog order, and how many are re-sent copies. Delivery is at least once:
 * a record the reader counts as failed is sent again (after a split, the aggregate planned for the parent lands
 * on a child and its events are re-sent on the new shard map, possibly the same child), so an event may
 * reappear after newer ones; the consumer's position rule makes such a copy a no-op. Order holds when every
 * event's first appearance comes after the first appearance of every older event.
 */
function orderOf(ndc: string, events: readonly NdcEvent[]): { breaks: string[]; copies: number } {
  const seen = new Set<string>();
  const breaks: string[] = [];
  let newest: NdcEvent | undefined;
  for (const e of events) {
    if (seen.has(e.event.pos)) continue;
    seen.add(e.event.pos);
    if (newest && compareSourcePositions(newest.event.pos, e.event.pos) > 0)
      breaks.push(
        `${ndc}: ${e.id} (${e.shardId}) at ${e.event.pos} after ${newest.id} at ${newest.event.pos}`,
      );
    else newest = e;
  }
  return { breaks, copies: events.length - seen.size };
}

/** Rows the pipeline copies to Redis (services/core/mapping.ts isEligible, in SQL). */
async function eligibleRows(admin: Connection): Promise<number> {
  const [[row]] = (await admin.query(
    'SELECT COUNT(*) AS n FROM rndc14 WHERE NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3',
  )) as unknown as [[{ n: number }]];
  return Number(row.n);
}

const gcnOf = (e: NdcEvent) => Number(e.event.after?.GCN_SEQNO);

describe('Kinesis aggregation on the stack (MariaDB → reader → kinesalite → consumer → Redis)', () => {
  it('keeps each NDC in binlog order across aggregates and across a shard split made while a writer runs', async () => {
    // Prepare: reader (aggregating sink we can observe) and consumer in-process, 120 catalogue rows inserted
    const env = caseEnv('agg_order');
    const { admin, redis } = await freshSuite(env);
    const config = decodeConfig(readerConfigShape, env);
    const kinesis = suiteKinesis(env);
    const sink = createAggregatingSink(kinesis, config.KINESIS_STREAM, { compression: 'zstd' });
    const reader = startBinlogReader(config, { sink, log }, { from: await masterStatus(admin) });
    const consumer = await startTestConsumer(env, log, redis);
    cleanups.push(async () => {
      await consumer.stop();
      await reader.stop();
      kinesis.destroy();
    });
    const catalogue = [...generateCatalogue(120, 21)];
    await insertRows(admin, catalogue);
    const ndcs = catalogue.filter((r) => mapRow(r) !== null).map((r) => String(r.NDC));
    const BASE = 500_000;

    // Act: a writer updates every NDC round after round (GCN_SEQNO = BASE + round: increasing per NDC);
    // once aggregates are on the stream, shard 0 is split (kinesalite has SplitShard but no UpdateShardCount,
    // which the issue named: a split is the resharding it can make); the writer goes on for 20 more rounds.
    let round = 0;
    let roundsAfterSplit = -1;
    let stopWriter = false;
    let children: string[];
    const writer = (async () => {
      try {
        while (!stopWriter && roundsAfterSplit < 20) {
          round += 1;
          await admin.query('UPDATE rndc14 SET GCN_SEQNO = ? WHERE NDC IN (?)', [BASE + round, ndcs]);
          if (roundsAfterSplit >= 0) roundsAfterSplit += 1;
          await sleep(20);
        }
      } finally {
        stopWriter = true;
      }
    })();
    try {
      await eventually(
        async () => sink.stats.records >= 6 && round >= 10,
        60_000,
        'aggregates before the split',
      );
      roundsAfterSplit = 0;
      children = await splitShard(kinesis, config.KINESIS_STREAM, 'shardId-000000000000');
    } finally {
      stopWriter = roundsAfterSplit < 0;
      await writer;
    }
    const last = BASE + round;
    await eventually(
      async () => (await gcnCounts(redis, env)).get(last) === ndcs.length,
      90_000,
      `every NDC at round ${round} in Redis`,
    );

    // Assess: Redis equals MySQL
    expect(await convergedVerify(env, 60_000)).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    // the reader re-listed its shard map after records landed on the split shard's children
    expect(sink.stats.misrouted).toBeGreaterThan(0);
    expect(sink.stats.shardListings).toBeGreaterThanOrEqual(2);
    // the consumer read the parent to its end, then both children
    const shards = consumer.consumer.stats.shards;
    expect(shards.get('shardId-000000000000')?.closed).toBe(true);
    for (const child of children) expect(shards.get(child)?.checkpoint, child).toBeTruthy();
    // records held many events
    const read = await readShards(kinesis, config.KINESIS_STREAM);
    const records = read.reduce((n, s) => n + s.records.length, 0);
    const events = read.reduce((n, s) => n + eventsOf(s).length, 0);
    expect(sink.stats.events / sink.stats.records).toBeGreaterThan(1);
    expect(events / records).toBeGreaterThan(1);
    // per NDC, along its shards (parent before child): the insert, then every round once or more, in order
    const histories = historiesByNdc(read);
    const breaks: string[] = [];
    let acrossSplit = 0;
    let copies = 0;
    for (const ndc of ndcs) {
      const h = histories.get(ndc) ?? { lineage: [], elsewhere: [] };
      const order = orderOf(ndc, h.lineage);
      breaks.push(...order.breaks);
      copies += order.copies;
      expect(h.lineage[0]?.event.type, ndc).toBe('insert');
      const rounds = [...new Set(h.lineage.slice(1).map(gcnOf))];
      expect(rounds, ndc).toEqual(Array.from({ length: round }, (_, i) => BASE + i + 1));
      // a copy on a sibling shard is an event also on the NDC's own shards (a re-sent misrouted record)
      const own = new Set(h.lineage.map((e) => e.event.pos));
      expect(
        h.elsewhere.filter((e) => !own.has(e.event.pos)),
        ndc,
      ).toEqual([]);
      if (new Set(h.lineage.map((e) => e.shardId)).size > 1) acrossSplit += 1;
    }
    expect(breaks).toEqual([]);
    expect(acrossSplit).toBeGreaterThan(0);
    process.stdout.write(
      `aggregation order: ${round} rounds × ${ndcs.length} NDCs, ${records} records holding ${events} events, ` +
        `${sink.stats.misrouted} misrouted after the split, ${copies} re-sent copies on the NDCs' own shards\n`,
    );
  }, 180_000);

  it('kill -9 of the reader and of the consumer in the middle of bursts: restarted, Redis equals MySQL, no event lost', async () => {
    // Prepare: 5,000 rows backfilled, reader and embedder as child processes. Short leases, so a restart takes
    // over soon after a kill; not shorter: a consumer applying a batch of aggregates (thousands of events) on a
    // loaded machine lost a 2 s lease every batch and made no progress.
    const env = caseEnv('agg_crash', {
      READER_LEASE_TTL_MS: '4000',
      EMBEDDER_LEASE_TTL_MS: '6000',
      READER_METRICS_SECONDS: '1',
    });
    const ROWS = 5_000;
    const BURSTS = 5;
    const BASE = 800_000;
    const pipeline = await startStreamingPipeline(env, ROWS, 33);
    const { admin, procs: live } = pipeline;
    const redis = suiteRedis(env);
    cleanups.push(() => teardown(env, admin, redis));
    cleanups.push(() => pipeline.stop());
    const eligible = await eligibleRows(admin);
    const keys = makeKeys(decodeConfig(readerConfigShape, env));
    const readerStatus = () => redis.hgetall(keys.serviceStatus('binlog-reader'));
    await eventually(async () => (await readerStatus()).state === 'streaming', 60_000, 'reader streaming');

    // Act: five bursts, each one UPDATE of every row (GCN_SEQNO = BASE + burst), back to back
    const writer = (async () => {
      for (let k = 1; k <= BURSTS; k++) await admin.query('UPDATE rndc14 SET GCN_SEQNO = ?', [BASE + k]);
    })();
    // the reader is killed while it publishes: events out, binlog past its checkpoint
    await eventually(
      async () => {
        const st = await readerStatus();
        const cp = await createReaderCheckpointStore(redis, keys).load();
        const behind = cp !== null && compareBinlogPositions(cp, await masterStatus(admin)) < 0;
        return Number(st.events_total ?? 0) >= ROWS && behind;
      },
      60_000,
      'the reader in the middle of the bursts',
    );
    await pipeline.restart('reader');
    // the consumer is killed while a burst is half applied: Redis holds documents of two bursts at once
    const halfway = await eventually(
      async () => {
        const counts = await gcnCounts(redis, env);
        const partial = [...counts].some(([gcn, n]) => gcn > BASE && n < eligible);
        return partial ? counts : null;
      },
      90_000,
      'a burst half applied in Redis',
    );
    await pipeline.restart('embedder');
    await writer;

    // Assess: Redis equals MySQL once both are back, every document at the last burst
    const report = await convergedVerify(env, 150_000).catch((e: unknown) => {
      const tails = `embedder: ${live.embedder.stderrTail().slice(-3000)}\nreader: ${live.reader.stderrTail().slice(-1500)}`;
      throw new Error(`${(e as Error).message}\n${tails}`, { cause: e });
    });
    expect(report).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(report.redis_docs).toBe(report.source_rows);
    expect(report.redis_docs).toBe(eligible);
    expect([...(await gcnCounts(redis, env))]).toEqual([[BASE + BURSTS, eligible]]);
    // no event lost: every burst's update of every row is on the stream (at least once)
    const updated = new Map<number, Set<string>>();
    for (const shard of await readShards(suiteKinesis(env), env.KINESIS_STREAM as string))
      for (const { event } of eventsOf(shard)) {
        if (event.type !== 'update') continue;
        const gcn = Number(event.after?.GCN_SEQNO);
        updated.set(gcn, (updated.get(gcn) ?? new Set()).add(event.ndc));
      }
    const [[{ n: rows }]] = (await admin.query('SELECT COUNT(*) AS n FROM rndc14')) as unknown as [
      [{ n: number }],
    ];
    expect(Array.from({ length: BURSTS }, (_, i) => updated.get(BASE + i + 1)?.size)).toEqual(
      Array.from({ length: BURSTS }, () => Number(rows)),
    );
    const atBursts = [...halfway].filter(([gcn]) => gcn > BASE);
    process.stdout.write(
      `aggregation kill -9: ${BURSTS} bursts × ${rows} rows; consumer killed with ${JSON.stringify(atBursts)} ` +
        `(gcn, documents) of ${eligible} at a burst, the rest before it\n`,
    );
  }, 240_000);

  it('drains a stream holding single-event records (plain JSON, gzip) followed by aggregates, in order', async () => {
    // Prepare: rows inserted and updated once in MySQL; what the reader before aggregation published for
    // those statements is on the stream as it wrote it: one event per record, inserts as plain JSON, updates
    // gzip-compressed (positions before the aggregating reader's start)
    const env = caseEnv('agg_mixed');
    const { admin, redis } = await freshSuite(env);
    const kinesis = suiteKinesis(env);
    const stream = env.KINESIS_STREAM as string;
    const BASE = 600_000;
    const before = await masterStatus(admin);
    const rows = [...generateCatalogue(60, 45)].filter((r) => mapRow(r) !== null).slice(0, 40);
    const ndcs = rows.map((r) => String(r.NDC));
    await insertRows(admin, rows);
    await admin.query('UPDATE rndc14 SET GCN_SEQNO = ?', [BASE + 1]);
    const from = await masterStatus(admin);
    const old = new EventFactory(before.file, Date.now(), env.DB_NAME as string, 'rndc14');
    const oldEvents = [
      ...rows.map((r) => old.insert(r)),
      ...rows.map((r) => old.update(r, { ...r, GCN_SEQNO: BASE + 1 })),
    ];
    expect(compareSourcePositions(oldEvents.at(-1)!.pos, sourcePosition(from.file, from.pos))).toBeLessThan(
      0,
    );
    await putSingleEventRecords(kinesis, stream, oldEvents, (i) => (i < rows.length ? 'json' : 'gzip'));

    // Act: the aggregating reader from there; four more rounds, a delete and an insert
    const reader = startBinlogReader(decodeConfig(readerConfigShape, env), { log }, { from });
    cleanups.push(async () => {
      await reader.stop();
      kinesis.destroy();
    });
    for (let k = 2; k <= 5; k++)
      await admin.query('UPDATE rndc14 SET GCN_SEQNO = ? WHERE NDC IN (?)', [BASE + k, ndcs]);
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [ndcs[0]]);
    const added = { ...rows[1]!, NDC: '99999000017', GCN_SEQNO: BASE + 6 };
    await insertRows(admin, [added]);
    await eventually(
      async () =>
        (await readShards(kinesis, stream))
          .flatMap(eventsOf)
          .some((e) => e.event.type === 'insert' && e.event.ndc === added.NDC),
      60_000,
      'the aggregating reader caught up',
    );
    const consumer = await startTestConsumer(env, log, redis);
    cleanups.push(() => consumer.stop());
    const [current] = (await admin.query('SELECT * FROM rndc14')) as unknown as [Rndc14Row[]];
    const expected = new Map(current.map((r) => [String(r.NDC), mapRow(r)]));
    await eventually(
      async () => {
        for (const [ndc, fields] of expected)
          if (JSON.stringify(await docFields(redis, env, ndc)) !== JSON.stringify(fields)) return false;
        return (await docFields(redis, env, ndcs[0]!)) === null;
      },
      60_000,
      'Redis at the final state',
    );

    // Assess: the three framings were on the stream, each shard's single-event records before its aggregates
    const read = await readShards(kinesis, stream);
    const framings = read.flatMap((s) => eventsOf(s).map((e) => e.framing));
    expect(framings.filter((f) => f === 'json')).toHaveLength(rows.length);
    expect(framings.filter((f) => f === 'gzip')).toHaveLength(rows.length);
    expect(framings.filter((f) => f === 'kpl+zstd').length).toBeGreaterThan(rows.length);
    for (const s of read) {
      const kinds = eventsOf(s).map((e) => (e.framing === 'kpl+zstd' ? 'aggregate' : 'single'));
      expect(kinds.indexOf('aggregate') < 0 || kinds.lastIndexOf('single') < kinds.indexOf('aggregate')).toBe(
        true,
      );
    }
    // applied in order: no event was refused as older than what Redis held, nothing dead-lettered
    expect(consumer.consumer.stats.totals).toMatchObject({ staleRefused: 0, deadLettered: 0, failed: 0 });
    expect(await consumer.rt.deps.dlq.list()).toEqual([]);
    expect(await convergedVerify(env, 60_000)).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
  }, 120_000);

  it('consumes a KPL record made by the awslabs library (aws-kinesis-agg)', async () => {
    // The issue named the Lambda driver as the deaggregating consumer: it no longer exists. The embedder runs
    // on ECS, and its consumer (services/embedder/consumer.ts, shard-reader.ts) is the one deaggregating.
    // Prepare: 30 catalogue rows as insert events, then a rename of the first, aggregated by the awslabs library
    const env = caseEnv('agg_awslabs');
    const { redis } = await freshSuite(env);
    const kinesis = suiteKinesis(env);
    cleanups.push(async () => kinesis.destroy());
    const stream = env.KINESIS_STREAM as string;
    const rows = [...generateCatalogue(60, 9)].filter((r) => mapRow(r) !== null).slice(0, 30);
    const factory = new EventFactory('binlog.000001', Date.now(), env.DB_NAME as string, 'rndc14');
    const renamed: Rndc14Row = {
      ...rows[0]!,
      LN: 'ATORVASTATIN CALCIUM 80 MG TAB',
      LN60: 'ATORVASTATIN CALCIUM 80 MG TAB',
    };
    const events = [...rows.map((r) => factory.insert(r)), factory.update(rows[0]!, renamed)];
    const made = await awslabsAggregate(
      events.map((e) => ({ partitionKey: e.ndc, data: encodeChangeEvent(e) })),
    );

    // Act: PutRecord of what the library made, then the consumer
    for (const r of made)
      await kinesis.send(
        new PutRecordCommand({
          StreamName: stream,
          PartitionKey: r.partitionKey,
          ExplicitHashKey: r.explicitHashKey,
          Data: r.data,
        }),
      );
    const consumer = await startTestConsumer(env, log, redis);
    cleanups.push(() => consumer.stop());
    const expected = new Map([...rows, renamed].map((r) => [String(r.NDC), mapRow(r)]));
    await eventually(
      async () => {
        for (const [ndc, fields] of expected)
          if (JSON.stringify(await docFields(redis, env, ndc)) !== JSON.stringify(fields)) return false;
        return true;
      },
      60_000,
      'the awslabs aggregate applied',
    );

    // Assess: one plain KPL record held every event; each document is its row, the rename applied last
    const read = await readShards(kinesis, stream);
    expect(read.flatMap((s) => s.records)).toHaveLength(1);
    expect(read.flatMap((s) => eventsOf(s).map((e) => e.framing))).toEqual(events.map(() => 'kpl'));
    expect((await docFields(redis, env, String(rows[0]!.NDC)))?.drug_name).toBe(
      'ATORVASTATIN CALCIUM 80 MG TAB',
    );
    expect(consumer.consumer.stats.totals).toMatchObject({ deadLettered: 0, failed: 0 });
    expect(await consumer.rt.deps.dlq.list()).toEqual([]);
  }, 60_000);
});
