/**
 * What the Redis server's query engine offers, detected once per use: the one owner of "which vector
 * algorithms exist here", of the algorithm `drugs_idx` gets, and of each algorithm's query-time breadth
 * attribute. Index creation (index.ts), the KNN query text (knn.ts), `drugsync status` and the
 * benches all read it from here.
 *
 * The decision follows the search module, never the server: a Redis 8.2 server may carry an older search
 * module (a self-built Redis 8 with Redis Stack 7.4's modules reports `redis_version:8.2.3` and search
 * 2.10.5, and rejects `SVS-VAMANA` with "Bad arguments for vector similarity algorithm: Unknown argument").
 * `MODULE LIST`'s `search` version decides (RediSearch encodes it as MMmmpp: 80205 = 8.2.5, 21005 = 2.10.5);
 * where MODULE LIST is refused or names no search version (managed services), a probe decides: FT.CREATE of
 * a throw-away SVS-VAMANA index on a prefix nothing uses, dropped at once.
 */
import crypto from 'node:crypto';
import type { RedisClient } from '../clients/redis.ts';
import { DrugsyncError, wrapError } from '../errors.ts';

export type VectorAlgorithm = 'SVS-VAMANA' | 'HNSW' | 'FLAT';

/**
 * The first search version with SVS-VAMANA: RediSearch tagged it first in v8.1.90 (the Redis 8.2 preview of
 * 2025-07-01; FT.CREATE support came with commit 53d4982552, PR #6329); v8.1.00 has none. Redis 8.2.0
 * ships search 8.2.0 (80200).
 */
export const SVS_MIN_SEARCH_VERSION = 80190;

/**
 * The query attribute that widens a KNN search on each algorithm. SVS-VAMANA rejects EF_RUNTIME ("Error
 * parsing vector similarity parameters: Invalid option"); FLAT is exact and takes none. EPSILON is a range
 * query attribute on every algorithm (a KNN query with it fails: "range query attributes were sent for a
 * non-range query"), so no KNN query carries it.
 */
export const BREADTH_ATTRIBUTE: Readonly<
  Record<VectorAlgorithm, 'EF_RUNTIME' | 'SEARCH_WINDOW_SIZE' | null>
> = {
  HNSW: 'EF_RUNTIME',
  'SVS-VAMANA': 'SEARCH_WINDOW_SIZE',
  FLAT: null,
};

export interface SearchCapabilities {
  /** redis_version of INFO server: reported, never used to decide */
  version: string;
  /** module name → version as MODULE LIST reports it (e.g. search → 21005); empty when MODULE LIST is refused */
  modules: Record<string, string>;
  /** the search (RediSearch) and JSON modules' versions, dotted ('2.10.5'); 'unlisted' when MODULE LIST does not name them */
  searchVersion: string;
  jsonVersion: string;
  /** how SVS-VAMANA support was decided */
  detectedBy: 'MODULE LIST' | 'probe';
  /** the vector algorithms FT.CREATE accepts here, best first */
  algorithms: VectorAlgorithm[];
  /** the algorithm drugs_idx gets on this server */
  vectorAlgorithm: 'SVS-VAMANA' | 'HNSW';
  /** one line for logs, status and error remedies: what was detected and why this algorithm */
  summary: string;
}

/** Kept for the callers that named it so: the server's description is its search capabilities. */
export type ServerInfo = SearchCapabilities;

function pairs(list: unknown[]): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < list.length; i += 2) o[String(list[i])] = list[i + 1];
  return o;
}

/** MODULE LIST's reply (RESP2 arrays of name/ver/path/args pairs) → module name → version. */
export function parseModuleList(reply: unknown): Record<string, string> {
  const modules: Record<string, string> = {};
  for (const m of Array.isArray(reply) ? reply : []) {
    if (!Array.isArray(m)) continue;
    const o = pairs(m);
    modules[String(o.name)] = String(o.ver);
  }
  return modules;
}

/** The search module's version number as MODULE LIST gives it (RediSearch 1.x named its module `ft`). */
function searchVersionNumber(modules: Record<string, string>): number | null {
  const raw = modules.search ?? modules.ft;
  const n = Number(raw);
  return raw !== undefined && Number.isInteger(n) && n > 0 ? n : null;
}

/** MODULE LIST encodes versions as MMmmpp (20803 → 2.8.3). */
export function dottedVersion(ver: string | undefined): string | undefined {
  if (ver === undefined) return undefined;
  const n = Number(ver);
  if (!Number.isInteger(n) || n <= 0) return ver;
  return `${Math.floor(n / 10000)}.${Math.floor(n / 100) % 100}.${n % 100}`;
}

const SVS_FIRST = dottedVersion(String(SVS_MIN_SEARCH_VERSION));

/**
 * The capabilities from what the server told: INFO's version, MODULE LIST, and the probe's answer where
 * one was needed (`probedSvs`, only read when MODULE LIST names no search version). Pure.
 */
export function capabilitiesFrom(seen: {
  version: string;
  modules: Record<string, string>;
  probedSvs?: boolean;
}): SearchCapabilities {
  const listed = searchVersionNumber(seen.modules);
  const searchVersion = dottedVersion(seen.modules.search ?? seen.modules.ft) ?? 'unlisted';
  const jsonVersion = dottedVersion(seen.modules.ReJSON) ?? 'unlisted';
  const detectedBy = listed !== null ? 'MODULE LIST' : 'probe';
  const svs = listed !== null ? listed >= SVS_MIN_SEARCH_VERSION : seen.probedSvs === true;
  const vectorAlgorithm = svs ? 'SVS-VAMANA' : 'HNSW';
  const why =
    listed !== null
      ? `search ${searchVersion} (MODULE LIST) ${svs ? 'has' : 'predates'} SVS-VAMANA (search ≥ ${SVS_FIRST})`
      : `search version not listed; an SVS-VAMANA probe index was ${svs ? 'accepted' : 'refused'}`;
  return {
    version: seen.version,
    modules: seen.modules,
    searchVersion,
    jsonVersion,
    detectedBy,
    algorithms: svs ? ['SVS-VAMANA', 'HNSW', 'FLAT'] : ['HNSW', 'FLAT'],
    vectorAlgorithm,
    summary: `Redis ${seen.version}, ${why} → ${vectorAlgorithm}`,
  };
}

async function commandExists(redis: RedisClient, name: string): Promise<boolean> {
  const r = (await redis.call('COMMAND', 'INFO', name)) as unknown[];
  return Array.isArray(r) && r[0] !== null;
}

/** MODULE LIST, or {} where it is refused (managed Redis disables it); other errors are thrown. */
async function listModules(redis: RedisClient): Promise<Record<string, string>> {
  try {
    return parseModuleList(await redis.call('MODULE', 'LIST'));
  } catch (e) {
    if (!/unknown command|not allowed|no permissions|unknown subcommand/i.test((e as Error).message)) throw e;
    return {};
  }
}

/** The reply of a server whose search module does not know SVS-VAMANA (search 2.10: "Unknown argument"). */
const SVS_REFUSED = /bad arguments for vector similarity|unknown argument|svs/i;

/**
 * Whether FT.CREATE accepts an SVS-VAMANA field: a two-dimensional index on a HASH prefix nothing uses,
 * dropped at once. A refusal for another reason than the algorithm (no permission) is thrown: guessing HNSW
 * would quietly give up SVS-VAMANA where it exists.
 */
export async function probeSvs(redis: RedisClient): Promise<boolean> {
  const id = `drugsync_probe_${crypto.randomBytes(6).toString('hex')}`;
  try {
    await redis.call(
      'FT.CREATE',
      id,
      'ON',
      'HASH',
      'PREFIX',
      '1',
      `${id}:`,
      'SCHEMA',
      'v',
      'VECTOR',
      'SVS-VAMANA',
      '6',
      'TYPE',
      'FLOAT32',
      'DIM',
      '2',
      'DISTANCE_METRIC',
      'COSINE',
    );
  } catch (e) {
    if (SVS_REFUSED.test((e as Error).message)) return false;
    throw wrapError(e, 'REDIS_COMMAND_FAILED', 'cannot tell whether the search module has SVS-VAMANA', {
      context: { probe_index: id },
      remedy:
        "MODULE LIST names no search version and the probe index (FT.CREATE on an unused prefix) was refused: allow MODULE LIST (or FT.CREATE / FT.DROPINDEX) for drugsync's Redis user",
    });
  }
  await redis.call('FT.DROPINDEX', id);
  return true;
}

/**
 * The server's search capabilities. Throws REDIS_MODULE_MISSING when search (FT.*) or JSON (JSON.*) is
 * absent, naming each.
 */
export async function describeServer(redis: RedisClient): Promise<SearchCapabilities> {
  const info = await redis.info('server');
  const version = /redis_version:(\S+)/.exec(info)?.[1] ?? '0.0.0';
  const modules = await listModules(redis);
  const hasSearch = 'search' in modules || 'ft' in modules || (await commandExists(redis, 'FT.INFO'));
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
  const probedSvs = searchVersionNumber(modules) === null ? await probeSvs(redis) : undefined;
  return capabilitiesFrom({ version, modules, probedSvs });
}
