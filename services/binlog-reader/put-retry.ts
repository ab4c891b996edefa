/**
 * One PutRecords batch of the publisher (publisher.ts), sent until every record is acknowledged. A partially
 * failed call is retried with the failed records AND every later record of the same partition key from that
 * call (Kinesis may have accepted a later record of a key whose earlier one failed; sending both again restores
 * "the last record of a key is its newest"). Waits between retries back off; Kinesis failing for longer than
 * `maxOutageMs` fails the publisher (the reader restarts from its checkpoint with backoff).
 */
import { backoffDelay, sleep } from '../core/backoff.ts';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { OutRecord } from '../core/events.ts';
import type { Logger } from '../core/log.ts';
import type { KinesisSink } from './kinesis-sink.ts';

/** Waits between PutRecords retries: 100 ms doubling to 5 s, each between half and all of that. */
const PUT_RETRY_BACKOFF = { baseMs: 100, maxMs: 5_000, jitter: 'half' } as const;

/** What the put loop counts (part of the publisher's stats). */
export interface PutStats {
  retriedRecords: number;
  failedCalls: number;
  lastPutMs: number;
  putMsTotal: number;
}

/** The publisher as its put loop sees it. */
export interface PutContext {
  sink: KinesisSink;
  stream: string;
  maxOutageMs: number;
  log: Logger;
  stats: PutStats;
  /** false once the publisher is closed or failed: the loop stops */
  active(): boolean;
  /** a call ended, acknowledged or failed */
  ended(): void;
  fail(e: DrugsyncError): void;
}

/** Sends `batch` until every record is acknowledged, the publisher stops, or the outage lasts too long. */
export async function putWithRetry(batch: OutRecord[], context: PutContext): Promise<void> {
  let pending = batch;
  let attempt = 0;
  let failingSince: number | null = null;
  while (pending.length > 0 && context.active()) {
    const t0 = performance.now();
    let failedIdx: Set<number>;
    let reason = '';
    try {
      const res = await context.sink.putRecords(pending);
      failedIdx = new Set(res.failed.map((f) => f.index));
      if (res.failed.length) {
        const codes = [...new Set(res.failed.map((f) => f.code))].join(',');
        reason = `${res.failed.length} of ${pending.length} records refused (${codes})`;
      }
    } catch (e) {
      failedIdx = new Set(pending.map((_, i) => i));
      reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      context.stats.failedCalls += 1;
    }
    const ms = performance.now() - t0;
    context.ended();
    context.stats.lastPutMs = ms;
    context.stats.putMsTotal += ms;
    if (failedIdx.size === 0) return;
    const retry = retryRecords(pending, failedIdx);
    context.stats.retriedRecords += retry.length;
    failingSince ??= Date.now();
    if (Date.now() - failingSince > context.maxOutageMs) {
      context.fail(outageError(context.stream, Date.now() - failingSince, reason, retry.length));
      return;
    }
    const delay = backoffDelay(attempt, PUT_RETRY_BACKOFF);
    attempt += 1;
    (attempt === 1 || attempt % 10 === 0 ? context.log.warn : context.log.debug)(
      'PutRecords failed, retrying',
      {
        stream: context.stream,
        reason,
        retry_records: retry.length,
        attempt,
        delay_ms: Math.round(delay),
      },
    );
    await sleep(delay);
    pending = retry;
  }
}

/** The failed records and every later record of the same partition key, in order. */
function retryRecords<T extends OutRecord>(pending: readonly T[], failedIdx: ReadonlySet<number>): T[] {
  const failedKeys = new Set<string>();
  const retry: T[] = [];
  pending.forEach((r, i) => {
    const key = r.partitionKey;
    if (failedIdx.has(i) || failedKeys.has(key)) {
      failedKeys.add(key);
      retry.push(r);
    }
  });
  return retry;
}

function outageError(stream: string, failingMs: number, reason: string, pending: number): DrugsyncError {
  return new DrugsyncError(
    'KINESIS_PUT_FAILED',
    `Kinesis PutRecords kept failing for ${Math.round(failingMs / 1000)} s: ${reason}`,
    {
      context: { stream, pending },
      retryable: true,
      remedy: 'check the stream exists and is reachable (KINESIS_ENDPOINT / AWS credentials / throughput)',
    },
  );
}

/** The put loop itself threw (a failed call is retried inside it, not here): the publisher fails with this. */
export function kinesisFailure(e: unknown, what: string, stream: string): DrugsyncError {
  return wrapError(e, 'KINESIS_PUT_FAILED', `Kinesis ${what} failed`, {
    context: { stream },
    retryable: true,
    remedy: 'check the stream exists and is reachable (KINESIS_ENDPOINT / AWS credentials)',
  });
}
