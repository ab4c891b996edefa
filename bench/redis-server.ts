/**
 * Which Redis a bench measures, and what the vector index looks like there: shared by the redis and search
 * benches.
 *
 * BENCH_REDIS_SERVER=stack (default): the local stack's Redis Stack 7.4.1 (search 2.10.5).
 * BENCH_REDIS_SERVER=redis82: a Redis 8.2.3 with Redis Stack 7.4's modules, started for the run and stopped
 * after it (services/stack/redis82.ts): Redis 8.2's server under the same search module.
 * BENCH_REDIS_SERVER=stack,redis82: both, one after the other in the same run (rates side by side).
 */
import type { Env } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import type { VectorAlgorithm } from '../services/core/redis/index.ts';
import type { BuiltVector } from '../services/core/redis/index-info.ts';
import { startRedis82 } from '../services/stack/redis82.ts';

export interface BenchRedis {
  /** how rows name the server: '' for the stack (rows keep their names), else "Redis 8.2.3 + Stack 7.4 modules" */
  label: string;
  /** REDIS_* settings over the stack's (empty for the stack itself) */
  env: Env;
  stop(): Promise<void>;
}

const SERVERS = ['stack', 'redis82'] as const;

/** The servers BENCH_REDIS_SERVER names, in its order (refused with the variable's name when unknown). */
export function benchRedisServers(): (typeof SERVERS)[number][] {
  const list = (process.env.BENCH_REDIS_SERVER ?? 'stack').split(',').map((x) => x.trim());
  for (const x of list)
    if (!(SERVERS as readonly string[]).includes(x))
      throw new Error(
        `BENCH_REDIS_SERVER=${JSON.stringify(x)}: use stack (the default), redis82, or both (stack,redis82)`,
      );
  return list as (typeof SERVERS)[number][];
}

/** The local stack's Redis: nothing to start or stop. */
export const STACK_REDIS: BenchRedis = { label: '', env: {}, stop: async () => undefined };

/** One server of the list, started when it is not the stack's. */
export async function openBenchRedis(which: (typeof SERVERS)[number]): Promise<BenchRedis> {
  if (which === 'stack') return STACK_REDIS;
  const server = await startRedis82(createLogger({ service: 'bench' }, { level: 'warn' }));
  return { label: 'Redis 8.2.3 + Stack 7.4 modules', env: server.env, stop: () => server.stop() };
}

/** A row's metric on that server: unchanged on the stack, the server named otherwise. */
export function onServer(metric: string, server: BenchRedis): string {
  return server.label ? `${metric} [${server.label}]` : metric;
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
