/**
 * `npm run bench -- cdc`: the pipeline end to end on the local stack (binlog reader and embedder as child
 * processes, local embedder):
 * - commit-to-Redis latency p50/p99 under a realistic writer at 200 changes/s for 60 s (targets ≤ 300 ms /
 *   ≤ 1 s): the writer notes when each change committed (its own clock, ms), and each changed document's
 *   `indexed_at` (stamped by the embedder as it writes) gives when it reached Redis; beside it the embedder's
 *   own figure, which can only use the binlog event time (whole seconds: it overstates by up to 1 s);
 * - time to drain a 100,000-row UPDATE (price-list style: no name changes), target ≥ 3,000 rows/s, beside
 *   the raw rate of the bounding part measured in the same run (PutRecords into kinesalite).
 * Settings: BENCH_CDC_ROWS (100000), BENCH_CDC_SECONDS (60), BENCH_CDC_RATE (200).
 */
import type { Bench, BenchRow } from './run.ts';
import { encodedRecords, rawPutRecordsRate } from './raw.ts';
import { generateCatalogue } from '../services/seed/generator.ts';
import { EventFactory } from '../test/support/events.ts';
import { createLogger } from '../services/core/log.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import { preparePipeline, runCli, startProc } from '../test/support/pipeline.ts';
import { eventually, suiteEnv, suiteKeys, suiteRedis } from '../test/support/stack.ts';

const ROWS = Number(process.env.BENCH_CDC_ROWS ?? 100_000);
const SECONDS = Number(process.env.BENCH_CDC_SECONDS ?? 60);
const RATE = Number(process.env.BENCH_CDC_RATE ?? 200);

const say = (m: string) => process.stderr.write(`[cdc bench] ${m}\n`);

const bench: Bench = {
  name: 'cdc',
  description: `end-to-end latency at ${RATE} changes/s for ${SECONDS} s, and draining a ${ROWS.toLocaleString('en-US')}-row UPDATE`,
  async run(): Promise<BenchRow[]> {
    const env = suiteEnv('bench_cdc', { LOG_LEVEL: 'warn' }, { dimensions: 256 });
    const log = createLogger({ service: 'bench-cdc' }, { level: 'warn' });
    say(`seeding ${ROWS} rows and backfilling`);
    const { admin } = await preparePipeline(env, ROWS, 3);
    const redis = suiteRedis(env);
    const backfill = await runCli(env, ['backfill', '--json'], 1_800_000);
    if (backfill.status !== 0) throw new Error(`backfill failed: ${backfill.stderr.slice(-1000)}`);
    const procs = [startProc(env, ['binlog-reader']), startProc(env, ['embedder'])];
    const keys = suiteKeys(env);
    const statusKey = keys.serviceStatus('embedder');
    const records = async () => Number((await redis.hget(statusKey, 'records')) ?? 0);
    try {
      // 1. latency under a steady writer
      await eventually(async () => (await redis.exists(statusKey)) === 1, 60_000, 'embedder status');
      say(`writing ${RATE} changes/s for ${SECONDS} s`);
      // The writer's own commit clock (ms) for every change that rewrites a document (inserts, renames, NDC
      // changes; price-list updates do not touch the document's fields, so nothing is written for them).
      const last = new Map<string, { kind: string; at: number }>();
      const sim = await startSimulator(admin, {
        rate: RATE,
        schema: env.DB_NAME as string,
        table: 'rndc14',
        seed: 4,
        log,
        onChange: (c) => {
          const prev = last.get(c.ndc);
          // an NDC changed twice: keep the first of a run of document-changing changes only if nothing newer
          if (c.kind === 'update' && prev && prev.kind !== 'delete') return;
          last.set(c.ndc, c);
        },
      });
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      await sim.stop();
      await new Promise((r) => setTimeout(r, 3000));
      const lat = await redis.hmget(statusKey, 'latency_p50_ms', 'latency_p99_ms');
      const samples: number[] = [];
      let unmatched = 0;
      const docChanges = [...last].filter(
        ([, c]) => c.kind === 'insert' || c.kind === 'rename' || c.kind === 'ndc_change',
      );
      for (let i = 0; i < docChanges.length; i += 500) {
        const chunk = docChanges.slice(i, i + 500);
        const pipe = redis.pipeline();
        for (const [ndc] of chunk) pipe.call('JSON.GET', keys.doc(ndc), '$.indexed_at');
        const replies = (await pipe.exec()) ?? [];
        chunk.forEach(([, c], j) => {
          const raw = replies[j]?.[1] as string | null;
          const at = raw ? Date.parse((JSON.parse(raw) as string[])[0] ?? '') : NaN;
          // no document (the row is not eligible) or one written before the change: not this change's write
          if (!Number.isFinite(at) || at < c.at - 1) unmatched++;
          else samples.push(at - c.at);
        });
      }
      samples.sort((a, b) => a - b);
      const pct = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
      say(
        `writer-clock latency over ${samples.length} document writes (${unmatched} changes without their own write): ` +
          `p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${samples.at(-1)} ms`,
      );

      // 2. a 100K-row UPDATE
      const base = await records();
      say(`UPDATE of all ${ROWS} rows`);
      const t0 = Date.now();
      await admin.query('UPDATE rndc14 SET PS = PS + 1');
      const committed = Date.now();
      await eventually(async () => (await records()) >= base + ROWS * 0.97, 1_800_000, 'drain');
      const drainSeconds = (Date.now() - committed) / 1000;
      const updateSeconds = (committed - t0) / 1000;

      // Raw rate of the bounding part: PutRecords of ~same-size records into kinesalite, same run.
      // the same kind of records: price-list update events (both images) of catalogue rows, as the reader puts them
      const f = new EventFactory('binlog.000009');
      const sample = [...generateCatalogue({ rows: 2_000, seed: 7 })].map((r) =>
        f.update(r, { ...r, PS: '101.000' }),
      );
      const raw = await rawPutRecordsRate(env, encodedRecords(sample, env), 20_000);
      return [
        {
          bench: 'cdc',
          metric: `commit → Redis write p50, writer's commit clock (ms precision), ${samples.length} document writes`,
          value: pct(0.5),
          unit: 'ms',
          target: '≤ 300 ms',
        },
        {
          bench: 'cdc',
          metric: `commit → Redis write p99, writer's commit clock (ms precision)`,
          value: pct(0.99),
          unit: 'ms',
          target: '≤ 1,000 ms',
        },
        {
          bench: 'cdc',
          metric: `embedder's own figure p50 (binlog timestamp: whole seconds, overstates by up to 1 s) (${RATE}/s writer)`,
          value: Number(lat[0]),
          unit: 'ms',
          note: 'informational: the targets apply to the writer-clock figures above',
        },
        {
          bench: 'cdc',
          metric: `embedder's own figure p99 (binlog timestamp: whole seconds)`,
          value: Number(lat[1]),
          unit: 'ms',
          note: 'informational',
        },
        {
          bench: 'cdc',
          metric: `drain ${ROWS}-row UPDATE (after its ${updateSeconds.toFixed(1)} s commit)`,
          value: ROWS / drainSeconds,
          unit: 'rows/s',
          baseline: { metric: 'raw PutRecords into kinesalite', value: raw, unit: 'records/s' },
          target: '≥ 3,000 rows/s',
          note: `${drainSeconds.toFixed(1)} s`,
        },
      ];
    } finally {
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
      await admin.end();
      await redis.quit();
    }
  },
};

export default bench;
