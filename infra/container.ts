/**
 * Fargate task definitions of the drugsync image (docs/image.md). The image's ENTRYPOINT runs the bundled
 * CLI (`node /app/dist/drugsync.mjs`); a task passes only the command. Every task has the same environment
 * contract as the services (services/core/config.ts): MySQL over TLS with the RDS CA bundle baked into the
 * image, a read-only root filesystem with one writable `/tmp` volume (DRUGSYNC_STATE_DIR lives there), an
 * init process so SIGTERM reaches node and zombies are reaped. No password is an environment value: both
 * secrets are named by ARN (DB_SECRET_ARN, REDIS_SECRET_ARN) and read by the services themselves, which
 * re-read them when a server refuses a rotated password (an ECS-injected value would be fixed until the
 * task restarts). Optional settings are always passed, with a value that means "unset" (REDIS_USERNAME
 * "default", REDIS_TLS_CA_FILE "system"): ECS drops an empty value, and Terraform would then see a change to
 * the task definition on every plan.
 */
import { Construct } from 'constructs';
import { Fn, Token } from 'cdktf';
import { EcsTaskDefinition } from '@cdktf/provider-aws/lib/ecs-task-definition/index.js';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

/** Where the image keeps the RDS CA bundle (image contract). */
export const RDS_CA_FILE = '/app/certs/rds-global-bundle.pem';
/** The only writable path of a task: a task-level volume mounted over the read-only root filesystem. */
export const TMP_MOUNT = '/tmp';
/** Every run-time file of the services (backfill spool, failure reports) goes under this directory. */
export const STATE_DIR = '/tmp/drugsync';
const TMP_VOLUME = 'tmp';

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
  /** REDIS_TLS_CA_FILE: a PEM file in the image, or "system" (Node's CAs) */
  redisTlsCaFile: string;
  /** REDIS_USERNAME: the ACL user, or "default" */
  redisUsername: string;
  /** REDIS_SECRET_ARN: the Redis password's secret ARN, or ARN:json-key:: (ECS valueFrom form) */
  redisSecretRef: string;
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
    // Aurora's cluster parameter group sets require_secure_transport = ON (infra/aurora.ts)
    DB_TLS: 'true',
    DB_TLS_CA_FILE: RDS_CA_FILE,
    REDIS_HOST: e.redisHost,
    REDIS_PORT: num(e.redisPort),
    REDIS_TLS: e.redisTls,
    REDIS_TLS_CA_FILE: e.redisTlsCaFile,
    REDIS_USERNAME: e.redisUsername,
    REDIS_SECRET_ARN: e.redisSecretRef,
    KINESIS_STREAM: e.streamName,
    EMBEDDING_PROVIDER: 'titan',
    EMBEDDING_MODEL: e.titanModelId,
    EMBEDDING_DIMENSIONS: num(e.embeddingDimensions),
    EMBEDDING_CONCURRENCY: num(e.embeddingConcurrency),
    EMBEDDING_RPM: num(e.embeddingRpm),
    LOG_FORMAT: 'json',
    // the root filesystem is read-only: state under the writable /tmp volume
    DRUGSYNC_STATE_DIR: STATE_DIR,
    // the image is not a TTY: services log JSON lines; no .drugsync/stack.env inside the container
    DRUGSYNC_NO_ENV_FILE: '1',
  };
}

export interface TaskProps {
  naming: Naming;
  /** `drugsync-{stage}-{what}` is the family and the container name */
  what: string;
  image: string;
  /** the CLI command and its arguments (the image's ENTRYPOINT runs the CLI) */
  command: string[];
  cpu: number;
  memory: number;
  cpuArchitecture: string;
  taskRoleArn: string;
  executionRoleArn: string;
  logGroupName: string;
  region: string;
  env: ServiceEnvironment;
  /** settings of this task only, added to the common environment (e.g. the embedder's DLQ_QUEUE_URL) */
  extraEnv?: Record<string, string>;
  /** seconds ECS waits after SIGTERM before SIGKILL (Fargate max 120) */
  stopTimeout: number;
}

export const CONTAINER_NAME = 'drugsync';

/** The one container of a task, in ECS's container-definition shape. */
export function containerDefinition(p: TaskProps): Record<string, unknown> {
  const env = { ...containerEnvironment(p.env), ...p.extraEnv };
  return {
    name: CONTAINER_NAME,
    image: p.image,
    essential: true,
    command: p.command,
    environment: Object.entries(env).map(([name, value]) => ({ name, value })),
    stopTimeout: p.stopTimeout,
    readonlyRootFilesystem: true,
    mountPoints: [{ sourceVolume: TMP_VOLUME, containerPath: TMP_MOUNT, readOnly: false }],
    // an init process as PID 1: SIGTERM reaches node, zombies are reaped
    linuxParameters: { initProcessEnabled: true },
    logConfiguration: {
      logDriver: 'awslogs',
      options: {
        'awslogs-group': p.logGroupName,
        'awslogs-region': p.region,
        'awslogs-stream-prefix': p.what,
      },
    },
  };
}

export class ContainerTask extends Construct {
  readonly taskDefinition: EcsTaskDefinition;
  constructor(scope: Construct, id: string, p: TaskProps) {
    super(scope, id);
    this.taskDefinition = new EcsTaskDefinition(this, 'task', {
      family: p.naming.name(p.what),
      requiresCompatibilities: ['FARGATE'],
      networkMode: 'awsvpc',
      cpu: String(p.cpu),
      memory: String(p.memory),
      runtimePlatform: { operatingSystemFamily: 'LINUX', cpuArchitecture: p.cpuArchitecture },
      taskRoleArn: p.taskRoleArn,
      executionRoleArn: p.executionRoleArn,
      // a Fargate bind-mount volume: task storage (ephemeral, 20 GiB by default), writable, not the image
      volume: [{ name: TMP_VOLUME }],
      containerDefinitions: tfJson([containerDefinition(p)]),
      tags: p.naming.tags(),
    });
  }
}
