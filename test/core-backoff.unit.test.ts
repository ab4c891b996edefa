import { describe, expect, it, vi } from 'vitest';
import { backoffDelay, sleep } from '../services/core/backoff.ts';

describe('backoffDelay', () => {
  it('doubles from the base per attempt and stops at the cap', () => {
    // Prepare
    const o = { baseMs: 100, maxMs: 5_000 };
    // Act
    const delays = [0, 1, 2, 3, 5, 6, 20].map((a) => backoffDelay(a, o));
    // Assess
    expect(delays).toEqual([100, 200, 400, 800, 3_200, 5_000, 5_000]);
  });

  it('full jitter scales the capped delay by the random draw', () => {
    // Prepare
    const o = { baseMs: 1_000, maxMs: 20_000, jitter: 'full' as const };
    // Act
    const low = backoffDelay(2, o, () => 0);
    const mid = backoffDelay(2, o, () => 0.25);
    const capped = backoffDelay(10, o, () => 0.5);
    // Assess
    expect([low, mid, capped]).toEqual([0, 1_000, 10_000]);
  });

  it('half jitter keeps the delay between half the cap and the cap', () => {
    // Prepare
    const o = { baseMs: 100, maxMs: 5_000, jitter: 'half' as const };
    // Act
    const least = backoffDelay(3, o, () => 0);
    const most = backoffDelay(3, o, () => 0.999_999);
    const mid = backoffDelay(3, o, () => 0.5);
    // Assess
    expect(least).toBe(400);
    expect(most).toBeLessThan(800);
    expect(most).toBeGreaterThan(799);
    expect(mid).toBe(600);
  });

  it('does not draw a random number without jitter', () => {
    // Prepare
    const random = vi.fn(() => 0.5);
    // Act
    const d = backoffDelay(4, { baseMs: 500, maxMs: 60_000, jitter: 'none' }, random);
    // Assess
    expect(d).toBe(8_000);
    expect(random).not.toHaveBeenCalled();
  });
});

describe('sleep', () => {
  it('resolves after the given time and leaves no timer behind', async () => {
    // Prepare
    vi.useFakeTimers();
    try {
      let done = false;
      const p = sleep(1_000).then(() => {
        done = true;
      });
      // Act
      await vi.advanceTimersByTimeAsync(999);
      const early = done;
      await vi.advanceTimersByTimeAsync(1);
      await p;
      // Assess
      expect(early).toBe(false);
      expect(done).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves at once when its signal aborts, and clears its timer', async () => {
    // Prepare
    vi.useFakeTimers();
    try {
      const ac = new AbortController();
      const p = sleep(60_000, ac.signal);
      // Act
      ac.abort();
      await p;
      // Assess
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it('resolves without waiting when the signal has already aborted', async () => {
    // Prepare
    vi.useFakeTimers();
    try {
      const ac = new AbortController();
      ac.abort();
      // Act
      const p = sleep(60_000, ac.signal);
      const count = vi.getTimerCount();
      await p;
      // Assess
      expect(count).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });
});
