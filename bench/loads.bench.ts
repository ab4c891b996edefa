/**
 * `npm run bench -- loads`: daily loads on the full seeded catalogue (issue 9), through the running
 * pipeline (binlog reader and embedder as child processes, local embedder, 256-d):
 * - TRUNCATE + LOAD DATA of the unchanged catalogue,
 * - DELETE-all + INSERT-all of it in one transaction,
 * - a staging copy swapped in with RENAME (re-sync by difference),
 * - a burst of 5,000 mixed changes,
 * each with the time until it is applied, the embedding calls it made, and — for comparison, in the same
 * run — a fresh `drugsync backfill --restart` of the same catalogue. Target: a refresh of an unchanged
 * catalogue converges at least as fast as a fresh backfill and makes 0 embedding calls. Beside the refreshes
 * that travel as row events (TRUNCATE + reload, DELETE + INSERT): their events/s against kinesalite's raw
 * PutRecords of the same kind of records, the ceiling of anything carried by the stream.
 * Settings: BENCH_LOADS_ROWS (493573).
 */
import type { Bench, BenchRow } from './run.ts';
import { encodedRecords, rawPutRecordsRate } from './raw.ts';
import { EventFactory } from '../test/support/events.ts';
import { FULL_CATALOGUE_ROWS, generateCatalogue } from '../services/seed/generator.ts';
import { loadRows } from '../services/seed/load-data.ts';
import {
  applyBurst,
  burstPlan,
  deleteAndInsertAll,
  swapInStagingTable,
  truncateAndReload,
} from '../test/support/daily-loads.ts';
import { runCli, startProc } from '../test/support/pipeline.ts';
import { waitForLoad } from '../test/support/loads.ts';
import {
  createSuiteDatabase,
  deleteSuiteStream,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from '../test/support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const ROWS = Number(process.env.BENCH_LOADS_ROWS ?? FULL_CATALOGUE_ROWS);
const SEED = 42;
const say = (m: string) => process.stderr.write(`[loads bench] ${m}\n`);

const bench: Bench = {
  name: 'loads',
  description: `refresh patterns on ${ROWS.toLocaleString('en-US')} rows vs a fresh backfill, same run`,
  async run(): Promise<BenchRow[]> {
    const env = suiteEnv(
      'bench_loads',
      { LOG_LEVEL: 'warn', TRUNCATE_QUIET_SECONDS: '10' },
      { dimensions: 256 },
    );
    const schema = env.DB_NAME as string;
    say(`seeding ${ROWS} rows`);
    const admin = await createSuiteDatabase(env);
    await loadRows(admin, generateCatalogue({ rows: ROWS, seed: SEED }), { schema, table: 'rndc14' });
    const redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    await resetSuiteStream(env, 2);
    say('backfilling');
    const first = await runCli(env, ['backfill', '--json'], 3_600_000);
    if (first.status !== 0) throw new Error(`backfill failed: ${first.stderr.slice(-1000)}`);
    const procs = [startProc(env, ['binlog-reader']), startProc(env, ['embedder'])];
    const results: {
      pattern: string;
      seconds: number;
      applied: number;
      calls: number;
      rows: number;
      /** row events the load puts on the stream (0 for a re-sync, which reads the table instead) */
      events: number;
    }[] = [];
    const measure = async (
      pattern: string,
      kind: 'rows' | 'resync',
      rows: number,
      events: number,
      act: () => Promise<unknown>,
    ) => {
      say(pattern);
      const t0 = Date.now();
      await act();
      const r = await waitForLoad(env, kind, t0, 3_600_000);
      const calls = Number(r.summary.embeddings_requested);
      say(
        `${pattern}: applied in ${r.appliedSeconds.toFixed(1)} s, settled (drain observed) at ${r.seconds.toFixed(1)} s, ` +
          `${calls} embedding call(s), ${JSON.stringify(r.summary)}`,
      );
      results.push({ pattern, seconds: r.seconds, applied: r.appliedSeconds, calls, rows, events });
    };
    let backfillSeconds: number;
    let rawPut: number;
    try {
      await measure('TRUNCATE + LOAD DATA (unchanged)', 'rows', ROWS, ROWS, () =>
        truncateAndReload(admin, {
          schema,
          table: 'rndc14',
          rows: generateCatalogue({ rows: ROWS, seed: SEED }),
        }),
      );
      await measure('DELETE-all + INSERT-all, one transaction (unchanged)', 'rows', ROWS, 2 * ROWS, () =>
        deleteAndInsertAll(admin, { schema, table: 'rndc14' }),
      );
      await measure('RENAME swap of an unchanged copy', 'resync', ROWS, 0, () =>
        swapInStagingTable(admin, {
          schema,
          table: 'rndc14',
          plan: { fieldChanges: 0, renames: 0, inserts: 0, deletes: 0 },
          seed: 5,
        }),
      );
      await measure('burst of 5,000 mixed changes', 'rows', 5_000, 5_000, () =>
        applyBurst(admin, { schema, table: 'rndc14', plan: burstPlan(5_000), seed: 6 }),
      );
    } finally {
      for (const p of procs) p.child.kill('SIGTERM');
      await Promise.all(procs.map((p) => p.exited));
    }
    try {
      say('fresh backfill --restart of the same table, for comparison');
      const t0 = Date.now();
      const again = await runCli(env, ['backfill', '--restart', '--json'], 3_600_000);
      if (again.status !== 0) throw new Error(`backfill --restart failed: ${again.stderr.slice(-1000)}`);
      backfillSeconds = (Date.now() - t0) / 1000;
      // The stream's own ceiling, same run: kinesalite alone taking insert events of this catalogue (as the
      // reader puts them). A refresh that travels as row events cannot be faster than this.
      say('raw PutRecords of insert events, for comparison');
      const f = new EventFactory('binlog.000009');
      const sample = [...generateCatalogue({ rows: 2_000, seed: SEED })].map((r) => f.insert(r));
      rawPut = await rawPutRecordsRate(env, encodedRecords(sample, env), 50_000);
    } finally {
      // leave nothing behind: 494K documents with vectors would slow every later Redis restart (AOF reload)
      await resetSuiteRedis(env, redis);
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(schema)}`);
      await admin.end();
      await redis.quit();
      await deleteSuiteStream(env);
    }
    const baseline = { metric: 'fresh backfill --restart', value: ROWS / backfillSeconds, unit: 'rows/s' };
    const streamBound = {
      metric: 'raw PutRecords into kinesalite (insert events)',
      value: rawPut,
      unit: 'records/s',
    };
    return results.flatMap((r): BenchRow[] => [
      {
        bench: 'loads',
        metric: `${r.pattern}: rows/s until settled (${r.seconds.toFixed(0)} s; last row applied at ${r.applied.toFixed(0)} s; ${r.calls} embedding calls)`,
        value: r.rows / r.seconds,
        unit: 'rows/s',
        ...(r.rows === ROWS
          ? { baseline, target: '≥ 100% of a fresh backfill, 0 embedding calls' }
          : { target: 'in Redis within 30 s' }),
        note: `${r.calls} embedding calls`,
      },
      ...(r.rows === ROWS && r.events > 0
        ? [
            {
              bench: 'loads',
              metric: `${r.pattern}: its ${r.events.toLocaleString('en-US')} row events through the stream, per s until the last was applied`,
              value: r.events / r.applied,
              unit: 'events/s',
              baseline: streamBound,
              note: 'the ceiling of any refresh carried as row events',
            },
          ]
        : []),
    ]);
  },
};

export default bench;
