/**
 * `npm run bench -- search`: are the right drugs found? For each embedder (lexical; MiniLM when its
 * provider and model are installed) × search mode (vector, text, hybrid), over the relevance set
 * (bench/relevance/queries.json, docs/search.md): recall@10, MRR@10, nDCG@10 and query latency p50/p99
 * (embedding of the query included); per query kind on stderr. Plus the vector index's recall@10 against
 * exact FLAT results for the same query vectors at the breadth the search uses (VECTOR_SEARCH_BREADTH's
 * default, 100), the servers' default (10) and 1000, for each approximate algorithm the server has. The
 * search runs on the index production gets on the server at hand (SVS-VAMANA where the search module has
 * it, HNSW otherwise: services/core/redis/capabilities.ts).
 * Each mode runs as `drugsync search` runs it (GCN-group expansion as expandsByDefault says); text and
 * hybrid run once more with expansion the other way, beside their difference from the default.
 *
 * Targets (issue 18): the default mode with MiniLM recall@10 ≥ 0.9 and MRR@10 ≥ 0.7; hybrid ≥ the better
 * of vector and text on every metric. A missed target is printed with by how much.
 *
 * The catalogue is the one the set was written for (20,000 rows, seed 42: ~19.6K documents, ~3.4K distinct
 * names, so MiniLM embeds it in about a minute). Settings: BENCH_SEARCH_EMBEDDERS (default local,minilm),
 * BENCH_REDIS_SERVER (stack | redis82 | stack,redis82: a Redis 8.2.3 with the Stack 7.4 modules, or both in one
 * run; bench/redis-server.ts).
 * Uses its own prefixes and indexes (bench_search_<pid>_*), removed at the end.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Bench, BenchRow } from './run.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import {
  DEFAULT_VECTOR_SEARCH_BREADTH,
  decodeConfig,
  embeddingShape,
  kinesisShape,
  redisShape,
} from '../services/core/config.ts';
import type { Env } from '../services/core/config.ts';
import { createEmbedder } from '../services/core/embedding/service.ts';
import type { Embedder, EmbeddingService } from '../services/core/embedding/types.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { Keys } from '../services/core/keys.ts';
import { buildDocument, embeddingText, mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { BREADTH_ATTRIBUTE } from '../services/core/redis/capabilities.ts';
import { describeServer, ensureIndex } from '../services/core/redis/index.ts';
import { createIndexArgs } from '../services/core/redis/index-schema.ts';
import type { SearchCapabilities, VectorAlgorithm } from '../services/core/redis/index.ts';
import { knnSearch } from '../services/core/redis/knn.ts';
import { benchRedisServers, onServer, openBenchRedis, vectorLabel } from './redis-server.ts';
import { percentiles } from '../services/core/percentiles.ts';
import { meanScores, scoreRanking } from './relevance/metrics.ts';
import type { RankingScores } from './relevance/metrics.ts';
import { SEARCH_MODES } from '../services/core/search/query.ts';
import type { SearchMode } from '../services/core/search/query.ts';
import { judgeAll, loadRelevanceSet, QUERY_KINDS } from './relevance/relevance.ts';
import type { RelevanceSet } from './relevance/relevance.ts';
import { expandsByDefault, searchDrugs } from '../services/core/search/search.ts';
import { defaultSearchMode } from '../services/cli/search.ts';
import { generateCatalogue } from '../test/support/factories.ts';
import { resetSuiteRedis, suiteEnv, suiteRedis } from '../test/support/stack.ts';

const dir = path.dirname(fileURLToPath(import.meta.url));
const SET_FILE = path.join(dir, 'relevance', 'queries.json');
const EMBEDDERS = (process.env.BENCH_SEARCH_EMBEDDERS ?? 'local,minilm').split(',').map((s) => s.trim());
const DIMS: Record<string, string> = { local: '256', minilm: '384', titan: '1024' };
const LABEL: Record<string, string> = { local: 'lexical', minilm: 'MiniLM' };
const PIPE = 500;
const BREADTHS = [10, DEFAULT_VECTOR_SEARCH_BREADTH, 1000];

function say(msg: string): void {
  process.stderr.write(`[search bench] ${msg}\n`);
}

/** The embedder of a provider, or why it is not available here (never another provider's). */
function embedderFor(provider: string): Embedder | string {
  try {
    const cfg = decodeConfig(
      { ...embeddingShape, AWS_REGION: kinesisShape.AWS_REGION },
      {
        EMBEDDING_PROVIDER: provider,
        EMBEDDING_DIMENSIONS: DIMS[provider] ?? '256',
      },
    );
    if (cfg.EMBEDDING_PROVIDER !== provider)
      return `EMBEDDING_PROVIDER=${provider} decodes as ${cfg.EMBEDDING_PROVIDER}`;
    return createEmbedder(cfg);
  } catch (e) {
    return (e as Error).message.split('\n').slice(0, 2).join(' ');
  }
}

async function embedAll(embedder: Embedder, texts: string[]): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>();
  for (let i = 0; i < texts.length; i += embedder.maxBatch) {
    const batch = texts.slice(i, i + embedder.maxBatch);
    (await embedder.embed(batch)).forEach((v, j) => out.set(batch[j] as string, v));
  }
  return out;
}

/** The embedder as the search's embedding service, without the Redis cache (latency = real embedding). */
function direct(embedder: Embedder): Pick<EmbeddingService, 'embedTexts'> {
  return {
    async embedTexts(texts) {
      const list = [...texts];
      const vs = await embedder.embed(list);
      const stats = { texts: list.length, cacheHits: 0, requests: 1, throttled: 0, retries: 0, failed: 0 };
      return { vectors: new Map(list.map((t, i) => [t, vs[i] as number[]])), failures: new Map(), stats };
    },
  };
}

type Suite = { env: ReturnType<typeof suiteEnv>; keys: Keys };

function keysFor(name: string, dims: string, server: Env): Suite {
  const env = suiteEnv(`bench_search_${process.pid}_${name}`, { ...server, EMBEDDING_DIMENSIONS: dims });
  const keys = makeKeys({
    REDIS_INDEX: env.REDIS_INDEX!,
    REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX!,
    REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX!,
  });
  return { env, keys };
}

async function writeDocs(redis: RedisClient, keys: Keys, docs: string[], ndcs: string[]): Promise<void> {
  for (let i = 0; i < docs.length; i += PIPE) {
    const pipe = redis.pipeline();
    for (let j = i; j < Math.min(i + PIPE, docs.length); j++)
      pipe.call('JSON.SET', keys.doc(ndcs[j] as string), '$', docs[j] as string);
    const failed = (await pipe.exec())?.find(([e]) => e);
    if (failed?.[0]) throw failed[0];
  }
}

interface ModeResult {
  mean: RankingScores;
  byKind: Map<string, RankingScores>;
  p50: number;
  p99: number;
}

/** What the searches run on: the production index (its algorithm saves a lookup per query). */
type SearchOn = Parameters<typeof searchDrugs>[0] & { algorithm: VectorAlgorithm };

async function runMode(
  deps: SearchOn,
  set: RelevanceSet,
  judged: Map<string, Set<string>>,
  mode: SearchMode,
  expand = expandsByDefault(mode),
): Promise<ModeResult> {
  const scores: (RankingScores & { kind: string })[] = [];
  const ms: number[] = [];
  for (const q of set.queries.slice(0, 5)) await searchDrugs(deps, { text: q.query, mode, k: set.k, expand }); // warm-up
  for (const q of set.queries) {
    const t0 = performance.now();
    const hits = await searchDrugs(deps, {
      text: q.query,
      mode,
      k: set.k,
      algorithm: deps.algorithm,
      expand,
    });
    ms.push(performance.now() - t0);
    const s = scoreRanking(
      hits.map((h) => h.ndc),
      judged.get(q.id) as Set<string>,
      set.k,
    );
    scores.push({ ...s, kind: q.kind });
  }
  const byKind = new Map<string, RankingScores>();
  for (const kind of QUERY_KINDS) byKind.set(kind, meanScores(scores.filter((s) => s.kind === kind)));
  const [p50, p99] = percentiles(ms, [50, 99]);
  if (p50 === null || p99 === null) throw new Error('the relevance set has no queries: no latency to report');
  return { mean: meanScores(scores), byKind, p50, p99 };
}

/** An approximate index over the documents, compared with FLAT. */
interface Variant {
  keys: Keys;
  algorithm: VectorAlgorithm;
  label: string;
}

/** recall@10 of an approximate index against the FLAT index, by score (ties between packages of one name). */
async function indexRecall(
  redis: RedisClient,
  approxIndex: Variant,
  flat: Keys,
  vectors: number[][],
  breadth: number,
): Promise<number> {
  let found = 0;
  let wanted = 0;
  for (const v of vectors) {
    const exact = await knnSearch(redis, flat, v, { k: 10, breadth, algorithm: 'FLAT' });
    const bound = exact.length ? (exact[exact.length - 1] as { score: number }).score : Infinity;
    const approx = await knnSearch(redis, approxIndex.keys, v, {
      k: 10,
      breadth,
      algorithm: approxIndex.algorithm,
    });
    found += Math.min(exact.length, approx.filter((h) => h.score <= bound + 1e-5).length);
    wanted += exact.length;
  }
  return wanted ? found / wanted : 0;
}

const METRICS = [
  ['recall', 'recall@10'],
  ['mrr', 'MRR@10'],
  ['ndcg', 'nDCG@10'],
] as const;

const missed = (value: number, target: number) =>
  value >= target ? 'met' : `MISSED by ${(target - value).toFixed(3)}`;

/** The rows of one embedder: metrics per mode, hybrid against its parts, the default's targets. */
function modeRows(
  emb: string,
  results: Map<SearchMode, ModeResult>,
  provider: string,
): Omit<BenchRow, 'bench'>[] {
  const rows: Omit<BenchRow, 'bench'>[] = [];
  const metrics = METRICS;
  for (const [mode, r] of results) {
    const isDefault = mode === defaultSearchMode(provider);
    for (const [m, label] of metrics) {
      const target =
        provider === 'minilm' && isDefault ? { recall: 0.9, mrr: 0.7, ndcg: undefined }[m] : undefined;
      rows.push({
        metric: `${emb} × ${mode}${isDefault ? ' (default)' : ''}: ${label}`,
        value: r.mean[m],
        unit: '',
        ...(target !== undefined ? { target: `≥ ${target}: ${missed(r.mean[m], target)}` } : {}),
      });
    }
    rows.push({ metric: `${emb} × ${mode}: latency p50`, value: r.p50, unit: 'ms' });
    rows.push({ metric: `${emb} × ${mode}: latency p99`, value: r.p99, unit: 'ms' });
  }
  const [v, t, h] = (['vector', 'text', 'hybrid'] as const).map((m) => results.get(m) as ModeResult);
  for (const [m, label] of metrics) {
    const best = Math.max(v!.mean[m], t!.mean[m]);
    rows.push({
      metric: `${emb}: hybrid − best part, ${label}`,
      value: h!.mean[m] - best,
      unit: '',
      target: `≥ 0: ${missed(h!.mean[m], best)}`,
    });
  }
  return rows;
}

function printKinds(emb: string, results: Map<string, ModeResult>): void {
  say(`${emb}: recall@10 / MRR@10 / nDCG@10, all queries (3 decimals) and by query kind`);
  for (const [mode, r] of results) {
    const all = `all ${r.mean.recall.toFixed(3)}/${r.mean.mrr.toFixed(3)}/${r.mean.ndcg.toFixed(3)}`;
    const parts = [...r.byKind].map(
      ([k, s]) => `${k} ${s.recall.toFixed(2)}/${s.mrr.toFixed(2)}/${s.ndcg.toFixed(2)}`,
    );
    say(`  ${mode.padEnd(6)} ${all}  ${parts.join('  ')}`);
  }
}

/**
 * GCN-group expansion the other way from each mode's default (text and hybrid), and its difference from
 * the default: the measurement that decides expandsByDefault (docs/search.md).
 */
async function expansionRows(
  emb: string,
  deps: SearchOn,
  set: RelevanceSet,
  judged: Map<string, Set<string>>,
  results: Map<SearchMode, ModeResult>,
): Promise<Omit<BenchRow, 'bench'>[]> {
  const rows: Omit<BenchRow, 'bench'>[] = [];
  const variants = new Map<string, ModeResult>();
  for (const mode of ['text', 'hybrid'] as const) {
    const on = !expandsByDefault(mode);
    const r = await runMode(deps, set, judged, mode, on);
    const base = results.get(mode) as ModeResult;
    const name = `${mode} expansion ${on ? 'on' : 'off'}`;
    variants.set(name, r);
    for (const [m, label] of METRICS) {
      rows.push({ metric: `${emb} × ${name}: ${label}`, value: r.mean[m], unit: '' });
      rows.push({
        metric: `${emb} × ${name} − default: ${label}`,
        value: r.mean[m] - base.mean[m],
        unit: '',
      });
    }
    rows.push({ metric: `${emb} × ${name}: latency p50`, value: r.p50, unit: 'ms' });
  }
  printKinds(`${emb} (expansion the other way)`, variants);
  return rows;
}

/**
 * The indexes over the documents: production's (the algorithm the server's search module offers first), one
 * of every other approximate algorithm the server has, and the exact FLAT one.
 */
async function buildIndexes(
  redis: RedisClient,
  o: {
    provider: string;
    dims: number;
    caps: SearchCapabilities;
    server: Env;
    docs: string[];
    ndcs: string[];
  },
  cleanup: Suite[],
): Promise<{ variants: Variant[]; flat: Keys }> {
  const defaults = decodeConfig(redisShape, {});
  const hnsw = { m: defaults.HNSW_M, efConstruction: defaults.HNSW_EF_CONSTRUCTION };
  const slug = (a: string) => a.toLowerCase().replace('-', '_');
  const variants: Variant[] = [];
  for (const algorithm of o.caps.algorithms.filter((a) => a !== 'FLAT')) {
    const s = keysFor(`${o.provider}_${slug(algorithm)}`, String(o.dims), o.server);
    cleanup.push(s);
    await resetSuiteRedis(s.env, redis);
    const made = await ensureIndex(redis, s.keys, {
      dimensions: o.dims,
      hnsw,
      algorithm,
      capabilities: o.caps,
    });
    await writeDocs(redis, s.keys, o.docs, o.ndcs);
    const label = vectorLabel(algorithm, made.vector.built, hnsw, made.vector.asked?.compression);
    variants.push({ keys: s.keys, algorithm, label });
  }
  const B = keysFor(`${o.provider}_flat`, String(o.dims), o.server);
  cleanup.push(B);
  await resetSuiteRedis(B.env, redis);
  await redis.call('FT.CREATE', ...createIndexArgs(B.keys, { dimensions: o.dims, hnsw }, 'FLAT'));
  await writeDocs(redis, B.keys, o.docs, o.ndcs);
  return { variants, flat: B.keys };
}

async function benchEmbedder(
  redis: RedisClient,
  provider: string,
  ctx: { set: RelevanceSet; fields: DrugFields[]; caps: SearchCapabilities; server: Env },
  cleanup: Suite[],
): Promise<Omit<BenchRow, 'bench'>[]> {
  const { set, fields } = ctx;
  const emb = LABEL[provider] ?? provider;
  const embedder = embedderFor(provider);
  if (typeof embedder === 'string') {
    say(`${emb}: not available (${embedder})`);
    return [{ metric: `${emb}: not measured`, value: 0, unit: '', note: embedder.slice(0, 160) }];
  }
  const names = [...new Set(fields.map(embeddingText))];
  const t0 = performance.now();
  const vectors = await embedAll(embedder, names);
  const rate = names.length / ((performance.now() - t0) / 1000);
  say(
    `${emb}: ${names.length} distinct names embedded at ${rate.toFixed(0)} texts/s (${embedder.model}, ${embedder.dimensions}-d)`,
  );
  const docs = fields.map((f) => JSON.stringify(buildDocument(f, vectors.get(embeddingText(f)) as number[])));
  const ndcs = fields.map((f) => f.ndc);
  const dims = embedder.dimensions;
  const { variants, flat } = await buildIndexes(
    redis,
    { provider, dims, caps: ctx.caps, server: ctx.server, docs, ndcs },
    cleanup,
  );
  const production = variants[0] as Variant;
  say(`${emb}: searching the production index here, ${production.label}`);
  const judged = judgeAll(set, fields);
  const deps = {
    redis,
    keys: production.keys,
    embeddings: direct(embedder),
    algorithm: production.algorithm,
  };
  const results = new Map<SearchMode, ModeResult>();
  for (const mode of SEARCH_MODES) results.set(mode, await runMode(deps, set, judged, mode));
  printKinds(emb, results);
  const rows = [
    { metric: `${emb}: embedding rate (distinct names)`, value: rate, unit: 'texts/s' },
    ...modeRows(emb, results, provider),
    ...(await expansionRows(emb, deps, set, judged, results)),
  ];
  const qv = [
    ...(
      await embedAll(
        embedder,
        set.queries.map((q) => q.query.toUpperCase()),
      )
    ).values(),
  ];
  for (const v of variants) {
    for (const breadth of BREADTHS) {
      const used = breadth === DEFAULT_VECTOR_SEARCH_BREADTH && v === production ? ' (used by search)' : '';
      rows.push({
        metric: `${emb}: ${v.label} recall@10 vs FLAT, ${BREADTH_ATTRIBUTE[v.algorithm]} ${breadth}${used}`,
        value: await indexRecall(redis, v, flat, qv, breadth),
        unit: '',
      });
    }
  }
  return rows;
}

const bench: Bench = {
  name: 'search',
  description:
    'relevance of vector / text / hybrid search per embedder on the relevance set, latency, each vector algorithm vs FLAT',
  async run(): Promise<BenchRow[]> {
    const set = loadRelevanceSet(SET_FILE);
    const fields: DrugFields[] = [];
    for (const r of generateCatalogue({ rows: set.catalogue.rows, seed: set.catalogue.seed })) {
      const f = mapRow(r);
      if (f) fields.push(f);
    }
    say(
      `${set.queries.length} queries over ${fields.length} documents (catalogue ${set.catalogue.rows} rows, seed ${set.catalogue.seed})`,
    );
    const rows: BenchRow[] = [];
    for (const which of benchRedisServers()) {
      const server = await openBenchRedis(which);
      const redis = suiteRedis(suiteEnv('bench_search', server.env));
      const cleanup: Suite[] = [];
      try {
        const caps = await describeServer(redis);
        say(`${server.label || 'stack Redis'}: ${caps.summary}`);
        for (const provider of EMBEDDERS)
          for (const r of await benchEmbedder(
            redis,
            provider,
            { set, fields, caps, server: server.env },
            cleanup,
          ))
            rows.push({ bench: 'search', ...r, metric: onServer(r.metric, server) });
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
