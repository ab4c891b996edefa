/**
 * `npm run bench -- binlog`: rows/s of the binlog reader, binlog → Kinesis-acknowledged (the checkpoint
 * passing the end of the work), for one 100,000-row UPDATE and for 100 × 1,000-row INSERTs, beside the two
 * raw rates that bound it, taken in the same run on the same records:
 * - raw zongji decode (no event mapping, no publishing) over the same binlog range (and, for information, the
 *   same with drugsync's row decoder, services/binlog-reader/decoder.ts, which the reader uses);
 * - raw kinesalite PutRecords (500 records per call, one call at a time) of the same change events, encoded
 *   (gzip when EVENT_GZIP is on) before the clock starts
 *   (the first 20,000 decoded, repeated up to N records), measured just before and just after the reader's
 *   run (kinesalite slows as its store grows: their mean is the part in the state the reader met).
 * Each workload is written to the binlog right before it is measured, so the reader has nothing after it to
 * read ahead into.
 * Target (issue 17): ≥ 70% of raw zongji decode — with aggregation (the default) the stream is no longer the
 * bound; raw PutRecords of one event per record (the format before aggregation) is printed beside it. Also:
 * events per Kinesis record and bytes per event as the reader sent them, and from them the production ceiling
 * per shard = min(1,000 records/s × events per record, 1 MB/s ÷ bytes per event), target ≥ 10,000 events/s.
 *
 * Settings: BENCH_BINLOG_ROWS (default 100000), BENCH_BINLOG_SHARDS (default 2).
 */
import { DeleteStreamCommand } from '@aws-sdk/client-kinesis';
import type { Bench, BenchRow } from './run.ts';
import { decodeConfig } from '../services/core/config.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createMemoryPositionStore } from '../test/support/memory-position-store.ts';
import { createLogger } from '../services/core/log.ts';
import { compressRecord, rowRecord } from '../services/core/events.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { rowChangeEvents } from '../services/binlog-reader/row-events.ts';
import { createKinesisSink } from '../services/binlog-reader/kinesis-sink.ts';
import { createAggregatingSink } from '../services/binlog-reader/aggregating-sink.ts';
import type { AggregationStats } from '../services/binlog-reader/aggregating-sink.ts';
import type { OutRecord } from '../services/core/events.ts';
import { aggregateFraming, readerConfigShape, startBinlogReader } from '../services/binlog-reader/reader.ts';
import { suiteSource } from '../test/support/binlog.ts';
import type { RowsEvent } from '../services/binlog-reader/source.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { generateCatalogue, insertRows, loadRows } from '../test/support/factories.ts';
import {
  createSuiteDatabase,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from '../test/support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const N = Number(process.env.BENCH_BINLOG_ROWS ?? 100_000);
const SHARDS = Number(process.env.BENCH_BINLOG_SHARDS ?? 2);

function say(msg: string): void {
  process.stderr.write(`[binlog bench] ${msg}\n`);
}

const bench: Bench = {
  name: 'binlog',
  description: `binlog reader rows/s (Kinesis-acknowledged) for a ${N.toLocaleString('en-US')}-row UPDATE and 100 × ${N / 100}-row INSERTs vs raw zongji decode and raw kinesalite PutRecords`,
  async run(): Promise<BenchRow[]> {
    const env = suiteEnv('bench_binlog', {
      LOG_LEVEL: 'warn',
      DB_SERVER_ID: String(600_000 + Math.floor(Math.random() * 100_000)),
    });
    const config = decodeConfig(readerConfigShape, env);
    const log = createLogger({ service: 'bench-binlog' }, { level: 'warn' });
    const admin = await createSuiteDatabase(env);
    const redis = suiteRedis(env);
    const kinesis = createKinesis(config);
    const rawStream = `${config.KINESIS_STREAM}-raw`;
    const rows: BenchRow[] = [];
    try {
      await resetSuiteRedis(env, redis);
      await resetSuiteStream(env, SHARDS);
      await resetSuiteStream({ ...env, KINESIS_STREAM: rawStream }, SHARDS);
      const status = async (): Promise<BinlogPosition> => {
        const [r] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
          { File: string; Position: number }[],
        ];
        return { file: r[0]!.File, pos: Number(r[0]!.Position) };
      };

      // Prepare: N rows loaded; each workload is written to the binlog just before it is measured, so the
      // reader's end-to-end run has nothing after it to read ahead into (that work would count against it)
      say(`loading ${N} rows`);
      await loadRows(admin, generateCatalogue(N, 5), { schema: config.DB_NAME, table: config.DB_TABLE });
      const extra = [...generateCatalogue(N, 6)].map((r, i): Rndc14Row => ({
        ...r,
        NDC: `9${String(i).padStart(10, '0')}`,
      }));
      const per = N / 100;
      const workloads = [
        {
          label: `${N.toLocaleString('en-US')}-row UPDATE`,
          async write() {
            await admin.query("UPDATE rndc14 SET LN60 = CONCAT('B ', LEFT(IFNULL(LN60, ''), 55))");
          },
        },
        {
          label: `100 × ${per.toLocaleString('en-US')}-row INSERTs`,
          async write() {
            for (let i = 0; i < N; i += per) {
              await insertRows(admin, extra.slice(i, i + per));
            }
          },
        },
      ];

      // Raw zongji decode over each range; keeps the encoded records of the first 20,000 rows of each
      const decode = async (from: BinlogPosition, expected: number, fastRows = false) => {
        const sample: OutRecord[] = [];
        const source = suiteSource(config, { serverId: config.DB_SERVER_ID + 1, fastRows });
        let count = 0;
        const t0 = performance.now();
        await new Promise<void>((resolve, reject) => {
          const noop = () => {};
          source.start(from, {
            onBegin: noop,
            onCommit: noop,
            onStatement: noop,
            onRotate: noop,
            onHeartbeat: noop,
            onError: reject,
            onRows(e: RowsEvent) {
              if (sample.length < 20_000)
                for (const ev of rowChangeEvents(e, { txid: 'x', gtid: e.gtid, ts: e.ts }))
                  sample.push(rowRecord(ev));
              count += e.rows.length;
              if (count >= expected) resolve();
            },
          });
        });
        const secs = (performance.now() - t0) / 1000;
        await source.stop();
        return { rate: expected / secs, sample };
      };
      // Raw PutRecords of the same records, 500 per call, sequential (as the reader publishes)
      const sink = createKinesisSink(kinesis, rawStream);
      const rawPut = async (records: OutRecord[]) => {
        const t0 = performance.now();
        for (let i = 0; i < records.length; i += 500) {
          let pending = records.slice(i, i + 500);
          while (pending.length) {
            const res = await sink.putRecords(pending);
            const failed = new Set(res.failed.map((f) => f.index));
            pending = pending.filter((_, k) => failed.has(k));
          }
        }
        return records.length / ((performance.now() - t0) / 1000);
      };
      // The reader's sink as production builds it (aggregates, zstd on the worker thread), to read its counts
      const aggregatingSink = () =>
        createAggregatingSink(kinesis, config.KINESIS_STREAM, aggregateFraming(config, log));
      // The reader, end to end: from `from` until its checkpoint passes `to`
      const readerRun = async (from: BinlogPosition, to: BinlogPosition) => {
        const checkpoints = createMemoryPositionStore();
        const sink = config.KINESIS_AGGREGATION ? aggregatingSink() : undefined;
        const t0 = performance.now();
        const reader = startBinlogReader(config, { redis, kinesis, checkpoints, log, sink }, { from });
        for (;;) {
          const cp = await checkpoints.load();
          if (cp && compareBinlogPositions(cp, to) >= 0) break;
          if (reader.stats.state === 'failed') throw new Error(reader.stats.lastError ?? 'reader failed');
          await new Promise((r) => setTimeout(r, 50));
        }
        const secs = (performance.now() - t0) / 1000;
        const stats = await reader.stop();
        const sent: AggregationStats | null = sink ? { ...sink.stats } : null;
        await sink?.close?.();
        return { secs, events: stats.stats.rowEvents, retries: stats.stats.publisher.retriedRecords, sent };
      };

      for (const w of workloads) {
        const label = w.label;
        const from = await status();
        await w.write();
        const to = await status();
        say(`${label}: binlog ${from.file}:${from.pos} → ${to.file}:${to.pos}`);
        say(`${label}: raw decode`);
        const dec = await decode(from, N);
        say(`${label}: raw decode, drugsync's row decoder (what the reader uses)`);
        const ours = await decode(from, N, true);
        // as many records as the reader publishes (the sample sent N / sample times): kinesalite slows as it fills
        // and encoded as the reader puts them (gzip, when EVENT_GZIP is on), compressed before the clock starts
        const encoded = dec.sample.map((r) =>
          config.EVENT_GZIP ? { ...r, data: compressRecord(r.data) } : r,
        );
        const repeated = Array.from({ length: Math.ceil(N / encoded.length) }, () => encoded)
          .flat()
          .slice(0, N);
        // kinesalite slows as its store grows: raw PutRecords is measured before and after the reader's run
        // and the reader compared with their mean (the part in the state the reader met)
        say(`${label}: raw PutRecords (${N} records), before the reader`);
        const putBefore = await rawPut(repeated);
        say(`${label}: reader end to end`);
        const run = await readerRun(from, to);
        say(`${label}: raw PutRecords (${N} records), after the reader`);
        const putAfter = await rawPut(repeated);
        const put = (putBefore + putAfter) / 2;
        const rate = N / run.secs;
        const sent = run.sent;
        say(
          `${label}: reader ${Math.round(rate)} rows/s (${run.events} events, ${run.retries} retried), decode ${Math.round(dec.rate)}/s, put ${Math.round(putBefore)}/s before, ${Math.round(putAfter)}/s after`,
        );
        rows.push(
          { bench: 'binlog', metric: `${label}: raw zongji decode`, value: dec.rate, unit: 'rows/s' },
          {
            bench: 'binlog',
            metric: `${label}: raw decode with drugsync's row decoder`,
            value: ours.rate,
            unit: 'rows/s',
            baseline: { metric: 'raw zongji decode', value: dec.rate, unit: 'rows/s' },
          },
          {
            bench: 'binlog',
            metric: `${label}: raw kinesalite PutRecords, one event a record (as before aggregation), before / after the reader`,
            value: put,
            unit: `records/s (mean of ${Math.round(putBefore).toLocaleString('en-US')} / ${Math.round(putAfter).toLocaleString('en-US')})`,
          },
          {
            bench: 'binlog',
            metric: `${label}: reader → Kinesis acknowledged`,
            value: rate,
            unit: 'rows/s',
            baseline: { metric: 'raw zongji decode', value: dec.rate, unit: 'rows/s' },
            target: '≥ 70%',
          },
        );
        if (sent && sent.records > 0) {
          const perRecord = sent.events / sent.records;
          const perEvent = sent.bytes / sent.events;
          const ceiling = Math.min(1_000 * perRecord, 1_000_000 / perEvent);
          rows.push(
            {
              bench: 'binlog',
              metric: `${label}: events per Kinesis record`,
              value: perRecord,
              unit: 'events',
            },
            {
              bench: 'binlog',
              metric: `${label}: bytes per event sent (${config.KINESIS_AGGREGATE_COMPRESSION === 'zstd' ? 'kpl+zstd' : 'kpl'})`,
              value: perEvent,
              unit: 'B',
            },
            {
              bench: 'binlog',
              metric: `${label}: production ceiling per shard = min(1,000 rec/s × events/record, 1 MB/s ÷ B/event)`,
              value: ceiling,
              unit: 'events/s',
              target: '≥ 10,000',
            },
          );
        }
      }
      return rows;
    } finally {
      const cleanupFailed = (what: string) => (e: unknown) =>
        say(`cleanup: ${what} failed: ${e instanceof Error ? e.message : String(e)}`);
      await admin
        .query(`DROP DATABASE IF EXISTS ${quoteIdent(config.DB_NAME)}`)
        .catch(cleanupFailed('DROP DATABASE'));
      await admin.end();
      for (const s of [rawStream, config.KINESIS_STREAM]) {
        await kinesis
          .send(new DeleteStreamCommand({ StreamName: s }))
          .catch(cleanupFailed(`DeleteStream ${s}`));
      }
      redis.disconnect();
      kinesis.destroy();
    }
  },
};

export default bench;
