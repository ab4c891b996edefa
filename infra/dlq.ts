/**
 * Dead letters of the embedder: one encrypted SQS queue (DLQ_QUEUE_URL) that receives only the records
 * the embedder itself dead-letters (poison records; body = the letter with the record bytes and the
 * error). Nothing else writes to it: no platform retry budget gives up on a batch. Messages an older
 * deployment's Lambda event source mapping left there (invocation records naming a shard and sequence
 * range) are still read and replayed by `drugsync dlq list/replay` (docs/deploy.md).
 */
import { Construct } from 'constructs';
import { SqsQueue } from '@cdktf/provider-aws/lib/sqs-queue/index.js';
import type { Naming } from './config.ts';

export class DeadLetterQueue extends Construct {
  readonly queue: SqsQueue;
  constructor(scope: Construct, id: string, p: { naming: Naming }) {
    super(scope, id);
    this.queue = new SqsQueue(this, 'queue', {
      name: p.naming.name('embedder-dlq'),
      // SSE-SQS: encrypted at rest with no key grants needed by the embedder
      sqsManagedSseEnabled: true,
      messageRetentionSeconds: 1_209_600, // 14 days, SQS's maximum: time to look and replay
      visibilityTimeoutSeconds: 60, // `drugsync dlq list` receives with a 60 s visibility timeout
      tags: p.naming.tags(),
    });
  }
}
