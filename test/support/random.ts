/**
 * Seeded randomness for tests whose schedule is drawn at random (the chaos test's kill times), so that a
 * failure can be replayed: the seed is printed, and an environment variable sets it (`CHAOS_SEED=1234`).
 * The generator is the catalogue's own mulberry32 (`prng`, services/seed/generator.ts).
 */
import { prng } from './factories.ts';

export interface SeededRandom {
  seed: number;
  /** the next number in [0, 1) */
  next(): number;
  /** the next number in [min, max) */
  between(min: number, max: number): number;
}

/** A seed from `envVar` when it is set (a whole number ≥ 0, else this throws naming it), else a fresh one. */
export function seedFrom(envVar: string, env: NodeJS.ProcessEnv = process.env): number {
  const raw = env[envVar];
  if (raw === undefined || raw === '') return Math.floor(Math.random() * 2 ** 31);
  if (!/^\d+$/.test(raw) || Number(raw) >= 2 ** 32)
    throw new Error(
      `${envVar} must be a whole number below 2^32 (the seed a failed run printed), got ${raw}`,
    );
  return Number(raw);
}

/**
 * A seeded generator, its seed from `envVar` (or fresh), announced on stdout as `<label>: seed N (replay with
 * <envVar>=N)` so that a failing run's log says how to run the same schedule again.
 */
export function seededRandom(
  envVar: string,
  label: string,
  env: NodeJS.ProcessEnv = process.env,
): SeededRandom {
  const seed = seedFrom(envVar, env);
  process.stdout.write(`${label}: seed ${seed} (replay with ${envVar}=${seed})\n`);
  const r = prng(seed);
  return { seed, next: r, between: (min, max) => min + r() * (max - min) };
}
