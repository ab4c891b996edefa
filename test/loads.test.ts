/**
 * Daily catalogue loads as sites really apply them (issue 9), on the real stack with the local embedder and
 * a 50,000-row catalogue: the backfill, then the binlog reader and the embedder as child processes, and one
 * load after another — a burst of 5,000 mixed changes, TRUNCATE + LOAD DATA, DELETE-all + INSERT-all in one
 * transaction, a staging table swapped in with RENAME. After each: `drugsync verify` finds nothing missing,
 * extra or stale, and the names embedded are exactly the names the catalogue did not know before. During
 * the two full refreshes a sampler keeps counting, with FT.SEARCH, a fixed set of NDCs present before and
 * after: the count never drops.
 *
 * The loads go through the deployed driver, the ECS consumer (`drugsync embedder`), reading GetRecords
 * batches of at most 500 records (EMBEDDER_GETRECORDS_LIMIT), far below the loads' transactions (the
 * DELETE-all + INSERT-all is one 50,000-row transaction, ~100,000 records): a transaction spans hundreds of
 * batches, so holding its deletes until its inserts arrive is exercised across batches, not inside one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { embeddingText, mapRow } from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import {
  applyBurst,
  burstPlan,
  deleteAndInsertAll,
  readTable,
  swapInStagingTable,
  truncateAndReload,
} from './support/daily-loads.ts';
import { waitForLoad } from './support/loads.ts';
import { runCli, startStreamingPipeline } from './support/pipeline.ts';
import type { StreamingPipeline } from './support/pipeline.ts';
import { eventually, suiteEnv, suiteKeys, suiteRedis } from './support/stack.ts';

const ROWS = 50_000;

describe('daily loads converge, keep search up and embed only unknown names (50,000 rows)', () => {
  const env = suiteEnv('loads', {
    TRUNCATE_QUIET_SECONDS: '3',
    LOAD_QUIET_SECONDS: '5',
    // batches well below a load's transaction size (see above)
    EMBEDDER_GETRECORDS_LIMIT: '500',
  });
  const schema = env.DB_NAME as string;
  let admin: Connection;
  let redis: RedisClient;
  let pipeline: StreamingPipeline;
  /** every name the pipeline has embedded so far (the embedding cache holds them) */
  const known = new Set<string>();

  const eligibleNames = async () => {
    const names = new Set<string>();
    for (const row of await readTable(admin, schema, 'rndc14')) {
      const f = mapRow(row);
      if (f) names.add(embeddingText(f));
    }
    return names;
  };
  const verify = async () => {
    const r = await runCli(env, ['verify', '--json'], 120_000);
    return r.json as { ok: boolean; missing: number; extra: number; stale: number; source_rows: number };
  };

  /** Counts, with FT.SEARCH, how many of `ndcs` are findable, every 100 ms until stopped. */
  const sampler = (ndcs: string[]) => {
    let stop = false;
    const counts: number[] = [];
    const query = `@ndc:{${ndcs.join('|')}}`;
    const done = (async () => {
      while (!stop) {
        const reply = (await redis.call(
          'FT.SEARCH',
          env.REDIS_INDEX as string,
          query,
          'NOCONTENT',
          'LIMIT',
          '0',
          '0',
          'DIALECT',
          '2',
        )) as unknown[];
        counts.push(Number(reply[0]));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      async stop() {
        stop = true;
        await done;
        return counts;
      },
    };
  };

  /** Waits until the load is applied; checks verify and the names embedded; prints the figures. */
  const converge = async (pattern: string, t0: number, rows: number) => {
    const { seconds, appliedSeconds, summary } = await waitForLoad(
      env,
      pattern === 'rename swap' ? 'resync' : 'rows',
      t0,
      300_000,
    );
    const v = await verify();
    expect(v, pattern).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
    const names = await eligibleNames();
    const unknown = [...names].filter((n) => !known.has(n));
    for (const n of names) known.add(n);
    const embedded = Number(summary.names_embedded);
    console.log(
      `[loads] ${pattern}: ${rows} rows, applied in ${appliedSeconds.toFixed(1)} s (drain observed at ${seconds.toFixed(1)} s), ` +
        `${embedded} name(s) embedded (${unknown.length} unknown before), ${String(summary.embeddings_requested)} embedding call(s), ` +
        `cache hits ${String(summary.cache_hits)}`,
    );
    expect(embedded, `${pattern}: names embedded`).toBe(unknown.length);
    if (unknown.length === 0) expect(Number(summary.embeddings_requested)).toBe(0);
    return { seconds, summary };
  };

  beforeAll(async () => {
    pipeline = await startStreamingPipeline(env, ROWS, 2026);
    ({ admin } = pipeline);
    redis = suiteRedis(env);
    for (const n of await eligibleNames()) known.add(n);
  }, 300_000);
  afterAll(async () => {
    await pipeline?.stop();
    await admin.end();
    await redis.quit();
  });

  it('a burst of 5,000 mixed changes: all in Redis, embedding only the new names', async () => {
    // Prepare
    const plan = burstPlan(5_000);
    // Act
    const t0 = Date.now();
    const burst = await applyBurst(admin, { schema, table: 'rndc14', plan, seed: 11 });
    // Assess
    expect(burst.statements).toBe(5_000);
    const { summary } = await converge('burst', t0, burst.statements);
    expect(burst.rowsChanged).toBeGreaterThan(4_900);
    expect(Number(summary.row_events)).toBe(burst.rowsChanged);
  }, 600_000);

  /**
   * A full refresh of the table while a sampler counts, with FT.SEARCH, NDCs present before and after (one
   * in `every`): converges like any load, and the count never drops.
   */
  const refreshKeepsSearch = async (
    pattern: string,
    every: number,
    act: (rows: Rndc14Row[]) => Promise<number>,
  ) => {
    // Prepare: the catalogue as it is now, and NDCs present before and after
    const rows = await readTable(admin, schema, 'rndc14');
    const sampled = rows
      .filter((r) => mapRow(r))
      .filter((_, i) => i % every === 0)
      .map((r) => String(r.NDC));
    const s = sampler(sampled);
    // Act
    const t0 = Date.now();
    const written = await act(rows);
    // Assess
    expect(written).toBe(rows.length);
    await converge(pattern, t0, written);
    const counts = await s.stop();
    expect(counts.length).toBeGreaterThan(10);
    expect(Math.min(...counts)).toBe(sampled.length);
  };

  it('TRUNCATE + LOAD DATA of the same catalogue: search never drops, 0 embedding calls', async () => {
    await refreshKeepsSearch('truncate + reload', 997, (rows) =>
      truncateAndReload(admin, { schema, table: 'rndc14', rows }),
    );
  }, 600_000);

  it('DELETE-all + INSERT-all in one transaction: search never drops, 0 embedding calls', async () => {
    await refreshKeepsSearch('delete + insert', 991, () =>
      deleteAndInsertAll(admin, { schema, table: 'rndc14' }),
    );
  }, 600_000);

  it('a staging table swapped in with RENAME: re-synced by difference, rows after the swap keep flowing', async () => {
    // Prepare: the new table differs by inserts, deletes, renames and field changes
    const plan = { fieldChanges: 1_000, renames: 300, inserts: 200, deletes: 200 };
    // Act
    const t0 = Date.now();
    await swapInStagingTable(admin, { schema, table: 'rndc14', plan, seed: 29 });
    const { summary } = await converge('rename swap', t0, ROWS);
    // Assess: only what differs was written or deleted
    // (a deleted row that was ineligible had no document)
    expect(Number(summary.deleted)).toBeGreaterThan(plan.deletes / 2);
    expect(Number(summary.deleted)).toBeLessThanOrEqual(plan.deletes);
    // (renames and inserts of rows that are not eligible make no document)
    expect(Number(summary.written)).toBeGreaterThan((plan.renames + plan.inserts) * 0.9);
    expect(Number(summary.written) + Number(summary.refused)).toBe(
      Number(summary.missing) + Number(summary.stale),
    );
    expect(Number(summary.written)).toBeLessThanOrEqual(plan.fieldChanges + plan.renames + plan.inserts);
    // `drugsync status` shows what the re-sync and the last load did
    const text = (await runCli(env, ['status'], 60_000)).stdout;
    expect(text).toMatch(
      /^resync +done .* at \S+ · [\d,]+ rows, [\d,]+ written, [\d,]+ deleted, [\d,]+ embedding calls/m,
    );
    expect(text).toMatch(/^last load +done .* started \S.* ago +[\d,]+ row events in \d/m);
    // a row event on the swapped-in table still reaches Redis
    const [one] = (await admin.query(
      'SELECT NDC FROM rndc14 WHERE LENGTH(TRIM(LN)) > 3 LIMIT 1',
    )) as unknown as [{ NDC: string }[]];
    const ndc = one[0]!.NDC;
    await admin.query(
      `UPDATE rndc14 SET LN = 'SWAPTEST 5 MG TABLET', LN60 = 'SWAPTEST 5 MG TABLET' WHERE NDC = ?`,
      [ndc],
    );
    await eventually(
      async () => {
        const raw = (await redis.call('JSON.GET', suiteKeys(env).doc(ndc), '$.drug_name')) as string | null;
        return raw?.includes('SWAPTEST 5 MG TABLET');
      },
      60_000,
      'an update after the swap in Redis',
    );
  }, 600_000);
});
