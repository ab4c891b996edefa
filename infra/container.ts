/**
 * Fargate task definitions of the drugsync image. Every task runs `node bin/drugsync.mjs <command>` with the
 * same environment contract as the services (services/core/config.ts); the Redis password is injected from
 * Secrets Manager by ECS (`secrets`), never a plain environment value, and the replication user's secret is
 * named by ARN (DB_SECRET_ARN) and read by the service itself.
 */
import { Construct } from 'constructs';
import { Fn, Token } from 'cdktf';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition/index.js';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

/** What every container of the pipeline needs to know. Values may be Terraform tokens. */
export interface ServiceEnvironment {
  stage: string;
  region: string;
  dbHost: string;
  dbPort: number;
  dbName: string;
  dbTable: string;
  dbSecretArn: string;
  redisHost: string;
  redisPort: number;
  redisTls: string;
  /** `valueFrom` of the Redis password: the secret ARN, or ARN:json-key:: */
  redisPasswordValueFrom: string;
  streamName: string;
  titanModelId: string;
  embeddingDimensions: number;
  embeddingConcurrency: number;
  embeddingRpm: number;
}

/**
 * A number (often a variable token) as a string value. `tostring(…)` rather than String(): cdktf's HCL
 * export renders a stringified number token inside jsonencode() as the literal text "var.x".
 */
const num = (n: number): string => Token.asString(Fn.tostring(n));

export function containerEnvironment(e: ServiceEnvironment): Record<string, string> {
  return {
    DRUGSYNC_STAGE: e.stage,
    AWS_REGION: e.region,
    DB_HOST: e.dbHost,
    DB_PORT: num(e.dbPort),
    DB_NAME: e.dbName,
    DB_TABLE: e.dbTable,
    DB_SECRET_ARN: e.dbSecretArn,
    REDIS_HOST: e.redisHost,
    REDIS_PORT: num(e.redisPort),
    REDIS_TLS: e.redisTls,
    KINESIS_STREAM: e.streamName,
    EMBEDDING_PROVIDER: 'titan',
    EMBEDDING_MODEL: e.titanModelId,
    EMBEDDING_DIMENSIONS: num(e.embeddingDimensions),
    EMBEDDING_CONCURRENCY: num(e.embeddingConcurrency),
    EMBEDDING_RPM: num(e.embeddingRpm),
    LOG_FORMAT: 'json',
    // the image is not a TTY: services log JSON lines; no .drugsync/stack.env inside the container
    DRUGSYNC_NO_ENV_FILE: '1',
  };
}

export interface TaskProps {
  naming: Naming;
  /** `drugsync-{stage}-{what}` is the family and the container name */
  what: string;
  image: string;
  command: string[];
  cpu: number;
  memory: number;
  cpuArchitecture: string;
  taskRoleArn: string;
  executionRoleArn: string;
  logGroupName: string;
  region: string;
  env: ServiceEnvironment;
  /** seconds ECS waits after SIGTERM before SIGKILL (Fargate max 120) */
  stopTimeout: number;
}

export const CONTAINER_NAME = 'drugsync';

export class ContainerTask extends Construct {
  readonly taskDefinition: EcsTaskDefinition;
  constructor(scope: Construct, id: string, p: TaskProps) {
    super(scope, id);
    const environment = Object.entries(containerEnvironment(p.env)).map(([name, value]) => ({ name, value }));
    const container = {
      name: CONTAINER_NAME,
      image: p.image,
      essential: true,
      entryPoint: ['node', 'bin/drugsync.mjs'],
      command: p.command,
      environment,
      secrets: [{ name: 'REDIS_PASSWORD', valueFrom: p.env.redisPasswordValueFrom }],
      stopTimeout: p.stopTimeout,
      readonlyRootFilesystem: false,
      logConfiguration: {
        logDriver: 'awslogs',
        options: {
          'awslogs-group': p.logGroupName,
          'awslogs-region': p.region,
          'awslogs-stream-prefix': p.what,
        },
      },
    };
    this.taskDefinition = new EcsTaskDefinition(this, 'task', {
      family: p.naming.name(p.what),
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(p.cpu),
      memory: String(p.memory),
      runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: p.cpuArchitecture },
      taskRoleArn: p.taskRoleArn,
      executionRoleArn: p.executionRoleArn,
      containerDefinitions: tfJson([container]),
      tags: p.naming.tags(),
    });
  }
}
