/**
 * `npm run bench -- cdc`: the pipeline end to end on the local stack (binlog reader and embedder as child
 * processes, local embedder):
 * - commit-to-Redis latency p50/p99 under a realistic writer at 200 changes/s for 60 s (targets ≤ 300 ms /
 *   ≤ 1 s), from the embedder's own measurement (event commit time → Redis write);
 * - time to drain a 100,000-row UPDATE (price-list style: no name changes), target ≥ 3,000 rows/s, beside
 *   the raw rate of the bounding part measured in the same run (PutRecords into kinesalite).
 * Settings: BENCH_CDC_ROWS (100000), BENCH_CDC_SECONDS (60), BENCH_CDC_RATE (200).
 */
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { Bench, BenchRow } from './run.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { createLogger } from '../services/core/log.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import { preparePipeline, runCli, startProc } from '../test/support/pipeline.ts';
import { eventually, resetSuiteStream, suiteEnv, suiteRedis } from '../test/support/stack.ts';

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
    const statusKey = `${env.REDIS_STATE_PREFIX}status:embedder`;
    const records = async () => Number((await redis.hget(statusKey, 'records')) ?? 0);
    try {
      // 1. latency under a steady writer
      await eventually(async () => (await redis.exists(statusKey)) === 1, 60_000, 'embedder status');
      say(`writing ${RATE} changes/s for ${SECONDS} s`);
      const sim = await startSimulator(admin, {
        rate: RATE,
        schema: env.DB_NAME as string,
        table: 'rndc14',
        seed: 4,
        log,
      });
      await new Promise((r) => setTimeout(r, SECONDS * 1000));
      await sim.stop();
      await new Promise((r) => setTimeout(r, 3000));
      const lat = await redis.hmget(statusKey, 'latency_p50_ms', 'latency_p99_ms');

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
      const raw = await rawPutRate(env, 20_000);
      return [
        {
          bench: 'cdc',
          metric: `commit → Redis latency p50 (${RATE}/s writer)`,
          value: Number(lat[0]),
          unit: 'ms',
          target: '≤ 300 ms',
        },
        {
          bench: 'cdc',
          metric: `commit → Redis latency p99 (${RATE}/s writer)`,
          value: Number(lat[1]),
          unit: 'ms',
          target: '≤ 1,000 ms',
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

async function rawPutRate(envIn: Record<string, string | undefined>, n: number): Promise<number> {
  const env: Record<string, string | undefined> = { ...envIn, KINESIS_STREAM: `${envIn.KINESIS_STREAM}-raw` };
  await resetSuiteStream(env, 2);
  const k = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
  const data = Buffer.alloc(2_400, 97);
  const t0 = Date.now();
  for (let i = 0; i < n; i += 500) {
    await k.send(
      new PutRecordsCommand({
        StreamName: env.KINESIS_STREAM,
        Records: Array.from({ length: 500 }, (_, j) => ({ PartitionKey: String(i + j), Data: data })),
      }),
    );
  }
  k.destroy();
  return n / ((Date.now() - t0) / 1000);
}

export default bench;
