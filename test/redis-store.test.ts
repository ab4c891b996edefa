import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { embeddingText, mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { sourcePosition } from '../services/core/position.ts';
import { createRedisDrugStore } from '../services/core/redis/drug-store.ts';
import type { RedisDrugStore } from '../services/core/redis/drug-store.ts';

import { lexicalVector } from '../services/core/embedding/local.ts';
import { upsertOp } from '../services/core/drug-store-contract.ts';
import type { UpsertOp } from '../services/core/drug-store-contract.ts';
import { changes, generateCatalogue, makeRow } from './support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const DIMS = 32;
const id = { model: 'drugsync-lexical-v1', dimensions: DIMS };
const pos = (n: number) => sourcePosition('binlog.000007', 1_000 + n * 100, 0);

function upsert(fields: DrugFields, p: string, withVector = true): UpsertOp {
  const embedding = withVector ? lexicalVector(embeddingText(fields), DIMS) : undefined;
  return upsertOp({ ndc: fields.ndc, pos: p, fields, identity: id, embedding });
}

describe('Redis document store: the never-backwards rule', () => {
  const env = suiteEnv('store', {}, { dimensions: DIMS });
  let redis: RedisClient;
  let keys: Keys;
  let store: RedisDrugStore;
  const settings = {
    TOMBSTONE_TTL_SECONDS: 3600,
    EMBEDDING_DIMENSIONS: DIMS,
    HNSW_M: 16,
    HNSW_EF_CONSTRUCTION: 200,
  };

  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    keys = makeKeys({
      REDIS_INDEX: env.REDIS_INDEX!,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    store = createRedisDrugStore(redis, keys, settings);
    await store.ensureIndex();
  });
  afterAll(async () => redis.quit());

  const doc = async (ndc: string) => {
    const raw = (await redis.call('JSON.GET', keys.doc(ndc))) as string | null;
    return raw ? (JSON.parse(raw) as Record<string, unknown>) : null;
  };

  it('refuses an older write after a newer one', async () => {
    // Prepare
    const row = makeRow({}, 1);
    const newer = mapRow(changes.rename(row, 1))!;
    const older = mapRow(row)!;
    // Act
    const a = await store.apply([upsert(newer, pos(5))]);
    const b = await store.apply([upsert(older, pos(4))]);
    // Assess
    expect(a[0]?.outcome).toBe('written');
    expect(b[0]?.outcome).toBe('stale');
    expect((await doc(newer.ndc))?.drug_name).toBe(newer.drug_name);
    expect((await store.getMeta([newer.ndc])).get(newer.ndc)?.pos).toBe(pos(5));
  });

  it('keeps a deleted NDC deleted: a late older insert does not resurrect it, the tombstone expires', async () => {
    const f = mapRow(makeRow({}, 2))!;
    await store.apply([upsert(f, pos(1))]);
    const del = await store.apply([{ kind: 'delete', ndc: f.ndc, pos: pos(3) }]);
    const late = await store.apply([upsert(f, pos(2))]);
    const dup = await store.apply([{ kind: 'delete', ndc: f.ndc, pos: pos(3) }]);
    const ttl = await redis.ttl(keys.meta(f.ndc));
    expect(del[0]?.outcome).toBe('deleted');
    expect(late[0]?.outcome).toBe('stale');
    expect(dup[0]?.outcome).toBe('stale');
    expect(await doc(f.ndc)).toBeNull();
    expect(ttl).toBeGreaterThan(3000);
    // A newer insert after the delete is applied, and the bookkeeping no longer expires.
    const again = await store.apply([upsert(f, pos(6))]);
    expect(again[0]?.outcome).toBe('written');
    expect(await redis.ttl(keys.meta(f.ndc))).toBe(-1);
  });

  it('does not rewrite a document whose content did not change; only the position advances', async () => {
    const f = mapRow(makeRow({}, 3))!;
    await store.apply([upsert(f, pos(1))]);
    const before = await doc(f.ndc);
    await new Promise((r) => setTimeout(r, 5));
    const res = await store.apply([upsert(f, pos(2), false)]);
    expect(res[0]?.outcome).toBe('unchanged');
    expect((await doc(f.ndc))?.indexed_at).toBe(before?.indexed_at);
    expect((await store.getMeta([f.ndc])).get(f.ndc)?.pos).toBe(pos(2));
  });

  it('rewrites the fields and keeps the vector when the text is unchanged; asks for a vector when it changed', async () => {
    const row = makeRow({ DEA: '0' }, 4);
    const f = mapRow(row)!;
    await store.apply([upsert(f, pos(1))]);
    const vector = (await doc(f.ndc))?.embedding;
    const flagged = mapRow({ ...row, DEA: '2' })!;
    const renamed = mapRow(changes.rename(row, 9))!;
    const r1 = await store.apply([upsert(flagged, pos(2), false)]);
    const r2 = await store.apply([upsert(renamed, pos(3), false)]);
    const after = await doc(f.ndc);
    expect(r1[0]?.outcome).toBe('fields_updated');
    expect(r2[0]?.outcome).toBe('needs_embedding');
    expect(after?.dea_schedule).toBe('2');
    expect(after?.embedding).toEqual(vector);
  });

  it('converges to the newest state when writers interleave in any order', async () => {
    const rows = [...generateCatalogue({ rows: 300, seed: 9 })]
      .map((r) => mapRow(r))
      .filter((f): f is DrugFields => f !== null);
    const versions = [0, 1, 2, 3].map((v) =>
      rows.map((f) => ({ ...f, brand_name: `${f.brand_name} V${v}` })),
    );
    const ops = versions.flatMap((fs, v) => fs.map((f) => upsert(f, pos(100 + v))));
    // Shuffle, then apply from four concurrent writers.
    ops.sort(() => Math.random() - 0.5);
    const quarter = Math.ceil(ops.length / 4);
    await Promise.all([0, 1, 2, 3].map((w) => store.apply(ops.slice(w * quarter, (w + 1) * quarter))));
    const stored = await store.getDocuments(rows.map((f) => f.ndc));
    const metas = await store.getMeta(rows.map((f) => f.ndc));
    for (const f of rows) {
      expect(stored.get(f.ndc)?.brand_name).toBe(`${f.brand_name} V3`);
      expect(metas.get(f.ndc)?.pos).toBe(pos(103));
    }
  });

  it('sweeps documents older than a position and keeps newer ones', async () => {
    const fs = [...generateCatalogue({ rows: 40, seed: 21 })]
      .map((r) => mapRow(r))
      .filter((f): f is DrugFields => f !== null);
    await store.apply(fs.map((f, i) => upsert(f, i % 2 ? pos(500) : pos(300))));
    const r = await store.sweepOlderThan(pos(400));
    expect(r.deleted).toBeGreaterThanOrEqual(fs.filter((_, i) => i % 2 === 0).length);
    for (const [i, f] of fs.entries()) expect((await doc(f.ndc)) === null).toBe(i % 2 === 0);
  });

  it('records a tombstone for a delete of an unknown NDC, so a late insert cannot create it', async () => {
    const f = mapRow(makeRow({}, 6))!;
    const del = await store.apply([{ kind: 'delete', ndc: f.ndc, pos: pos(20) }]);
    const late = await store.apply([upsert(f, pos(19))]);
    const meta = (await store.getMeta([f.ndc])).get(f.ndc);
    expect(del[0]?.outcome).toBe('tombstoned');
    expect(late[0]?.outcome).toBe('stale');
    expect(meta).toEqual({ pos: pos(20), contentHash: null, textHash: null, tombstone: true });
    expect((await store.getDocuments([f.ndc])).get(f.ndc)).toBeNull();
  });

  it('asks for a vector when a fields-only write finds no document', async () => {
    const f = mapRow(makeRow({}, 7))!;
    const res = await store.apply([upsert(f, pos(1), false)]);
    expect(res[0]?.outcome).toBe('needs_embedding');
    expect(await store.getMeta([f.ndc])).toEqual(new Map([[f.ndc, null]]));
    expect(await doc(f.ndc)).toBeNull();
  });

  it('writes the document exactly as mapped, readable through getDocuments', async () => {
    const f = mapRow(makeRow({ BN: '', GCN_SEQNO: null, DEA: '0' }, 8))!;
    const op = upsert(f, pos(1));
    await store.apply([op]);
    const stored = (await store.getDocuments([f.ndc])).get(f.ndc);
    const { embedding, indexed_at, ...fields } = stored!;
    expect(fields).toEqual(f);
    expect(embedding).toEqual(op.embedding!.map(Math.fround));
    expect(Number.isNaN(Date.parse(indexed_at))).toBe(false);
    expect((await store.getMeta([f.ndc])).get(f.ndc)).toEqual({
      pos: pos(1),
      contentHash: op.contentHash,
      textHash: op.textHash,
      tombstone: false,
    });
  });

  it('sweep --dry-run counts without deleting; sweeps leave tombstones and newer documents alone', async () => {
    const fs = [...generateCatalogue({ rows: 30, seed: 33 })]
      .map((r) => mapRow(r))
      .filter((f): f is DrugFields => f !== null);
    await store.apply(fs.map((f) => upsert(f, pos(600))));
    const dry = await store.sweepOlderThan(pos(700), { dryRun: true });
    for (const f of fs) expect(await doc(f.ndc)).not.toBeNull();
    const real = await store.sweepOlderThan(pos(700));
    const again = await store.sweepOlderThan(pos(700));
    expect(dry.deleted).toBe(real.deleted);
    expect(real.deleted).toBeGreaterThanOrEqual(fs.length);
    for (const f of fs) expect(await doc(f.ndc)).toBeNull();
    expect(again.deleted).toBe(0);
    expect(again.scanned).toBe(real.scanned);
  });
});
