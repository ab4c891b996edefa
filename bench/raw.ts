/**
 * Raw rates of the parts, for the benchmarks' baselines (measured in the same run as the figure beside them).
 */
import { PutRecordsCommand } from '@aws-sdk/client-kinesis';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { compressRecord, encodeChangeEvent } from '../services/core/events.ts';
import type { ChangeEvent } from '../services/core/events.ts';
import { deleteSuiteStream, resetSuiteStream } from '../test/support/stack.ts';

type Env = Record<string, string | undefined>;

/** Change events as the binlog reader puts them on the stream (gzip-compressed unless EVENT_GZIP=false). */
export function encodedRecords(events: readonly ChangeEvent[], env: Env): Buffer[] {
  const gzip = env.EVENT_GZIP !== 'false';
  return events.map((e) => (gzip ? compressRecord(encodeChangeEvent(e)) : encodeChangeEvent(e)));
}

/**
 * kinesalite alone: `n` records cycling through `data`, 500 a PutRecords call, one call at a time, into a
 * 2-shard stream of their own (`<stream>-raw`, removed afterwards). Records refused are sent again.
 */
export async function rawPutRecordsRate(envIn: Env, data: readonly Buffer[], n: number): Promise<number> {
  const env: Env = { ...envIn, KINESIS_STREAM: `${envIn.KINESIS_STREAM}-raw` };
  await resetSuiteStream(env, 2);
  const k = createKinesis({
    KINESIS_ENDPOINT: env.KINESIS_ENDPOINT,
    AWS_REGION: env.AWS_REGION ?? 'us-east-1',
  });
  try {
    const t0 = Date.now();
    for (let i = 0; i < n; i += 500) {
      let records = Array.from({ length: Math.min(500, n - i) }, (_, j) => ({
        PartitionKey: String(i + j),
        Data: data[(i + j) % data.length] as Buffer,
      }));
      while (records.length > 0) {
        const out = await k.send(new PutRecordsCommand({ StreamName: env.KINESIS_STREAM, Records: records }));
        records = records.filter((_, j) => out.Records?.[j]?.ErrorCode);
      }
    }
    return n / ((Date.now() - t0) / 1000);
  } finally {
    k.destroy();
    await deleteSuiteStream(env);
  }
}
