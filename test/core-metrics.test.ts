import { describe, expect, it } from 'vitest';
import {
  EMF_MAX_VALUES,
  METRIC_NAMESPACE,
  METRIC_UNITS,
  METRICS,
  SERVICE_METRICS,
  boundedSample,
  createMetricEmitter,
  emfFields,
  emfLine,
  metricDimensions,
  parseEmfLine,
} from '../services/core/metrics.ts';

describe('emfLine', () => {
  it('is one CloudWatch EMF JSON line declaring the namespace, dimensions, metrics and units', () => {
    // Prepare
    const at = Date.UTC(2025, 2, 14, 9, 30, 0);
    // Act
    const line = emfLine(
      metricDimensions('reader', 'prod'),
      { [METRICS.ReaderLagSeconds]: 1.25, [METRICS.ReaderStallSeconds]: 0.5 },
      {},
      at,
    );
    // Assess
    expect(line).not.toContain('\n');
    expect(JSON.parse(line)).toEqual({
      _aws: {
        Timestamp: at,
        CloudWatchMetrics: [
          {
            Namespace: 'drugsync',
            Dimensions: [['Service', 'Stage']],
            Metrics: [
              { Name: 'ReaderLagSeconds', Unit: 'Seconds' },
              { Name: 'ReaderStallSeconds', Unit: 'Seconds' },
            ],
          },
        ],
      },
      Service: 'binlog-reader',
      Stage: 'prod',
      ReaderLagSeconds: 1.25,
      ReaderStallSeconds: 0.5,
    });
  });

  it('takes a unit given by the caller over the default one', () => {
    // Prepare
    const values = { ReaderLagSeconds: 0.4 };
    // Act
    const fields = emfFields(metricDimensions('reader', 'dev'), values, { ReaderLagSeconds: 'None' }, 0);
    // Assess
    const meta = (fields._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: unknown[] }[] })
      .CloudWatchMetrics[0];
    expect(meta?.Dimensions).toEqual([['Service', 'Stage']]);
    expect(meta?.Metrics).toEqual([{ Name: 'ReaderLagSeconds', Unit: 'None' }]);
    expect(fields.Stage).toBe('dev');
  });

  it('reads back what it wrote, lists of values included, and nothing from other log lines', () => {
    // Prepare
    const latencies = [112, 130, 95, 2_410];
    const line = emfLine(
      metricDimensions('embedder', 'prod'),
      { [METRICS.EmbedderRecordsApplied]: 480, [METRICS.EmbedderCommitToRedisLatency]: latencies },
      {},
      1_765_000_000_000,
    );
    // Act
    const back = parseEmfLine(line);
    const plain = parseEmfLine(JSON.stringify({ level: 'info', msg: 'embedder progress', records: 480 }));
    const text = parseEmfLine('INFO  embedder consumer started');
    // Assess
    expect(back).toEqual({
      timestamp: 1_765_000_000_000,
      dimensions: { Service: 'embedder', Stage: 'prod' },
      values: { EmbedderRecordsApplied: 480, EmbedderCommitToRedisLatency: latencies },
    });
    expect([plain, text]).toEqual([null, null]);
  });
});

describe('metric names', () => {
  it('keeps the namespace and the names the alarms and the dashboard watch, each with a unit', () => {
    // Prepare
    const names = Object.values(METRICS);
    // Act
    const emitted = Object.values(SERVICE_METRICS).flat();
    // Assess
    expect(METRIC_NAMESPACE).toBe('drugsync');
    expect(names).toEqual([
      'ReaderLagSeconds',
      'ReaderStallSeconds',
      'ReaderEventsPerSecond',
      'EmbedderStallSeconds',
      'EmbedderMillisBehindLatest',
      'EmbedderRecordsApplied',
      'EmbedderCommitToRedisLatency',
      'EmbedderEmbeddings',
      'EmbedderDeadLetters',
      'EmbedderStaleRefused',
      'VerifyDifferences',
    ]);
    // every name is emitted by exactly one service, with a unit CloudWatch knows
    expect([...emitted].sort()).toEqual([...names].sort());
    for (const n of names) expect(METRIC_UNITS[n]).toMatch(/^(Seconds|Milliseconds|Count|Count\/Second)$/);
  });

  it('names the service and the stage in the dimensions (local when no stage is set)', () => {
    // Act
    const reader = metricDimensions('reader');
    const embedder = metricDimensions('embedder', 'prod');
    // Assess
    expect(reader).toEqual({ Service: 'binlog-reader', Stage: 'local' });
    expect(embedder).toEqual({ Service: 'embedder', Stage: 'prod' });
  });
});

describe('boundedSample', () => {
  it('keeps every value when few enough, else evenly spaced order statistics with both ends', () => {
    // Prepare: 1,000 commit-to-Redis latencies of one batch (90-599 ms, and one 9 s outlier)
    const many = Array.from({ length: 1_000 }, (_, i) => 90 + ((i * 37) % 510));
    many[500] = 9_000;
    // Act
    const few = boundedSample([120, 95, 310]);
    const sample = boundedSample(many);
    // Assess
    expect(few).toEqual([120, 95, 310]);
    expect(sample).toHaveLength(EMF_MAX_VALUES);
    expect(sample[0]).toBe(Math.min(...many));
    expect(sample[sample.length - 1]).toBe(9_000);
    const sortedMany = [...many].sort((a, b) => a - b);
    expect(sample[50]).toBe(sortedMany[Math.round((50 * 999) / 99)]);
  });
});

describe('createMetricEmitter', () => {
  it('writes one EMF line per call when enabled, nothing when disabled or empty', () => {
    // Prepare
    const lines: string[] = [];
    const on = createMetricEmitter('verify', 'prod', { write: (l) => lines.push(l), enabled: true });
    const off = createMetricEmitter('verify', 'prod', { write: (l) => lines.push(l), enabled: false });
    // Act
    on.emit({ [METRICS.VerifyDifferences]: 3 }, 1_765_000_000_000);
    on.emit({});
    off.emit({ [METRICS.VerifyDifferences]: 3 });
    // Assess
    expect(lines).toHaveLength(1);
    expect(parseEmfLine(lines[0] as string)).toEqual({
      timestamp: 1_765_000_000_000,
      dimensions: { Service: 'verify', Stage: 'prod' },
      values: { VerifyDifferences: 3 },
    });
  });
});
