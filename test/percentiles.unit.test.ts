/**
 * The one percentile definition (services/core/percentiles.ts) and its two users: the embedder's batch and
 * running latency statistics (what the status hash and the progress line show) and the search bench.
 */
import { describe, expect, it } from 'vitest';
import { percentiles } from '../services/core/percentiles.ts';
import { embedderStatus } from '../services/core/status/embedder.ts';
import { consumerStatus } from '../services/embedder/consumer-status.ts';
import type { ConsumerStats } from '../services/embedder/consumer-types.ts';
import { emptyStats, mergeStats } from '../services/embedder/types.ts';
import type { BatchStats } from '../services/embedder/types.ts';

/** Apply latencies of a batch of realistic size: mostly tens of ms, a slow tail from embedding calls. */
function batchLatencies(n: number, seed: number): number[] {
  let x = seed;
  return Array.from({ length: n }, (_, i) => {
    x = (x * 1103515245 + 12345) % 2 ** 31;
    const base = 8 + (x % 40);
    return i % 97 === 0 ? base + 900 : base + (x % 7) / 10;
  });
}

describe('percentiles', () => {
  it('takes the nearest rank, from values in any order, leaving them as they were', () => {
    // Prepare
    const ms = [5.1, 0.9, 3.2, 2.4, 4.0];
    const before = [...ms];
    // Act
    const [p0, p50, p99, p100] = percentiles(ms, [0, 50, 99, 100]);
    // Assess
    expect([p0, p50, p99, p100]).toEqual([0.9, 3.2, 5.1, 5.1]);
    expect(ms).toEqual(before);
    expect(percentiles([2.4, 0.9, 5.1, 3.2], [25, 50, 75])).toEqual([0.9, 2.4, 3.2]);
  });

  it('gives null, never NaN, for no values', () => {
    expect(percentiles([], [50, 99])).toEqual([null, null]);
  });

  it('gives what the embedder reported before (sorted copy, nearest rank) on a realistic batch', () => {
    // Prepare
    const latencies = batchLatencies(5_000, 7);
    const sorted = [...latencies].sort((a, b) => a - b);
    const rank = (p: number) => sorted[Math.ceil((p / 100) * sorted.length) - 1];
    // Act
    const [p50, p99] = percentiles(latencies, [50, 99]);
    // Assess
    expect(p50).toBe(rank(50));
    expect(p99).toBe(rank(99));
    expect(p99).toBeGreaterThan(900);
  });
});

describe("the embedder's latency statistics", () => {
  it('merge batches into running percentiles over every sample kept', () => {
    // Prepare
    const a: BatchStats = { ...emptyStats(), records: 3, latencyMs: [40, 12, 900] };
    const b: BatchStats = { ...emptyStats(), records: 2, latencyMs: [15, 30] };
    // Act
    const merged = mergeStats(a, b);
    // Assess
    expect(merged.records).toBe(5);
    expect(merged.latencyP50Ms).toBe(30);
    expect(merged.latencyP99Ms).toBe(900);
  });

  it('leave an idle consumer (no batch yet) without percentiles: null in the status hash, no NaN', () => {
    // Prepare
    const totals = mergeStats(emptyStats(), emptyStats());
    const stats: ConsumerStats = {
      state: 'applying',
      leaseHolder: null,
      leaseTaken: 1,
      leaseLost: 0,
      startedAt: Date.parse('2026-12-01T09:00:00Z'),
      totals,
      shards: new Map(),
      lastRecordAt: null,
      errors: 0,
    };
    // Act
    const status = consumerStatus(
      stats,
      {
        stream: 'drugsync-prod-changes',
        leaseOwner: 'ip-10-0-1-17:41:a1',
        recordsPerSec: 0,
        now: stats.startedAt,
      },
      null,
      null,
    );
    const hash = embedderStatus.encode(status);
    // Assess
    expect(totals.latencyP50Ms).toBeNull();
    expect(status.latency_p50_ms).toBeNull();
    expect(status.latency_p99_ms).toBeNull();
    expect(Object.values(hash).join(' ')).not.toContain('NaN');
  });
});
