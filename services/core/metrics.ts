/**
 * The CloudWatch metrics drugsync publishes itself, as Embedded Metric Format (EMF) log lines: one owner of
 * their namespace, names, units and dimensions for the services that emit them and for infra/ (the alarms
 * and the dashboard import them: a renamed metric would otherwise leave an alarm watching nothing).
 *
 * Two kinds of metric:
 * - progress heartbeats (ReaderStallSeconds, EmbedderStallSeconds, the lags), emitted on a timer of their
 *   own whatever the work loop is doing, and built so that they cannot read healthy while the service is
 *   stuck: they grow from the last *proven* progress, and "nothing to do" must be proven by the source
 *   (a server heartbeat, a GetRecords at the tip), never assumed. Their alarms treat missing data as
 *   breaching, so a dead process alarms too;
 * - per-batch / per-run counts (records applied, latency, embeddings, dead letters, verify differences).
 *
 * Every metric carries the dimensions Service and Stage (DRUGSYNC_STAGE, set by the deployed tasks; `local`
 * elsewhere), so two stages in one account never share a metric.
 */

export const METRIC_NAMESPACE = 'drugsync';

/** Every metric name the services emit (and infra/ alarms on and plots). */
export const METRICS = {
  /**
   * Seconds between now and the newest moment up to which the reader is known to have captured the binlog:
   * the commit time of the transaction at its checkpoint or, when it is caught up, the last server heartbeat
   * that found everything read checkpointed. About the heartbeat period on an idle database; grows while the
   * reader is behind or stuck, whatever the reason (measured from the checkpoint, never from what was read).
   */
  ReaderLagSeconds: 'ReaderLagSeconds',
  /**
   * Seconds since the reader last made progress: its checkpoint moved, Kinesis acknowledged records past the
   * furthest point reached from that checkpoint, or the server said (heartbeat) it has nothing more to send
   * and everything read is checkpointed. 0-ish on an idle database; grows while the reader is stuck (refused
   * login, lease held elsewhere, silent network, Kinesis down) or cannot tell (server unreachable).
   */
  ReaderStallSeconds: 'ReaderStallSeconds',
  /** Change events the reader published per second since its previous metrics line. */
  ReaderEventsPerSecond: 'ReaderEventsPerSecond',
  /**
   * Seconds since the embedder's least advanced shard last applied a batch or polled its shard at the tip
   * (GetRecords: nothing behind, nothing held). From the consumer's start until its shards are read; grows
   * while it is stuck (Redis down, lease lost, Kinesis unreachable, a record failing again and again).
   */
  EmbedderStallSeconds: 'EmbedderStallSeconds',
  /** The largest MillisBehindLatest of the shards' last GetRecords: how far the embedder reads behind the tip. */
  EmbedderMillisBehindLatest: 'EmbedderMillisBehindLatest',
  /** Records (change events) one batch applied. */
  EmbedderRecordsApplied: 'EmbedderRecordsApplied',
  /** Milliseconds from the source commit of a change to its write in Redis (up to 100 values a batch). */
  EmbedderCommitToRedisLatency: 'EmbedderCommitToRedisLatency',
  /** Embedding requests (Bedrock calls) one batch made. */
  EmbedderEmbeddings: 'EmbedderEmbeddings',
  /** Records one batch dead-lettered. */
  EmbedderDeadLetters: 'EmbedderDeadLetters',
  /** Records one batch refused as older than Redis (the position rule). */
  EmbedderStaleRefused: 'EmbedderStaleRefused',
  /** Differences a verify run found (missing + extra + stale documents): 0 when Redis equals MySQL. */
  VerifyDifferences: 'VerifyDifferences',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** The unit each metric is published with. */
export const METRIC_UNITS: Record<MetricName, string> = {
  ReaderLagSeconds: 'Seconds',
  ReaderStallSeconds: 'Seconds',
  ReaderEventsPerSecond: 'Count/Second',
  EmbedderStallSeconds: 'Seconds',
  EmbedderMillisBehindLatest: 'Milliseconds',
  EmbedderRecordsApplied: 'Count',
  EmbedderCommitToRedisLatency: 'Milliseconds',
  EmbedderEmbeddings: 'Count',
  EmbedderDeadLetters: 'Count',
  EmbedderStaleRefused: 'Count',
  VerifyDifferences: 'Count',
};

/** The value of the Service dimension of each emitting service. */
export const METRIC_SERVICES = { reader: 'binlog-reader', embedder: 'embedder', verify: 'verify' } as const;
export type MetricService = keyof typeof METRIC_SERVICES;

/** Which metrics each service emits (the dashboard plots nothing else of our namespace; tested). */
export const SERVICE_METRICS: Readonly<Record<MetricService, readonly MetricName[]>> = {
  reader: [METRICS.ReaderLagSeconds, METRICS.ReaderStallSeconds, METRICS.ReaderEventsPerSecond],
  embedder: [
    METRICS.EmbedderStallSeconds,
    METRICS.EmbedderMillisBehindLatest,
    METRICS.EmbedderRecordsApplied,
    METRICS.EmbedderCommitToRedisLatency,
    METRICS.EmbedderEmbeddings,
    METRICS.EmbedderDeadLetters,
    METRICS.EmbedderStaleRefused,
  ],
  verify: [METRICS.VerifyDifferences],
};

/** The stage dimension when DRUGSYNC_STAGE is unset (a local run). */
export const LOCAL_STAGE = 'local';

/** The dimensions a service publishes its metrics under (an alarm must name exactly the same ones). */
export function metricDimensions(
  service: MetricService,
  stage: string = LOCAL_STAGE,
): { Service: string; Stage: string } {
  return { Service: METRIC_SERVICES[service], Stage: stage };
}

/** EMF allows at most this many values for one metric in one record. */
export const EMF_MAX_VALUES = 100;

/** A metric's value: one number, or up to EMF_MAX_VALUES of them (CloudWatch keeps their distribution). */
export type MetricValue = number | number[];

/**
 * At most EMF_MAX_VALUES values that keep the distribution of `values`: all of them when few enough, else
 * evenly spaced order statistics (the minimum and the maximum included), so percentiles stay right.
 */
export function boundedSample(values: readonly number[], max = EMF_MAX_VALUES): number[] {
  if (values.length <= max) return [...values];
  const sorted = [...values].sort((a, b) => a - b);
  return Array.from(
    { length: max },
    (_, i) => sorted[Math.round((i * (sorted.length - 1)) / (max - 1))] as number,
  );
}

/**
 * The fields of one EMF record: the `_aws` metadata first, then the dimension values, then the metric
 * values. Units default to METRIC_UNITS. For loggers that take fields (the services merge them into a log
 * line: the record is one JSON log event, which CloudWatch Logs turns into metrics).
 */
export function emfFields(
  dimensions: Record<string, string>,
  values: Partial<Record<MetricName, MetricValue>>,
  units: Partial<Record<MetricName, string>> = {},
  now: number = Date.now(),
): Record<string, unknown> {
  const names = Object.keys(values) as MetricName[];
  return {
    _aws: {
      Timestamp: now,
      CloudWatchMetrics: [
        {
          Namespace: METRIC_NAMESPACE,
          Dimensions: [Object.keys(dimensions)],
          Metrics: names.map((n) => ({ Name: n, Unit: units[n] ?? METRIC_UNITS[n] })),
        },
      ],
    },
    ...dimensions,
    ...values,
  };
}

/** One CloudWatch Embedded Metric Format JSON line (no trailing newline). */
export function emfLine(
  dimensions: Record<string, string>,
  values: Partial<Record<MetricName, MetricValue>>,
  units?: Partial<Record<MetricName, string>>,
  now?: number,
): string {
  return JSON.stringify(emfFields(dimensions, values, units, now));
}

/**
 * EMF records are written only where log lines are JSON and shipped to CloudWatch (LOG_FORMAT=json: the
 * deployed tasks and `drugsync stream`'s children); on a terminal they would only be noise.
 */
export function emfWanted(env: Record<string, string | undefined> = process.env): boolean {
  return env.LOG_FORMAT === 'json';
}

/** Writes one service's metrics, each call one EMF line. */
export interface MetricEmitter {
  readonly dimensions: { Service: string; Stage: string };
  emit(values: Partial<Record<MetricName, MetricValue>>, now?: number): void;
}

export interface MetricEmitterOptions {
  /** where a line goes (default: stderr, beside the log lines) */
  write?: (line: string) => void;
  /** default: emfWanted() */
  enabled?: boolean;
}

/**
 * The emitter of one service's metrics. Its lines bypass LOG_LEVEL on purpose: an operator who quiets the
 * logs must not silence the heartbeats the stall alarms wait for (missing data is breaching for them).
 */
export function createMetricEmitter(
  service: MetricService,
  stage: string = LOCAL_STAGE,
  opts: MetricEmitterOptions = {},
): MetricEmitter {
  const dimensions = metricDimensions(service, stage);
  const enabled = opts.enabled ?? emfWanted();
  const write = opts.write ?? ((line: string) => void process.stderr.write(line + '\n'));
  return {
    dimensions,
    emit(values, now = Date.now()) {
      if (enabled && Object.keys(values).length > 0) write(emfLine(dimensions, values, {}, now));
    },
  };
}

/** One EMF record read back (a log line parsed): its dimensions and metric values; null for any other line. */
export interface EmfRecord {
  timestamp: number;
  dimensions: Record<string, string>;
  values: Partial<Record<MetricName, MetricValue>>;
}

export function parseEmfLine(line: string): EmfRecord | null {
  let r: Record<string, unknown>;
  try {
    r = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return null;
  }
  const aws = r?._aws as
    | { Timestamp?: number; CloudWatchMetrics?: { Dimensions?: string[][]; Metrics?: { Name: string }[] }[] }
    | undefined;
  const meta = aws?.CloudWatchMetrics?.[0];
  if (!meta?.Metrics) return null;
  const dimensions = Object.fromEntries((meta.Dimensions?.[0] ?? []).map((k) => [k, String(r[k])]));
  const values = Object.fromEntries(meta.Metrics.map((m) => [m.Name, r[m.Name] as MetricValue]));
  return { timestamp: Number(aws?.Timestamp), dimensions, values };
}
