/**
 * `drugsync search` in three modes over `drugs_idx`, each with the same filters:
 * - vector: the query's embedding, KNN on the vector field (cosine distance, nearest first);
 * - text: RediSearch full text on drug_name / brand_name (query.ts), BM25, best first;
 * - hybrid: both lists, `candidates` deep each, fused by reciprocal rank (fusion.ts), then the top k.
 * With `expand` (text and hybrid), the top k is then expanded over the GCN_SEQNO groups of the hits that
 * match every typed word (expand.ts): brand LIPITOR brings the ATORVASTATIN labels of its groups.
 */
import type { RedisClient } from '../clients/redis.ts';
import { DEFAULT_VECTOR_SEARCH_BREADTH } from '../config.ts';
import { DrugsyncError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { EmbeddingService } from '../embedding/types.ts';
import type { VectorAlgorithm } from '../redis/capabilities.ts';
import { knnSearch, RETURN_FIELDS } from '../redis/knn.ts';
import { parseSearchReply } from '../redis/search-reply.ts';
import { expandByGroup, planExpansion } from './expand.ts';
import type { ExpansionPlan } from './expand.ts';
import { reciprocalRankFusion } from './fusion.ts';
import { filterClause, textQuery } from './query.ts';
import type { SearchFilters, SearchMode } from './query.ts';

export interface SearchDeps {
  redis: RedisClient;
  keys: Keys;
  embeddings: Pick<EmbeddingService, 'embedTexts'>;
}

export interface SearchRequest {
  text: string;
  mode: SearchMode;
  k: number;
  filters?: SearchFilters;
  /**
   * KNN search breadth (EF_RUNTIME on HNSW, SEARCH_WINDOW_SIZE on SVS-VAMANA), never below the list's depth;
   * default VECTOR_SEARCH_BREADTH's (100)
   */
  breadth?: number;
  /** depth of each list before fusion (hybrid); default max(50, k) */
  candidates?: number;
  /** the index's vector algorithm when the caller knows it (saves a lookup per query) */
  algorithm?: VectorAlgorithm;
  /** GCN-group expansion of the top k (text and hybrid; vector ignores it); default: expandsByDefault */
  expand?: boolean;
}

export interface SearchHit {
  ndc: string;
  /** vector: cosine distance (lower is nearer); text: BM25 (higher is better); hybrid: RRF sum (higher) */
  score: number;
  fields: Record<string, string>;
  /** hybrid: rank (from 1) in the vector and the text list, where present */
  ranks?: { vector?: number; text?: number };
  /** a label added by GCN-group expansion: the NDC of the hit whose group it is in (score: that hit's) */
  expandedFrom?: string;
}

export { RETURN_FIELDS };

/** The query's vector: the text upper-cased like the indexed names, through the embedding service. */
export async function embedQuery(
  embeddings: Pick<EmbeddingService, 'embedTexts'>,
  text: string,
): Promise<number[]> {
  const t = text.toUpperCase();
  const res = await embeddings.embedTexts([t]);
  const v = res.vectors.get(t);
  if (v) return v;
  throw (
    res.failures.get(t) ??
    new DrugsyncError('EMBEDDING_FAILED', 'the embedder returned no vector for the query', {
      context: { text: t },
      remedy: 'check the embedder settings (`drugsync config`) and retry',
    })
  );
}

async function vectorHits(deps: SearchDeps, req: SearchRequest, depth: number): Promise<SearchHit[]> {
  const v = await embedQuery(deps.embeddings, req.text);
  const hits = await knnSearch(deps.redis, deps.keys, v, {
    k: depth,
    filter: filterClause(req.filters ?? {}),
    breadth: req.breadth ?? DEFAULT_VECTOR_SEARCH_BREADTH,
    algorithm: req.algorithm,
  });
  return hits.map((h) => ({ ndc: h.ndc, score: h.score, fields: h.fields }));
}

/** Full-text hits, best BM25 first ([] when the text has no searchable word). */
export async function textHits(deps: SearchDeps, req: SearchRequest, depth: number): Promise<SearchHit[]> {
  const query = textQuery(req.text, filterClause(req.filters ?? {}));
  if (query === null) return [];
  return ftSearchHits(deps, query, depth, true);
}

/** FT.SEARCH: the RETURN_FIELDS of the first `limit` hits, with their BM25 scores when `scored` (else 0). */
async function ftSearchHits(
  deps: SearchDeps,
  query: string,
  limit: number,
  scored: boolean,
): Promise<SearchHit[]> {
  const reply = await deps.redis.call(
    'FT.SEARCH',
    deps.keys.index,
    query,
    ...(scored ? ['WITHSCORES', 'SCORER', 'BM25'] : []),
    'RETURN',
    String(RETURN_FIELDS.length),
    ...RETURN_FIELDS,
    'LIMIT',
    '0',
    String(limit),
    'DIALECT',
    '2',
  );
  return parseSearchReply(reply, { withScores: scored }).hits.map((h) => ({
    ndc: h.fields.ndc ?? '',
    score: h.score ?? 0,
    fields: h.fields,
  }));
}

function fuse(vector: SearchHit[], text: SearchHit[], k: number): SearchHit[] {
  const byNdc = new Map<string, SearchHit>();
  for (const h of [...vector, ...text]) if (!byNdc.has(h.ndc)) byNdc.set(h.ndc, h);
  return reciprocalRankFusion([vector.map((h) => h.ndc), text.map((h) => h.ndc)])
    .slice(0, k)
    .map((f) => ({
      ndc: f.id,
      score: f.score,
      fields: (byNdc.get(f.id) as SearchHit).fields,
      ranks: { vector: f.ranks[0], text: f.ranks[1] },
    }));
}

/** The most labels read from one GCN group (the seeded catalogue's largest has 128). */
const GROUP_LIMIT = 1000;

/**
 * The labels of the plan's groups under the request's filters, group by group in the plan's order until
 * they hold enough labels not already among the anchors to fill the free slots; each group's labels sorted
 * by name, then NDC (one FT.SEARCH per group read, usually one).
 */
async function groupMembers(
  deps: SearchDeps,
  req: SearchRequest,
  plan: ExpansionPlan<SearchHit>,
): Promise<Map<number, SearchHit[]>> {
  const filter = filterClause(req.filters ?? {});
  const anchors = new Set(plan.anchors.map((h) => h.ndc));
  const members = new Map<number, SearchHit[]>();
  let found = 0;
  for (const g of plan.groups) {
    if (found >= plan.slots) break;
    const query = `${filter ? `(${filter}) ` : ''}@gcn_seqno:[${g} ${g}]`;
    const labels = await ftSearchHits(deps, query, GROUP_LIMIT, false);
    labels.sort(
      (a, b) =>
        (a.fields.drug_name ?? '').localeCompare(b.fields.drug_name ?? '') || a.ndc.localeCompare(b.ndc),
    );
    members.set(g, labels);
    found += labels.filter((h) => !anchors.has(h.ndc)).length;
  }
  return members;
}

/**
 * Whether a mode expands over GCN groups unless told: text and hybrid do (it raised recall@10 with both
 * embedders at no loss of MRR@10: docs/search.md, "GCN-group expansion"); vector search stays plain KNN.
 */
export function expandsByDefault(mode: SearchMode): boolean {
  return mode !== 'vector';
}

async function expanded(deps: SearchDeps, req: SearchRequest, hits: SearchHit[]): Promise<SearchHit[]> {
  const plan = (req.expand ?? expandsByDefault(req.mode)) ? planExpansion(req.text, hits, req.k) : null;
  if (!plan) return hits;
  return expandByGroup(hits, plan, await groupMembers(deps, req, plan), req.k);
}

export async function searchDrugs(deps: SearchDeps, req: SearchRequest): Promise<SearchHit[]> {
  if (!Number.isInteger(req.k) || req.k < 1 || req.k > 1000)
    throw new DrugsyncError('CONFIG_INVALID', `k must be 1..1000, got ${req.k}`, {
      remedy: 'pass --k between 1 and 1000',
    });
  if (req.mode === 'vector') return vectorHits(deps, req, req.k);
  if (req.mode === 'text') return expanded(deps, req, await textHits(deps, req, req.k));
  const depth = req.candidates ?? Math.max(50, req.k);
  const [vector, text] = await Promise.all([vectorHits(deps, req, depth), textHits(deps, req, depth)]);
  return expanded(deps, req, fuse(vector, text, req.k));
}
