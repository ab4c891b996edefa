/**
 * A long-running worker as an ECS Fargate service: exactly one task, and a deployment that never runs two
 * at once (minimum healthy 0 %, maximum 100 %: the old task stops before the new one starts; each worker's
 * Redis lease is the second guard). SIGTERM gets the full 120 s to finish its batch and checkpoint.
 * The binlog reader and the embedder are both this (infra/reader.ts, infra/embedder.ts).
 */
import { Construct } from 'constructs';
import { EcsService } from '@cdktf/provider-aws/lib/ecs-service/index.js';
import { ContainerTask } from './container.ts';
import type { TaskProps } from './container.ts';

export interface SingletonServiceProps extends Omit<TaskProps, 'stopTimeout'> {
  clusterArn: string;
  subnetIds: string[];
  securityGroupId: string;
}

/** What a concrete service (reader, embedder) leaves to its caller. */
export type WorkerServiceProps = Omit<SingletonServiceProps, 'what' | 'command'>;

export class SingletonService extends Construct {
  readonly task: ContainerTask;
  readonly service: EcsService;
  constructor(scope: Construct, id: string, p: SingletonServiceProps) {
    super(scope, id);
    this.task = new ContainerTask(this, 'task', { ...p, stopTimeout: 120 });
    this.service = new EcsService(this, 'service', {
      name: p.naming.name(p.what),
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
