import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { createRedisEmbeddingCache, decodeVector, encodeVector } from '../services/core/embedding/cache.ts';
import { createLocalEmbedder, lexicalVector } from '../services/core/embedding/local.ts';
import { createEmbeddingServiceWith } from '../services/core/embedding/service.ts';
import type { Embedder } from '../services/core/embedding/types.ts';
import { DrugsyncError, isDrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createLogger } from '../services/core/log.ts';
import { textHash } from '../services/core/mapping.ts';
import { generateCatalogue } from './support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const cos = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

describe('local lexical embedder (deterministic, not semantic)', () => {
  it('is deterministic and unit length', () => {
    const a = lexicalVector('LISINOPRIL 10 MG TABLET', 256);
    expect(lexicalVector('LISINOPRIL 10 MG TABLET', 256)).toEqual(a);
    expect(Math.hypot(...a)).toBeCloseTo(1, 5);
  });

  it('puts names that share words near each other', () => {
    const q = lexicalVector('LISINOPRIL 10 MG TABLET', 256);
    const same = lexicalVector('LISINOPRIL 20 MG TABLET', 256);
    const other = lexicalVector('ENOXAPARIN 40 MG/0.4 ML SYRINGE', 256);
    expect(cos(q, same)).toBeGreaterThan(0.7);
    expect(cos(q, same)).toBeGreaterThan(cos(q, other) + 0.3);
  });
});

describe('local lexical embedder on a realistic catalogue', () => {
  const names = [...new Set([...generateCatalogue({ rows: 5_000, seed: 5 })].map((r) => String(r.LN)))];

  it('finds a catalogue name again from the same name with another strength (lexical nearness)', () => {
    // Prepare: every 4th name with a strength; the query doubles-plus-one its first number.
    const dims = 256;
    const vectors = names.map((n) => lexicalVector(n, dims));
    const sample = names.map((n, i) => ({ n, i })).filter(({ n }, k) => k % 4 === 0 && /\d/.test(n));
    // Act
    const misses = sample.filter(({ n, i }) => {
      const q = lexicalVector(
        n.replace(/\d+(\.\d+)?/, (x) => String(Number(x) * 2 + 1)),
        dims,
      );
      let best = -1;
      let bestScore = -2;
      vectors.forEach((v, j) => {
        const c = cos(q, v);
        if (c > bestScore) [best, bestScore] = [j, c];
      });
      return best !== i;
    });
    // Assess: the name that differs only in strength is the nearest, every time.
    expect(sample.length).toBeGreaterThan(100);
    expect(misses.map((m) => m.n)).toEqual([]);
  });

  it('gives every text, the empty one included, a unit vector of the requested size', async () => {
    const embedder = createLocalEmbedder(1024);
    const out = await embedder.embed(['', 'ZEPBOUND 5 MG/0.5 ML VIAL', 'SODIUM CHLORIDE 0.9 % SOLUTION']);
    expect(embedder.model).toBe('drugsync-lexical-v1');
    for (const v of out) {
      expect(v).toHaveLength(1024);
      expect(Math.hypot(...v)).toBeCloseTo(1, 5);
    }
  });
});

describe('embedding service: failures are per text', () => {
  it('retries a rejected batch one text at a time, so one bad text does not fail its neighbours', async () => {
    const inner = createLocalEmbedder(32);
    const calls: number[] = [];
    const picky: Embedder = {
      ...inner,
      maxBatch: 4,
      async embed(texts) {
        calls.push(texts.length);
        if (texts.some((t) => t.includes('#'))) {
          throw new DrugsyncError('EMBEDDING_FAILED', 'rejected', { retryable: false });
        }
        return inner.embed(texts);
      },
    };
    const memory = new Map<string, number[]>();
    const service = createEmbeddingServiceWith({
      embedder: picky,
      cache: {
        getMany: async (hs) => new Map(hs.filter((h) => memory.has(h)).map((h) => [h, memory.get(h)!])),
        putMany: async (e) => void e.forEach((v, h) => memory.set(h, [...v])),
      },
      concurrency: 1,
      rpm: Infinity,
      maxRetries: 3,
      logger: createLogger({}, { level: 'error' }),
    });
    const texts = [
      'METOPROLOL 25 MG TABLET',
      'BAD # NAME',
      'WARFARIN 5 MG TABLET',
      'INSULIN GLARGINE 100 UNIT/ML',
    ];
    const res = await service.embedTexts(texts);
    expect(res.vectors.size).toBe(3);
    expect(isDrugsyncError(res.failures.get('BAD # NAME'), 'EMBEDDING_FAILED')).toBe(true);
    expect(res.stats).toMatchObject({ texts: 4, failed: 1, retries: 0 });
    expect(calls).toEqual([4, 1, 1, 1, 1]);
    expect(memory.size).toBe(3);
  });

  it('reports an embedder that returns the wrong vectors as a failure of those texts', async () => {
    const broken: Embedder = {
      model: 'broken',
      dimensions: 32,
      maxBatch: 8,
      embed: async (t) => t.map(() => [1]),
    };
    const service = createEmbeddingServiceWith({
      embedder: broken,
      cache: { getMany: async () => new Map(), putMany: async () => undefined },
      concurrency: 2,
      rpm: Infinity,
      maxRetries: 1,
      logger: createLogger({}, { level: 'error' }),
    });
    const res = await service.embedTexts(['A 1 MG', 'B 2 MG']);
    expect(res.vectors.size).toBe(0);
    expect([...res.failures.values()].every((e) => isDrugsyncError(e, 'EMBEDDING_FAILED'))).toBe(true);
    expect(res.failures.size).toBe(2);
  });
});

describe('embedding service: concurrent calls', () => {
  it('sends a text two calls ask for at once to the embedder once, and keeps its concurrency bound across calls', async () => {
    // Prepare: a slow embedder that records how many requests are in flight
    const inner = createLocalEmbedder(32);
    const sent: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const slow: Embedder = {
      ...inner,
      maxBatch: 1,
      async embed(texts) {
        sent.push(...texts);
        maxInFlight = Math.max(maxInFlight, ++inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return inner.embed(texts);
      },
    };
    const memory = new Map<string, number[]>();
    const service = createEmbeddingServiceWith({
      embedder: slow,
      cache: {
        getMany: async (hs) => new Map(hs.filter((h) => memory.has(h)).map((h) => [h, memory.get(h)!])),
        putMany: async (e) => void e.forEach((v, h) => memory.set(h, [...v])),
      },
      concurrency: 3,
      rpm: Infinity,
      maxRetries: 1,
      logger: createLogger({}, { level: 'error' }),
    });
    const names = [...new Set([...generateCatalogue({ rows: 2_000, seed: 9 })].map((r) => String(r.LN)))];
    expect(names.length).toBeGreaterThanOrEqual(90);
    const windowA = names.slice(0, 60);
    const windowB = names.slice(30, 90); // half of it shared with window A
    // Act: both windows at once, as the backfill embeds its next windows
    const [a, b] = await Promise.all([service.embedTexts(windowA), service.embedTexts(windowB)]);
    // Assess: every text embedded exactly once, both calls answered in full, never over 3 requests at once
    expect(sent.sort()).toEqual(names.slice(0, 90).sort());
    expect(a.failures.size + b.failures.size).toBe(0);
    expect(a.vectors.size + b.vectors.size).toBe(120);
    expect(b.vectors.get(names[40]!)).toEqual(a.vectors.get(names[40]!));
    expect(a.stats.cacheHits + b.stats.cacheHits).toBe(30);
    expect(maxInFlight).toBe(3);
    expect(memory.size).toBe(90);
  });
});

describe('embedding service with the Redis cache', () => {
  const env = suiteEnv('embedding');
  let redis: RedisClient;
  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
  });
  afterAll(async () => redis.quit());

  function counting(dims: number): Embedder & { calls: string[][] } {
    const inner = createLocalEmbedder(dims);
    const calls: string[][] = [];
    return { ...inner, maxBatch: 2, calls, embed: (t) => (calls.push([...t]), inner.embed(t)) };
  }

  it('embeds each distinct text once, then serves it from the cache with 0 calls', async () => {
    // Prepare
    const keys = makeKeys({
      REDIS_INDEX: env.REDIS_INDEX!,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    const embedder = counting(64);
    const service = () =>
      createEmbeddingServiceWith({
        embedder,
        cache: createRedisEmbeddingCache(redis, keys, embedder.model, 64),
        concurrency: 2,
        rpm: Infinity,
        maxRetries: 2,
      });
    const texts = [
      'ATORVASTATIN 40 MG TABLET',
      'LIPITOR 40 MG TABLET',
      'ATORVASTATIN 40 MG TABLET',
      'ZOLOFT 50 MG TABLET',
      'LIPITOR 40 MG TABLET',
    ];
    // Act
    const first = await service().embedTexts(texts);
    const callsAfterFirst = embedder.calls.flat().length;
    const second = await service().embedTexts(texts);
    // Assess
    expect(callsAfterFirst).toBe(3);
    expect(first.stats).toMatchObject({ texts: 3, cacheHits: 0, failed: 0 });
    expect(embedder.calls.flat().length).toBe(3);
    expect(second.stats).toMatchObject({ texts: 3, cacheHits: 3, requests: 0 });
    // float32 round trip through the cache
    const v = second.vectors.get('ZOLOFT 50 MG TABLET')!;
    expect(v).toEqual(lexicalVector('ZOLOFT 50 MG TABLET', 64).map(Math.fround));
  });

  it('stores each vector as raw little-endian float32 bytes under its model, dimensions and text hash', async () => {
    // Prepare
    const keys = makeKeys({
      REDIS_INDEX: env.REDIS_INDEX!,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    const id = { model: 'drugsync-lexical-v1', dimensions: 64 };
    const cache = createRedisEmbeddingCache(redis, keys, id.model, id.dimensions);
    const texts = ['LEVOTHYROXINE 50 MCG TABLET', 'OMEPRAZOLE DR 20 MG CAPSULE'];
    const entries = new Map(texts.map((t) => [textHash(t, id), lexicalVector(t, 64)]));
    // Act
    await cache.putMany(entries);
    const got = await cache.getMany([...entries.keys(), textHash('NOT CACHED 1 MG', id)]);
    const raw = await redis.getBuffer(keys.embedding(id.model, id.dimensions, textHash(texts[0]!, id)));
    // Assess
    expect(got.size).toBe(2);
    for (const [h, v] of entries) expect(got.get(h)).toEqual(v.map(Math.fround));
    expect(raw?.length).toBe(64 * 4);
    expect(decodeVector(raw!)).toEqual(decodeVector(encodeVector(entries.get(textHash(texts[0]!, id))!)));
    expect(raw!.readFloatLE(0)).toBe(Math.fround(entries.get(textHash(texts[0]!, id))![0]!));
    // Another dimension count is another cache: nothing found.
    const other = createRedisEmbeddingCache(redis, keys, id.model, 32);
    expect((await other.getMany([...entries.keys()])).size).toBe(0);
  });
});
