/** One log group per workload, each with a retention (no group is left to grow forever). */
import { Construct } from 'constructs';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group/index.js';
import type { Naming } from './config.ts';

export class LogGroups extends Construct {
  readonly reader: CloudwatchLogGroup;
  readonly backfill: CloudwatchLogGroup;
  readonly verify: CloudwatchLogGroup;
  readonly embedder: CloudwatchLogGroup;
  constructor(scope: Construct, id: string, p: { naming: Naming; retentionDays: number }) {
    super(scope, id);
    const group = (what: string, name: string) =>
      new CloudwatchLogGroup(this, what, { name, retentionInDays: p.retentionDays, tags: p.naming.tags() });
    this.reader = group('reader', `/ecs/${p.naming.name('reader')}`);
    this.backfill = group('backfill', `/ecs/${p.naming.name('backfill')}`);
    this.verify = group('verify', `/ecs/${p.naming.name('verify')}`);
    this.embedder = group('embedder', `/ecs/${p.naming.name('embedder')}`);
  }
}
