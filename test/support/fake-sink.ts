/** A Kinesis sink fake for the binlog reader's publisher: refuses chosen records, keeps the rest in order. */
import type { KinesisSink, PutResult } from '../../services/binlog-reader/kinesis-sink.ts';
import type { OutRecord } from '../../services/core/events.ts';

/** A Kinesis fake that refuses chosen records, keeping what it accepted in order. */
export function fakeSink(refuse: (r: OutRecord, call: number) => boolean) {
  const accepted: OutRecord[] = [];
  let call = 0;
  const sink: KinesisSink = {
    async putRecords(records): Promise<PutResult> {
      call += 1;
      const failed: PutResult['failed'] = [];
      records.forEach((r, index) => {
        if (refuse(r, call))
          failed.push({ index, code: 'ProvisionedThroughputExceededException', message: 'slow down' });
        else accepted.push(r);
      });
      return { failed };
    },
  };
  return { sink, accepted };
}
