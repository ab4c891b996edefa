/**
 * The progress clocks behind the stall and lag metrics, without servers or timers (time injected): what
 * counts as progress for the reader (checkpoint moved, records acknowledged past the furthest point reached
 * from it, the server's word that it is caught up) and for the embedder (a batch applied, a read at the tip),
 * and that nothing else does: a stuck service's stall grows.
 */
import { describe, expect, it } from 'vitest';
import { ReaderProgress } from '../services/binlog-reader/progress.ts';
import type { ProgressSample } from '../services/binlog-reader/progress.ts';
import { METRICS } from '../services/core/metrics.ts';
import type { ConsumerStats, ShardProgress } from '../services/embedder/consumer-types.ts';
import {
  batchMetricValues,
  heartbeatValues,
  millisBehind,
  stallSeconds,
} from '../services/embedder/progress.ts';
import { emptyStats } from '../services/embedder/types.ts';

const T0 = 1_765_000_000_000;
const s = (n: number) => T0 + n * 1000;

/** A reader sample: checkpoint `cp` (null: none yet) committed at `commitAt` seconds, and the counters. */
function sample(over: Partial<ProgressSample> = {}): ProgressSample {
  return { checkpoint: null, checkpointCommitTs: null, session: 1, sessionAcked: 0, caughtUp: 0, ...over };
}

describe('reader progress', () => {
  it('reads healthy on an idle database only while the server keeps confirming it caught up', () => {
    // Prepare: checkpoint written at 0 s, then heartbeats find it caught up every 5 s until 30 s
    const p = new ReaderProgress(s(0));
    p.observe(sample({ checkpoint: 'binlog.000042:9000', checkpointCommitTs: s(0) }), s(0));
    let caughtUp = 0;
    for (let t = 10; t <= 30; t += 10) {
      caughtUp += 2;
      p.observe(sample({ checkpoint: 'binlog.000042:9000', checkpointCommitTs: s(0), caughtUp }), s(t));
    }
    const healthy = { stall: p.stallSeconds(s(30)), lag: p.lagSeconds(s(30)) };
    // Act: the server stops confirming (unreachable: nobody can say it is not ahead)
    for (let t = 40; t <= 400; t += 10)
      p.observe(sample({ checkpoint: 'binlog.000042:9000', checkpointCommitTs: s(0), caughtUp }), s(t));
    // Assess
    expect(healthy).toEqual({ stall: 0, lag: 0 });
    expect(p.stallSeconds(s(400))).toBe(370);
    expect(p.lagSeconds(s(400))).toBe(370);
  });

  it('counts a moving checkpoint as progress and measures the lag from its commit time', () => {
    // Prepare: a backlog read 10 minutes late, the checkpoint moving every sample
    const p = new ReaderProgress(s(0));
    // Act
    for (let t = 10; t <= 60; t += 10)
      p.observe(sample({ checkpoint: `binlog.000042:${t}00`, checkpointCommitTs: s(t - 600) }), s(t));
    // Assess: not stalled, but 600 s behind
    expect(p.stallSeconds(s(60))).toBe(0);
    expect(p.lagSeconds(s(60))).toBe(600);
  });

  it('counts records acknowledged inside one long transaction, but not the same records sent again', () => {
    // Prepare: a 500,000-row transaction, its records acknowledged as they go (no commit yet)
    const p = new ReaderProgress(s(0));
    const cp = { checkpoint: 'binlog.000042:9000', checkpointCommitTs: s(0) };
    p.observe(sample(cp), s(0));
    p.observe(sample({ ...cp, sessionAcked: 120_000 }), s(10));
    p.observe(sample({ ...cp, sessionAcked: 260_000 }), s(20));
    const whileMoving = p.stallSeconds(s(20));
    // Act: the session fails; new sessions restart from the checkpoint and fail at the same place
    p.observe(sample({ ...cp, session: 2, sessionAcked: 150_000 }), s(40));
    p.observe(sample({ ...cp, session: 2, sessionAcked: 260_000 }), s(60));
    p.observe(sample({ ...cp, session: 3, sessionAcked: 200_000 }), s(80));
    const looping = p.stallSeconds(s(80));
    p.observe(sample({ ...cp, session: 3, sessionAcked: 300_000 }), s(90));
    // Assess
    expect(whileMoving).toBe(0);
    expect(looping).toBe(60);
    expect(p.stallSeconds(s(90))).toBe(0);
  });

  it('grows from the start when nothing was ever proven (lease held elsewhere, refused login)', () => {
    // Prepare
    const p = new ReaderProgress(s(0));
    // Act: samples without a checkpoint, an acknowledgement or a confirmation
    for (let t = 10; t <= 300; t += 10) p.observe(sample({ session: 0 }), s(t));
    // Assess
    expect(p.stallSeconds(s(300))).toBe(300);
    expect(p.lagSeconds(s(300))).toBe(300);
  });
});

/** An open shard that last proved progress at `progress` s and was read at `read` s, `behind` ms behind. */
function shard(id: string, progress: number, read: number | null, behind: number | null): ShardProgress {
  return {
    shardId: id,
    checkpoint: '49650012345678901234567890123456789012345678901234567890',
    millisBehindLatest: behind,
    closed: false,
    idle: behind === 0,
    batches: 4,
    errors: 0,
    progressAt: s(progress),
    readAt: read === null ? null : s(read),
  };
}

function consumer(shards: ShardProgress[], startedAt = s(0)): Pick<ConsumerStats, 'shards' | 'startedAt'> {
  return { startedAt, shards: new Map(shards.map((p) => [p.shardId, p])) };
}

describe('embedder progress', () => {
  it('is as stalled as its least advanced open shard; closed parents do not count', () => {
    // Prepare: shard 0 at the tip, shard 1 retrying a failing record since 60 s, a closed parent
    const parent = { ...shard('shardId-000000000002', 5, 5, 0), closed: true };
    const stats = consumer([
      shard('shardId-000000000000', 299, 299.8, 0),
      shard('shardId-000000000001', 60, 299.5, 5_000),
      parent,
    ]);
    // Act
    const stall = stallSeconds(stats, s(300));
    // Assess
    expect(stall).toBe(240);
  });

  it('counts from the consumer start while no shard was read (no lease, no shard list)', () => {
    // Act
    const stall = stallSeconds(consumer([], s(100)), s(400));
    const lag = millisBehind(consumer([], s(100)), s(400));
    // Assess
    expect(stall).toBe(300);
    expect(lag).toBeNull();
  });

  it('ages each shard’s MillisBehindLatest by the time since its last read', () => {
    // Prepare: shard 0 read 0.5 s ago at the tip; shard 1 last read 120 s ago, 2 s behind then
    const stats = consumer([
      shard('shardId-000000000000', 299, 299.5, 0),
      shard('shardId-000000000001', 180, 180, 2_000),
    ]);
    // Act
    const values = heartbeatValues(stats, s(300));
    // Assess
    expect(values).toEqual({
      [METRICS.EmbedderStallSeconds]: 120,
      [METRICS.EmbedderMillisBehindLatest]: 122_000,
    });
  });

  it('turns one batch into records applied, latencies, embeddings, dead letters and stale refusals', () => {
    // Prepare: 500 records, 3 dead-lettered, 1 failed, 40 stale, 12 Bedrock calls, 496 latencies
    const b = {
      ...emptyStats(),
      records: 500,
      deadLettered: 3,
      failed: 1,
      staleRefused: 40,
      embeddingsRequested: 12,
      latencyMs: Array.from({ length: 456 }, (_, i) => 180 + i),
    };
    // Act
    const values = batchMetricValues(b);
    // Assess
    expect(values).toMatchObject({
      EmbedderRecordsApplied: 496,
      EmbedderEmbeddings: 12,
      EmbedderDeadLetters: 3,
      EmbedderStaleRefused: 40,
    });
    const latencies = values.EmbedderCommitToRedisLatency as number[];
    expect(latencies).toHaveLength(100);
    expect([latencies[0], latencies[99]]).toEqual([180, 635]);
  });
});
