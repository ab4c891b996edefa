/**
 * `npm run bench -- embedder`: drain rate of N update events already on the stream (default 100,000),
 * applied by the local embedder consumer into Redis, beside the raw Redis write rate for the same documents
 * (pipelined JSON.SET of the same updated documents into the same indexed keys), taken in the same run.
 * Target: ≥ 70% of the raw rate. Also the other part's raw rate: reading the same records back from
 * kinesalite (GetRecords, no decoding), and the drain against the slower of the two.
 *
 * Settings: BENCH_EMBEDDER_EVENTS (default 100000), BENCH_EMBEDDER_DIMS (default 64), BENCH_EMBEDDER_SHARDS
 * (default 2). Uses its own Redis prefixes / index and Kinesis stream on the local stack.
 */
import { GetRecordsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { Bench, BenchRow } from './run.ts';
import { benchNumber } from './settings.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { compressRecord, encodeChangeEvent } from '../services/core/events.ts';
import { createLogger } from '../services/core/log.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import { upsertOp } from '../services/core/drug-store-contract.ts';
import type { UpsertOp } from '../services/core/drug-store-contract.ts';
import { listAllShards } from '../services/core/kinesis-shards.ts';
import { oldestIterator } from '../test/support/stream-tail.ts';
import { startEmbedderConsumer } from '../services/embedder/consumer.ts';
import { createEmbedderRuntime, decodeEmbedderConfig } from '../services/embedder/runtime.ts';
import { resetSuiteRedis, resetSuiteStream, suiteEnv } from '../test/support/stack.ts';
import { EventFactory, makeRow } from '../test/support/events.ts';

const N = benchNumber('BENCH_EMBEDDER_EVENTS', 100_000);
const DIMS = benchNumber('BENCH_EMBEDDER_DIMS', 64);
const SHARDS = benchNumber('BENCH_EMBEDDER_SHARDS', 2);

function say(msg: string): void {
  process.stderr.write(`[embedder bench] ${msg}\n`);
}

const bench: Bench = {
  name: 'embedder',
  description: `drain ${N.toLocaleString('en-US')} update events from Kinesis into Redis vs raw JSON.SET of the same documents`,
  async run(): Promise<BenchRow[]> {
    const env = suiteEnv(
      'bench_embedder',
      {
        LOG_LEVEL: 'warn',
        ...(process.env.EMBEDDER_GETRECORDS_LIMIT
          ? { EMBEDDER_GETRECORDS_LIMIT: process.env.EMBEDDER_GETRECORDS_LIMIT }
          : {}),
      },
      { dimensions: DIMS },
    );
    const config = decodeEmbedderConfig(env);
    const log = createLogger({ service: 'bench-embedder' }, { level: 'warn' });
    const rt = await createEmbedderRuntime(config, log);
    const { redis, keys } = rt;
    const { store, embeddings } = rt.deps;
    const kinesis = createKinesis(config);
    try {
      await resetSuiteRedis(env, redis);
      await resetSuiteStream(env, SHARDS);
      await store.ensureIndex();

      // Prepare: N documents as a backfill would leave them (vectors from the embedding service)
      const ev = new EventFactory('binlog.000001');
      const rows = Array.from({ length: N }, (_, i) => makeRow(i, { LN: nameFor(i) }));
      const id = { model: embeddings.model, dimensions: embeddings.dimensions };
      const texts = [...new Set(rows.map((r) => embeddingText(mapRow(r)!)))];
      const vecs = await embeddings.embedTexts(texts);
      say(`preloading ${N} documents (${texts.length} distinct names)`);
      const t0 = Date.now();
      for (let i = 0; i < N; i += 500) {
        const ops: UpsertOp[] = rows.slice(i, i + 500).map((r) => {
          const fields = mapRow(r)!;
          const embedding = vecs.vectors.get(embeddingText(fields));
          return upsertOp({ ndc: fields.ndc, pos: ev.insert(r).pos, fields, identity: id, embedding });
        });
        await store.apply(ops);
      }
      say(`preload: ${Math.round(N / ((Date.now() - t0) / 1000))} docs/s`);

      // Updates that change a mapped field but not the name (fields rewritten, vector kept, 0 embeddings)
      const updated = rows.map((r, i) => ({ ...r, BN: `BRAND ${i % 977}`, PS: '250.000' }));
      const ev2 = new EventFactory('binlog.000002');
      const events = updated.map((r, i) => ev2.update(rows[i]!, r));
      say(`putting ${N} update events on ${SHARDS} shard(s)`);
      const tPut = Date.now();
      const inflight: Promise<unknown>[] = [];
      for (let i = 0; i < N; i += 500) {
        const chunk = events.slice(i, i + 500);
        // compressed as the binlog reader writes them (EVENT_GZIP, default on)
        const data = chunk.map((e) => compressRecord(encodeChangeEvent(e)));
        inflight.push(
          kinesis
            .send(
              new PutRecordsCommand({
                StreamName: config.KINESIS_STREAM,
                Records: chunk.map((e, j) => ({ Data: data[j], PartitionKey: e.ndc })),
              }),
            )
            .then((out) => {
              if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records not put`);
            }),
        );
        if (inflight.length >= 4) await inflight.shift();
      }
      await Promise.all(inflight);
      say(`put: ${Math.round(N / ((Date.now() - tPut) / 1000))} records/s`);

      // The other raw part, same run: reading the same records back from kinesalite (GetRecords with the
      // consumer's limit, every shard at once, no decoding): the drain cannot be faster than this read.
      const rawGet = await rawGetRecordsRate(
        kinesis,
        config.KINESIS_STREAM,
        config.EMBEDDER_GETRECORDS_LIMIT,
      );
      say(`raw GetRecords: ${Math.round(rawGet.rate)} records/s (${rawGet.records} records)`);

      // Act: drain with the local consumer
      const tDrain = Date.now();
      let applied = 0;
      const consumer = startEmbedderConsumer(
        config,
        {
          kinesis,
          redis,
          keys,
          apply: rt.deps,
          log,
        },
        {
          exitWhenIdleMs: 1000,
          onBatch: (_s, st) => {
            applied += st.records;
            if (applied === N) consumer.stop();
          },
        },
      );
      const stats = await consumer.done;
      const drainSecs = (Date.now() - tDrain) / 1000;
      const t = stats.totals;
      if (t.records !== N) throw new Error(`drained ${t.records} of ${N} records`);
      say(
        `drain: ${Math.round(N / drainSecs)} rows/s (fields_updated ${t.fieldsUpdated}, unchanged ${t.unchanged}, ` +
          `written ${t.upserted}, embeddings ${t.embeddingsRequested})`,
      );

      // Baseline: raw pipelined JSON.SET of the same updated documents into the same indexed keys
      const tRaw = Date.now();
      const now = new Date();
      for (let i = 0; i < N; i += 500) {
        const pipe = redis.pipeline();
        for (const r of updated.slice(i, i + 500)) {
          const fields = mapRow(r)!;
          const doc = buildDocument(fields, vecs.vectors.get(embeddingText(fields))!, now);
          pipe.call('JSON.SET', keys.doc(fields.ndc), '$', JSON.stringify(doc));
        }
        await pipe.exec();
      }
      const rawRate = N / ((Date.now() - tRaw) / 1000);
      say(`raw JSON.SET: ${Math.round(rawRate)} docs/s`);

      const baseline = { metric: 'raw JSON.SET, same docs, same index', value: rawRate, unit: 'docs/s' };
      const slower =
        rawGet.rate < rawRate
          ? { metric: 'raw GetRecords from kinesalite, same records', value: rawGet.rate, unit: 'records/s' }
          : baseline;
      return [
        {
          bench: 'embedder',
          metric: `drain ${N} update events (${DIMS}-d, ${SHARDS} shards)`,
          value: N / drainSecs,
          unit: 'rows/s',
          baseline,
          target: '≥ 70% of raw',
        },
        {
          bench: 'embedder',
          metric: `the same drain against the slower of its two raw parts`,
          value: N / drainSecs,
          unit: 'rows/s',
          baseline: slower,
          note: `raw GetRecords ${Math.round(rawGet.rate)} records/s, raw JSON.SET ${Math.round(rawRate)} docs/s: the two run on the same 2 cores during the drain`,
        },
        {
          bench: 'embedder',
          metric: 'embedding calls during drain',
          value: t.embeddingsRequested,
          unit: 'calls',
        },
      ];
    } finally {
      await resetSuiteRedis(env, redis).catch((e: unknown) =>
        say(`cleanup failed (keys of bench_embedder left behind): ${String(e)}`),
      );
      kinesis.destroy();
      await rt.close();
    }
  },
};

/** Every record of every shard read once (TRIM_HORIZON to the tip), shards in parallel. */
async function rawGetRecordsRate(
  kinesis: ReturnType<typeof createKinesis>,
  stream: string,
  limit: number,
): Promise<{ rate: number; records: number }> {
  const shards = await listAllShards(kinesis, stream);
  const t0 = Date.now();
  const counts = await Promise.all(
    shards.map(async (sh) => {
      let it = await oldestIterator(kinesis, stream, sh.ShardId);
      let n = 0;
      while (it) {
        const out = await kinesis.send(new GetRecordsCommand({ ShardIterator: it, Limit: limit }));
        n += out.Records?.length ?? 0;
        if ((out.Records?.length ?? 0) === 0 && (out.MillisBehindLatest ?? 0) === 0) break;
        it = out.NextShardIterator;
      }
      return n;
    }),
  );
  const records = counts.reduce((a, b) => a + b, 0);
  return { rate: records / ((Date.now() - t0) / 1000), records };
}

const BASES = [
  'LISINOPRIL',
  'ATORVASTATIN',
  'METFORMIN HCL',
  'AMOXICILLIN',
  'SERTRALINE HCL',
  'OMEPRAZOLE DR',
];
const FORMS = ['TABLET', 'CAPSULE', 'SUSP', 'VIAL'];
/** About one name per five rows, as in the real catalogue. */
function nameFor(i: number): string {
  const k = Math.floor(i / 5);
  return `${BASES[k % BASES.length]} ${(k % 400) + 1} MG ${FORMS[k % FORMS.length]}`.slice(0, 30);
}

export default bench;
