/**
 * `npm run bench -- redis`: the Redis write paths and the vector index's quality, on realistic documents
 * (catalogue names through the local lexical embedder), all in one run:
 * - raw pipelined JSON.SET with the full index present (the baseline other benches compare to), and the
 *   same without any index;
 * - DrugStore.apply (the position-checked Lua script) for new documents and for unchanged ones;
 * - the same JSON.SET rate with HNSW EF_CONSTRUCTION 40;
 * - recall@10 of HNSW against exact FLAT results, at EF_RUNTIME 10 (the default) and 100, for the
 *   configured defaults (HNSW_M / HNSW_EF_CONSTRUCTION in services/core/config.ts) and EF_CONSTRUCTION 40;
 * - Redis memory per document (used_memory delta ÷ documents, bookkeeping included).
 *
 * Settings: BENCH_REDIS_DOCS (default 20000), BENCH_REDIS_DIMS (default 256), BENCH_REDIS_QUERIES (default
 * 200). Uses its own key prefixes and index names on the local stack (bench_redis_<pid>_*) and removes them at
 * the end. Recall is compared by score (ties between packages of one name make keys ambiguous).
 */
import type { Bench, BenchRow } from './run.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig, redisShape } from '../services/core/config.ts';
import { lexicalVector } from '../services/core/embedding/local.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { buildDocument, contentHash, embeddingText, mapRow, textHash } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { sourcePosition } from '../services/core/position.ts';
import { createIndexArgs, describeServer, ensureIndex, knnSearch } from '../services/core/redis/index.ts';
import { createRedisDrugStore } from '../services/core/redis/drug-store.ts';
import type { UpsertOp } from '../services/core/drug-store.ts';
import { generateCatalogue } from '../test/support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from '../test/support/stack.ts';

const N = Number(process.env.BENCH_REDIS_DOCS ?? 20_000);
const DIMS = Number(process.env.BENCH_REDIS_DIMS ?? 256);
const QUERIES = Number(process.env.BENCH_REDIS_QUERIES ?? 200);
const PIPE = 500;

function say(msg: string): void {
  process.stderr.write(`[redis bench] ${msg}\n`);
}

function keysFor(name: string): { env: ReturnType<typeof suiteEnv>; keys: Keys } {
  // The pid keeps two runs at once (another shell, the lead's full bench) from wiping each other's keys.
  const env = suiteEnv(`bench_redis_${process.pid}_${name}`, {}, { dimensions: DIMS });
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

const bench: Bench = {
  name: 'redis',
  description: `Redis write paths and HNSW recall@10 vs FLAT: ${N.toLocaleString('en-US')} documents at ${DIMS}-d`,
  async run(): Promise<BenchRow[]> {
    const defaults = decodeConfig(redisShape, {});
    const hnsw = { m: defaults.HNSW_M, efConstruction: defaults.HNSW_EF_CONSTRUCTION };
    const A = keysFor('a'); // raw JSON.SET with the full index, then the recall indexes over the same docs
    const B = keysFor('b'); // DrugStore.apply
    const C = keysFor('c'); // no index at all
    const redis = suiteRedis(A.env);
    const rows: BenchRow[] = [];
    const row = (r: Omit<BenchRow, 'bench'>) => {
      rows.push({ bench: 'redis', ...r });
      say(`${r.metric}: ${r.value.toFixed(r.value < 10 ? 3 : 0)} ${r.unit}${r.note ? ` (${r.note})` : ''}`);
    };
    const cleanup: { env: ReturnType<typeof suiteEnv> }[] = [A, B, C];
    try {
      for (const s of [A, B, C]) await resetSuiteRedis(s.env, redis);
      const server = await describeServer(redis);
      say(
        `Redis ${server.version}, search ${server.searchVersion}, JSON ${server.jsonVersion}; production algorithm here: ${server.vectorAlgorithm}`,
      );

      // Prepare: N realistic documents (catalogue rows → mapping → lexical vectors), and held-out queries.
      const fields: DrugFields[] = [];
      for (const r of generateCatalogue({ rows: Math.ceil(N * 1.08) + QUERIES, seed: 2026 })) {
        const f = mapRow(r);
        if (f) fields.push(f);
        if (fields.length >= N + QUERIES) break;
      }
      const queryFields = fields.splice(N, QUERIES);
      const vectors = fields.map((f) => lexicalVector(embeddingText(f), DIMS));
      const now = new Date();
      const docs = fields.map((f, i) => JSON.stringify(buildDocument(f, vectors[i] as number[], now)));
      const ndcs = fields.map((f) => f.ndc);
      // Realistic searches: a held-out name with another strength (not in the index).
      const queries = queryFields.map((f) =>
        lexicalVector(
          f.drug_name.replace(/\d+(\.\d+)?/, (x) => String(Number(x) * 2)),
          DIMS,
        ),
      );
      say(`${fields.length} documents, ${new Set(fields.map(embeddingText)).size} distinct names`);

      // 1. JSON.SET without any index, then with the full index (HNSW at the configured defaults).
      const noIndex = await jsonSetAll(redis, C.keys, docs, ndcs);
      row({ metric: `JSON.SET, no index, ${DIMS}-d`, value: noIndex, unit: 'docs/s' });
      await resetSuiteRedis(C.env, redis);
      await ensureIndex(redis, A.keys, { dimensions: DIMS, hnsw, algorithm: 'HNSW' });
      const rawIndexed = await jsonSetAll(redis, A.keys, docs, ndcs);
      const base = { metric: `raw JSON.SET, full index`, value: rawIndexed, unit: 'docs/s' };
      row({
        metric: `JSON.SET, full index (HNSW M ${hnsw.m} / EF_CONSTRUCTION ${hnsw.efConstruction}), ${DIMS}-d, ${N} docs`,
        value: rawIndexed,
        unit: 'docs/s',
        baseline: { metric: 'JSON.SET, no index', value: noIndex, unit: 'docs/s' },
      });

      // 2. DrugStore.apply: new documents, then the same content again at a newer position.
      const store = createRedisDrugStore(redis, B.keys, {
        TOMBSTONE_TTL_SECONDS: defaults.TOMBSTONE_TTL_SECONDS,
        EMBEDDING_DIMENSIONS: DIMS,
        HNSW_M: hnsw.m,
        HNSW_EF_CONSTRUCTION: hnsw.efConstruction,
      });
      await ensureIndex(redis, B.keys, { dimensions: DIMS, hnsw, algorithm: 'HNSW' });
      const id = { model: 'drugsync-lexical-v1', dimensions: DIMS };
      const ops = (p: number, withVector: boolean): UpsertOp[] =>
        fields.map((f, i) => ({
          kind: 'upsert',
          ndc: f.ndc,
          pos: sourcePosition('binlog.000001', p, i),
          fields: f,
          contentHash: contentHash(f, id),
          textHash: textHash(embeddingText(f), id),
          embedding: withVector ? vectors[i] : undefined,
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
      await resetSuiteRedis(B.env, redis);

      // 3. Recall@10 against exact results. The same documents under a second prefix, indexed with
      // EF_CONSTRUCTION 40 (its insertion rate measured like the default's), and an exact FLAT index over
      // the first prefix (built in the background; its time depends on the whole keyspace, not reported).
      const D = keysFor('d');
      await resetSuiteRedis(D.env, redis);
      await ensureIndex(redis, D.keys, {
        dimensions: DIMS,
        hnsw: { m: hnsw.m, efConstruction: 40 },
        algorithm: 'HNSW',
      });
      const ef40 = await jsonSetAll(redis, D.keys, docs, ndcs);
      row({
        metric: `JSON.SET, full index (HNSW M ${hnsw.m} / EF_CONSTRUCTION 40), ${DIMS}-d, ${N} docs`,
        value: ef40,
        unit: 'docs/s',
        baseline: base,
      });
      cleanup.push(D);
      // The exact FLAT index on a third prefix, created before its documents are written (FLAT inserts are
      // cheap; a background build would scan the whole shared keyspace).
      const E = keysFor('e');
      await resetSuiteRedis(E.env, redis);
      cleanup.push(E);
      const flat = E.keys;
      await redis.call('FT.CREATE', ...createIndexArgs(flat, { dimensions: DIMS, hnsw }, 'FLAT'));
      await jsonSetAll(redis, flat, docs, ndcs);
      // Exact top 10 (by score); ties are common (one name, several packages), so a hit is any returned
      // document at most as far as the 10th exact one.
      const exact: number[] = [];
      for (const q of queries) {
        const hits = await knnSearch(redis, flat, q, { k: 10 });
        exact.push(hits.length ? (hits[hits.length - 1] as { score: number }).score : Infinity);
      }
      for (const [label, k] of [
        [`${hnsw.efConstruction}`, A.keys],
        ['40', D.keys],
      ] as const) {
        for (const ef of [10, 100]) {
          let found = 0;
          const t0 = performance.now();
          for (const [i, q] of queries.entries()) {
            const hits = await knnSearch(redis, k, q, { k: 10, efRuntime: ef, algorithm: 'HNSW' });
            found += hits.filter((h) => h.score <= (exact[i] as number) + 1e-5).length;
          }
          const ms = (performance.now() - t0) / queries.length;
          row({
            metric: `recall@10 vs FLAT: HNSW M ${hnsw.m} / EF_CONSTRUCTION ${label}, EF_RUNTIME ${ef}`,
            value: found / (queries.length * 10),
            unit: '',
            note: `${queries.length} queries, ${ms.toFixed(2)} ms/query`,
          });
        }
      }
      return rows;
    } finally {
      for (const s of cleanup) await resetSuiteRedis(s.env, redis);
      await redis.quit();
    }
  },
};
export default bench;
