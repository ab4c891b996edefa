/**
 * The RediSearch index `drugs_idx` over `drug:{ndc}` JSON documents, created idempotently. The vector field
 * uses the algorithm the server's search module offers (capabilities.ts: SVS-VAMANA with LeanVec4x8
 * compression from search 8.1.90 on, HNSW before; never decided by the server's version). An existing index
 * whose schema differs from ours is reported, never silently reused; what the server really built (FT.INFO's
 * vector attribute: an open-source build turns LeanVec4x8 into GlobalSQ8) is read back and a difference from
 * what was asked is logged (INDEX_VECTOR_SUBSTITUTED) and shown by `drugsync status`.
 *
 * This file holds the operations callers use (`ensureIndex`, `readVectorIndex`, `indexedAlgorithm`); the
 * schema is index-schema.ts, reading FT.INFO index-info.ts, the comparison with an existing index
 * index-compare.ts.
 */
import type { RedisClient } from '../clients/redis.ts';
import { ErrorCodes, wrapError } from '../errors.ts';
import type { DrugsyncError } from '../errors.ts';
import type { Keys } from '../keys.ts';
import { describeServer } from './capabilities.ts';
import type { SearchCapabilities, VectorAlgorithm } from './capabilities.ts';
import { schemaDifferences, schemaMismatch } from './index-compare.ts';
import { builtVector, readIndex, readRecordedSpec, vectorSubstitutions } from './index-info.ts';
import type { BuiltVector } from './index-info.ts';
import { createIndexArgs, vectorSpec } from './index-schema.ts';
import type { IndexOptions, VectorSpec } from './index-schema.ts';

export { describeServer } from './capabilities.ts';
export type { SearchCapabilities, ServerInfo, VectorAlgorithm } from './capabilities.ts';

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
    await redis.set(keys.indexVectorSpec, JSON.stringify(want));
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
