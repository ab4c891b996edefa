/**
 * Percentiles of a sample (latencies): the one definition drugsync uses, for the embedder's batch and
 * running statistics (status hash, progress lines) and the search bench.
 */

/**
 * Nearest-rank percentiles of `values`: for each p (0..100), the smallest value with at least p% of the
 * values at or below it (p = 0: the minimum, p = 100: the maximum). `values` may be in any order and is
 * not changed (one sorted copy serves every p). No values: null for every p, never NaN, so an empty sample
 * reaches a log or status line as null.
 */
export function percentiles<const P extends readonly number[]>(
  values: readonly number[],
  ps: P,
): { [K in keyof P]: number | null } {
  const sorted = [...values].sort((a, b) => a - b);
  const n = sorted.length;
  const at = (p: number): number | null =>
    n === 0 ? null : (sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n) - 1))] as number);
  return ps.map(at) as { [K in keyof P]: number | null };
}
