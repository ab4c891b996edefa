/**
 * What Redis says about our index: FT.INFO read and parsed (fields and their flags, the vector field as the
 * server built it, on search 2.10's and 8.2's reply shapes), the vector spec recorded when drugsync created the
 * index, and where the built vector differs from what was asked without being a schema mismatch (an
 * open-source build turns LeanVec4x8 into GlobalSQ8).
 */
import type { RedisClient } from '../clients/redis.ts';
import { wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { VectorSpec } from './index-schema.ts';

/** A flat [key, value, key, value, ...] reply as an object. */
export function pairs(list: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

/** Reads our index's attributes from FT.INFO, or null when the index does not exist. */
export async function readIndex(redis: RedisClient, name: string): Promise<Record<string, unknown> | null> {
  try {
    return pairs((await redis.call('FT.INFO', name)) as unknown[]);
  } catch (e) {
    if (/unknown index name|no such index|not found/i.test((e as Error).message)) return null;
    throw e;
  }
}

/** The vector spec ensureIndex recorded when it created the index (null: none recorded). */
export async function readRecordedSpec(redis: RedisClient, keys: Keys): Promise<VectorSpec | null> {
  const raw = await redis.get(keys.indexVectorSpec);
  if (!raw) return null;
  try {
    return JSON.parse(raw) as VectorSpec;
  } catch (e) {
    throw wrapError(e, 'INDEX_SCHEMA_MISMATCH', `the recorded vector spec of ${keys.index} is not JSON`, {
      context: { key: keys.indexVectorSpec },
      remedy: `delete the key ${keys.indexVectorSpec} and drop/recreate the index (FT.DROPINDEX ${keys.index})`,
    });
  }
}

const FLAGS = new Set([
  'SORTABLE',
  'UNF',
  'NOSTEM',
  'NOINDEX',
  'CASESENSITIVE',
  'WITHSUFFIXTRIE',
  'INDEXEMPTY',
  'INDEXMISSING',
]);

/**
 * FT.INFO `attributes` → name → {key: value}. Flags become `true`: lone ones (search 2.10: `… NUMERIC
 * SORTABLE UNF`) and those listed under `flags` (search 8.2: `… NUMERIC flags [SORTABLE, UNF]`).
 */
export function parseAttributes(info: Record<string, unknown>): Map<string, Record<string, unknown>> {
  const attrs = new Map<string, Record<string, unknown>>();
  for (const a of (info.attributes as unknown[][]) ?? []) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < a.length; i++) {
      const k = String(a[i]);
      if (FLAGS.has(k)) o[k] = true;
      else if (i + 1 < a.length) o[k] = a[++i];
    }
    if (Array.isArray(o.flags)) for (const f of o.flags) o[String(f)] = true;
    attrs.set(String(o.attribute), o);
  }
  return attrs;
}

/** What FT.INFO says the server built for the vector field (null: not reported by this server). */
export interface BuiltVector {
  algorithm: string | null;
  dim: number | null;
  metric: string | null;
  type: string | null;
  /** SVS-VAMANA's compression as built (GlobalSQ8 where LeanVec/LVQ are not in the build); absent on HNSW */
  compression?: string;
  /** every other parameter FT.INFO reports (M, ef_construction, graph_max_degree, training_threshold, ...) */
  params: Record<string, string | number>;
}

const VECTOR_KEYS = new Set([
  'identifier',
  'attribute',
  'type',
  'algorithm',
  'ALGORITHM',
  'data_type',
  'TYPE',
  'dim',
  'DIM',
  'distance_metric',
  'DISTANCE_METRIC',
  'compression',
  'flags',
]);

/** A vector attribute of FT.INFO (parseAttributes' record) as built; search 2.10 and 8.2 use lower-case keys. */
export function builtVectorOf(a: Record<string, unknown>): BuiltVector {
  const text = (v: unknown) => (v === undefined ? null : String(v).toUpperCase());
  const dim = a.dim ?? a.DIM;
  const params: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(a))
    if (!VECTOR_KEYS.has(k) && (typeof v === 'string' || typeof v === 'number')) params[k] = v;
  return {
    algorithm: text(a.algorithm ?? a.ALGORITHM)?.replace('_', '-') ?? null,
    dim: dim === undefined ? null : Number(dim),
    metric: text(a.distance_metric ?? a.DISTANCE_METRIC),
    type: text(a.data_type ?? a.TYPE),
    ...(a.compression !== undefined ? { compression: String(a.compression) } : {}),
    params,
  };
}

/** The vector field of an FT.INFO reply (as `pairs`), or null when the index has none. */
export function builtVector(info: Record<string, unknown>, field = 'embedding'): BuiltVector | null {
  const a = parseAttributes(info).get(field);
  return a && String(a.type) === 'VECTOR' ? builtVectorOf(a) : null;
}

/**
 * How the built vector index differs from what was asked where the server substitutes silently (not a
 * schema mismatch: the index works, at another memory/recall trade-off): today the compression, which
 * open-source builds of search 8.2 turn from LeanVec/LVQ into GlobalSQ8.
 */
export function vectorSubstitutions(asked: VectorSpec, built: BuiltVector): string[] {
  if (asked.compression === undefined || built.compression === undefined) return [];
  if (built.compression === asked.compression) return [];
  return [
    `compression ${built.compression} built, ${asked.compression} asked` +
      (built.compression === 'GlobalSQ8'
        ? ' (this build of the search module has no Intel LVQ/LeanVec: it falls back to 8-bit scalar quantization)'
        : ''),
  ];
}
