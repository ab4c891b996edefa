/**
 * KNN queries on `drugs_idx` (vector and hybrid search, the benches' recall): the query text with the search
 * breadth in the attribute the index's algorithm takes (capabilities.ts, BREADTH_ATTRIBUTE), the FT.SEARCH
 * call, its reply (search-reply.ts) and its errors as DrugsyncErrors that say what to do.
 */
import type { RedisClient } from '../clients/redis.ts';
import { wrapError } from '../errors.ts';
import type { DrugsyncError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import { BREADTH_ATTRIBUTE } from './capabilities.ts';
import type { VectorAlgorithm } from './capabilities.ts';
import { indexedAlgorithm } from './index.ts';
import { toFloat32Bytes } from './index-schema.ts';
import { parseSearchReply } from './search-reply.ts';

/** The document fields a search returns (KNN here, and every mode of ../search/search.ts). */
export const RETURN_FIELDS = [
  'ndc',
  'drug_name',
  'brand_name',
  'generic_name',
  'dosage_form',
  'dea_schedule',
  'gcn_seqno',
] as const;

export interface KnnHit {
  key: string;
  ndc: string;
  score: number;
  fields: Record<string, string>;
}

export interface KnnOptions {
  k: number;
  /** RediSearch pre-filter (hybrid query), e.g. `@is_generic:{true} @dea_schedule:{2|3}`; none: every document */
  filter?: string;
  /**
   * How widely the index searches: EF_RUNTIME on HNSW, SEARCH_WINDOW_SIZE on SVS-VAMANA, nothing on FLAT
   * (exact). Never below k (a narrower search cannot return k good neighbours). VECTOR_SEARCH_BREADTH.
   */
  breadth: number;
}

/** The breadth actually sent: the asked one, never below k. */
export function effectiveBreadth(opts: Pick<KnnOptions, 'k' | 'breadth'>): number {
  return Math.max(opts.breadth, opts.k);
}

/**
 * The KNN query text (DIALECT 2). The breadth goes in the algorithm's own attribute; an unknown algorithm
 * (an index FT.INFO does not describe) gets none, since a wrong attribute fails the query.
 */
export function knnQuery(
  opts: Omit<KnnOptions, 'breadth'> & { breadth?: number },
  algorithm?: VectorAlgorithm,
): string {
  const filter = opts.filter && opts.filter.trim() ? `(${opts.filter})` : '*';
  const attribute = algorithm ? BREADTH_ATTRIBUTE[algorithm] : null;
  const breadth =
    attribute && opts.breadth !== undefined
      ? ` ${attribute} ${effectiveBreadth({ k: opts.k, breadth: opts.breadth })}`
      : '';
  return `${filter}=>[KNN ${opts.k} @embedding $v${breadth} AS score]`;
}

/** Why a KNN query failed, with what to do: the real replies of search 8.2 for the wrong attributes first. */
export function knnError(
  e: unknown,
  ctx: { index: string; algorithm: VectorAlgorithm | undefined; query: string; specKey: string },
): DrugsyncError {
  const message = (e as Error)?.message ?? String(e);
  const context = {
    index: ctx.index,
    algorithm: ctx.algorithm ?? 'unknown',
    breadth_attribute: (ctx.algorithm && BREADTH_ATTRIBUTE[ctx.algorithm]) ?? 'none',
    query: ctx.query,
  };
  if (/parsing vector similarity parameters: invalid option/i.test(message))
    return wrapError(e, 'REDIS_COMMAND_FAILED', `KNN on ${ctx.index} refused a query attribute`, {
      context,
      remedy:
        `the index is not the ${ctx.algorithm ?? 'algorithm'} drugsync recorded (${ctx.specKey}): SVS-VAMANA takes ` +
        'SEARCH_WINDOW_SIZE and refuses EF_RUNTIME, HNSW takes EF_RUNTIME. If the index was recreated by hand, ' +
        `drop it (FT.DROPINDEX ${ctx.index}) and the record (DEL ${ctx.specKey}), then run \`drugsync backfill\``,
    });
  if (/range query attributes were sent for a non-range query/i.test(message))
    return wrapError(e, 'REDIS_COMMAND_FAILED', `KNN on ${ctx.index} carried a range-query attribute`, {
      context,
      remedy:
        'EPSILON belongs to vector range queries (VECTOR_RANGE); a KNN query takes only its breadth ' +
        `(${context.breadth_attribute}): remove EPSILON from the query`,
    });
  if (/unknown index name|no such index/i.test(message))
    return wrapError(e, 'REDIS_COMMAND_FAILED', `KNN on ${ctx.index}: the index does not exist`, {
      context,
      remedy: 'run `drugsync backfill` (it creates the index), or check REDIS_INDEX',
    });
  return wrapError(e, 'REDIS_COMMAND_FAILED', `KNN on ${ctx.index} failed`, {
    context,
    retryable: /LOADING|BUSY|TRYAGAIN/.test(message),
  });
}

/**
 * KNN query with an optional pre-filter (hybrid query), nearest first. The breadth's attribute depends on
 * the index's algorithm (a wrong one fails the query), so it is looked up when the caller does not say.
 */
export async function knnSearch(
  redis: RedisClient,
  keys: Keys,
  vector: readonly number[],
  opts: KnnOptions & { algorithm?: VectorAlgorithm },
): Promise<KnnHit[]> {
  const algorithm = opts.algorithm ?? (await indexedAlgorithm(redis, keys));
  const query = knnQuery(opts, algorithm);
  const fields = [...RETURN_FIELDS, 'score'];
  let reply: unknown;
  try {
    reply = await redis.call(
      'FT.SEARCH',
      keys.index,
      query,
      'PARAMS',
      '2',
      'v',
      toFloat32Bytes(vector),
      'SORTBY',
      'score',
      'RETURN',
      String(fields.length),
      ...fields,
      'LIMIT',
      '0',
      String(opts.k),
      'DIALECT',
      '2',
    );
  } catch (e) {
    throw knnError(e, { index: keys.index, algorithm, query, specKey: keys.indexVectorSpec });
  }
  return parseSearchReply(reply, { withScores: false }).hits.map((h) => {
    const { score, ...fields } = h.fields; // the distance is the hit's score, not a document field
    return { key: h.key, ndc: fields.ndc ?? '', score: Number(score), fields };
  });
}
