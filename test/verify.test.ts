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
import { upsertOp } from '../services/core/drug-store.ts';
import type { StoreOp } from '../services/core/drug-store.ts';
import { opsShape } from '../services/cli/runtime.ts';
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

  const verify = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, 'verify', '--json', ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 120_000,
    });
    return {
      status: r.status,
      report: JSON.parse(r.stdout.trim().split('\n').at(-1) || '{}') as Record<string, unknown>,
      stderr: r.stderr,
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
});
