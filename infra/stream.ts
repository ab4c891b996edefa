/**
 * The change stream: Kinesis, on-demand by default (provisioned shards as an option), KMS-encrypted,
 * retention configurable (default 48 h: the embedder may be down that long without losing a change).
 */
import { Construct } from 'constructs';
import { Fn, Op, Token } from 'cdktf';
import { KinesisStream } from '@cdktf/provider-aws/lib/kinesis-stream/index.js';
import type { Naming } from './config.ts';

export interface ChangeStreamProps {
  naming: Naming;
  mode: string;
  shardCount: number;
  retentionHours: number;
  kmsKeyId: string;
}

export class ChangeStream extends Construct {
  readonly stream: KinesisStream;
  constructor(scope: Construct, id: string, p: ChangeStreamProps) {
    super(scope, id);
    this.stream = new KinesisStream(this, 'stream', {
      name: p.naming.name('changes'),
      streamModeDetails: { streamMode: p.mode },
      // shard_count must be null in ON_DEMAND mode
      shardCount: Token.asNumber(
        Fn.conditional(Op.eq(p.mode, 'PROVISIONED'), p.shardCount, Token.nullValue()),
      ),
      retentionPeriod: p.retentionHours,
      encryptionType: 'KMS',
      kmsKeyId: p.kmsKeyId,
      tags: p.naming.tags(),
    });
  }
}
