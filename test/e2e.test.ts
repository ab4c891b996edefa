/**
 * End to end on the real stack: MariaDB → backfill → Redis, then MariaDB → binlog reader → kinesalite →
 * embedder → Redis. Each kind of change in MySQL becomes visible in Redis (JSON.GET and FT.SEARCH).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { changes, insertRows, makeRow } from './support/factories.ts';
import { runCli, startStreamingPipeline } from './support/pipeline.ts';
import type { StreamingPipeline } from './support/pipeline.ts';
import { eventually, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';
import { convergedVerify } from './support/writer.ts';
import type { StatusReport } from '../services/cli/status.ts';

describe('end to end: MySQL changes reach Redis', () => {
  const env = suiteEnv('e2e');
  let admin: Connection;
  let redis: RedisClient;
  let catalogue: Rndc14Row[];
  let pipeline: StreamingPipeline;

  const doc = async (ndc: string) => {
    const raw = (await redis.call('JSON.GET', suiteKeys(env).doc(ndc))) as string | null;
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
  };
  const searchCount = async (query: string) =>
    Number(
      (
        (await redis.call(
          'FT.SEARCH',
          env.REDIS_INDEX as string,
          query,
          'NOCONTENT',
          'DIALECT',
          '2',
        )) as unknown[]
      )[0],
    );

  beforeAll(async () => {
    pipeline = await startStreamingPipeline(env, 10_000, 77);
    ({ admin, catalogue } = pipeline);
    redis = suiteRedis(env);
  });
  afterAll(async () => {
    await pipeline?.stop();
    await admin.end();
    await redis.quit();
  });

  it('backfilled every eligible row', async () => {
    const eligible = catalogue.filter((r) => mapRow(r) !== null);
    const sample = eligible[123] as Rndc14Row;
    expect(await doc(sample.NDC as string)).toMatchObject({ ...mapRow(sample) });
    expect(await searchCount('*')).toBe(eligible.length);
  });

  it('an insert appears', async () => {
    const row: Rndc14Row = {
      ...makeRow({}, 9, 77),
      NDC: '90000000001',
      LN: 'ZEPBOUND 5 MG/0.5 ML VIAL',
      LN60: 'ZEPBOUND 5 MG/0.5 ML VIAL',
      BN: 'ZEPBOUND',
    };
    await insertRows(admin, [row]);
    await eventually(
      async () => (await doc('90000000001'))?.drug_name === 'ZEPBOUND 5 MG/0.5 ML VIAL',
      60_000,
      'insert in Redis',
    );
    await eventually(
      async () => (await searchCount('@ndc:{90000000001} @brand_name:ZEPBOUND')) === 1,
      30_000,
      'insert searchable',
    );
  });

  it('an update of the name appears, re-embedded', async () => {
    const target = catalogue.find((r) => mapRow(r) !== null) as Rndc14Row;
    const before = await doc(target.NDC as string);
    const renamed = changes.rename(target, 'E2E');
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [
      renamed.LN,
      renamed.LN60,
      target.NDC,
    ]);
    const after = await eventually(
      async () => {
        const d = await doc(target.NDC as string);
        return d?.drug_name === String(renamed.LN).trim().toUpperCase() ? d : null;
      },
      60_000,
      'rename in Redis',
    );
    expect(after.embedding).not.toEqual(before?.embedding);
    expect(await searchCount(`@ndc:{${String(target.NDC)}} @drug_name:NE2E`)).toBe(1);
  });

  it('an update of another field appears, the vector kept', async () => {
    const target = catalogue.filter((r) => mapRow(r) !== null)[50] as Rndc14Row;
    const before = await doc(target.NDC as string);
    const dea = before?.dea_schedule === '3' ? '4' : '3';
    await admin.query('UPDATE rndc14 SET DEA = ? WHERE NDC = ?', [dea, target.NDC]);
    const after = await eventually(
      async () => {
        const d = await doc(target.NDC as string);
        return d?.dea_schedule === dea ? d : null;
      },
      60_000,
      'DEA change in Redis',
    );
    expect(after.embedding).toEqual(before?.embedding);
    expect(await searchCount(`@ndc:{${String(target.NDC)}} @dea_schedule:{${dea}}`)).toBe(1);
  });

  it('a delete removes the document', async () => {
    const target = catalogue.filter((r) => mapRow(r) !== null)[60] as Rndc14Row;
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [target.NDC]);
    await eventually(async () => (await doc(target.NDC as string)) === null, 60_000, 'delete in Redis');
    expect(await searchCount(`@ndc:{${String(target.NDC)}}`)).toBe(0);
  });

  it('an NDC change moves the document', async () => {
    const target = catalogue.filter((r) => mapRow(r) !== null)[70] as Rndc14Row;
    const newNdc = '91234567890';
    await admin.query('UPDATE rndc14 SET NDC = ? WHERE NDC = ?', [newNdc, target.NDC]);
    await eventually(
      async () => (await doc(newNdc)) !== null && (await doc(target.NDC as string)) === null,
      60_000,
      'NDC change in Redis',
    );
    expect((await doc(newNdc))?.drug_name).toBe(mapRow(target)?.drug_name);
    expect(await searchCount(`@ndc:{${newNdc}}`)).toBe(1);
  });

  it('verify agrees once the stream has drained', async () => {
    expect(await convergedVerify(env, 60_000)).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
  });

  it('status reports every part: checkpoint, shards caught up, documents vs eligible rows, cache, services', async () => {
    // Act (the binlog reader writes its status hash every READER_METRICS_SECONDS)
    const s = await eventually(
      async () => {
        const r = await runCli(env, ['status', '--json']);
        expect(r.status, r.stderr.slice(-2000)).toBe(0);
        const st = r.json as unknown as StatusReport;
        return st.services['binlog-reader'] ? st : null;
      },
      60_000,
      'the binlog reader in status',
    );
    // Assess
    const eligible = Number(
      (
        (await admin.query(
          'SELECT COUNT(*) AS n FROM rndc14 WHERE NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3',
        )) as unknown as [{ n: number }[]]
      )[0][0]!.n,
    );
    expect(s.binlog.checkpoint?.file).toMatch(/\.\d{6}$/);
    expect(s.binlog.checkpointFilePresent).toBe(true);
    expect(s.kinesis.shards.map((x) => x.lagRecords)).toEqual([0, 0]);
    expect(s.redis.eligibleRows).toBe(eligible);
    expect(s.redis.documents).toBe(eligible);
    expect(s.redis.embeddingCache).toBeGreaterThan(0);
    expect(s.redis.deadLetters).toBe(0);
    expect(Object.keys(s.services).sort()).toEqual(['backfill', 'binlog-reader', 'embedder']);
    expect(s.table).toMatchObject({ truncatePending: null, resyncsPending: [] });
    // every status hash the running services wrote reads back whole through its schema (core/status/)
    expect(s.problems).toEqual([]);
    expect(s.progress.reader?.stallSeconds).toBeLessThan(120);
    expect(s.progress.embedder?.stallSeconds).toBeLessThan(300);
    // the text form names each part on its own line
    const text = (await runCli(env, ['status'])).stdout;
    for (const part of ['binlog', 'binlog-reader', 'kinesis', 'embedder', 'redis', 'backfill'])
      expect(text).toMatch(new RegExp(`^${part} `, 'm'));
    expect(text).toMatch(/^embedder +\S+ +0 records · .*stall [\d.]+ s /m);
  });
});
