/** One log group per workload, each with a retention (no group is left to grow forever). */
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group/index.js';
import type { Naming } from './config.ts';
import { checkovSkip } from './checkov.ts';

export class LogGroups extends Construct {
  readonly reader: CloudwatchLogGroup;
  readonly backfill: CloudwatchLogGroup;
  readonly verify: CloudwatchLogGroup;
  readonly embedder: CloudwatchLogGroup;
  constructor(scope: Construct, id: string, p: { naming: Naming; retentionDays: number }) {
    super(scope, id);
    const group = (what: string, name: string) => {
      const g = new CloudwatchLogGroup(this, what, {
        name,
        retentionInDays: p.retentionDays,
        tags: p.naming.tags(),
      });
      checkovSkip(
        g,
        {
          id: 'CKV_AWS_158',
          reason:
            'CloudWatch Logs encrypts every log group at rest with AWS-owned keys; a key of our own would add a key policy for the logs service and nothing to protect: these lines hold NDCs, binlog positions and counts, never a secret (the services never log one) and no patient data',
        },
        {
          id: 'CKV_AWS_338',
          reason:
            'operational logs of a replica, not an audit trail: MySQL stays the source of truth and verify compares anew; the stage default (STAGE_DEFAULTS in infra/config.ts) keeps weeks to months, and log_retention_days raises it to 365 or more where a policy asks for a year',
        },
      );
      return g;
    };
    this.reader = group('reader', `/ecs/${p.naming.name('reader')}`);
    this.backfill = group('backfill', `/ecs/${p.naming.name('backfill')}`);
    this.verify = group('verify', `/ecs/${p.naming.name('verify')}`);
    this.embedder = group('embedder', `/ecs/${p.naming.name('embedder')}`);
  }
}
