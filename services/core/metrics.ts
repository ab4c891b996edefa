/**
 * The CloudWatch metrics drugsync publishes itself, as Embedded Metric Format (EMF) log lines: one owner of
 * their namespace and names for the services that emit them and for infra/observability.ts that alarms on
 * them (a renamed metric would otherwise leave an alarm watching nothing).
 */

export const METRIC_NAMESPACE = 'drugsync';

/** Every metric name the services emit (and infra/ alarms on). */
export const METRICS = {
  /** Seconds between now and the commit time of the last change the reader checkpointed. */
  ReaderLagSeconds: 'ReaderLagSeconds',
  /** Change events the reader published per second since its previous status line. */
  ReaderEventsPerSecond: 'ReaderEventsPerSecond',
} as const;

export type MetricName = (typeof METRICS)[keyof typeof METRICS];

/** The unit each metric is published with. */
export const METRIC_UNITS: Record<MetricName, string> = {
  ReaderLagSeconds: 'Seconds',
  ReaderEventsPerSecond: 'Count/Second',
};

/** The dimensions a service publishes its metrics under (the alarm must name the same ones). */
export const READER_METRIC_DIMENSIONS: Readonly<Record<string, string>> = { Service: 'binlog-reader' };

/**
 * The fields of one EMF record: the `_aws` metadata first, then the dimension values, then the metric
 * values. Units default to METRIC_UNITS. For loggers that take fields (the reader merges them into a log line).
 */
export function emfFields(
  dimensions: Record<string, string>,
  values: Partial<Record<MetricName, number>>,
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
  values: Partial<Record<MetricName, number>>,
  units?: Partial<Record<MetricName, string>>,
  now?: number,
): string {
  return JSON.stringify(emfFields(dimensions, values, units, now));
}
