import { describe, expect, it } from 'vitest';
import { AdaptiveRateLimiter } from '../services/core/embedding/rate-limiter.ts';
import type { LimiterClock } from '../services/core/embedding/rate-limiter.ts';

/** A clock that moves only when told; sleeps are timers it fires in due order. */
class FakeClock implements LimiterClock {
  t = 0;
  readonly sleeps: number[] = [];
  private readonly timers: { at: number; fire: () => void }[] = [];

  now = (): number => this.t;

  sleep = (ms: number): Promise<void> => {
    this.sleeps.push(ms);
    return new Promise<void>((fire) => this.timers.push({ at: this.t + ms, fire }));
  };

  /** Fires the earliest timer at `late` ms after its due time, then lets its waiter run. */
  async fireNext(late = 0): Promise<boolean> {
    await turn();
    this.timers.sort((a, b) => a.at - b.at);
    const next = this.timers.shift();
    if (!next) return false;
    this.t = Math.max(this.t, next.at + late);
    next.fire();
    await turn();
    return true;
  }

  async fireAll(): Promise<void> {
    while (await this.fireNext());
  }
}

const turn = () => new Promise<void>((r) => setImmediate(r));

/** `n` requests wanted at once; resolves to the clock time each was let through, in order. */
function requests(limiter: AdaptiveRateLimiter, clock: FakeClock, n: number): Promise<number[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      await limiter.acquire();
      return clock.now();
    }),
  ).then((at) => at.sort((x, y) => x - y));
}

/** `n` successes spread evenly over the second before the clock's current time. */
function successesOverLastSecond(limiter: AdaptiveRateLimiter, clock: FakeClock, n: number): void {
  const end = clock.t;
  for (let i = 0; i < n; i++) {
    clock.t = end - 1_000 + ((i + 1) * 1_000) / n;
    limiter.onSuccess();
  }
  clock.t = end;
}

describe('adaptive rate limiter: pacing', () => {
  it('spaces requests evenly at its budget, with no burst after an idle spell', async () => {
    // Prepare: 1,200 requests a minute = one every 50 ms; one request, then ten idle seconds
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter(1_200, clock);
    await limiter.acquire();
    clock.t = 10_000;

    // Act: 8 requests wanted at once
    const pending = requests(limiter, clock, 8);
    await clock.fireAll();
    const at = await pending;

    // Assess: the first at once, then one every 50 ms exactly
    expect(at).toEqual([10_000, 10_050, 10_100, 10_150, 10_200, 10_250, 10_300, 10_350]);
  });

  it('keeps its schedule when a timer fires late: the next request is not pushed back', async () => {
    // Prepare
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter(1_200, clock);

    // Act: three at once; the second's timer fires 30 ms late
    const pending = requests(limiter, clock, 3);
    await clock.fireNext(30);
    await clock.fireAll();
    const at = await pending;

    // Assess: the third keeps its slot at 100 ms
    expect(at).toEqual([0, 80, 100]);
  });

  it('never waits without a budget', async () => {
    // Prepare
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter(Infinity, clock);

    // Act
    const at = await requests(limiter, clock, 50);

    // Assess
    expect(at.every((t) => t === 0)).toBe(true);
    expect(clock.sleeps).toEqual([]);
  });
});

describe('adaptive rate limiter: throttles', () => {
  it('after a throttle, cuts the rate, recovers to just under the ceiling fast, then probes above it slowly', () => {
    // Prepare: a second of successes at the budget of 6,000 a minute (100 a second)
    const clock = new FakeClock();
    clock.t = 5_000;
    const limiter = new AdaptiveRateLimiter(6_000, clock);
    successesOverLastSecond(limiter, clock, 100);

    // Act + Assess: cut to 95%
    limiter.onThrottle();
    expect(limiter.rpm).toBe(5_700);
    expect(limiter.cuts).toBe(1);

    // recovery: each success adds 20% of the ceiling per second of successes, capped at 99% of the ceiling
    limiter.onSuccess();
    expect(limiter.rpm).toBeCloseTo(5_700 + (0.2 * 60 * 6_000) / 5_700, 9);
    for (let i = 0; i < 18; i++) limiter.onSuccess();
    expect(limiter.rpm).toBeLessThan(5_940);
    limiter.onSuccess(); // the 20th since the cut
    expect(limiter.rpm).toBe(5_940);

    // probe: 0.5% of the ceiling a second right after the cut, doubling every second without a throttle
    limiter.onSuccess();
    expect(limiter.rpm).toBeCloseTo(5_940 + (0.005 * 60 * 6_000) / 5_940, 9);
    const before = limiter.rpm;
    clock.t += 1_000;
    limiter.onSuccess();
    expect(limiter.rpm).toBeCloseTo(before + (0.01 * 60 * 6_000) / before, 9);
    expect(limiter.cuts).toBe(1);
  });

  it('counts a burst of throttles within a second as one cut', () => {
    // Prepare
    const clock = new FakeClock();
    clock.t = 2_000;
    const limiter = new AdaptiveRateLimiter(6_000, clock);

    // Act
    limiter.onThrottle();
    clock.t += 999;
    limiter.onThrottle();
    const afterBurst = limiter.rpm;
    clock.t += 1;
    limiter.onThrottle();

    // Assess: 6,000 → 5,700 once in the burst, then 5,415 a second later
    expect(afterBurst).toBe(5_700);
    expect(limiter.rpm).toBeCloseTo(5_415, 9);
    expect(limiter.cuts).toBe(2);
  });

  it('cuts a budget far above the accepted rate down to that rate in one step', () => {
    // Prepare: a budget of 60,000 a minute, but the server accepted 20 in the last second (1,200 a minute)
    const clock = new FakeClock();
    clock.t = 3_000;
    const limiter = new AdaptiveRateLimiter(60_000, clock);
    successesOverLastSecond(limiter, clock, 20);

    // Act
    limiter.onThrottle();

    // Assess
    expect(limiter.rpm).toBe(1_140);
  });

  it('forgets answers older than a second when it estimates the accepted rate', () => {
    // Prepare: 20 answers (not throttled) two seconds ago, none since
    const clock = new FakeClock();
    clock.t = 10_000;
    const limiter = new AdaptiveRateLimiter(60_000, clock);
    clock.t = 8_000;
    for (let i = 0; i < 20; i++) limiter.onAnswered();
    clock.t = 10_000;

    // Act
    limiter.onThrottle();

    // Assess: too few recent samples: the budget itself is cut
    expect(limiter.rpm).toBe(57_000);
  });

  it('without a budget, sets a rate only once it has samples of the accepted rate', async () => {
    // Prepare
    const clock = new FakeClock();
    clock.t = 4_000;
    const limiter = new AdaptiveRateLimiter(Infinity, clock);
    successesOverLastSecond(limiter, clock, 5);

    // Act: a throttle with 5 samples, then one with 50 a second later
    limiter.onThrottle();
    const withFewSamples = limiter.rpm;
    clock.t += 1_001;
    successesOverLastSecond(limiter, clock, 50);
    limiter.onThrottle();
    const pending = requests(limiter, clock, 2);
    await clock.fireAll();
    const at = await pending;

    // Assess: unchanged at first; then 95% of 3,000 a minute, and the next request waits one interval
    expect(withFewSamples).toBe(Infinity);
    expect(limiter.cuts).toBe(1);
    expect(limiter.rpm).toBe(2_850);
    const interval = 60_000 / 2_850;
    expect(at[0]).toBeCloseTo(5_001 + interval, 9);
    expect(at[1]).toBeCloseTo(5_001 + 2 * interval, 9);
  });

  it('never cuts below 6 requests a minute', () => {
    // Prepare
    const clock = new FakeClock();
    const limiter = new AdaptiveRateLimiter(10, clock);

    // Act: three cuts, a second apart
    for (let i = 0; i < 3; i++) {
      clock.t += 1_000;
      limiter.onThrottle();
    }

    // Assess: 10 → 9.5 → 9.025 → 8.57… is above the floor; further cuts stop at it
    expect(limiter.rpm).toBeCloseTo(10 * 0.95 ** 3, 9);
    for (let i = 0; i < 10; i++) {
      clock.t += 1_000;
      limiter.onThrottle();
    }
    expect(limiter.rpm).toBe(6);
  });
});
