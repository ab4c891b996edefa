/**
 * The three search modes on the real stack (Redis Stack: RediSearch full text and HNSW vectors) over a
 * small seeded catalogue (5,000 rows, seed 42) embedded with the local lexical embedder, through the core
 * function and through the CLI.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createLocalEmbedder } from '../services/core/embedding/local.ts';
import type { EmbeddingService } from '../services/core/embedding/types.ts';
import { makeKeys } from '../services/core/keys.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { ensureIndex } from '../services/core/redis/index.ts';
import { searchDrugs } from '../services/core/search/search.ts';
import { generateCatalogue } from './support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const DIMS = 64;
const CLI = path.join(import.meta.dirname, '..', 'bin', 'drugsync.mjs');

describe('drugsync search: vector, text and hybrid on the local stack', () => {
  const env = suiteEnv('search', {}, { dimensions: DIMS });
  const keys = makeKeys({
    REDIS_INDEX: env.REDIS_INDEX!,
    REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
    REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
  });
  const embedder = createLocalEmbedder(DIMS);
  const embeddings: Pick<EmbeddingService, 'embedTexts'> = {
    async embedTexts(texts) {
      const list = [...texts];
      const vs = await embedder.embed(list);
      const stats = { texts: list.length, cacheHits: 0, requests: 1, throttled: 0, retries: 0, failed: 0 };
      return { vectors: new Map(list.map((t, i) => [t, vs[i] as number[]])), failures: new Map(), stats };
    },
  };
  const docs: DrugFields[] = [];
  let redis: RedisClient;

  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    await ensureIndex(redis, keys, { dimensions: DIMS, hnsw: { m: 16, efConstruction: 200 } });
    for (const r of generateCatalogue({ rows: 5_000, seed: 42 })) {
      const f = mapRow(r);
      if (f) docs.push(f);
    }
    const pipe = redis.pipeline();
    for (const f of docs) {
      const [v] = await embedder.embed([embeddingText(f)]);
      pipe.call('JSON.SET', keys.doc(f.ndc), '$', JSON.stringify(buildDocument(f, v as number[])));
    }
    await pipe.exec();
  }, 120_000);

  afterAll(async () => {
    await resetSuiteRedis(env, redis);
    await redis.quit();
  });

  const deps = () => ({ redis, keys, embeddings });
  const names = (hits: { fields: Record<string, string> }[]) => hits.map((h) => h.fields.drug_name ?? '');

  it('text mode finds an ingredient by name, and a misspelled one through typo tolerance', async () => {
    // Prepare
    const sertraline = docs.filter((d) => d.drug_name.startsWith('SERTRALINE')).length;
    // Act
    const exact = await searchDrugs(deps(), { text: 'sertraline', mode: 'text', k: 10 });
    const typo = await searchDrugs(deps(), { text: 'setraline', mode: 'text', k: 10 });
    const none = await searchDrugs(deps(), { text: 'of', mode: 'text', k: 10 });
    // Assess
    expect(sertraline).toBeGreaterThan(10);
    expect(exact).toHaveLength(10);
    expect(names(exact).every((n) => n.startsWith('SERTRALINE'))).toBe(true);
    expect(names(typo).every((n) => n.startsWith('SERTRALINE'))).toBe(true);
    expect(none).toEqual([]);
  });

  it('vector mode ranks the nearest spelling first and returns k hits with distances in order', async () => {
    // Act
    const hits = await searchDrugs(deps(), { text: 'sertraline potassium 10 mg', mode: 'vector', k: 10 });
    // Assess
    expect(hits).toHaveLength(10);
    expect(names(hits)[0]).toMatch(/^SERTRALINE POTASSIUM 10 MG/);
    const scores = hits.map((h) => h.score);
    expect([...scores].sort((a, b) => a - b)).toEqual(scores);
  });

  it('hybrid mode fuses both lists: hits found by both rank first and carry both ranks', async () => {
    // Act
    const hits = await searchDrugs(deps(), { text: 'sertraline', mode: 'hybrid', k: 10 });
    // Assess
    expect(hits).toHaveLength(10);
    expect(hits[0]!.ranks!.vector).toBeDefined();
    expect(hits[0]!.ranks!.text).toBeDefined();
    expect(names(hits)[0]).toMatch(/^SERTRALINE/);
    const scores = hits.map((h) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
  });

  it('keeps the filters in every mode', async () => {
    for (const mode of ['vector', 'text', 'hybrid'] as const) {
      // Act
      const c2 = await searchDrugs(deps(), { text: 'oxycodone', mode, k: 10, filters: { dea: ['2'] } });
      const c4 = await searchDrugs(deps(), { text: 'oxycodone', mode, k: 10, filters: { dea: ['4'] } });
      // Assess
      expect(c2.length).toBeGreaterThan(0);
      expect(c2.every((h) => h.fields.dea_schedule === '2')).toBe(true);
      expect(c4.every((h) => h.fields.dea_schedule === '4')).toBe(true);
      expect(names(c4).some((n) => n.startsWith('OXYCODONE'))).toBe(false);
    }
  });

  it('text and hybrid fill the top k from the GCN groups of the labels carrying every word; not when told', async () => {
    // Prepare: a one-word brand with fewer labels than k, whose groups hold generic labels
    const labels = new Map<string, DrugFields[]>();
    for (const d of docs)
      if (d.is_brand === 'true' && /^[A-Z]{6,}$/.test(d.brand_name))
        labels.set(d.brand_name, [...(labels.get(d.brand_name) ?? []), d]);
    const hasGeneric = (g: number) => g > 0 && docs.some((d) => d.gcn_seqno === g && d.is_generic === 'true');
    const [brand] = [...labels]
      .filter(([, ls]) => ls.length <= 4 && ls.some((l) => hasGeneric(l.gcn_seqno)))
      .map(([b]) => b)
      .sort();
    expect(brand).toBeDefined();
    for (const mode of ['text', 'hybrid'] as const) {
      // Act
      const hits = await searchDrugs(deps(), { text: brand!.toLowerCase(), mode, k: 10 });
      const plain = await searchDrugs(deps(), { text: brand!.toLowerCase(), mode, k: 10, expand: false });
      // Assess: each added label follows a hit of its group, and some are the generic substitutes
      const added = hits.filter((h) => h.expandedFrom);
      expect(added.length).toBeGreaterThan(0);
      for (const h of added) {
        const from = hits.findIndex((a) => a.ndc === h.expandedFrom);
        expect(from).toBeGreaterThanOrEqual(0);
        expect(from).toBeLessThan(hits.indexOf(h));
        expect(hits[from]!.fields.gcn_seqno).toBe(h.fields.gcn_seqno);
      }
      expect(added.some((h) => !(h.fields.drug_name ?? '').includes(brand!))).toBe(true);
      expect(plain.some((h) => h.expandedFrom)).toBe(false);
    }
  });

  it('the CLI takes --mode and prints the hits as JSON', () => {
    // Act
    const run = (mode: string, ...more: string[]) =>
      spawnSync(
        process.execPath,
        [CLI, 'search', 'sertraline', '--mode', mode, '--k', '5', '--json', ...more],
        {
          encoding: 'utf8',
          env: { ...process.env, ...env, EMBEDDING_DIMENSIONS: String(DIMS) },
          timeout: 60_000,
        },
      );
    const text = run('text');
    const bad = run('semantic');
    const noExpand = run('text', '--no-expand');
    // Assess
    expect(text.status).toBe(0);
    const hits = (JSON.parse(text.stdout) as { results: { ndc: string; drug_name: string }[] }).results;
    expect(hits).toHaveLength(5);
    expect(hits.every((h) => h.drug_name.startsWith('SERTRALINE'))).toBe(true);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--mode must be vector | text | hybrid');
    expect(noExpand.status).toBe(0);
    expect((JSON.parse(noExpand.stdout) as { results: unknown[] }).results).toHaveLength(5);
  });
});
