/** The seeded randomness of test/support/random.ts: replayable from its seed, the seed settable and checked. */
import { describe, expect, it } from 'vitest';
import { seedFrom, seededRandom } from './support/random.ts';

describe('seeded test randomness', () => {
  it('draws the same schedule again from the same seed, and another from another', () => {
    // Act
    const draw = (env: NodeJS.ProcessEnv) => {
      const r = seededRandom('CHAOS_SEED', 'unit', env);
      return { seed: r.seed, at: [0, 1, 2, 3].map(() => r.between(3_000, 55_000)) };
    };
    const a = draw({ CHAOS_SEED: '424242' });
    const b = draw({ CHAOS_SEED: '424242' });
    const c = draw({ CHAOS_SEED: '7' });
    // Assess
    expect(a).toEqual(b);
    expect(a.seed).toBe(424242);
    expect(c.at).not.toEqual(a.at);
    for (const t of [...a.at, ...c.at]) {
      expect(t).toBeGreaterThanOrEqual(3_000);
      expect(t).toBeLessThan(55_000);
    }
  });

  it('takes a fresh seed when the variable is unset, and refuses one that is not a whole number', () => {
    // Act
    const fresh = seedFrom('CHAOS_SEED', {});
    // Assess
    expect(Number.isInteger(fresh)).toBe(true);
    expect(fresh).toBeGreaterThanOrEqual(0);
    expect(() => seedFrom('CHAOS_SEED', { CHAOS_SEED: '12ab' })).toThrow(
      'CHAOS_SEED must be a whole number below 2^32 (the seed a failed run printed), got 12ab',
    );
    expect(() => seedFrom('CHAOS_SEED', { CHAOS_SEED: '-1' })).toThrow(/got -1/);
  });
});
