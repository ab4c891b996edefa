/**
 * Which Redis a bench measures, and what the vector index looks like there: shared by the redis and search
 * benches.
 *
 * BENCH_REDIS_SERVER=stack (default): the local stack's Redis Stack 7.4.1 (search 2.10.5).
 * BENCH_REDIS_SERVER=redis82: a Redis 8.2.3 with Redis Stack 7.4's modules, started for the run and stopped
 * after it (services/stack/redis82.ts): Redis 8.2's server under the same search module.
 */
import type { Env } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import type { BuiltVector, VectorAlgorithm } from '../services/core/redis/index.ts';
import { startRedis82 } from '../services/stack/redis82.ts';

export interface BenchRedis {
  /** how rows name the server ("Redis Stack 7.4 (stack)", "Redis 8.2.3 + Stack 7.4 modules") */
  label: string;
  /** REDIS_* settings over the stack's (empty for the stack itself) */
  env: Env;
  stop(): Promise<void>;
}

export async function benchRedis(): Promise<BenchRedis> {
  const which = process.env.BENCH_REDIS_SERVER ?? 'stack';
  if (which === 'stack') return { label: 'stack Redis', env: {}, stop: async () => undefined };
  if (which !== 'redis82')
    throw new Error(`BENCH_REDIS_SERVER=${JSON.stringify(which)}: use stack (the default) or redis82`);
  const server = await startRedis82(createLogger({ service: 'bench' }, { level: 'warn' }));
  return { label: 'Redis 8.2.3 + Stack 7.4 modules', env: server.env, stop: () => server.stop() };
}

/** An index's vector field as rows name it: "HNSW M 16 / EF_CONSTRUCTION 200", "SVS-VAMANA GlobalSQ8 (LeanVec4x8 asked)". */
export function vectorLabel(
  algorithm: VectorAlgorithm,
  built: BuiltVector | null,
  hnsw: { m: number; efConstruction: number },
  askedCompression?: string,
): string {
  if (algorithm === 'HNSW') return `HNSW M ${hnsw.m} / EF_CONSTRUCTION ${hnsw.efConstruction}`;
  if (algorithm !== 'SVS-VAMANA') return algorithm;
  const compression = built?.compression ?? askedCompression ?? 'no compression';
  const asked =
    askedCompression && built?.compression && askedCompression !== built.compression
      ? ` (${askedCompression} asked)`
      : '';
  return `SVS-VAMANA ${compression}${asked}`;
}
