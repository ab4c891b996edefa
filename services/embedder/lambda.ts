/**
 * AWS Lambda driver: Kinesis event source mapping with ReportBatchItemFailures.
 *
 * Lambda hands one shard's records, in order. We apply them with `applyBatch` and report
 * `batchItemFailures = [{ itemIdentifier: <sequence number of the shard's first failed record> }]`, so
 * Lambda retries from there and no later record of that shard is skipped (records before it that were
 * applied are simply refused as stale or unchanged on the retry). Poison records are dead-lettered and
 * count as done. A Redis outage throws: the whole batch is retried, nothing is dead-lettered.
 *
 * Metrics go to the log in CloudWatch embedded-metric format (no extra API calls). Configuration is
 * decoded once per cold start. A scheduled invocation (EventBridge, no Records) only runs maintenance:
 * the sweep of a pending truncate once the reload has settled.
 */
import type { KinesisStreamBatchResponse, KinesisStreamEvent } from 'aws-lambda';
import { createLogger } from '../core/log.ts';
import type { Logger } from '../core/log.ts';
import { applyBatch, firstFailurePerShard, runMaintenance } from './apply.ts';
import { createEmbedderRuntime, decodeEmbedderConfig } from './runtime.ts';
import type { EmbedderRuntime, RuntimeOverrides } from './runtime.ts';
import type { BatchStats, StreamRecord } from './types.ts';
import type { Env } from '../core/config.ts';

const NAMESPACE = 'drugsync';

/** Lambda's Kinesis record → the core's record. */
export function fromLambdaEvent(event: KinesisStreamEvent): StreamRecord[] {
  return (event.Records ?? []).map((r) => ({
    sequenceNumber: r.kinesis.sequenceNumber,
    partitionKey: r.kinesis.partitionKey,
    shardId: r.eventID.split(':')[0] ?? 'unknown',
    data: Buffer.from(r.kinesis.data, 'base64'),
    approximateArrivalTimestamp: Math.round(r.kinesis.approximateArrivalTimestamp * 1000),
  }));
}

/** One CloudWatch EMF log line for a batch. */
export function emfLine(stats: BatchStats, dims: Record<string, string>, time = Date.now()): string {
  const metrics: [string, number, string][] = [
    ['Records', stats.records, 'Count'],
    ['DocumentsUpserted', stats.upserted, 'Count'],
    ['DocumentsFieldsUpdated', stats.fieldsUpdated, 'Count'],
    ['DocumentsUnchanged', stats.unchanged, 'Count'],
    ['DocumentsDeleted', stats.deleted, 'Count'],
    ['StaleWritesRefused', stats.staleRefused, 'Count'],
    ['EmbeddingsRequested', stats.embeddingsRequested, 'Count'],
    ['EmbeddingCacheHits', stats.cacheHits, 'Count'],
    ['DeadLettered', stats.deadLettered, 'Count'],
    ['FailedRecords', stats.failed, 'Count'],
    ['TruncateEvents', stats.truncates, 'Count'],
    ['ResyncEvents', stats.resyncs, 'Count'],
    ['BatchDuration', stats.durationMs, 'Milliseconds'],
  ];
  const values: Record<string, number | number[]> = {};
  for (const [name, v] of metrics) values[name] = v;
  // EMF takes arrays of values: CloudWatch computes p50/p99 over every latency sample
  values.EndToEndLatency = stats.latencyMs;
  return JSON.stringify({
    _aws: {
      Timestamp: time,
      CloudWatchMetrics: [
        {
          Namespace: NAMESPACE,
          Dimensions: [Object.keys(dims)],
          Metrics: [
            ...metrics.map(([Name, , Unit]) => ({ Name, Unit })),
            { Name: 'EndToEndLatency', Unit: 'Milliseconds' },
          ],
        },
      ],
    },
    ...dims,
    ...values,
    latency_p50_ms: stats.latencyP50Ms,
    latency_p99_ms: stats.latencyP99Ms,
  });
}

export interface HandlerOptions {
  env?: Env;
  overrides?: RuntimeOverrides;
  log?: Logger;
  /** where EMF lines go (stdout in Lambda) */
  writeMetrics?: (line: string) => void;
}

/** Builds a handler; the module's `handler` is this with the process environment. */
export function createHandler(
  opts: HandlerOptions = {},
): (event: KinesisStreamEvent) => Promise<KinesisStreamBatchResponse> {
  const log = opts.log ?? createLogger({ service: 'embedder', driver: 'lambda' });
  const writeMetrics = opts.writeMetrics ?? ((line: string) => process.stdout.write(line + '\n'));
  let runtime: Promise<EmbedderRuntime> | null = null;
  const getRuntime = () => {
    // decoded once per cold start; a failed start is retried on the next invocation
    runtime ??= createEmbedderRuntime(decodeEmbedderConfig(opts.env), log, opts.overrides).catch((e) => {
      runtime = null;
      throw e;
    });
    return runtime;
  };

  return async (event) => {
    const rt = await getRuntime();
    const records = fromLambdaEvent(event);
    const batchItemFailures: KinesisStreamBatchResponse['batchItemFailures'] = [];
    if (records.length > 0) {
      const { results, stats } = await applyBatch(records, rt.deps);
      for (const r of firstFailurePerShard(results).values()) {
        batchItemFailures.push({ itemIdentifier: r.sequenceNumber });
        log.warn('records of this shard will be retried from the first failed one', {
          shard: r.shardId,
          sequence_number: r.sequenceNumber,
          ndc: r.ndc,
          error: r.error,
        });
      }
      const shard = records[0]?.shardId ?? 'unknown';
      writeMetrics(emfLine(stats, { Service: 'embedder', Stream: rt.config.KINESIS_STREAM }));
      log.debug('batch applied', { shard, ...stats, latencyMs: undefined });
    }
    await runMaintenance(rt.deps);
    return { batchItemFailures };
  };
}

export const handler = createHandler();
