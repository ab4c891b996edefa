/**
 * The backfill as an on-demand ECS task definition (no service): `aws ecs run-task` it, once, or n times
 * with `--part i/n` command overrides for a parallel load (docs/deploy.md; the stack outputs the line).
 */
import { Construct } from 'constructs';
import { ContainerTask } from './container.ts';
import type { TaskProps } from './container.ts';

export class BackfillTask extends Construct {
  readonly task: ContainerTask;
  constructor(scope: Construct, id: string, p: Omit<TaskProps, 'what' | 'command' | 'stopTimeout'>) {
    super(scope, id);
    this.task = new ContainerTask(this, 'task', {
      ...p,
      what: 'backfill',
      command: ['backfill'],
      stopTimeout: 120,
    });
  }
}
