import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis, waitForRedis } from '../services/core/clients/redis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { capabilitiesFrom, parseModuleList, probeSvs } from '../services/core/redis/capabilities.ts';
import { describeServer, ensureIndex } from '../services/core/redis/index.ts';
import { schemaDifferences } from '../services/core/redis/index-compare.ts';
import { createIndexArgs, toFloat32Bytes, vectorSpec } from '../services/core/redis/index-schema.ts';
import { knnQuery, knnSearch } from '../services/core/redis/knn.ts';
import { generateCatalogue, makeRow } from './support/factories.ts';
import { startRedisServer } from './support/redis-server.ts';
import type { RedisModule, RedisServer } from './support/redis-server.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from './support/stack.ts';

const DIMS = 32;
const HNSW = { m: 16, efConstruction: 200 };
const cosine = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * (b[i] as number), 0);

describe('FT.CREATE arguments and the KNN query text per vector algorithm', () => {
  it('writes SVS-VAMANA with LeanVec4x8 compression, HNSW with M and EF_CONSTRUCTION', () => {
    const keys = makeKeys({ REDIS_INDEX: 'drugs_idx', REDIS_DOC_PREFIX: 'drug:', REDIS_STATE_PREFIX: 'ds:' });
    const svs = createIndexArgs(keys, { dimensions: 256, hnsw: HNSW }, 'SVS-VAMANA').join(' ');
    const hnsw = createIndexArgs(keys, { dimensions: 256, hnsw: { m: 16, efConstruction: 40 } }, 'HNSW').join(
      ' ',
    );
    expect(svs).toMatch(/^drugs_idx ON JSON PREFIX 1 drug: SCHEMA \$\.drug_name AS drug_name TEXT WEIGHT 2 /);
    expect(svs).toContain(
      '$.embedding AS embedding VECTOR SVS-VAMANA 8 TYPE FLOAT32 DIM 256 DISTANCE_METRIC COSINE COMPRESSION LeanVec4x8',
    );
    expect(hnsw).toContain(
      '$.embedding AS embedding VECTOR HNSW 10 TYPE FLOAT32 DIM 256 DISTANCE_METRIC COSINE M 16 EF_CONSTRUCTION 40',
    );
    expect(hnsw).toContain('$.gcn_seqno AS gcn_seqno NUMERIC SORTABLE');
  });

  it.each([
    [
      'SVS-VAMANA',
      ['TYPE', 'FLOAT32', 'DIM', '512', 'DISTANCE_METRIC', 'COSINE', 'COMPRESSION', 'LeanVec4x8'],
    ],
    [
      'HNSW',
      ['TYPE', 'FLOAT32', 'DIM', '512', 'DISTANCE_METRIC', 'COSINE', 'M', '24', 'EF_CONSTRUCTION', '100'],
    ],
    ['FLAT', ['TYPE', 'FLOAT32', 'DIM', '512', 'DISTANCE_METRIC', 'COSINE']],
  ] as const)('%s: the attribute count equals the attributes that follow it', (algorithm, attrs) => {
    // Prepare
    const keys = makeKeys({ REDIS_INDEX: 'ix', REDIS_DOC_PREFIX: 'd:', REDIS_STATE_PREFIX: 's:' });
    // Act
    const args = createIndexArgs(keys, { dimensions: 512, hnsw: { m: 24, efConstruction: 100 } }, algorithm);
    // Assess: VECTOR <algorithm> <count> <count attributes>, and the vector field is the last one.
    const at = args.indexOf('VECTOR');
    expect(args[at + 1]).toBe(algorithm);
    expect(Number(args[at + 2])).toBe(attrs.length);
    expect(args.slice(at + 3)).toEqual(attrs);
    // SVS-VAMANA: REDUCE (LeanVec's reduced dimension) is optional and left at its default, DIM / 2.
    expect(args).not.toContain('REDUCE');
  });

  it('asks for search breadth in the attribute each algorithm accepts, never below k', () => {
    const opts = { k: 5, filter: '@is_generic:{true}', breadth: 120 };
    expect(knnQuery(opts, 'HNSW')).toBe(
      '(@is_generic:{true})=>[KNN 5 @embedding $v EF_RUNTIME 120 AS score]',
    );
    expect(knnQuery(opts, 'SVS-VAMANA')).toBe(
      '(@is_generic:{true})=>[KNN 5 @embedding $v SEARCH_WINDOW_SIZE 120 AS score]',
    );
    expect(knnQuery(opts, 'FLAT')).toBe('(@is_generic:{true})=>[KNN 5 @embedding $v AS score]');
    expect(knnQuery({ k: 300, breadth: 100 }, 'HNSW')).toBe(
      '*=>[KNN 300 @embedding $v EF_RUNTIME 300 AS score]',
    );
    expect(knnQuery({ k: 3, breadth: 100 }, undefined)).toBe('*=>[KNN 3 @embedding $v AS score]');
  });
});

describe('RediSearch index on JSON documents with a VECTOR field (real Redis)', () => {
  const env = suiteEnv('index', {}, { dimensions: DIMS });
  let redis: RedisClient;
  let keys: Keys;
  let docs: { fields: DrugFields; vector: number[] }[];

  beforeAll(async () => {
    redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    keys = makeKeys({
      REDIS_INDEX: env.REDIS_INDEX!,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    docs = [...generateCatalogue({ rows: 600, seed: 11 })]
      .map((r) => mapRow(r))
      .filter((f): f is DrugFields => f !== null)
      .map((fields) => ({ fields, vector: lexicalVector(embeddingText(fields), DIMS) }));
  });
  afterAll(async () => {
    await resetSuiteRedis(env, redis);
    await redis.quit();
  });

  it('describes the server: version, search and JSON module versions, the algorithm MODULE LIST decides', async () => {
    // Act
    const info = await redis.info('server');
    const s = await describeServer(redis);
    // Assess
    expect(s.version).toBe(/redis_version:(\S+)/.exec(info)?.[1]);
    expect(s.searchVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(s.jsonVersion).toMatch(/^\d+\.\d+\.\d+$/);
    expect(s.detectedBy).toBe('MODULE LIST');
    expect(s).toEqual(
      capabilitiesFrom({ version: s.version, modules: parseModuleList(await redis.call('MODULE', 'LIST')) }),
    );
    expect(s.algorithms[0]).toBe(s.vectorAlgorithm);
  });

  it('the SVS-VAMANA probe (for servers without MODULE LIST) agrees with MODULE LIST and leaves no index', async () => {
    // Act
    const s = await describeServer(redis);
    const accepted = await probeSvs(redis);
    // Assess
    expect(accepted).toBe(s.vectorAlgorithm === 'SVS-VAMANA');
    const listed = (await redis.call('FT._LIST')) as string[];
    expect(listed.filter((name) => name.startsWith('drugsync_probe_'))).toEqual([]);
  });

  it('creates the index with FT.CREATE … ON JSON … VECTOR, then finds it again unchanged', async () => {
    // Act
    const first = await ensureIndex(redis, keys, { dimensions: DIMS, hnsw: HNSW });
    const second = await ensureIndex(redis, keys, { dimensions: DIMS, hnsw: HNSW });
    // Assess
    expect(first.action).toBe('created');
    expect(second.action).toBe('exists');
    const listed = (await redis.call('FT._LIST')) as string[];
    expect(listed).toContain(keys.index);
    expect(JSON.parse((await redis.get(keys.indexVectorSpec)) as string)).toEqual(
      vectorSpec({ dimensions: DIMS, hnsw: HNSW }, first.algorithm),
    );
  });

  it('answers a DIALECT 2 KNN query (PARAMS, float32 bytes) with the exact nearest document first', async () => {
    // Prepare: load the catalogue's documents with pipelined JSON.SET and wait until indexed.
    const pipe = redis.pipeline();
    for (const d of docs)
      pipe.call('JSON.SET', keys.doc(d.fields.ndc), '$', JSON.stringify(buildDocument(d.fields, d.vector)));
    await pipe.exec();
    const info = Object.fromEntries(
      ((await redis.call('FT.INFO', keys.index)) as unknown[]).flatMap((v, i, a) =>
        i % 2 ? [] : [[String(v), a[i + 1]]],
      ),
    );
    expect(Number(info.num_docs)).toBe(docs.length);
    // A query text that is not in the catalogue; its exact nearest neighbour by brute force.
    const target = docs[docs.length >> 1]!.fields;
    const queryText = target.drug_name.replace(/\d+(\.\d+)?/, (n) => String(Number(n) * 3));
    const q = lexicalVector(queryText, DIMS);
    const exact = [...docs].sort((a, b) => cosine(q, b.vector) - cosine(q, a.vector))[0]!;
    // Packages of one product share a name and so a vector: any of them is "the" nearest.
    const best = cosine(q, exact.vector);
    const nearest = docs
      .filter((d) => Math.abs(cosine(q, d.vector) - best) < 1e-6)
      .map((d) => keys.doc(d.fields.ndc));
    // Act: the raw query, exactly as a client would send it.
    const reply = (await redis.call(
      'FT.SEARCH',
      keys.index,
      '*=>[KNN 3 @embedding $v EF_RUNTIME 200 AS score]',
      'PARAMS',
      '2',
      'v',
      toFloat32Bytes(q),
      'SORTBY',
      'score',
      'RETURN',
      '2',
      'ndc',
      'score',
      'DIALECT',
      '2',
    )) as unknown[];
    // Assess
    expect(reply[0]).toBe(3);
    expect(nearest).toContain(reply[1]);
    const fields = reply[2] as string[];
    const score = Number(fields[fields.indexOf('score') + 1]);
    expect(score).toBeCloseTo(1 - cosine(q, exact.vector), 4);
  });

  it('answers a hybrid query: KNN restricted by TAG filters', async () => {
    const q = lexicalVector(docs[0]!.fields.drug_name, DIMS);
    const hits = await knnSearch(redis, keys, q, { k: 5, filter: '@is_generic:{true}', breadth: 200 });
    const generic = docs.filter((d) => d.fields.is_generic === 'true');
    const exact = generic.sort((a, b) => cosine(q, b.vector) - cosine(q, a.vector))[0]!;
    expect(hits.length).toBeGreaterThan(0);
    expect(hits.every((h) => docs.find((d) => d.fields.ndc === h.ndc)?.fields.is_generic === 'true')).toBe(
      true,
    );
    const best = cosine(q, exact.vector);
    const nearest = generic
      .filter((d) => Math.abs(cosine(q, d.vector) - best) < 1e-6)
      .map((d) => d.fields.ndc);
    expect(nearest).toContain(hits[0]?.ndc);
  });

  it('searches an exact FLAT index built by hand with a breadth asked for (FLAT rejects EF_RUNTIME)', async () => {
    // Prepare: a FLAT index with no recorded spec (FT.INFO tells the algorithm), created before its documents
    // so each write is indexed at once (no background scan of the shared keyspace to wait for).
    const flat = makeKeys({
      REDIS_INDEX: `${env.REDIS_INDEX}_flat`,
      REDIS_DOC_PREFIX: `${env.REDIS_STATE_PREFIX}flatdoc:`,
      REDIS_STATE_PREFIX: `${env.REDIS_STATE_PREFIX}flat:`,
    });
    const some = docs.slice(0, 200);
    await redis.call('FT.CREATE', ...createIndexArgs(flat, { dimensions: DIMS, hnsw: HNSW }, 'FLAT'));
    try {
      const pipe = redis.pipeline();
      for (const d of some)
        pipe.call('JSON.SET', flat.doc(d.fields.ndc), '$', JSON.stringify(buildDocument(d.fields, d.vector)));
      await pipe.exec();
      const q = lexicalVector(
        some[7]!.fields.drug_name.replace(/\d+/, (n) => String(Number(n) + 1)),
        DIMS,
      );
      const exact = [...some].sort((a, b) => cosine(q, b.vector) - cosine(q, a.vector)).slice(0, 3);
      // Act
      const hits = await knnSearch(redis, flat, q, { k: 3, breadth: 100 });
      // Assess: the exact top 3 distances (ties between packages of one name make the keys ambiguous).
      expect(hits.map((h) => h.score)).toEqual(exact.map((d) => expect.closeTo(1 - cosine(q, d.vector), 4)));
    } finally {
      await redis.call('FT.DROPINDEX', flat.index);
    }
  });

  it('reports a different vector dimension instead of reusing the index', async () => {
    const err = await ensureIndex(redis, keys, { dimensions: DIMS * 2, hnsw: HNSW }).catch((e: unknown) => e);
    expect(isDrugsyncError(err, 'INDEX_SCHEMA_MISMATCH')).toBe(true);
    expect((err as Error).message).toContain(`vector dimension ${DIMS}, expected ${DIMS * 2}`);
    expect((err as { remedy: string }).remedy).toContain(`FT.DROPINDEX ${keys.index}`);
  });

  it('reports every difference of an index built by hand with another schema', async () => {
    // Prepare: same name space, another index: a weight differs, a field is missing, one is extra, FLAT.
    const other = makeKeys({
      REDIS_INDEX: `${env.REDIS_INDEX}_hand`,
      REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    await redis.call(
      'FT.CREATE',
      other.index,
      'ON',
      'JSON',
      'PREFIX',
      '1',
      other.docPrefix,
      'SCHEMA',
      ...createIndexArgs(other, { dimensions: DIMS, hnsw: HNSW }, 'FLAT')
        .slice(7)
        .join(' ')
        .replace('$.drug_name AS drug_name TEXT WEIGHT 2', '$.drug_name AS drug_name TEXT WEIGHT 1')
        .replace('$.dea_schedule AS dea_schedule TAG ', '$.dea_schedule AS dea TAG ')
        .split(' '),
    );
    try {
      // Act
      const err = await ensureIndex(redis, other, { dimensions: DIMS, hnsw: HNSW, algorithm: 'HNSW' }).catch(
        (e: unknown) => e,
      );
      // Assess
      expect(isDrugsyncError(err, 'INDEX_SCHEMA_MISMATCH')).toBe(true);
      const diffs = (err as { context: { differences: string[] } }).context.differences;
      expect(diffs).toEqual(
        expect.arrayContaining([
          'field drug_name weight 1, expected 2',
          'field dea_schedule missing',
          'unexpected field dea',
          'vector algorithm FLAT, expected HNSW',
        ]),
      );
      expect(diffs).toHaveLength(4);
    } finally {
      await redis.call('FT.DROPINDEX', other.index);
    }
  });

  it('checks what FT.INFO does not report (SVS-VAMANA fields) against the spec recorded at creation', async () => {
    // Prepare: our real FT.INFO reply with the vector details stripped, as some servers report SVS fields.
    const raw = (await redis.call('FT.INFO', keys.index)) as unknown[];
    const info = Object.fromEntries(raw.flatMap((v, i, a) => (i % 2 ? [] : [[String(v), a[i + 1]]])));
    info.attributes = (info.attributes as unknown[][]).map((a) =>
      a.includes('VECTOR') ? a.slice(0, a.indexOf('VECTOR') + 1) : a,
    );
    const want = vectorSpec({ dimensions: DIMS, hnsw: HNSW }, 'SVS-VAMANA');
    // Act
    const same = schemaDifferences(info, keys, want, want);
    const unrecorded = schemaDifferences(info, keys, want, null);
    const otherDims = schemaDifferences(info, keys, want, { ...want, dim: 1024 });
    const uncompressed = schemaDifferences(info, keys, want, { ...want, compression: undefined });
    // Assess
    expect(same).toEqual([]);
    expect(unrecorded).toEqual([
      'vector field embedding: algorithm, dim, metric, type not reported by FT.INFO and not recorded at creation (cannot verify)',
    ]);
    expect(otherDims).toEqual([`vector dimension 1024, expected ${DIMS}`]);
    expect(uncompressed).toEqual(['vector compression none, expected LeanVec4x8']);
  });

  it('reports an index of the same name on HASH documents', async () => {
    const hashKeys = makeKeys({
      REDIS_INDEX: `${env.REDIS_INDEX}_hash`,
      REDIS_DOC_PREFIX: `${env.REDIS_STATE_PREFIX}h:`,
      REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
    });
    await redis.call(
      'FT.CREATE',
      hashKeys.index,
      'ON',
      'HASH',
      'PREFIX',
      '1',
      hashKeys.docPrefix,
      'SCHEMA',
      'x',
      'TEXT',
    );
    try {
      const err = await ensureIndex(redis, hashKeys, { dimensions: DIMS, hnsw: HNSW }).catch(
        (e: unknown) => e,
      );
      expect(isDrugsyncError(err, 'INDEX_SCHEMA_MISMATCH')).toBe(true);
      expect((err as Error).message).toContain('index is on HASH, expected JSON');
      expect((err as Error).message).toContain('field embedding missing');
    } finally {
      await redis.call('FT.DROPINDEX', hashKeys.index);
    }
  });
});

describe('document prefix isolation', () => {
  it('builds keys outside the index prefix for bookkeeping', () => {
    const keys = makeKeys({
      REDIS_INDEX: 'drugs_idx',
      REDIS_DOC_PREFIX: 'drug:',
      REDIS_STATE_PREFIX: 'drugsync:',
    });
    const ndc = makeRow({}, 1).NDC as string;
    expect(keys.doc(ndc).startsWith(keys.docPrefix)).toBe(true);
    expect(keys.indexVectorSpec.startsWith(keys.docPrefix)).toBe(false);
  });
});

describe('a Redis without RediSearch or RedisJSON (a real server, started bare)', () => {
  const servers: RedisServer[] = [];

  /** Starts our Redis binary on a free port with only the given modules; returns a client. */
  async function bareRedis(modules: RedisModule[]): Promise<RedisClient> {
    const server = await startRedisServer({ modules });
    servers.push(server);
    const client = createRedis({ REDIS_HOST: '127.0.0.1', REDIS_PORT: server.port, REDIS_TLS: false });
    await waitForRedis(client, 20_000);
    return client;
  }

  afterAll(async () => {
    for (const server of servers) await server.stop();
  });

  it('reports REDIS_MODULE_MISSING naming each missing module, with a remedy', async () => {
    // Prepare
    const none = await bareRedis([]);
    const jsonOnly = await bareRedis(['json']);
    const keys = makeKeys({ REDIS_INDEX: 'bare_idx', REDIS_DOC_PREFIX: 'drug:', REDIS_STATE_PREFIX: 'ds:' });
    try {
      // Act
      const e1 = await describeServer(none).catch((e: unknown) => e);
      const e2 = await ensureIndex(jsonOnly, keys, { dimensions: DIMS, hnsw: HNSW }).catch((e: unknown) => e);
      // Assess
      expect(isDrugsyncError(e1, 'REDIS_MODULE_MISSING')).toBe(true);
      expect((e1 as Error).message).toMatch(/lacks RediSearch \(FT\.\*\) and RedisJSON \(JSON\.\*\)/);
      expect(isDrugsyncError(e2, 'REDIS_MODULE_MISSING')).toBe(true);
      expect((e2 as Error).message).toMatch(/lacks RediSearch \(FT\.\*\)$/);
      expect((e2 as { remedy: string }).remedy).toContain('drugsync stack up');
    } finally {
      await none.quit();
      await jsonOnly.quit();
    }
  });
});
