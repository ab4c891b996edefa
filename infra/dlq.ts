/**
 * Dead letters of the embedder, one encrypted SQS queue for both routes (documented in docs/deploy.md):
 * - poison records the handler itself dead-letters (DLQ_QUEUE_URL; body = the letter with the record bytes),
 * - batches the event source mapping gives up on after its retries or record age (on-failure destination;
 *   body = Lambda's invocation record naming the shard and sequence range, to re-read from the stream).
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
      // SSE-SQS: encrypted at rest with no key grants needed by the Lambda or the ESM destination
      sqsManagedSseEnabled: true,
      messageRetentionSeconds: 1_209_600, // 14 days, SQS's maximum: time to look and replay
      visibilityTimeoutSeconds: 60, // `drugsync dlq list` receives with a 60 s visibility timeout
      tags: p.naming.tags(),
    });
  }
}
