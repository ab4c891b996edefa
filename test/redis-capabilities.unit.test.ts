/**
 * The Redis 8.2 paths on real replies, no server: test/fixtures/redis-8.2/replies.json (Redis 8.2.3 with
 * search 8.2.5: SVS-VAMANA, LeanVec4x8 built as GlobalSQ8) and stack-modules-on-8.2.3.json (Redis 8.2.3 with
 * Redis Stack 7.4's search 2.10.5: HNSW only). Where a whole operation is exercised (ensureIndex, knnSearch),
 * a replay client answers each command with the captured reply and records what was sent.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import type { DrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import {
  BREADTH_ATTRIBUTE,
  capabilitiesFrom,
  describeServer,
  parseModuleList,
  SVS_MIN_SEARCH_VERSION,
} from '../services/core/redis/capabilities.ts';
import { createIndexError, ensureIndex } from '../services/core/redis/index.ts';
import { schemaDifferences } from '../services/core/redis/index-compare.ts';
import { builtVector, vectorSubstitutions } from '../services/core/redis/index-info.ts';
import { vectorSpec } from '../services/core/redis/index-schema.ts';
import { knnError, knnQuery, knnSearch } from '../services/core/redis/knn.ts';
import { parseSearchReply } from '../services/core/redis/search-reply.ts';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'redis-8.2');
const load = (f: string) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Record<string, unknown>;
const R82 = load('replies.json'); // Redis 8.2.3, search 8.2.5
const STACK = load('stack-modules-on-8.2.3.json'); // Redis 8.2.3, search 2.10.5

const KEYS = makeKeys({
  REDIS_INDEX: 'drugs_idx',
  REDIS_DOC_PREFIX: 'drug:',
  REDIS_STATE_PREFIX: 'drugsync:',
});
const OPTS = { dimensions: 256, hnsw: { m: 16, efConstruction: 200 } };

function pairs(list: unknown): Record<string, unknown> {
  const a = list as unknown[];
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < a.length; i += 2) o[String(a[i])] = a[i + 1];
  return o;
}

function versionOf(fixture: Record<string, unknown>): string {
  const line = (fixture.info_server as string[]).find((l) => l.startsWith('redis_version:')) as string;
  return line.split(':')[1] as string;
}

function capsOf(fixture: Record<string, unknown>) {
  return capabilitiesFrom({ version: versionOf(fixture), modules: parseModuleList(fixture.module_list) });
}

/**
 * A client that answers from a capture: INFO, MODULE LIST, FT.INFO (an error until FT.CREATE when the index
 * is to be created), GET/SET, and FT.SEARCH by the given function. Records every call.
 */
function replay(
  fixture: Record<string, unknown>,
  o: { indexExists: boolean; search?: (args: unknown[]) => unknown },
) {
  const calls: unknown[][] = [];
  const kv = new Map<string, string>();
  let exists = o.indexExists;
  const client = {
    info: async () => `# Server\r\n${(fixture.info_server as string[]).join('\r\n')}\r\n`,
    get: async (k: string) => kv.get(k) ?? null,
    set: async (k: string, v: string) => (kv.set(k, v), 'OK'),
    call: async (cmd: string, ...args: unknown[]) => {
      calls.push([cmd, ...args]);
      if (cmd === 'MODULE') return fixture.module_list;
      if (cmd === 'FT.INFO') {
        if (!exists) throw new Error('Unknown index name');
        return fixture.ft_info_drugs_idx;
      }
      if (cmd === 'FT.CREATE') return ((exists = true), 'OK');
      if (cmd === 'FT.SEARCH' && o.search) return o.search(args);
      throw new Error(`the replay has no reply for ${cmd}`);
    },
  };
  return { redis: client as unknown as RedisClient, calls, kv };
}

function recordingLog() {
  const lines: { msg: string; fields: Record<string, unknown> }[] = [];
  return { lines, warn: (msg: string, fields: Record<string, unknown> = {}) => lines.push({ msg, fields }) };
}

describe('the vector algorithm follows the search module (MODULE LIST), never the server version', () => {
  it('Redis 8.2.3 with search 8.2.5 (real MODULE LIST): SVS-VAMANA, HNSW and FLAT offered; SVS-VAMANA chosen', () => {
    // Act
    const caps = capsOf(R82);
    // Assess
    expect(caps).toMatchObject({
      version: '8.2.3',
      searchVersion: '8.2.5',
      jsonVersion: '8.2.3',
      detectedBy: 'MODULE LIST',
      algorithms: ['SVS-VAMANA', 'HNSW', 'FLAT'],
      vectorAlgorithm: 'SVS-VAMANA',
    });
    expect(caps.summary).toBe(
      'Redis 8.2.3, search 8.2.5 (MODULE LIST) has SVS-VAMANA (search ≥ 8.1.90) → SVS-VAMANA',
    );
  });

  it('Redis 8.2.3 with Redis Stack 7.4 modules (real MODULE LIST, search 2.10.5): HNSW, though the server says 8.2.3', () => {
    // Act
    const caps = capsOf(STACK);
    // Assess
    expect(caps.version).toBe('8.2.3');
    expect(caps).toMatchObject({
      searchVersion: '2.10.5',
      algorithms: ['HNSW', 'FLAT'],
      vectorAlgorithm: 'HNSW',
    });
    expect(caps.summary).toContain('predates SVS-VAMANA');
    // and that server really refuses SVS-VAMANA, as the detection expects
    expect((STACK.ft_create_svs_vamana as { error: string }).error).toMatch(/Unknown argument/);
  });

  it.each([
    [SVS_MIN_SEARCH_VERSION - 90, 'HNSW'], // 8.1.0: no SVS in RediSearch v8.1.00
    [SVS_MIN_SEARCH_VERSION, 'SVS-VAMANA'], // 8.1.90: the first tag with it
    [80200, 'SVS-VAMANA'],
    [999999, 'SVS-VAMANA'], // a source build reports 99.99.99
  ])('search %i → %s, whatever the server version', (ver, algorithm) => {
    const modules = { search: String(ver), ReJSON: '20803' };
    expect(capabilitiesFrom({ version: '7.4.1', modules }).vectorAlgorithm).toBe(algorithm);
    expect(capabilitiesFrom({ version: '8.2.3', modules }).vectorAlgorithm).toBe(algorithm);
  });

  it('without a listed search version (MODULE LIST refused) the probe decides', () => {
    const accepted = capabilitiesFrom({ version: '8.2.3', modules: {}, probedSvs: true });
    const refused = capabilitiesFrom({ version: '8.2.3', modules: {}, probedSvs: false });
    expect(accepted).toMatchObject({
      detectedBy: 'probe',
      vectorAlgorithm: 'SVS-VAMANA',
      searchVersion: 'unlisted',
    });
    expect(refused).toMatchObject({ detectedBy: 'probe', vectorAlgorithm: 'HNSW' });
    expect(refused.summary).toContain('probe index was refused');
  });
});

describe('describeServer where MODULE LIST is refused: the probe', () => {
  /** A server that refuses MODULE LIST and answers FT.CREATE of the probe index with `create`. */
  function noModuleList(fixture: Record<string, unknown>, create: () => unknown) {
    const calls: string[] = [];
    const client = {
      info: async () => `# Server\r\n${(fixture.info_server as string[]).join('\r\n')}\r\n`,
      call: async (cmd: string, ...args: unknown[]) => {
        calls.push([cmd, ...args].join(' '));
        if (cmd === 'MODULE')
          throw new Error("ERR unknown command 'MODULE', with args beginning with: 'LIST'");
        if (cmd === 'COMMAND') return [['ft.info']]; // FT.* and JSON.* exist
        if (cmd === 'FT.CREATE') return create();
        if (cmd === 'FT.DROPINDEX') return 'OK';
        throw new Error(`the replay has no reply for ${cmd}`);
      },
    };
    return { redis: client as unknown as RedisClient, calls };
  }

  it('an accepted probe index means SVS-VAMANA; the probe index is dropped', async () => {
    const { redis, calls } = noModuleList(R82, () => 'OK');
    const caps = await describeServer(redis);
    expect(caps).toMatchObject({ detectedBy: 'probe', vectorAlgorithm: 'SVS-VAMANA', version: '8.2.3' });
    const probe = calls.find((c) => c.startsWith('FT.CREATE'))!;
    expect(probe).toMatch(
      /^FT\.CREATE (drugsync_probe_[0-9a-f]{12}) ON HASH PREFIX 1 \1: SCHEMA v VECTOR SVS-VAMANA 6 /,
    );
    expect(calls).toContain(`FT.DROPINDEX ${probe.split(' ')[1]}`);
  });

  it("search 2.10.5's real refusal means HNSW; a refusal for another reason is an error with a remedy", async () => {
    const refusal = (STACK.ft_create_svs_vamana as { error: string }).error;
    const hnsw = await describeServer(noModuleList(STACK, () => Promise.reject(new Error(refusal))).redis);
    const noPerm = "NOPERM User drugsync has no permissions to run the 'ft.create' command";
    const e = await describeServer(noModuleList(STACK, () => Promise.reject(new Error(noPerm))).redis).catch(
      (x: unknown) => x,
    );
    expect(hnsw).toMatchObject({ detectedBy: 'probe', vectorAlgorithm: 'HNSW' });
    expect(isDrugsyncError(e, 'REDIS_COMMAND_FAILED')).toBe(true);
    expect((e as DrugsyncError).message).toContain(
      'cannot tell whether the search module has SVS-VAMANA: NOPERM',
    );
    expect((e as DrugsyncError).remedy).toContain('allow MODULE LIST');
  });
});

describe('FT.INFO of our index as search 8.2.5 built it (real reply)', () => {
  const info = pairs(R82.ft_info_drugs_idx);
  const asked = vectorSpec(OPTS, 'SVS-VAMANA');

  it('reads the vector field as built: SVS-VAMANA, 256-d, COSINE, GlobalSQ8 and its parameters', () => {
    expect(builtVector(info)).toEqual({
      algorithm: 'SVS-VAMANA',
      dim: 256,
      metric: 'COSINE',
      type: 'FLOAT32',
      compression: 'GlobalSQ8',
      params: {
        graph_max_degree: 32,
        construction_window_size: 200,
        training_threshold: 10240,
        reduced_dim: 128,
      },
    });
  });

  it('finds our schema in it (search 8.2 lists SORTABLE under `flags`): no mismatch', () => {
    expect(schemaDifferences(info, KEYS, asked, asked)).toEqual([]);
  });

  it('names the compression the server substituted for the one asked', () => {
    const subs = vectorSubstitutions(asked, builtVector(info)!);
    expect(subs).toHaveLength(1);
    expect(subs[0]).toMatch(/^compression GlobalSQ8 built, LeanVec4x8 asked \(.*no Intel LVQ\/LeanVec/);
  });

  it('search 2.10.5 on Redis 8.2.3 (real reply): HNSW as asked, same schema, nothing substituted', () => {
    const stackInfo = pairs(STACK.ft_info_drugs_idx);
    const hnsw = vectorSpec(OPTS, 'HNSW');
    expect(builtVector(stackInfo)).toMatchObject({
      algorithm: 'HNSW',
      dim: 256,
      params: { M: 16, ef_construction: 200 },
    });
    expect(schemaDifferences(stackInfo, KEYS, hnsw, hnsw)).toEqual([]);
    expect(vectorSubstitutions(hnsw, builtVector(stackInfo)!)).toEqual([]);
  });
});

describe('ensureIndex on the captured servers', () => {
  it('search 8.2.5: creates SVS-VAMANA with LeanVec4x8, reads back GlobalSQ8 and warns with a code and context', async () => {
    // Prepare
    const { redis, calls, kv } = replay(R82, { indexExists: false });
    const log = recordingLog();
    // Act
    const r = await ensureIndex(redis, KEYS, { ...OPTS, log });
    // Assess
    const create = calls.find((c) => c[0] === 'FT.CREATE')!.join(' ');
    expect(create).toContain(
      'VECTOR SVS-VAMANA 8 TYPE FLOAT32 DIM 256 DISTANCE_METRIC COSINE COMPRESSION LeanVec4x8',
    );
    expect(r).toMatchObject({ action: 'created', algorithm: 'SVS-VAMANA' });
    expect(JSON.parse(kv.get(KEYS.indexVectorSpec)!)).toEqual(vectorSpec(OPTS, 'SVS-VAMANA'));
    expect(log.lines).toHaveLength(1);
    expect(log.lines[0]!.msg).toContain(
      'vector index drugs_idx built otherwise than asked: compression GlobalSQ8 built',
    );
    expect(log.lines[0]!.fields).toMatchObject({
      code: 'INDEX_VECTOR_SUBSTITUTED',
      index: 'drugs_idx',
      asked: { algorithm: 'SVS-VAMANA', compression: 'LeanVec4x8' },
      built: { algorithm: 'SVS-VAMANA', compression: 'GlobalSQ8' },
      server: capsOf(R82).summary,
    });
  });

  it('search 8.2.5, index already there: verified as ours, the substitution warned again', async () => {
    const { redis, calls, kv } = replay(R82, { indexExists: true });
    kv.set(KEYS.indexVectorSpec, JSON.stringify(vectorSpec(OPTS, 'SVS-VAMANA')));
    const log = recordingLog();
    const r = await ensureIndex(redis, KEYS, { ...OPTS, log });
    expect(r.action).toBe('exists');
    expect(calls.some((c) => c[0] === 'FT.CREATE')).toBe(false);
    expect(r.vector.substitutions).toHaveLength(1);
    expect(log.lines.map((l) => l.fields.code)).toEqual(['INDEX_VECTOR_SUBSTITUTED']);
  });

  it('search 2.10.5 on Redis 8.2.3: creates HNSW with M and EF_CONSTRUCTION, no warning', async () => {
    const { redis, calls } = replay(STACK, { indexExists: false });
    const log = recordingLog();
    const r = await ensureIndex(redis, KEYS, { ...OPTS, log });
    expect(r).toMatchObject({ action: 'created', algorithm: 'HNSW' });
    expect(calls.find((c) => c[0] === 'FT.CREATE')!.join(' ')).toContain(
      'VECTOR HNSW 10 TYPE FLOAT32 DIM 256 DISTANCE_METRIC COSINE M 16 EF_CONSTRUCTION 200',
    );
    expect(log.lines).toEqual([]);
  });
});

describe('FT.SEARCH replies in both shapes (real replies)', () => {
  it('a KNN reply of search 8.2.5 through ioredis (map-like: attributes, format, results)', () => {
    // Prepare
    const raw = pairs(R82.knn_default);
    const results = raw.results as unknown[][];
    // Act
    const r = parseSearchReply(R82.knn_default, { withScores: false });
    // Assess
    expect(r.total).toBe(raw.total_results);
    expect(r.hits.map((h) => h.key)).toEqual(results.map((x) => pairs(x).id));
    expect(r.hits.map((h) => h.fields)).toEqual(
      results.map((x) => ({ d: pairs(pairs(x).extra_attributes).d })),
    );
  });

  it('a text query WITHSCORES and a KNN query of search 2.10.5 (classic arrays)', () => {
    const text = (STACK.text_withscores as { reply: unknown[] }).reply;
    const knn = (STACK.knn_with_ef_runtime as { reply: unknown[] }).reply;
    const t = parseSearchReply(text, { withScores: true });
    const k = parseSearchReply(knn, { withScores: false });
    expect(t.total).toBe(text[0]);
    expect(t.hits.map((h) => [h.key, h.score, h.fields.ndc])).toEqual(
      [0, 1, 2].map((i) => [text[1 + 3 * i], Number(text[2 + 3 * i]), pairs(text[3 + 3 * i]).ndc]),
    );
    expect(k.hits.map((h) => [h.key, h.fields.score])).toEqual(
      [0, 1, 2].map((i) => [knn[1 + 2 * i], pairs(knn[2 + 2 * i]).score]),
    );
  });

  it('knnSearch on search 8.2.5: sends SEARCH_WINDOW_SIZE (never EF_RUNTIME / EPSILON) and reads the map-like reply', async () => {
    // Prepare: the index recorded as SVS-VAMANA; the server answers with the captured KNN reply.
    const sent: unknown[][] = [];
    const { redis, kv } = replay(R82, {
      indexExists: true,
      search: (args) => (sent.push(args), R82.knn_with_search_window_size),
    });
    kv.set(KEYS.indexVectorSpec, JSON.stringify(vectorSpec(OPTS, 'SVS-VAMANA')));
    // Act
    const hits = await knnSearch(redis, KEYS, new Array(256).fill(0.0625), { k: 3, breadth: 100 });
    // Assess
    const query = String(sent[0]![1]);
    expect(query).toBe('*=>[KNN 3 @embedding $v SEARCH_WINDOW_SIZE 100 AS score]');
    expect(query).not.toMatch(/EF_RUNTIME|EPSILON/);
    const results = pairs(R82.knn_with_search_window_size).results as unknown[][];
    expect(hits.map((h) => h.key)).toEqual(results.map((x) => pairs(x).id));
  });

  it('knnSearch on search 2.10.5: sends EF_RUNTIME, reads the classic reply; the distance is the score, not a field', async () => {
    // Prepare
    const sent: unknown[][] = [];
    const knn = (STACK.knn_with_ef_runtime as { reply: unknown[] }).reply;
    const { redis, kv } = replay(STACK, { indexExists: true, search: (args) => (sent.push(args), knn) });
    kv.set(KEYS.indexVectorSpec, JSON.stringify(vectorSpec(OPTS, 'HNSW')));
    // Act
    const hits = await knnSearch(redis, KEYS, new Array(256).fill(0.0625), { k: 3, breadth: 100 });
    // Assess
    expect(String(sent[0]![1])).toBe('*=>[KNN 3 @embedding $v EF_RUNTIME 100 AS score]');
    expect(hits).toEqual(
      [0, 1, 2].map((i) => {
        const f = pairs(knn[2 + 2 * i]) as Record<string, string>;
        return { key: knn[1 + 2 * i], ndc: f.ndc, score: Number(f.score), fields: { ndc: f.ndc } };
      }),
    );
  });

  it('the query text carries each algorithm its own breadth, never below k, and no EPSILON', () => {
    for (const algorithm of ['SVS-VAMANA', 'HNSW', 'FLAT'] as const) {
      const q = knnQuery({ k: 10, breadth: 100, filter: '@is_generic:{true}' }, algorithm);
      const wide = knnQuery({ k: 250, breadth: 100 }, algorithm);
      const attr = BREADTH_ATTRIBUTE[algorithm];
      expect(q).toBe(`(@is_generic:{true})=>[KNN 10 @embedding $v${attr ? ` ${attr} 100` : ''} AS score]`);
      expect(wide).toBe(`*=>[KNN 250 @embedding $v${attr ? ` ${attr} 250` : ''} AS score]`);
      expect(q).not.toContain('EPSILON');
    }
    expect(knnQuery({ k: 10, breadth: 100 }, 'SVS-VAMANA')).not.toContain('EF_RUNTIME');
  });
});

describe('the errors of search 8.2.5 and 2.10.5 as DrugsyncErrors (real error replies)', () => {
  const ctx = {
    index: 'drugs_idx',
    algorithm: 'SVS-VAMANA' as const,
    query: 'q',
    specKey: KEYS.indexVectorSpec,
  };

  it('EF_RUNTIME on SVS-VAMANA: the attribute refused, with the recorded spec and what each algorithm takes', async () => {
    // Prepare: a query sent with the attribute SVS-VAMANA refuses (the index recorded as HNSW, built SVS)
    const { redis, kv } = replay(R82, {
      indexExists: true,
      search: () => {
        throw new Error((R82.knn_with_ef_runtime as { error: string }).error);
      },
    });
    kv.set(KEYS.indexVectorSpec, JSON.stringify(vectorSpec(OPTS, 'HNSW')));
    // Act
    const e = await knnSearch(redis, KEYS, new Array(256).fill(0.0625), { k: 3, breadth: 100 }).catch(
      (x: unknown) => x,
    );
    // Assess
    expect(isDrugsyncError(e, 'REDIS_COMMAND_FAILED')).toBe(true);
    const err = e as DrugsyncError;
    expect(err.message).toBe(
      'KNN on drugs_idx refused a query attribute: Error parsing vector similarity parameters: Invalid option',
    );
    expect(err.context).toMatchObject({
      index: 'drugs_idx',
      algorithm: 'HNSW',
      breadth_attribute: 'EF_RUNTIME',
    });
    expect(err.remedy).toContain('SVS-VAMANA takes SEARCH_WINDOW_SIZE and refuses EF_RUNTIME');
    expect(err.remedy).toContain(`DEL ${KEYS.indexVectorSpec}`);
  });

  it('EPSILON on a KNN query: a range-query attribute', () => {
    const err = knnError(new Error((R82.knn_with_epsilon as { error: string }).error), ctx);
    expect(err.code).toBe('REDIS_COMMAND_FAILED');
    expect(err.message).toContain('carried a range-query attribute');
    expect(err.remedy).toContain('EPSILON belongs to vector range queries');
    expect(err.context.breadth_attribute).toBe('SEARCH_WINDOW_SIZE');
  });

  it('FT.CREATE refused SVS-VAMANA: the remedy names what was detected, never "report the server version"', () => {
    const refusal = new Error((STACK.ft_create_svs_vamana as { error: string }).error);
    // forced on a server whose search module has no SVS-VAMANA
    const forced = createIndexError(refusal, {
      index: 'drugs_idx',
      algorithm: 'SVS-VAMANA',
      dimensions: 256,
      server: capsOf(STACK),
    });
    // detected, yet refused (a build that lacks it)
    const detected = createIndexError(refusal, {
      index: 'drugs_idx',
      algorithm: 'SVS-VAMANA',
      dimensions: 256,
      server: capsOf(R82),
    });
    expect(forced.code).toBe('REDIS_COMMAND_FAILED');
    expect(forced.remedy).toContain(
      "SVS-VAMANA was forced, but this server's search module offers HNSW, FLAT",
    );
    expect(forced.remedy).toContain(capsOf(STACK).summary);
    expect(forced.context).toMatchObject({
      redis_version: '8.2.3',
      search_version: '2.10.5',
      detected_by: 'MODULE LIST',
    });
    expect(detected.remedy).toContain(
      `detected: ${capsOf(R82).summary}, yet FT.CREATE refused the SVS-VAMANA field`,
    );
    for (const e of [forced, detected]) expect(e.remedy).not.toMatch(/report the server version/);
  });
});
