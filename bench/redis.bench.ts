/**
 * `npm run bench -- redis`: the Redis write paths and the vector index's quality, on realistic documents
 * (catalogue names through the local lexical embedder), all in one run:
 * - raw pipelined JSON.SET with the full index present (the baseline other benches compare to), and the
 *   same without any index;
 * - DrugStore.apply (the position-checked Lua script) for new documents and for unchanged ones;
 * - the same JSON.SET rate into an index of every other algorithm the server offers (HNSW at EF_CONSTRUCTION
 *   40 always; HNSW at the defaults too where production gets SVS-VAMANA);
 * - recall@10 of each of those indexes against exact FLAT results, at breadth 10 (the servers' default) and
 *   VECTOR_SEARCH_BREADTH's default 100 (EF_RUNTIME on HNSW, SEARCH_WINDOW_SIZE on SVS-VAMANA);
 * - Redis memory per document (used_memory delta ÷ documents, bookkeeping included).
 * "Full index" is the index production gets on the server at hand (services/core/redis/capabilities.ts):
 * SVS-VAMANA where the search module has it, HNSW otherwise; every row names the algorithm as built.
 *
 * Settings: BENCH_REDIS_DOCS (default 20000), BENCH_REDIS_DIMS (default 256), BENCH_REDIS_QUERIES (default
 * 200), BENCH_REDIS_SERVER (stack | redis82 | stack,redis82: a Redis 8.2.3 with the Stack 7.4 modules, or both in
 * one run; bench/redis-server.ts).
 * Uses its own key prefixes and index names (bench_redis_<pid>_*) and removes them at the end. Recall is
 * compared by score (ties between packages of one name make keys ambiguous).
 */
import type { Bench, BenchRow } from './run.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig, redisShape } from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { buildDocument, contentHash, embeddingText, mapRow, textHash } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { sourcePosition } from '../services/core/position.ts';
import { DEFAULT_VECTOR_SEARCH_BREADTH } from '../services/core/config.ts';
import { BREADTH_ATTRIBUTE } from '../services/core/redis/capabilities.ts';
import { describeServer, ensureIndex } from '../services/core/redis/index.ts';
import { createIndexArgs } from '../services/core/redis/index-schema.ts';
import type { SearchCapabilities, VectorAlgorithm } from '../services/core/redis/index.ts';
import { knnSearch } from '../services/core/redis/knn.ts';
import { benchRedisServers, onServer, openBenchRedis, vectorLabel } from './redis-server.ts';
import { createRedisDrugStore } from '../services/core/redis/drug-store.ts';
import type { UpsertOp } from '../services/core/drug-store-contract.ts';
import { generateCatalogue } from '../test/support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from '../test/support/stack.ts';

const N = Number(process.env.BENCH_REDIS_DOCS ?? 20_000);
const DIMS = Number(process.env.BENCH_REDIS_DIMS ?? 256);
const QUERIES = Number(process.env.BENCH_REDIS_QUERIES ?? 200);
const PIPE = 500;

function say(msg: string): void {
  process.stderr.write(`[redis bench] ${msg}\n`);
}

type Suite = { env: ReturnType<typeof suiteEnv>; keys: Keys };

function keysFor(name: string, server: Env): Suite {
  // The pid keeps two runs at once (another shell, the lead's full bench) from wiping each other's keys.
  const env = suiteEnv(`bench_redis_${process.pid}_${name}`, server, { dimensions: DIMS });
  const keys = makeKeys({
    REDIS_INDEX: env.REDIS_INDEX!,
    REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
    REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
  });
  return { env, keys };
}

async function usedMemory(redis: RedisClient): Promise<number> {
  return Number(/used_memory:(\d+)/.exec(await redis.info('memory'))?.[1] ?? 0);
}

async function jsonSetAll(redis: RedisClient, keys: Keys, docs: string[], ndcs: string[]): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < docs.length; i += PIPE) {
    const pipe = redis.pipeline();
    for (let j = i; j < Math.min(i + PIPE, docs.length); j++)
      pipe.call('JSON.SET', keys.doc(ndcs[j] as string), '$', docs[j] as string);
    const res = await pipe.exec();
    const failed = res?.find(([e]) => e);
    if (failed?.[0]) throw failed[0];
  }
  return docs.length / ((performance.now() - t0) / 1000);
}

interface Corpus {
  fields: DrugFields[];
  vectors: number[][];
  docs: string[];
  ndcs: string[];
  /** realistic searches: a held-out name with another strength (not in the index) */
  queries: number[][];
}

/** N realistic documents (catalogue rows → mapping → lexical vectors), and held-out queries. */
function corpus(): Corpus {
  const fields: DrugFields[] = [];
  for (const r of generateCatalogue({ rows: Math.ceil(N * 1.08) + QUERIES, seed: 2026 })) {
    const f = mapRow(r);
    if (f) fields.push(f);
    if (fields.length >= N + QUERIES) break;
  }
  const queryFields = fields.splice(N, QUERIES);
  const vectors = fields.map((f) => lexicalVector(embeddingText(f), DIMS));
  const now = new Date();
  return {
    fields,
    vectors,
    docs: fields.map((f, i) => JSON.stringify(buildDocument(f, vectors[i] as number[], now))),
    ndcs: fields.map((f) => f.ndc),
    queries: queryFields.map((f) =>
      lexicalVector(
        f.drug_name.replace(/\d+(\.\d+)?/, (x) => String(Number(x) * 2)),
        DIMS,
      ),
    ),
  };
}

type Row = (r: Omit<BenchRow, 'bench'>) => void;
type Hnsw = { m: number; efConstruction: number };

/** An approximate index over the corpus, compared with FLAT. */
interface Variant {
  suite: Suite;
  algorithm: VectorAlgorithm;
  label: string;
  rate: number;
}

/** A fresh index of `algorithm` on the suite's prefix, then the corpus JSON.SET into it (the rate). */
async function buildVariant(
  redis: RedisClient,
  suite: Suite,
  v: { algorithm: VectorAlgorithm; hnsw: Hnsw; caps: SearchCapabilities },
  c: Corpus,
): Promise<Variant> {
  await resetSuiteRedis(suite.env, redis);
  const made = await ensureIndex(redis, suite.keys, {
    dimensions: DIMS,
    hnsw: v.hnsw,
    algorithm: v.algorithm,
    capabilities: v.caps,
  });
  const rate = await jsonSetAll(redis, suite.keys, c.docs, c.ndcs);
  const label = vectorLabel(v.algorithm, made.vector.built, v.hnsw, made.vector.asked?.compression);
  return { suite, algorithm: v.algorithm, label, rate };
}

/** DrugStore.apply (the backfill's and the embedder's write): new documents, then the same content again. */
async function storeRows(
  redis: RedisClient,
  B: Suite,
  c: Corpus,
  hnsw: Hnsw,
  row: Row,
  base: BenchRow['baseline'],
) {
  const defaults = decodeConfig(redisShape, {});
  const store = createRedisDrugStore(redis, B.keys, {
    TOMBSTONE_TTL_SECONDS: defaults.TOMBSTONE_TTL_SECONDS,
    EMBEDDING_DIMENSIONS: DIMS,
    HNSW_M: hnsw.m,
    HNSW_EF_CONSTRUCTION: hnsw.efConstruction,
  });
  await store.ensureIndex(); // the algorithm production gets here
  const id = { model: 'drugsync-lexical-v1', dimensions: DIMS };
  const ops = (p: number, withVector: boolean): UpsertOp[] =>
    c.fields.map((f, i) => ({
      kind: 'upsert',
      ndc: f.ndc,
      pos: sourcePosition('binlog.000001', p, i),
      fields: f,
      contentHash: contentHash(f, id),
      textHash: textHash(embeddingText(f), id),
      embedding: withVector ? c.vectors[i] : undefined,
    }));
  const applyAll = async (list: UpsertOp[], expect: string) => {
    const t0 = performance.now();
    for (let i = 0; i < list.length; i += PIPE) {
      const res = await store.apply(list.slice(i, i + PIPE));
      const off = res.find((r) => r.outcome !== expect);
      if (off) throw new Error(`store.apply gave ${off.outcome} for ${off.ndc}, expected ${expect}`);
    }
    return list.length / ((performance.now() - t0) / 1000);
  };
  const mem0 = await usedMemory(redis);
  const applyNew = await applyAll(ops(1_000, true), 'written');
  const mem1 = await usedMemory(redis);
  const applySame = await applyAll(ops(2_000, false), 'unchanged');
  row({
    metric: 'store.apply, new documents (Lua CAS + JSON.SET)',
    value: applyNew,
    unit: 'docs/s',
    baseline: base,
  });
  row({
    metric: 'store.apply, unchanged documents (position only)',
    value: applySame,
    unit: 'docs/s',
    baseline: base,
  });
  row({
    metric: `Redis memory per document, ${DIMS}-d (doc + index + bookkeeping)`,
    value: (mem1 - mem0) / 1024 / N,
    unit: 'KB',
  });
}

/**
 * recall@10 of each variant against the exact FLAT index, at breadth 10 (the servers' default) and the
 * setting's default. Ties are common (one name, several packages), so a hit is any returned document at
 * most as far as the 10th exact one.
 */
async function recallRows(redis: RedisClient, flat: Keys, variants: Variant[], c: Corpus, row: Row) {
  const exact: number[] = [];
  for (const q of c.queries) {
    const hits = await knnSearch(redis, flat, q, { k: 10, breadth: 10, algorithm: 'FLAT' });
    exact.push(hits.length ? (hits[hits.length - 1] as { score: number }).score : Infinity);
  }
  for (const v of variants) {
    for (const breadth of [10, DEFAULT_VECTOR_SEARCH_BREADTH]) {
      let found = 0;
      const t0 = performance.now();
      for (const [i, q] of c.queries.entries()) {
        const hits = await knnSearch(redis, v.suite.keys, q, { k: 10, breadth, algorithm: v.algorithm });
        found += hits.filter((h) => h.score <= (exact[i] as number) + 1e-5).length;
      }
      const ms = (performance.now() - t0) / c.queries.length;
      row({
        metric: `recall@10 vs FLAT: ${v.label}, ${BREADTH_ATTRIBUTE[v.algorithm]} ${breadth}`,
        value: found / (c.queries.length * 10),
        unit: '',
        note: `${c.queries.length} queries, ${ms.toFixed(2)} ms/query`,
      });
    }
  }
}

/** The approximate indexes beside production's: HNSW at EF_CONSTRUCTION 40, and HNSW at the defaults on SVS servers. */
function otherVariants(
  caps: SearchCapabilities,
  hnsw: Hnsw,
): { name: string; algorithm: VectorAlgorithm; hnsw: Hnsw }[] {
  const others = caps.algorithms
    .filter((a) => a !== 'FLAT' && a !== caps.vectorAlgorithm)
    .map((algorithm) => ({ name: algorithm.toLowerCase().replace('-', '_'), algorithm, hnsw }));
  return [...others, { name: 'ef40', algorithm: 'HNSW', hnsw: { m: hnsw.m, efConstruction: 40 } }];
}

async function runOn(
  redis: RedisClient,
  server: Env,
  label: string,
  cleanup: Suite[],
  row: Row,
): Promise<void> {
  const defaults = decodeConfig(redisShape, {});
  const hnsw = { m: defaults.HNSW_M, efConstruction: defaults.HNSW_EF_CONSTRUCTION };
  const [A, B, C, E] = ['a', 'b', 'c', 'e'].map((n) => keysFor(n, server)) as [Suite, Suite, Suite, Suite];
  cleanup.push(A, B, C, E);
  for (const s of cleanup) await resetSuiteRedis(s.env, redis);
  const caps = await describeServer(redis);
  say(`${label}: ${caps.summary}; JSON ${caps.jsonVersion}`);
  const c = corpus();
  say(`${c.fields.length} documents, ${new Set(c.fields.map(embeddingText)).size} distinct names`);

  // 1. JSON.SET without any index, then with the index production gets here.
  const noIndex = await jsonSetAll(redis, C.keys, c.docs, c.ndcs);
  row({ metric: `JSON.SET, no index, ${DIMS}-d`, value: noIndex, unit: 'docs/s' });
  await resetSuiteRedis(C.env, redis);
  const prod = await buildVariant(redis, A, { algorithm: caps.vectorAlgorithm, hnsw, caps }, c);
  const base = { metric: `raw JSON.SET, full index`, value: prod.rate, unit: 'docs/s' };
  row({
    metric: `JSON.SET, full index (${prod.label}), ${DIMS}-d, ${N} docs`,
    value: prod.rate,
    unit: 'docs/s',
    baseline: { metric: 'JSON.SET, no index', value: noIndex, unit: 'docs/s' },
  });

  // 2. DrugStore.apply into the production index.
  await storeRows(redis, B, c, hnsw, row, base);
  await resetSuiteRedis(B.env, redis);

  // 3. Every other approximate index the server offers, then the exact FLAT one, created before its documents
  // are written (FLAT inserts are cheap; a background build would scan the whole shared keyspace).
  const variants = [prod];
  for (const o of otherVariants(caps, hnsw)) {
    const s = keysFor(o.name, server);
    cleanup.push(s);
    const v = await buildVariant(redis, s, { ...o, caps }, c);
    variants.push(v);
    row({
      metric: `JSON.SET, full index (${v.label}), ${DIMS}-d, ${N} docs`,
      value: v.rate,
      unit: 'docs/s',
      baseline: base,
    });
  }
  await redis.call('FT.CREATE', ...createIndexArgs(E.keys, { dimensions: DIMS, hnsw }, 'FLAT'));
  await jsonSetAll(redis, E.keys, c.docs, c.ndcs);
  await recallRows(redis, E.keys, variants, c, row);
}

const bench: Bench = {
  name: 'redis',
  description: `Redis write paths and recall@10 vs FLAT of each vector algorithm the server has: ${N.toLocaleString('en-US')} documents at ${DIMS}-d`,
  async run(): Promise<BenchRow[]> {
    const rows: BenchRow[] = [];
    for (const which of benchRedisServers()) {
      const server = await openBenchRedis(which);
      const redis = suiteRedis(suiteEnv('bench_redis', server.env));
      const row: Row = (r) => {
        const metric = onServer(r.metric, server);
        rows.push({ bench: 'redis', ...r, metric });
        say(`${metric}: ${r.value.toFixed(r.value < 10 ? 3 : 0)} ${r.unit}${r.note ? ` (${r.note})` : ''}`);
      };
      const cleanup: Suite[] = [];
      try {
        await runOn(redis, server.env, server.label || 'stack Redis', cleanup, row);
      } finally {
        for (const s of cleanup) await resetSuiteRedis(s.env, redis);
        await redis.quit();
        await server.stop();
      }
    }
    return rows;
  },
};
export default bench;
