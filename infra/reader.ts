/**
 * The binlog reader as an ECS Fargate service: exactly one task, and a deployment that never runs two
 * readers at once (minimum healthy 0 %, maximum 100 %: the old task stops before the new one starts;
 * the reader's Redis lease is the second guard). SIGTERM gets the full 120 s to flush and checkpoint.
 */
import { Construct } from 'constructs';
import { EcsService } from '@cdktf/provider-aws/lib/ecs-service/index.js';
import { ContainerTask } from './container.ts';
import type { TaskProps } from './container.ts';

export interface ReaderProps extends Omit<TaskProps, 'what' | 'command' | 'stopTimeout'> {
  clusterArn: string;
  subnetIds: string[];
  securityGroupId: string;
}

export class ReaderService extends Construct {
  readonly task: ContainerTask;
  readonly service: EcsService;
  constructor(scope: Construct, id: string, p: ReaderProps) {
    super(scope, id);
    this.task = new ContainerTask(this, 'task', {
      ...p,
      what: 'reader',
      command: ['binlog-reader'],
      stopTimeout: 120,
    });
    this.service = new EcsService(this, 'service', {
      name: p.naming.name('reader'),
      cluster: p.clusterArn,
      taskDefinition: this.task.taskDefinition.arn,
      launchType: 'FARGATE',
      platformVersion: 'LATEST',
      desiredCount: 1,
      deploymentMinimumHealthyPercent: 0,
      deploymentMaximumPercent: 100,
      deploymentCircuitBreaker: { enable: true, rollback: true },
      networkConfiguration: {
        subnets: p.subnetIds,
        securityGroups: [p.securityGroupId],
        assignPublicIp: false,
      },
      propagateTags: 'SERVICE',
      enableEcsManagedTags: true,
      tags: p.naming.tags(),
    });
  }
}
