import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { embeddingText, mapRow } from '../services/core/mapping.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { sourcePosition } from '../services/core/position.ts';
import { createRedisDrugStore } from '../services/core/redis/drug-store.ts';
import { createEmbeddingService } from '../services/core/embedding/service.ts';
import { upsertOp } from '../services/core/drug-store-contract.ts';
import type { StoreOp } from '../services/core/drug-store-contract.ts';
import { opsShape } from '../services/cli/runtime.ts';
import { createMysqlPool, mysqlCredentials } from '../services/core/clients/mysql.ts';
import { createLogger } from '../services/core/log.ts';
import { METRICS, metricDimensions, parseEmfLine } from '../services/core/metrics.ts';
import { parseRecordedHashes, verifyOnce } from '../services/core/reconcile.ts';
import type { RedisSide } from '../services/core/reconcile.ts';
import { generateCatalogue, loadRows } from './support/factories.ts';
import { createSuiteDatabase, resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

describe('drugsync verify', () => {
  const env = suiteEnv('verify');
  let admin: Connection;
  let redis: RedisClient;
  let keys: Keys;
  const rows = [...generateCatalogue({ rows: 5_000, seed: 31 })];
  const eligible = rows.map(mapRow).filter((f) => f !== null);

  /** `drugsync verify --json` as the deployed task runs it (LOG_FORMAT=json: its metric line on stderr). */
  const verify = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, 'verify', '--json', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env, LOG_FORMAT: 'json', DRUGSYNC_STAGE: 'prod' },
      timeout: 120_000,
    });
    const metrics = r.stderr.split('\n').flatMap((l) => parseEmfLine(l) ?? []);
    return {
      status: r.status,
      report: JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}') as Record<string, unknown>,
      stderr: r.stderr,
      metrics,
    };
  };

  beforeAll(async () => {
    admin = await createSuiteDatabase(env);
    await loadRows(admin, rows, { schema: env.DB_NAME as string, table: 'rndc14' });
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    // Load Redis as a backfill would: every eligible row, position-checked, at an old position.
    const cfg = decodeConfig(opsShape, env);
    keys = makeKeys(cfg);
    const store = createRedisDrugStore(redis, keys, cfg);
    await store.ensureIndex();
    const emb = createEmbeddingService(cfg, redis, keys);
    const id = { model: emb.model, dimensions: emb.dimensions };
    const vectors = (await emb.embedTexts(eligible.map(embeddingText))).vectors;
    const pos = sourcePosition('binlog.000001', 4, 0);
    const ops: StoreOp[] = eligible.map((f) =>
      upsertOp({ ndc: f.ndc, pos, fields: f, identity: id, embedding: vectors.get(embeddingText(f)) }),
    );
    await store.apply(ops);
  });
  afterAll(async () => {
    await admin.end();
    await redis.quit();
  });

  it('reports a match when Redis equals MySQL', () => {
    const r = verify();
    expect(r.status, r.stderr).toBe(0);
    expect(r.report).toMatchObject({
      source_rows: eligible.length,
      redis_docs: eligible.length,
      missing: 0,
      extra: 0,
      stale: 0,
      ok: true,
    });
  });

  it('detects a document deleted by hand, one edited by hand and one extra key; --repair fixes exactly those', async () => {
    // Prepare: three kinds of damage
    const [gone, edited] = [eligible[10]!, eligible[20]!];
    await redis.del(keys.doc(gone.ndc));
    await redis.call('JSON.SET', keys.doc(edited.ndc), '$.brand_name', '"HAND EDITED"');
    await redis.call(
      'JSON.SET',
      keys.doc('99999999999'),
      '$',
      JSON.stringify({ ...eligible[30], ndc: '99999999999', embedding: new Array(32).fill(0.1) }),
    );
    // Act
    const before = verify();
    const repaired = verify('--repair');
    const after = verify();
    // Assess
    expect(before.status).toBe(1);
    expect(before.report).toMatchObject({ missing: 1, extra: 1, stale: 1, ok: false });
    // the dashboard's last verify result: one metric line per run, the differences found
    expect(before.metrics).toEqual([
      {
        timestamp: expect.any(Number),
        dimensions: metricDimensions('verify', 'prod'),
        values: { [METRICS.VerifyDifferences]: 3 },
      },
    ]);
    expect(after.metrics.map((m) => m.values)).toEqual([{ [METRICS.VerifyDifferences]: 0 }]);
    expect(before.report.examples).toEqual({
      missing: [gone.ndc],
      extra: ['99999999999'],
      stale: [edited.ndc],
    });
    expect(repaired.status, repaired.stderr).toBe(0);
    expect(after.report).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    const doc = JSON.parse(
      (await redis.call('JSON.GET', keys.doc(edited.ndc), '$.brand_name')) as string,
    ) as string[];
    expect(doc[0]).toBe(edited.brand_name);
    expect(await redis.exists(keys.doc('99999999999'))).toBe(0);
  });

  /** verifyOnce's dependencies on the suite's stack (the caller ends `mysql`). */
  const verifyDeps = async () => {
    const cfg = decodeConfig(opsShape, env);
    const mysql = createMysqlPool(cfg, mysqlCredentials(cfg));
    return {
      mysql,
      redis,
      keys,
      store: createRedisDrugStore(redis, keys, cfg),
      embeddings: createEmbeddingService(cfg, redis, keys),
      schema: env.DB_NAME as string,
      table: 'rndc14',
      log: createLogger({ service: 'test' }, { level: 'error' }),
      snapshotMethod: 'auto' as const,
    };
  };

  it('re-sync comparison (recorded hashes, no document read) finds what differs and leaves changes in flight', async () => {
    // Prepare: Redis equals MySQL (the test above repaired it), then damage the bookkeeping kinds of ways
    const deps = await verifyDeps();
    const { mysql } = deps;
    const [rehashed, unkept, changed, gone] = [eligible[40]!, eligible[50]!, eligible[60]!, eligible[70]!];
    await redis.hset(keys.meta(rehashed.ndc), 'h', 'f'.repeat(32));
    await redis.del(keys.meta(unkept.ndc));
    await admin.query('UPDATE rndc14 SET DF = ? WHERE NDC = ?', ['9', changed.ndc]);
    await redis.del(keys.doc(gone.ndc), keys.meta(gone.ndc));
    const later = sourcePosition('binlog.999999', 4, 0);
    for (const [ndc, pos] of [
      ['88888888881', sourcePosition('binlog.000001', 4, 0)],
      ['88888888882', later],
    ] as const) {
      await redis.call('JSON.SET', keys.doc(ndc), '$', JSON.stringify({ ...eligible[80], ndc }));
      await redis.hset(keys.meta(ndc), 'p', pos, 'h', 'a'.repeat(32));
    }
    try {
      // Act
      const { report, diff } = await verifyOnce(deps, { repair: true, trustMeta: true });
      // Assess
      expect(report).toMatchObject({ source_rows: eligible.length, redis_docs: eligible.length + 1 });
      expect(diff.stale.sort()).toEqual([rehashed.ndc, unkept.ndc, changed.ndc].sort());
      expect(diff.missing).toEqual([gone.ndc]);
      expect(diff.extra).toEqual(['88888888881']);
      expect(diff.inFlight).toBe(1);
      expect(diff.rows.get(changed.ndc)?.dosage_form).toBe('9');
    } finally {
      await admin.query('UPDATE rndc14 SET DF = ? WHERE NDC = ?', [changed.dosage_form, changed.ndc]);
      await redis.del(keys.doc('88888888882'), keys.meta('88888888882'));
      await mysql.end();
    }
    expect(verify('--repair').status).toBe(0);
    expect(verify().report).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
  });

  it('with more than 1,000 missing documents, counts exactly those deleted after the snapshot as in flight', async () => {
    // Prepare: Redis equals MySQL (the test above repaired it). 1,500 documents go, in snapshot (NDC) order:
    // every third one deleted by the stream after the snapshot (tombstone at a later position), every
    // seventh of the rest deleted before it (tombstone at an old position: the row is still there, so it
    // is missing), the others removed with their bookkeeping.
    const deps = await verifyDeps();
    const gone = eligible
      .map((f) => f.ndc)
      .sort()
      .slice(0, 1_500);
    const afterSnapshot = gone.filter((_, i) => i % 3 === 0);
    const missing = gone.filter((_, i) => i % 3 !== 0);
    const tombstonedBefore = missing.filter((_, i) => i % 7 === 0);
    const later = sourcePosition('binlog.999999', 4, 0);
    const old = sourcePosition('binlog.000001', 4, 0);
    await deps.store.apply(afterSnapshot.map((ndc) => ({ kind: 'delete', ndc, pos: later })));
    const pipe = redis.pipeline();
    for (const ndc of missing) pipe.del(keys.doc(ndc), keys.meta(ndc));
    await pipe.exec();
    await deps.store.apply(tombstonedBefore.map((ndc) => ({ kind: 'delete', ndc, pos: old })));
    try {
      // Act
      const { report, diff } = await verifyOnce(deps, { repair: true });
      // Assess: the in-flight deletes are counted apart, every other absent document is missing
      expect(report).toMatchObject({
        source_rows: eligible.length,
        redis_docs: eligible.length - gone.length,
        missing: missing.length,
        in_flight: afterSnapshot.length,
        extra: 0,
        stale: 0,
        ok: false,
      });
      expect([...diff.missing].sort()).toEqual(missing);
      expect([...diff.rows.keys()].sort()).toEqual(missing);
    } finally {
      await deps.mysql.end();
      const cleanup = redis.pipeline();
      for (const ndc of afterSnapshot) cleanup.del(keys.meta(ndc));
      await cleanup.exec();
    }
    expect(verify('--repair').status).toBe(0);
    expect(verify().report).toMatchObject({ missing: 0, extra: 0, stale: 0, in_flight: 0, ok: true });
  });
});

describe('recorded-hash records of the Redis scan', () => {
  it('parse position, hash and NDC, with absent fields as null / no-bookkeeping, and refuse a broken record', () => {
    // Prepare
    const out = new Map<string, RedisSide>();
    // Act
    parseRecordedHashes(
      ['0000000001:000000000004:0000000 ab12 00006001954', ' ab13 00006001955', '  x y'].join('\0'),
      out,
    );
    parseRecordedHashes('', out);
    // Assess: the NDC is the rest of the record, spaces included
    expect([...out]).toEqual([
      ['00006001954', { pos: '0000000001:000000000004:0000000', hash: 'ab12' }],
      ['00006001955', { pos: null, hash: 'ab13' }],
      ['x y', { pos: null, hash: 'no-bookkeeping' }],
    ]);
    expect(() => parseRecordedHashes('no-spaces', out)).toThrow(/unreadable bookkeeping record/);
  });
});
