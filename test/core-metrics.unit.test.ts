import { describe, expect, it } from 'vitest';
import {
  emfFields,
  emfLine,
  METRIC_NAMESPACE,
  METRICS,
  READER_METRIC_DIMENSIONS,
} from '../services/core/metrics.ts';

describe('emfLine', () => {
  it('is one CloudWatch EMF JSON line declaring the namespace, dimensions, metrics and units', () => {
    // Prepare
    const at = Date.UTC(2025, 2, 14, 9, 30, 0);
    // Act
    const line = emfLine(
      READER_METRIC_DIMENSIONS,
      { [METRICS.ReaderLagSeconds]: 1.25, [METRICS.ReaderEventsPerSecond]: 4210.5 },
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
            Dimensions: [['Service']],
            Metrics: [
              { Name: 'ReaderLagSeconds', Unit: 'Seconds' },
              { Name: 'ReaderEventsPerSecond', Unit: 'Count/Second' },
            ],
          },
        ],
      },
      Service: 'binlog-reader',
      ReaderLagSeconds: 1.25,
      ReaderEventsPerSecond: 4210.5,
    });
  });

  it('takes a unit given by the caller over the default one', () => {
    // Prepare
    const values = { ReaderLagSeconds: 0.4 };
    // Act
    const fields = emfFields(
      { Service: 'binlog-reader', Stage: 'prod' },
      values,
      { ReaderLagSeconds: 'None' },
      0,
    );
    // Assess
    const meta = (fields._aws as { CloudWatchMetrics: { Dimensions: string[][]; Metrics: unknown[] }[] })
      .CloudWatchMetrics[0];
    expect(meta?.Dimensions).toEqual([['Service', 'Stage']]);
    expect(meta?.Metrics).toEqual([{ Name: 'ReaderLagSeconds', Unit: 'None' }]);
    expect(fields.Stage).toBe('prod');
  });

  it('keeps the namespace and names the reader has always published (alarms watch them)', () => {
    // Prepare
    const names = Object.values(METRICS);
    // Act
    const namespace = METRIC_NAMESPACE;
    // Assess
    expect(namespace).toBe('drugsync');
    expect(names).toEqual(['ReaderLagSeconds', 'ReaderEventsPerSecond']);
  });
});
