/**
 * The RediSearch index `drugs_idx` over `drug:{ndc}` JSON documents, created idempotently. The vector field
 * uses the algorithm the server's search module offers (capabilities.ts: SVS-VAMANA with LeanVec4x8
 * compression from search 8.1.90 on, HNSW before; never decided by the server's version). An existing index
 * whose schema differs from ours is reported, never silently reused; what the server really built (FT.INFO's
 * vector attribute: an open-source build turns LeanVec4x8 into GlobalSQ8) is read back and a difference from
 * what was asked is logged (INDEX_VECTOR_SUBSTITUTED) and shown by `drugsync status`.
 */
import type { RedisClient } from '../clients/redis.ts';
import { DrugsyncError, ErrorCodes, wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import type { Logger } from '../log.ts';
import { describeServer } from './capabilities.ts';
import type { SearchCapabilities, VectorAlgorithm } from './capabilities.ts';

export { describeServer } from './capabilities.ts';
export type { SearchCapabilities, ServerInfo, VectorAlgorithm } from './capabilities.ts';

export interface IndexOptions {
  dimensions: number;
  hnsw: { m: number; efConstruction: number };
  /** Force an algorithm (tests, benchmarks); default: the one the server's search module offers. */
  algorithm?: VectorAlgorithm;
  /** The server's capabilities when the caller has them already (default: detected here). */
  capabilities?: SearchCapabilities;
  /** Where a vector index built otherwise than asked is reported (INDEX_VECTOR_SUBSTITUTED). */
  log?: Pick<Logger, 'warn'>;
}

function pairs(list: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

interface FieldSpec {
  path: string;
  name: string;
  type: 'TEXT' | 'TAG' | 'NUMERIC' | 'VECTOR';
  weight?: number;
  sortable?: boolean;
}

const FIELDS: FieldSpec[] = [
  { path: '$.drug_name', name: 'drug_name', type: 'TEXT', weight: 2 },
  { path: '$.brand_name', name: 'brand_name', type: 'TEXT', weight: 1.5 },
  { path: '$.generic_name', name: 'generic_name', type: 'TEXT', weight: 1.5 },
  { path: '$.ndc', name: 'ndc', type: 'TAG' },
  { path: '$.dosage_form', name: 'dosage_form', type: 'TAG' },
  { path: '$.is_generic', name: 'is_generic', type: 'TAG' },
  { path: '$.is_brand', name: 'is_brand', type: 'TAG' },
  { path: '$.dea_schedule', name: 'dea_schedule', type: 'TAG' },
  { path: '$.gcn_seqno', name: 'gcn_seqno', type: 'NUMERIC', sortable: true },
  { path: '$.embedding', name: 'embedding', type: 'VECTOR' },
];

/** The vector field as we create it; recorded beside the index (see `vectorSpecKey`). */
export interface VectorSpec {
  algorithm: VectorAlgorithm;
  dim: number;
  metric: 'COSINE';
  type: 'FLOAT32';
  compression?: 'LeanVec4x8';
}

export function vectorSpec(opts: IndexOptions, algorithm: VectorAlgorithm): VectorSpec {
  return {
    algorithm,
    dim: opts.dimensions,
    metric: 'COSINE',
    type: 'FLOAT32',
    ...(algorithm === 'SVS-VAMANA' ? { compression: 'LeanVec4x8' as const } : {}),
  };
}

/**
 * Where ensureIndex records the vector spec it created the index with. FT.INFO does not report every
 * vector parameter on every version (an SVS-VAMANA field shows no algorithm or dimension on some), so the
 * record is what an existing index is checked against when FT.INFO is silent.
 */
export function vectorSpecKey(keys: Keys): string {
  return keys.state(`index:${keys.index}:vector`);
}

/** The FT.CREATE arguments (after the command name) for our schema. */
export function createIndexArgs(keys: Keys, opts: IndexOptions, algorithm: VectorAlgorithm): string[] {
  const args = [keys.index, 'ON', 'JSON', 'PREFIX', '1', keys.docPrefix, 'SCHEMA'];
  for (const f of FIELDS) {
    args.push(f.path, 'AS', f.name, f.type);
    if (f.weight !== undefined) args.push('WEIGHT', String(f.weight));
    if (f.sortable) args.push('SORTABLE');
    if (f.type === 'VECTOR') {
      const common = ['TYPE', 'FLOAT32', 'DIM', String(opts.dimensions), 'DISTANCE_METRIC', 'COSINE'];
      const extra =
        algorithm === 'HNSW'
          ? ['M', String(opts.hnsw.m), 'EF_CONSTRUCTION', String(opts.hnsw.efConstruction)]
          : algorithm === 'SVS-VAMANA'
            ? ['COMPRESSION', 'LeanVec4x8']
            : [];
      args.push(algorithm, String(common.length + extra.length), ...common, ...extra);
    }
  }
  return args;
}

/** Reads our index's attributes from FT.INFO, or null when the index does not exist. */
async function readIndex(redis: RedisClient, name: string): Promise<Record<string, unknown> | null> {
  try {
    return pairs((await redis.call('FT.INFO', name)) as unknown[]);
  } catch (e) {
    if (/unknown index name|no such index|not found/i.test((e as Error).message)) return null;
    throw e;
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
function builtVectorOf(a: Record<string, unknown>): BuiltVector {
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

/** How the vector field differs from ours: what FT.INFO reports wins, the rest comes from our creation record. */
function vectorDifferences(
  name: string,
  built: BuiltVector,
  want: VectorSpec,
  recorded: VectorSpec | null,
): string[] {
  const diffs: string[] = [];
  const seen = {
    algorithm: built.algorithm ?? recorded?.algorithm,
    dim: built.dim ?? recorded?.dim,
    metric: built.metric ?? recorded?.metric,
    type: built.type ?? recorded?.type,
  };
  const unknown = (['algorithm', 'dim', 'metric', 'type'] as const).filter((k) => seen[k] === undefined);
  if (unknown.length)
    diffs.push(
      `vector field ${name}: ${unknown.join(', ')} not reported by FT.INFO and not recorded at creation (cannot verify)`,
    );
  if (seen.dim !== undefined && seen.dim !== want.dim)
    diffs.push(`vector dimension ${seen.dim}, expected ${want.dim}`);
  if (seen.metric !== undefined && seen.metric !== want.metric)
    diffs.push(`vector metric ${seen.metric}, expected ${want.metric}`);
  if (seen.type !== undefined && seen.type !== want.type)
    diffs.push(`vector type ${seen.type}, expected ${want.type}`);
  if (seen.algorithm !== undefined && seen.algorithm !== want.algorithm)
    diffs.push(`vector algorithm ${seen.algorithm}, expected ${want.algorithm}`);
  else if (recorded && recorded.compression !== want.compression)
    diffs.push(
      `vector compression ${recorded.compression ?? 'none'}, expected ${want.compression ?? 'none'}`,
    );
  return diffs;
}

/** Every way the existing index differs from ours (empty: same schema). */
export function schemaDifferences(
  info: Record<string, unknown>,
  keys: Keys,
  want: VectorSpec,
  recorded: VectorSpec | null,
): string[] {
  const diffs: string[] = [];
  const def = pairs((info.index_definition as unknown[]) ?? []);
  if (String(def.key_type) !== 'JSON') diffs.push(`index is on ${String(def.key_type)}, expected JSON`);
  const prefixes = ((def.prefixes as unknown[]) ?? []).map(String);
  if (prefixes.length !== 1 || prefixes[0] !== keys.docPrefix) {
    diffs.push(`prefixes ${JSON.stringify(prefixes)}, expected ["${keys.docPrefix}"]`);
  }
  const attrs = parseAttributes(info);
  for (const f of FIELDS) {
    const a = attrs.get(f.name);
    if (!a) {
      diffs.push(`field ${f.name} missing`);
      continue;
    }
    if (String(a.identifier) !== f.path)
      diffs.push(`field ${f.name} on ${String(a.identifier)}, expected ${f.path}`);
    if (String(a.type) !== f.type) {
      diffs.push(`field ${f.name} is ${String(a.type)}, expected ${f.type}`);
      continue;
    }
    if (f.type === 'TEXT' && Number(a.WEIGHT ?? 1) !== f.weight)
      diffs.push(`field ${f.name} weight ${String(a.WEIGHT ?? 1)}, expected ${f.weight}`);
    if (f.sortable && !a.SORTABLE) diffs.push(`field ${f.name} is not SORTABLE`);
    if (f.type === 'VECTOR') diffs.push(...vectorDifferences(f.name, builtVectorOf(a), want, recorded));
  }
  for (const name of attrs.keys())
    if (!FIELDS.some((f) => f.name === name)) diffs.push(`unexpected field ${name}`);
  return diffs;
}

async function readRecordedSpec(redis: RedisClient, keys: Keys): Promise<VectorSpec | null> {
  const raw = await redis.get(vectorSpecKey(keys));
  if (!raw) return null;
  try {
    return JSON.parse(raw) as VectorSpec;
  } catch (e) {
    throw wrapError(e, 'INDEX_SCHEMA_MISMATCH', `the recorded vector spec of ${keys.index} is not JSON`, {
      context: { key: vectorSpecKey(keys) },
      remedy: `delete the key ${vectorSpecKey(keys)} and drop/recreate the index (FT.DROPINDEX ${keys.index})`,
    });
  }
}

/** A vector as the index's FLOAT32 field and KNN's PARAMS take it: little-endian float32 bytes. */
export function toFloat32Bytes(v: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i] as number, i * 4);
  return b;
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

export interface VectorIndexState {
  index: string;
  /** the spec recorded when drugsync created the index (null: created elsewhere, or before the record) */
  asked: VectorSpec | null;
  built: BuiltVector | null;
  substitutions: string[];
}

function vectorState(keys: Keys, info: Record<string, unknown>, asked: VectorSpec | null): VectorIndexState {
  const built = builtVector(info);
  return {
    index: keys.index,
    asked,
    built,
    substitutions: asked && built ? vectorSubstitutions(asked, built) : [],
  };
}

/** What the server built for our index's vector field beside what was asked; null when there is no index. */
export async function readVectorIndex(redis: RedisClient, keys: Keys): Promise<VectorIndexState | null> {
  const info = await readIndex(redis, keys.index);
  return info ? vectorState(keys, info, await readRecordedSpec(redis, keys)) : null;
}

/** Logs each substitution once per ensureIndex: a warning with its code and context. */
function reportSubstitutions(state: VectorIndexState, server: SearchCapabilities, opts: IndexOptions): void {
  for (const s of state.substitutions) {
    opts.log?.warn(`vector index ${state.index} built otherwise than asked: ${s}`, {
      code: ErrorCodes.INDEX_VECTOR_SUBSTITUTED,
      index: state.index,
      asked: state.asked,
      built: state.built,
      server: server.summary,
    });
  }
}

/** FT.CREATE's failure, naming what was detected (the algorithm follows the search module's version). */
export function createIndexError(
  e: unknown,
  ctx: { index: string; algorithm: VectorAlgorithm; dimensions: number; server: SearchCapabilities },
): DrugsyncError {
  const refused = /bad arguments for vector similarity|unknown argument/i.test((e as Error)?.message ?? '');
  const offered = ctx.server.algorithms.includes(ctx.algorithm);
  const remedy = !offered
    ? `${ctx.algorithm} was forced, but this server's search module offers ${ctx.server.algorithms.join(', ')} ` +
      `(${ctx.server.summary}): leave the algorithm to the detection`
    : refused
      ? `detected: ${ctx.server.summary}, yet FT.CREATE refused the ${ctx.algorithm} field. Check \`MODULE LIST\` ` +
        "and the search module build; the detection reads MODULE LIST's search version (SVS-VAMANA from 8.1.90 on)"
      : `check the Redis log and the FT.CREATE arguments (detected: ${ctx.server.summary})`;
  return wrapError(e, 'REDIS_COMMAND_FAILED', `FT.CREATE ${ctx.index} failed`, {
    context: {
      index: ctx.index,
      algorithm: ctx.algorithm,
      dimensions: ctx.dimensions,
      redis_version: ctx.server.version,
      search_version: ctx.server.searchVersion,
      detected_by: ctx.server.detectedBy,
    },
    remedy,
  });
}

function schemaMismatch(keys: Keys, diffs: string[]): DrugsyncError {
  return new DrugsyncError(
    'INDEX_SCHEMA_MISMATCH',
    `index ${keys.index} exists with another schema: ${diffs.join('; ')}`,
    {
      context: { index: keys.index, differences: diffs },
      remedy:
        `drop the index only (documents stay): \`redis-cli FT.DROPINDEX ${keys.index}\`, then run ` +
        '`drugsync backfill` (it recreates the index and re-embeds where the dimension changed); ' +
        'or set REDIS_INDEX / REDIS_DOC_PREFIX to new names to build a second index beside it',
    },
  );
}

export interface EnsureIndexResult {
  action: 'created' | 'exists';
  algorithm: VectorAlgorithm;
  server: SearchCapabilities;
  /** what the server built for the vector field, beside what was asked */
  vector: VectorIndexState;
}

/**
 * Creates the index if missing; verifies it if present (fields, types, weights, vector algorithm, dimension,
 * metric) and throws INDEX_SCHEMA_MISMATCH naming every difference, never reusing another schema. Then reads
 * back what the server built and logs where it differs from what was asked.
 */
export async function ensureIndex(
  redis: RedisClient,
  keys: Keys,
  opts: IndexOptions,
): Promise<EnsureIndexResult> {
  const server = opts.capabilities ?? (await describeServer(redis));
  const algorithm = opts.algorithm ?? server.vectorAlgorithm;
  const want = vectorSpec(opts, algorithm);
  let info = await readIndex(redis, keys.index);
  let recorded = await readRecordedSpec(redis, keys);
  let action: EnsureIndexResult['action'] = 'exists';
  if (info) {
    const diffs = schemaDifferences(info, keys, want, recorded);
    if (diffs.length) throw schemaMismatch(keys, diffs);
  } else {
    try {
      await redis.call('FT.CREATE', ...createIndexArgs(keys, opts, algorithm));
    } catch (e) {
      if (/index already exists/i.test((e as Error).message))
        return ensureIndex(redis, keys, { ...opts, capabilities: server }); // raced
      throw createIndexError(e, { index: keys.index, algorithm, dimensions: opts.dimensions, server });
    }
    await redis.set(vectorSpecKey(keys), JSON.stringify(want));
    action = 'created';
    recorded = want;
    info = await readIndex(redis, keys.index);
  }
  const vector = vectorState(keys, info ?? {}, recorded ?? want);
  reportSubstitutions(vector, server, opts);
  return { action, algorithm, server, vector };
}

/** The vector algorithm of the existing index: as recorded at creation, else as FT.INFO reports it. */
export async function indexedAlgorithm(redis: RedisClient, keys: Keys): Promise<VectorAlgorithm | undefined> {
  const recorded = await readRecordedSpec(redis, keys);
  if (recorded) return recorded.algorithm;
  const info = await readIndex(redis, keys.index);
  const algo = info ? builtVector(info)?.algorithm : undefined;
  return algo === 'HNSW' || algo === 'FLAT' || algo === 'SVS-VAMANA' ? algo : undefined;
}
