/**
 * The embedder's metrics (names and units: ../core/metrics.ts), as EMF lines:
 *
 * - a progress heartbeat on a timer of its own (`EmbedderHeartbeat`, every EMBEDDER_METRICS_SECONDS), which
 *   runs whatever the consumer is doing (applying, waiting for its lease, retrying a shard, unable to list
 *   shards): EmbedderStallSeconds and EmbedderMillisBehindLatest;
 * - per-batch counts after every applied batch (`batchMetricValues`): records applied, commit-to-Redis
 *   latency, embeddings, dead letters, stale refusals.
 *
 * A shard proves progress (`ShardProgress.progressAt`, set by ./shard-runner.ts) when it applies a batch
 * (dead-lettering a poison record is handling it) or when a GetRecords at the tip finds nothing to apply and
 * nothing held: "nothing to do" is Kinesis' word, never assumed. The stall is that of the least advanced
 * open shard, so one shard retrying a failing record forever is seen behind others that move; before any
 * shard is read (no lease, no shard list) it counts from the consumer's start. A shard's lag is the
 * MillisBehindLatest of its last GetRecords plus the time since that call: a shard nobody reads cannot look
 * current.
 */
import { METRICS, boundedSample } from '../core/metrics.ts';
import type { MetricEmitter, MetricName, MetricValue } from '../core/metrics.ts';
import type { ConsumerStats, ShardProgress } from './consumer-types.ts';
import type { BatchStats } from './types.ts';

type Shards = Pick<ConsumerStats, 'shards' | 'startedAt'>;

const open = (s: Shards): ShardProgress[] => [...s.shards.values()].filter((p) => !p.closed);

/** Seconds since the least advanced open shard last proved progress (see the module comment). */
export function stallSeconds(s: Shards, now: number): number {
  const shards = open(s);
  if (shards.length === 0) {
    // nothing read yet (or only closed parents whose children are not started): since the last progress
    const last = Math.max(s.startedAt, ...[...s.shards.values()].map((p) => p.progressAt));
    return Math.max(0, (now - last) / 1000);
  }
  return Math.max(0, ...shards.map((p) => (now - p.progressAt) / 1000));
}

/** The largest lag of the open shards read so far (ms), aged by the time since their last read; null: none. */
export function millisBehind(s: Shards, now: number): number | null {
  const lags = open(s)
    .filter((p) => p.readAt !== null && p.millisBehindLatest !== null)
    .map((p) => (p.millisBehindLatest as number) + Math.max(0, now - (p.readAt as number)));
  return lags.length > 0 ? Math.max(...lags) : null;
}

/** The heartbeat's values now. */
export function heartbeatValues(s: Shards, now: number): Partial<Record<MetricName, number>> {
  const lag = millisBehind(s, now);
  return {
    [METRICS.EmbedderStallSeconds]: Number(stallSeconds(s, now).toFixed(3)),
    ...(lag !== null ? { [METRICS.EmbedderMillisBehindLatest]: Math.round(lag) } : {}),
  };
}

/** One applied batch's counts (the latencies as a bounded sample of their distribution). */
export function batchMetricValues(batch: BatchStats): Partial<Record<MetricName, MetricValue>> {
  return {
    [METRICS.EmbedderRecordsApplied]: batch.records - batch.deadLettered - batch.failed,
    ...(batch.latencyMs.length > 0
      ? { [METRICS.EmbedderCommitToRedisLatency]: boundedSample(batch.latencyMs).map(Math.round) }
      : {}),
    [METRICS.EmbedderEmbeddings]: batch.embeddingsRequested,
    [METRICS.EmbedderDeadLetters]: batch.deadLettered,
    [METRICS.EmbedderStaleRefused]: batch.staleRefused,
  };
}

export interface HeartbeatDeps {
  stats: Shards;
  metrics: MetricEmitter;
  everyMs: number;
  clock: () => number;
}

/** Emits the heartbeat values every `everyMs`, independent of the consumer's loops (and once at stop). */
export class EmbedderHeartbeat {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly d: HeartbeatDeps) {}

  beat(): void {
    const now = this.d.clock();
    this.d.metrics.emit(heartbeatValues(this.d.stats, now), now);
  }

  start(): void {
    this.timer = setInterval(() => this.beat(), this.d.everyMs);
    this.timer.unref?.();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }
}
