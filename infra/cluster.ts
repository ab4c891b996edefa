/** The ECS cluster of every drugsync task, with Container Insights (the reader-not-running alarm needs it). */
import { Construct } from 'constructs';
import { EcsCluster } from '@cdktf/provider-aws/lib/ecs-cluster/index.js';
import type { Naming } from './config.ts';

export class Cluster extends Construct {
  readonly cluster: EcsCluster;
  constructor(scope: Construct, id: string, p: { naming: Naming }) {
    super(scope, id);
    this.cluster = new EcsCluster(this, 'cluster', {
      name: p.naming.name('cluster'),
      setting: [{ name: 'containerInsights', value: 'enabled' }],
      tags: p.naming.tags(),
    });
  }
}
