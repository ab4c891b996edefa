/**
 * The on-failure record a Lambda Kinesis event source mapping sends to its on-failure destination when it
 * gives up on a batch (the documented shape: requestContext, responseContext, KinesisBatchInfo), as the
 * dead-letter queue of an earlier deployment holds them.
 */
import { randomUUID } from 'node:crypto';

export function lambdaOnFailure(o: {
  shardId: string;
  start: string;
  end: string;
  batchSize: number;
  streamArn: string;
  condition?: string;
}) {
  return {
    requestContext: {
      requestId: randomUUID(),
      functionArn: 'arn:aws:lambda:us-east-1:123456789012:function:drugsync-prod-embedder',
      condition: o.condition ?? 'RetryAttemptsExhausted',
      approximateInvokeCount: 4,
    },
    responseContext: { statusCode: 200, executedVersion: '$LATEST', functionError: 'Unhandled' },
    version: '1.0',
    timestamp: '2026-11-14T00:38:06.021Z',
    KinesisBatchInfo: {
      shardId: o.shardId,
      startSequenceNumber: o.start,
      endSequenceNumber: o.end,
      approximateArrivalOfFirstRecord: '2026-11-14T00:38:04.835Z',
      approximateArrivalOfLastRecord: '2026-11-14T00:38:05.580Z',
      batchSize: o.batchSize,
      streamArn: o.streamArn,
    },
  };
}
