/**
 * `drugsync verify` as a task definition, and optionally on a schedule (EventBridge → ECS RunTask) so drift
 * between MySQL and Redis is found without anyone looking. EventBridge gets its own role: RunTask on this
 * task definition in this cluster only, and PassRole on the verify task's two roles only.
 */
import { Construct } from 'constructs';
import { Fn, Token } from 'cdktf';
import type { IResolvable } from 'cdktf';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import { ContainerTask } from './container.ts';
import type { TaskProps } from './container.ts';
import { ServiceRole } from './iam.ts';

export interface VerifyProps extends Omit<TaskProps, 'what' | 'command' | 'stopTimeout'> {
  accountId: string;
  clusterArn: string;
  subnetIds: string[];
  securityGroupId: string;
  scheduleEnabled: IResolvable;
  scheduleExpression: string;
}

export class ScheduledVerify extends Construct {
  readonly task: ContainerTask;
  readonly rule: CloudwatchEventRule;
  readonly role: ServiceRole;
  constructor(scope: Construct, id: string, p: VerifyProps) {
    super(scope, id);
    this.task = new ContainerTask(this, 'task', {
      ...p,
      what: 'verify',
      command: ['verify', '--json'],
      stopTimeout: 30,
    });
    this.role = new ServiceRole(this, 'events-role', {
      naming: p.naming,
      accountId: p.accountId,
      what: 'verify-schedule',
      description: 'EventBridge: run the drugsync verify task on its schedule',
      service: 'events.amazonaws.com',
      statements: [
        {
          sid: 'RunVerifyTask',
          actions: ['ecs:RunTask'],
          resources: [this.task.taskDefinition.arn],
          condition: { ArnEquals: { 'ecs:cluster': p.clusterArn } },
        },
        {
          sid: 'PassVerifyRoles',
          actions: ['iam:PassRole'],
          resources: [p.taskRoleArn, p.executionRoleArn],
          condition: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
        },
      ],
    });
    this.rule = new CloudwatchEventRule(this, 'schedule', {
      name: p.naming.name('verify'),
      description: 'drugsync verify: compare Redis with MySQL (exit 1 and log the differences on drift)',
      scheduleExpression: p.scheduleExpression,
      state: Token.asString(Fn.conditional(p.scheduleEnabled, 'ENABLED', 'DISABLED')),
      tags: p.naming.tags(),
    });
    new CloudwatchEventTarget(this, 'target', {
      rule: this.rule.name,
      targetId: 'verify-task',
      arn: p.clusterArn,
      roleArn: this.role.arn,
      ecsTarget: {
        taskDefinitionArn: this.task.taskDefinition.arn,
        taskCount: 1,
        launchType: 'FARGATE',
        platformVersion: 'LATEST',
        networkConfiguration: {
          subnets: p.subnetIds,
          securityGroups: [p.securityGroupId],
          assignPublicIp: false,
        },
        // no propagateTags: tagging at launch would need ecs:TagResource for EventBridge too
      },
      retryPolicy: { maximumRetryAttempts: 2, maximumEventAgeInSeconds: 3600 },
    });
  }
}
