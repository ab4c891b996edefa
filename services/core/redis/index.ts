/**
 * The RediSearch index `drugs_idx` over `drug:{ndc}` JSON documents, created idempotently. The vector field
 * uses SVS-VAMANA with LeanVec4x8 compression where the server has it (Redis ≥ 8.2, detected at runtime)
 * and HNSW otherwise. An existing index whose schema differs from ours is reported, never silently reused.
 */
import type { RedisClient } from '../clients/redis.ts';
import { DrugsyncError, wrapError } from '../errors.ts';
import type { Keys } from '../keys.ts';

export type VectorAlgorithm = 'SVS-VAMANA' | 'HNSW' | 'FLAT';

export interface ServerInfo {
  version: string;
  major: number;
  minor: number;
  /** module name → version as MODULE LIST reports it (e.g. search → 21005 for RediSearch 2.10.5) */
  modules: Record<string, string>;
  /** RediSearch / RedisJSON versions, dotted ('2.10.5'), or 'built-in' when the server has them built in */
  searchVersion: string;
  jsonVersion: string;
  /** the algorithm ensureIndex uses on this server */
  vectorAlgorithm: 'SVS-VAMANA' | 'HNSW';
}

export interface IndexOptions {
  dimensions: number;
  hnsw: { m: number; efConstruction: number };
  /** Force an algorithm (tests, benchmarks); default: detected from the server. */
  algorithm?: VectorAlgorithm;
}

function pairs(list: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

/** SVS-VAMANA (with LeanVec4x8 compression) exists from Redis 8.2 on; HNSW before. */
export function chooseVectorAlgorithm(redisVersion: string): 'SVS-VAMANA' | 'HNSW' {
  const [major = 0, minor = 0] = redisVersion.split('.').map((x) => Number.parseInt(x, 10) || 0);
  return major > 8 || (major === 8 && minor >= 2) ? 'SVS-VAMANA' : 'HNSW';
}

/** MODULE LIST encodes versions as MMmmpp (20803 → 2.8.3). */
function dotted(ver: string | undefined): string | undefined {
  if (ver === undefined) return undefined;
  const n = Number(ver);
  if (!Number.isInteger(n) || n <= 0) return ver;
  return `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
}

export async function describeServer(redis: RedisClient): Promise<ServerInfo> {
  const info = await redis.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '0.0.0';
  const [major = 0, minor = 0] = version.split('.').map(Number);
  const modules: Record<string, string> = {};
  try {
    for (const m of (await redis.call('MODULE', 'LIST')) as unknown[][]) {
      const o = pairs(m);
      modules[String(o.name)] = String(o.ver);
    }
  } catch (e) {
    // MODULE LIST may be disabled (managed Redis); probe the commands instead.
    if (!/unknown command|not allowed|no permissions/i.test((e as Error).message)) throw e;
  }
  const hasSearch = 'search' in modules || (await commandExists(redis, 'FT.INFO'));
  const hasJson = 'ReJSON' in modules || (await commandExists(redis, 'JSON.GET'));
  if (!hasSearch || !hasJson) {
    const missing = [!hasSearch ? 'RediSearch (FT.*)' : '', !hasJson ? 'RedisJSON (JSON.*)' : '']
      .filter(Boolean)
      .join(' and ');
    throw new DrugsyncError('REDIS_MODULE_MISSING', `Redis ${version} lacks ${missing}`, {
      context: { version, modules: Object.keys(modules) },
      remedy:
        'use Redis 8 (search and JSON built in) or Redis Stack / Redis Cloud with both modules (locally: `npx drugsync stack up` starts one)',
    });
  }
  return {
    version,
    major,
    minor,
    modules,
    searchVersion: dotted(modules.search) ?? 'built-in',
    jsonVersion: dotted(modules.ReJSON) ?? 'built-in',
    vectorAlgorithm: chooseVectorAlgorithm(version),
  };
}

async function commandExists(redis: RedisClient, name: string): Promise<boolean> {
  const r = (await redis.call('COMMAND', 'INFO', name)) as unknown[];
  return Array.isArray(r) && r[0] !== null;
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

/** FT.INFO `attributes` → name → {key: value}; lone flags (SORTABLE, UNF, ...) become `true`. */
export function parseAttributes(info: Record<string, unknown>): Map<string, Record<string, unknown>> {
  const attrs = new Map<string, Record<string, unknown>>();
  for (const a of (info.attributes as unknown[][]) ?? []) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < a.length; i++) {
      const k = String(a[i]);
      if (FLAGS.has(k)) o[k] = true;
      else if (i + 1 < a.length) o[k] = a[++i];
    }
    attrs.set(String(o.attribute), o);
  }
  return attrs;
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
    if (f.type === 'VECTOR') {
      // What FT.INFO reports wins; what it does not report is taken from our record of the creation.
      const algoRaw = a.algorithm ?? a.ALGORITHM;
      const dimRaw = a.dim ?? a.DIM;
      const metricRaw = a.distance_metric ?? a.DISTANCE_METRIC;
      const typeRaw = a.data_type ?? a.TYPE;
      const seen = {
        algorithm:
          algoRaw !== undefined ? String(algoRaw).toUpperCase().replace('_', '-') : recorded?.algorithm,
        dim: dimRaw !== undefined ? Number(dimRaw) : recorded?.dim,
        metric: metricRaw !== undefined ? String(metricRaw).toUpperCase() : recorded?.metric,
        type: typeRaw !== undefined ? String(typeRaw).toUpperCase() : recorded?.type,
        compression: recorded ? recorded.compression : undefined,
      };
      const unknown = (['algorithm', 'dim', 'metric', 'type'] as const).filter((k) => seen[k] === undefined);
      if (unknown.length) {
        diffs.push(
          `vector field ${f.name}: ${unknown.join(', ')} not reported by FT.INFO and not recorded at creation (cannot verify)`,
        );
      }
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
    }
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

/**
 * Creates the index if missing; verifies it if present (fields, types, weights, vector algorithm, dimension,
 * metric) and throws INDEX_SCHEMA_MISMATCH naming every difference, never reusing another schema.
 */
export async function ensureIndex(
  redis: RedisClient,
  keys: Keys,
  opts: IndexOptions,
): Promise<{ action: 'created' | 'exists'; algorithm: VectorAlgorithm; server: ServerInfo }> {
  const server = await describeServer(redis);
  const algorithm = opts.algorithm ?? server.vectorAlgorithm;
  const want = vectorSpec(opts, algorithm);
  const existing = await readIndex(redis, keys.index);
  if (existing) {
    const diffs = schemaDifferences(existing, keys, want, await readRecordedSpec(redis, keys));
    if (diffs.length) {
      throw new DrugsyncError(
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
    return { action: 'exists', algorithm, server };
  }
  try {
    await redis.call('FT.CREATE', ...createIndexArgs(keys, opts, algorithm));
  } catch (e) {
    if (/index already exists/i.test((e as Error).message)) return ensureIndex(redis, keys, opts); // raced
    throw wrapError(e, 'REDIS_COMMAND_FAILED', `FT.CREATE ${keys.index} failed`, {
      context: { index: keys.index, algorithm, dimensions: opts.dimensions },
      remedy:
        algorithm === 'SVS-VAMANA'
          ? 'the server was detected as Redis ≥ 8.2; if it rejects SVS-VAMANA, report the server version'
          : 'check the Redis log and the FT.CREATE arguments',
    });
  }
  await redis.set(vectorSpecKey(keys), JSON.stringify(want));
  return { action: 'created', algorithm, server };
}

export function toFloat32Bytes(v: readonly number[]): Buffer {
  const b = Buffer.allocUnsafe(v.length * 4);
  for (let i = 0; i < v.length; i++) b.writeFloatLE(v[i] as number, i * 4);
  return b;
}

export interface KnnHit {
  key: string;
  ndc: string;
  score: number;
  fields: Record<string, string>;
}

/**
 * The KNN query text. `efRuntime` is the search breadth: EF_RUNTIME on HNSW, SEARCH_WINDOW_SIZE on
 * SVS-VAMANA (which rejects EF_RUNTIME), nothing on FLAT (exact; it rejects both). Unknown algorithm: HNSW.
 */
export function knnQuery(
  opts: { k: number; filter?: string; efRuntime?: number },
  algorithm?: VectorAlgorithm,
): string {
  const filter = opts.filter && opts.filter.trim() ? `(${opts.filter})` : '*';
  const breadth =
    !opts.efRuntime || algorithm === 'FLAT'
      ? ''
      : algorithm === 'SVS-VAMANA'
        ? ` SEARCH_WINDOW_SIZE ${opts.efRuntime}`
        : ` EF_RUNTIME ${opts.efRuntime}`;
  return `${filter}=>[KNN ${opts.k} @embedding $v${breadth} AS score]`;
}

/** The vector algorithm of the existing index: as recorded at creation, else as FT.INFO reports it. */
async function indexedAlgorithm(redis: RedisClient, keys: Keys): Promise<VectorAlgorithm | undefined> {
  const recorded = await readRecordedSpec(redis, keys);
  if (recorded) return recorded.algorithm;
  const info = await readIndex(redis, keys.index);
  const raw = info ? parseAttributes(info).get('embedding')?.algorithm : undefined;
  const algo = raw === undefined ? undefined : String(raw).toUpperCase().replace('_', '-');
  return algo === 'HNSW' || algo === 'FLAT' || algo === 'SVS-VAMANA' ? algo : undefined;
}

/**
 * KNN query with an optional pre-filter (hybrid query), DIALECT 2.
 * `filter` is RediSearch syntax, e.g. `@is_generic:{true} @dea_schedule:{2|3}`; '*' for none.
 */
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

export async function knnSearch(
  redis: RedisClient,
  keys: Keys,
  vector: readonly number[],
  opts: { k: number; filter?: string; efRuntime?: number; algorithm?: VectorAlgorithm },
): Promise<KnnHit[]> {
  // The search-breadth attribute depends on the algorithm (a wrong one is a query error), so learn it
  // when a breadth is asked for and the caller did not say.
  const algorithm = opts.efRuntime && !opts.algorithm ? await indexedAlgorithm(redis, keys) : opts.algorithm;
  const query = knnQuery(opts, algorithm);
  const fields = [...RETURN_FIELDS, 'score'];
  const reply = (await redis.call(
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
  )) as unknown[];
  const hits: KnnHit[] = [];
  for (let i = 1; i + 1 < reply.length; i += 2) {
    const f = pairs(reply[i + 1] as unknown[]) as Record<string, string>;
    hits.push({ key: String(reply[i]), ndc: f.ndc ?? '', score: Number(f.score), fields: f });
  }
  return hits;
}
