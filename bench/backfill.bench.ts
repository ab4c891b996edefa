/**
 * `npm run bench -- backfill`: the backfill beside the raw rates of its two ends, in one run.
 *
 * Case A (default: the full catalogue, 493,573 rows, local embedder, 256-d) and case B (100,000 rows, 1,024-d):
 * - raw read: the eligible rows of the table through the snapshot's keyset pages + mapping (MySQL alone);
 * - raw write: the same documents (mapping + lexical vector) as pipelined JSON.SET into a fresh full index,
 *   two pipelines of BATCH_SIZE in flight (Redis alone);
 * - the backfill (runBackfill, in process), its rows/s as a share of the slower end (target ≥ 70%);
 * - Redis memory per document: used_memory delta over the backfill ÷ documents (documents, index,
 *   bookkeeping and the embedding cache included).
 * Case T (Titan through the fake Bedrock, 256-d, `drugsync backfill` as a child process):
 * - answering in 70 ms, no quota, on case A's catalogue (target: ≤ 15 minutes);
 * - a 6,000 requests/minute quota on a smaller catalogue: duration vs distinct texts ÷ quota (target within
 *   10%), and the accepted request rate in the steady middle of the run.
 *
 * Settings: BENCH_BACKFILL_ROWS (493573), BENCH_BACKFILL_DIMS (256), BENCH_BACKFILL_BIG_ROWS (100000; 0 skips),
 * BENCH_BACKFILL_BIG_DIMS (1024), BENCH_BACKFILL_RAW_DOCS (all: cap on the raw write's documents),
 * BENCH_REDIS_SERVER (stack; stack,redis82 runs case A on a Redis 8.2.3 with the Stack 7.4 modules too, bench/redis-server.ts),
 * BENCH_BACKFILL_TITAN (1; 0 skips case T), BENCH_BACKFILL_TITAN_CONCURRENCY (32), BENCH_BACKFILL_QUOTA_ROWS
 * (30000), BENCH_BACKFILL_QUOTA_RPM (6000), BENCH_BACKFILL_SPOOL_ONLY (0; 1 = case A's spool vs re-read figures only), BENCH_BACKFILL_TITAN_FULL (1; 0 = only the quota case of T). Own databases, prefixes and index names per process; removed at the end.
 */
import fs from 'node:fs';
import os from 'node:os';
import readline from 'node:readline';
import path from 'node:path';
import type { Bench, BenchRow } from './run.ts';
import { benchNumber } from './settings.ts';
import { benchRedisServers, onServer, openBenchRedis, STACK_REDIS } from './redis-server.ts';
import type { BenchRedis } from './redis-server.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import type { Env } from '../services/core/config.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { createLogger } from '../services/core/log.ts';
import { makeKeys } from '../services/core/keys.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import { ensureIndex } from '../services/core/redis/index.ts';
import { openBackfillRuntime } from '../services/backfill/runtime.ts';
import { openSnapshot } from '../services/core/snapshot.ts';
import { generateCatalogue, loadRows } from '../test/support/factories.ts';
import { runCli } from '../test/support/pipeline.ts';
import { startFakeBedrock } from '../test/support/fake-bedrock.ts';
import {
  adminConnection,
  createSuiteDatabase,
  resetSuiteRedis,
  suiteEnv,
  suiteRedis,
} from '../test/support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const ROWS = benchNumber('BENCH_BACKFILL_ROWS', 493_573);
const DIMS = benchNumber('BENCH_BACKFILL_DIMS', 256);
const BIG_ROWS = benchNumber('BENCH_BACKFILL_BIG_ROWS', 100_000);
const BIG_DIMS = benchNumber('BENCH_BACKFILL_BIG_DIMS', 1024);
const RAW_DOCS = benchNumber('BENCH_BACKFILL_RAW_DOCS', 0);
const TITAN = process.env.BENCH_BACKFILL_TITAN !== '0';
const TITAN_CONCURRENCY = benchNumber('BENCH_BACKFILL_TITAN_CONCURRENCY', 32);
const QUOTA_ROWS = benchNumber('BENCH_BACKFILL_QUOTA_ROWS', 30_000);
const QUOTA_RPM = benchNumber('BENCH_BACKFILL_QUOTA_RPM', 6_000);
const TITAN_FULL = process.env.BENCH_BACKFILL_TITAN_FULL !== '0';
const SPOOL_ONLY = process.env.BENCH_BACKFILL_SPOOL_ONLY === '1';
const SEED = 42;
const PIPE = 500;

function say(msg: string): void {
  process.stderr.write(`[backfill bench] ${new Date().toISOString().slice(11, 19)} ${msg}\n`);
}

async function usedMemory(redis: RedisClient): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
}

function envFor(label: string, dims: number, over: Env = {}): Env {
  return suiteEnv(
    `bench_backfill_${process.pid}_${label}`,
    { LOG_LEVEL: 'warn', ...over },
    { dimensions: dims },
  );
}

async function seed(env: Env, rows: number): Promise<{ seconds: number }> {
  const admin = await createSuiteDatabase(env);
  try {
    const t0 = performance.now();
    await loadRows(admin, generateCatalogue({ rows, seed: SEED, order: 'ndc' }), {
      schema: env.DB_NAME as string,
      table: 'rndc14',
    });
    return { seconds: (performance.now() - t0) / 1000 };
  } finally {
    await admin.end();
  }
}

async function dropDatabase(env: Env): Promise<void> {
  const admin = await adminConnection(env);
  await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
  await admin.end();
}

/** Raw read: every row of the table through the snapshot's keyset pages, mapped; eligible rows/s. */
async function rawRead(env: Env): Promise<{ eligible: number; distinct: number; rate: number }> {
  const rt = await openBackfillRuntime(env, createLogger({ service: 'bench' }, { level: 'warn' }));
  try {
    const t0 = performance.now();
    const snap = await openSnapshot(rt.deps.mysql, {
      schema: env.DB_NAME as string,
      table: 'rndc14',
    });
    let eligible = 0;
    const texts = new Set<string>();
    try {
      for await (const page of snap.rows({
        schema: env.DB_NAME as string,
        table: 'rndc14',
        pageSize: 5_000,
      })) {
        for (const r of page) {
          const f = mapRow(r);
          if (f) {
            eligible++;
            texts.add(embeddingText(f));
          }
        }
      }
    } finally {
      await snap.close();
    }
    return { eligible, distinct: texts.size, rate: eligible / ((performance.now() - t0) / 1000) };
  } finally {
    await rt.close();
  }
}

/**
 * Spool vs chunked re-reads: the spool's round trip (snapshot pages → mapped JSON lines on disk → read back
 * by windows) against reading the same rows from MySQL again (what chunked re-reads cost per pass).
 */
async function spoolRoundTrip(
  env: Env,
): Promise<{ write: number; readBack: number; reRead: number; bytes: number }> {
  const rt = await openBackfillRuntime(env, createLogger({ service: 'bench' }, { level: 'warn' }));
  const file = path.join(os.tmpdir(), `drugsync-bench-spool-${process.pid}.jsonl`);
  try {
    const schema = env.DB_NAME as string;
    const t0 = performance.now();
    const snap = await openSnapshot(rt.deps.mysql, { schema, table: 'rndc14' });
    const out = fs.createWriteStream(file);
    let n = 0;
    try {
      for await (const page of snap.rows({ schema, table: 'rndc14', pageSize: 5_000 })) {
        let buf = '';
        for (const r of page) {
          const f = mapRow(r);
          if (f) {
            buf += JSON.stringify(f) + '\n';
            n++;
          }
        }
        if (!out.write(buf)) await new Promise<void>((r) => out.once('drain', () => r()));
      }
    } finally {
      await snap.close();
      await new Promise<void>((r) => out.end(() => r()));
    }
    const write = n / ((performance.now() - t0) / 1000);
    const t1 = performance.now();
    let m = 0;
    const rl = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
    for await (const line of rl) if (line && (JSON.parse(line) as { ndc: string }).ndc) m++;
    const readBack = m / ((performance.now() - t1) / 1000);
    const t2 = performance.now();
    let k = 0;
    const again = await openSnapshot(rt.deps.mysql, { schema, table: 'rndc14' });
    try {
      for await (const page of again.rows({ schema, table: 'rndc14', pageSize: 5_000 }))
        for (const r of page) if (mapRow(r)) k++;
    } finally {
      await again.close();
    }
    const reRead = k / ((performance.now() - t2) / 1000);
    return { write, readBack, reRead, bytes: fs.statSync(file).size / Math.max(1, n) };
  } finally {
    fs.rmSync(file, { force: true });
    await rt.close();
  }
}

/** Raw write: the same documents, pipelined JSON.SET into a fresh full index, two pipelines in flight. */
async function rawWrite(
  redis: RedisClient,
  rows: number,
  dims: number,
  limit: number,
): Promise<{ docs: number; rate: number }> {
  const env = envFor('raw', dims);
  const keys = makeKeys({
    REDIS_INDEX: env.REDIS_INDEX as string,
    REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX as string,
    REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX as string,
  });
  await resetSuiteRedis(env, redis);
  await ensureIndex(redis, keys, {
    dimensions: dims,
    hnsw: { m: 16, efConstruction: 200 },
    algorithm: 'HNSW',
  });
  const now = new Date();
  let docs = 0;
  const inFlight = new Set<Promise<void>>();
  const t0 = performance.now();
  let batch: [string, string][] = [];
  const flush = async (b: [string, string][]) => {
    const pipe = redis.pipeline();
    for (const [k, v] of b) pipe.call('JSON.SET', k, '$', v);
    const res = await pipe.exec();
    const failed = res?.find(([e]) => e);
    if (failed?.[0]) throw failed[0];
  };
  for (const r of generateCatalogue({ rows, seed: SEED, order: 'ndc' })) {
    const f = mapRow(r);
    if (!f) continue;
    batch.push([
      keys.doc(f.ndc),
      JSON.stringify(buildDocument(f, lexicalVector(embeddingText(f), dims), now)),
    ]);
    docs++;
    const stop = limit > 0 && docs >= limit;
    if (batch.length >= PIPE || stop) {
      const p = flush(batch).finally(() => inFlight.delete(p));
      inFlight.add(p);
      batch = [];
      if (inFlight.size >= 2) await Promise.race(inFlight);
    }
    if (stop) break;
  }
  if (batch.length) await flush(batch);
  await Promise.all(inFlight);
  const rate = docs / ((performance.now() - t0) / 1000);
  await resetSuiteRedis(env, redis);
  return { docs, rate };
}

async function localCase(
  label: string,
  rows: number,
  dims: number,
  out: BenchRow[],
  server: BenchRedis = STACK_REDIS,
): Promise<Env> {
  const env = envFor(label, dims, server.env);
  const redis = suiteRedis(env);
  const row = (r: Omit<BenchRow, 'bench'>) => {
    out.push({ bench: 'backfill', ...r, metric: onServer(r.metric, server) });
    say(`${r.metric}: ${r.value.toFixed(r.value < 10 ? 3 : 0)} ${r.unit}${r.note ? ` (${r.note})` : ''}`);
  };
  try {
    say(`case ${label}: seeding ${rows} rows`);
    const s = await seed(env, rows);
    say(`seeded in ${s.seconds.toFixed(1)} s`);
    const read = await rawRead(env);
    row({
      metric: `raw read: eligible rows via keyset snapshot + mapping (${rows} rows)`,
      value: read.rate,
      unit: 'rows/s',
      note: `${read.eligible} eligible, ${read.distinct} distinct texts`,
    });
    const sp = await spoolRoundTrip(env);
    row({
      metric: 'spool: snapshot → mapped JSON lines on disk',
      value: sp.write,
      unit: 'rows/s',
      note: `${Math.round(sp.bytes)} B per row`,
    });
    row({
      metric: 'spool read back (per pass over the rows)',
      value: sp.readBack,
      unit: 'rows/s',
      baseline: {
        metric: 're-reading the rows from MySQL (chunked re-reads)',
        value: sp.reRead,
        unit: 'rows/s',
      },
    });
    if (SPOOL_ONLY) return env;
    const write = await rawWrite(redis, rows, dims, RAW_DOCS);
    row({
      metric: `raw write: pipelined JSON.SET, full index, ${dims}-d (${write.docs} docs)`,
      value: write.rate,
      unit: 'docs/s',
    });
    const slower =
      read.rate < write.rate
        ? { metric: 'raw read', value: read.rate, unit: 'rows/s' }
        : { metric: 'raw write', value: write.rate, unit: 'docs/s' };
    await resetSuiteRedis(env, redis);
    const before = await usedMemory(redis);
    const rt = await openBackfillRuntime(env, createLogger({ service: 'bench-backfill' }, { level: 'warn' }));
    let summary;
    try {
      summary = await rt.run({
        restart: true,
        spoolDir: path.join(os.tmpdir(), `drugsync-bench-${process.pid}-${label}`),
      });
    } finally {
      await rt.close();
    }
    const after = await usedMemory(redis);
    if (!summary.completed) throw new Error(`backfill did not complete: ${JSON.stringify(summary)}`);
    row({
      metric: `backfill, local embedder ${dims}-d, ${summary.successful} docs in ${summary.duration_seconds} s`,
      value: summary.successful / summary.duration_seconds,
      unit: 'rows/s',
      baseline: slower,
      target: '≥ 70% of the slower end' + (rows >= 493_573 ? '; ≤ 10 min' : ''),
      note: `${summary.embeddings_requested} texts embedded, ${summary.embedding_cache_hits} cache hits, MySQL transaction open ${summary.snapshot_seconds.toFixed(1)} s`,
    });
    row({
      metric: `Redis memory per document, ${dims}-d (docs + index + bookkeeping + embedding cache)`,
      value: (after - before) / summary.successful / 1024,
      unit: 'KiB',
    });
    return env;
  } finally {
    await resetSuiteRedis(env, redis);
    await redis.quit();
  }
}

async function titanCases(dbEnv: Env | undefined, out: BenchRow[]): Promise<void> {
  const bedrock = await startFakeBedrock({ latencyMs: 70 });
  const row = (r: Omit<BenchRow, 'bench'>) => {
    out.push({ bench: 'backfill', ...r });
    say(`${r.metric}: ${r.value.toFixed(r.value < 10 ? 3 : 0)} ${r.unit}${r.note ? ` (${r.note})` : ''}`);
  };
  const titanEnv = (label: string, over: Env) =>
    envFor(label, 256, {
      EMBEDDING_PROVIDER: 'titan',
      BEDROCK_ENDPOINT: bedrock.endpoint,
      EMBEDDING_CONCURRENCY: String(TITAN_CONCURRENCY),
      BACKFILL_SPOOL_DIR: path.join(os.tmpdir(), `drugsync-bench-${process.pid}-${label}`),
      ...over,
    });
  try {
    if (dbEnv) {
      // 70 ms per call, no quota, case A's catalogue
      const env = titanEnv('titan', { DB_NAME: dbEnv.DB_NAME as string, EMBEDDING_RPM: '10000000' });
      const redis = suiteRedis(env);
      await resetSuiteRedis(env, redis);
      say(`case titan 70 ms: ${ROWS} rows, concurrency ${TITAN_CONCURRENCY}`);
      const r = await runCli(env, ['backfill', '--restart', '--json'], 3_600_000);
      await resetSuiteRedis(env, redis);
      await redis.quit();
      if (r.json.completed !== true) throw new Error(`titan backfill failed: ${r.stderr.slice(-2000)}`);
      row({
        metric: `backfill through fake Bedrock (70 ms/call, no quota, concurrency ${TITAN_CONCURRENCY}), ${String(r.json.successful)} docs`,
        value: Number(r.json.duration_seconds) / 60,
        unit: 'min',
        target: '≤ 15 min',
        note: `${String(r.json.embeddings_requested)} calls, ${String(r.json.drugs_per_second)} rows/s, failed ${String(r.json.failed)}`,
      });
    }
    // Quota: a fresh smaller catalogue, the server allows QUOTA_RPM, the client budget is set to it.
    bedrock.setOptions({ latencyMs: 70, rpm: QUOTA_RPM });
    const env = titanEnv('quota', { EMBEDDING_RPM: String(QUOTA_RPM), EMBEDDING_MAX_RETRIES: '30' });
    const redis = suiteRedis(env);
    try {
      await seed(env, QUOTA_ROWS);
      await resetSuiteRedis(env, redis);
      const okBefore = bedrock.stats.okTimes.length;
      const throttledBefore = bedrock.stats.throttled;
      say(`case quota: ${QUOTA_ROWS} rows at ${QUOTA_RPM} requests/minute`);
      const r = await runCli(env, ['backfill', '--restart', '--json'], 3_600_000);
      if (r.json.completed !== true) throw new Error(`quota backfill failed: ${r.stderr.slice(-2000)}`);
      const calls = Number(r.json.embeddings_requested);
      const expected = (calls / QUOTA_RPM) * 60;
      const times = bedrock.stats.okTimes.slice(okBefore);
      const mid = times.slice(Math.floor(times.length * 0.1), Math.floor(times.length * 0.9));
      const steadyRpm =
        mid.length > 1 ? ((mid.length - 1) / (((mid.at(-1) as number) - (mid[0] as number)) / 1000)) * 60 : 0;
      row({
        metric: `backfill under a ${QUOTA_RPM}/min quota: ${calls} distinct texts, ${String(r.json.successful)} docs`,
        value: Number(r.json.duration_seconds),
        unit: 's',
        baseline: { metric: 'distinct texts ÷ quota', value: expected, unit: 's' },
        target: 'within 10%',
        note: `failed ${String(r.json.failed)}, ${bedrock.stats.throttled - throttledBefore} throttled answers`,
      });
      const span = times.length > 1 ? ((times.at(-1) as number) - (times[0] as number)) / 1000 : 0;
      row({
        metric: 'the same run, Bedrock phase only (first to last accepted call)',
        value: span,
        unit: 's',
        baseline: { metric: 'distinct texts ÷ quota', value: expected, unit: 's' },
        target: 'within 10%',
      });
      row({
        metric: 'accepted Bedrock request rate, steady middle 80% of the quota run',
        value: steadyRpm,
        unit: 'req/min',
        baseline: { metric: 'quota', value: QUOTA_RPM, unit: 'req/min' },
      });
    } finally {
      await resetSuiteRedis(env, redis);
      await redis.quit();
      await dropDatabase(env);
    }
  } finally {
    await bedrock.close();
  }
}

/** Case A again on each other server BENCH_REDIS_SERVER names (redis82: Redis 8.2.3 + Stack 7.4 modules). */
async function otherServers(rows: number, dims: number, out: BenchRow[]): Promise<void> {
  for (const which of benchRedisServers().filter((x) => x !== 'stack')) {
    const server = await openBenchRedis(which);
    try {
      await dropDatabase(await localCase(`a_${which}`, rows, dims, out, server));
    } finally {
      await server.stop();
    }
  }
}

const bench: Bench = {
  name: 'backfill',
  description: `backfill vs raw MySQL read and raw Redis write: ${ROWS.toLocaleString('en-US')} rows at ${DIMS}-d, ${BIG_ROWS.toLocaleString('en-US')} at ${BIG_DIMS}-d; fake Bedrock 70 ms and quota`,
  async run(): Promise<BenchRow[]> {
    const out: BenchRow[] = [];
    say(
      `machine: ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, load ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    const envA = await localCase('a', ROWS, DIMS, out);
    try {
      await otherServers(ROWS, DIMS, out);
      if (BIG_ROWS > 0) await dropDatabase(await localCase('b', BIG_ROWS, BIG_DIMS, out));
      if (TITAN) await titanCases(TITAN_FULL && !SPOOL_ONLY ? envA : undefined, out);
    } finally {
      await dropDatabase(envA);
      for (const f of fs.readdirSync(os.tmpdir()))
        if (f.startsWith(`drugsync-bench-${process.pid}-`))
          fs.rmSync(path.join(os.tmpdir(), f), { recursive: true, force: true });
    }
    say(
      `load at the end: ${os
        .loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
    );
    return out;
  },
};

export default bench;
