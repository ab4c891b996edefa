/**
 * The seed generator's random draws (deterministic for a seed) and the zero-padded digits NDCs and dates are
 * written with.
 */

/** mulberry32: small, fast, deterministic. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type Rand = () => number;
export const int = (r: Rand, n: number) => Math.floor(r() * n);
export const pick = <T>(r: Rand, xs: readonly T[]): T => xs[int(r, xs.length)] as T;

/** Picks a key of `weights` (values are percentages; the remainder goes to the last key). */
export function weighted(r: Rand, weights: readonly (readonly [string, number])[]): string {
  let x = r() * 100;
  for (const [v, w] of weights) {
    if (x < w) return v;
    x -= w;
  }
  return (weights[weights.length - 1] as readonly [string, number])[0];
}

/** `n` as `w` digits, zero-padded. */
export const pad = (n: number, w: number) => String(n).padStart(w, '0');
