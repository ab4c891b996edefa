/**
 * The benchmarks' numeric settings (BENCH_* variables): read once, and refused with the variable's name when
 * they are not a number, rather than running a benchmark of NaN rows.
 */

/** The environment variable `name` as a number, `fallback` when it is unset or empty. */
export function benchNumber(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n)) {
    throw new Error(
      `${name}=${JSON.stringify(raw)} is not a number: set it to one (or unset it for ${fallback})`,
    );
  }
  return n;
}
