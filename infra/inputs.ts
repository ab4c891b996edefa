/**
 * Terraform variables: what already exists (network, Aurora, Redis, the image) and the knobs of the
 * pipeline. Every variable keeps its plain name in Terraform (`var.vpc_id`), so a tfvars file works with
 * the synthesized JSON, with `cdktf synth --hcl` output, and with plain Terraform after CDKTF.
 */
import { Construct } from 'constructs';
import { TerraformVariable, VariableType } from 'cdktf';
import type { TerraformVariableConfig } from 'cdktf';
import { DLQ_AGE_ALARM_MAX_SECONDS, ITERATOR_AGE_MAX_RETENTION_FRACTION } from './config.ts';
import type { Naming, StageDefaults } from './config.ts';

export class Inputs extends Construct {
  readonly stage: TerraformVariable;
  readonly region: TerraformVariable;
  readonly vpcId: TerraformVariable;
  readonly privateSubnetIds: TerraformVariable;

  readonly auroraEndpoint: TerraformVariable;
  readonly auroraClusterIdentifier: TerraformVariable;
  readonly auroraPort: TerraformVariable;
  readonly auroraSecretArn: TerraformVariable;
  readonly auroraSecurityGroupId: TerraformVariable;
  readonly auroraAttachParameterGroup: TerraformVariable;
  readonly auroraEnhancedBinlog: TerraformVariable;
  readonly dbName: TerraformVariable;
  readonly dbTable: TerraformVariable;

  readonly redisEndpoint: TerraformVariable;
  readonly redisPort: TerraformVariable;
  readonly redisTls: TerraformVariable;
  readonly redisAuthSecretArn: TerraformVariable;
  readonly redisAuthSecretJsonKey: TerraformVariable;
  readonly redisSecurityGroupId: TerraformVariable;

  readonly containerImage: TerraformVariable;
  readonly cpuArchitecture: TerraformVariable;
  readonly titanModelId: TerraformVariable;
  readonly embeddingDimensions: TerraformVariable;
  readonly embeddingConcurrency: TerraformVariable;
  readonly embeddingRpm: TerraformVariable;

  readonly kinesisStreamMode: TerraformVariable;
  readonly kinesisShardCount: TerraformVariable;
  readonly kinesisRetentionHours: TerraformVariable;
  readonly kinesisKmsKeyId: TerraformVariable;

  readonly readerCpu: TerraformVariable;
  readonly readerMemory: TerraformVariable;
  readonly embedderCpu: TerraformVariable;
  readonly embedderMemory: TerraformVariable;
  readonly backfillCpu: TerraformVariable;
  readonly backfillMemory: TerraformVariable;
  readonly verifyCpu: TerraformVariable;
  readonly verifyMemory: TerraformVariable;

  readonly logRetentionDays: TerraformVariable;
  readonly alarmSubscriptions: TerraformVariable;
  readonly readerStallAlarmSeconds: TerraformVariable;
  readonly embedderStallAlarmSeconds: TerraformVariable;
  readonly dlqAgeAlarmSeconds: TerraformVariable;
  readonly readerLagAlarmSeconds: TerraformVariable;
  readonly iteratorAgeAlarmMs: TerraformVariable;
  readonly verifyScheduleEnabled: TerraformVariable;
  readonly verifyScheduleExpression: TerraformVariable;

  constructor(scope: Construct, id: string, naming: Naming, d: StageDefaults) {
    super(scope, id);
    const v = (name: string, config: TerraformVariableConfig): TerraformVariable => {
      const variable = new TerraformVariable(this, name, config);
      variable.overrideLogicalId(name);
      return variable;
    };
    const str = (name: string, description: string, def?: string) =>
      v(name, { type: VariableType.STRING, description, ...(def !== undefined ? { default: def } : {}) });
    const num = (name: string, description: string, def: number, min: number, max: number) =>
      v(name, {
        type: VariableType.NUMBER,
        description,
        default: def,
        validation: [
          {
            condition: `\${var.${name} >= ${min} && var.${name} <= ${max}}`,
            errorMessage: `${name} must be between ${min} and ${max}.`,
          },
        ],
      });
    const bool = (name: string, description: string, def: boolean) =>
      v(name, { type: VariableType.BOOL, description, default: def });
    const arn = (name: string, description: string) =>
      v(name, {
        type: VariableType.STRING,
        description,
        validation: [
          {
            condition: `\${can(regex("^arn:aws[a-z-]*:secretsmanager:", var.${name}))}`,
            errorMessage: `${name} must be a Secrets Manager secret ARN (arn:aws:secretsmanager:…).`,
          },
        ],
      });

    this.stage = v('stage', {
      type: VariableType.STRING,
      description:
        'Stage of this stack. Fixed at synth time; it only guards against applying another stage’s tfvars here.',
      default: naming.stage,
      validation: [
        {
          condition: `\${var.stage == "${naming.stage}"}`,
          errorMessage: `This stack was synthesized for stage "${naming.stage}" (resource names drugsync-${naming.stage}-…): use its tfvars, or synthesize with STAGE=<stage>.`,
        },
      ],
    });
    this.region = str('region', 'AWS region of every resource.', 'us-east-1');
    this.vpcId = str('vpc_id', 'Existing VPC that holds Aurora and Redis.');
    this.privateSubnetIds = v('private_subnet_ids', {
      type: VariableType.LIST_STRING,
      description: 'Private subnets of the ECS tasks (need a route to AWS APIs: NAT or VPC endpoints).',
      validation: [
        {
          condition: '${length(var.private_subnet_ids) > 0}',
          errorMessage: 'private_subnet_ids needs at least one subnet.',
        },
      ],
    });

    this.auroraEndpoint = str('aurora_endpoint', 'Writer endpoint of the existing Aurora MySQL cluster.');
    this.auroraClusterIdentifier = str(
      'aurora_cluster_identifier',
      'Identifier of the existing Aurora cluster (used only when attach_aurora_parameter_group is true).',
    );
    this.auroraPort = num('aurora_port', 'Aurora MySQL port.', 3306, 1, 65535);
    this.auroraSecretArn = arn(
      'aurora_secret_arn',
      'Secrets Manager ARN of the replication user, JSON {"username","password"}.',
    );
    this.auroraSecurityGroupId = str(
      'aurora_security_group_id',
      'Security group of the Aurora cluster; an ingress rule from the drugsync tasks on aurora_port is added to it.',
    );
    this.auroraAttachParameterGroup = bool(
      'attach_aurora_parameter_group',
      'true: attach the drugsync binlog parameter group to the existing cluster at apply time (needs the AWS CLI). Only over a default group: if the cluster uses any other group the apply fails and prints the commands that add our parameters to it instead. A writer reboot is still yours to schedule. false (default): the group is only created.',
      false,
    );
    this.auroraEnhancedBinlog = bool(
      'aurora_enhanced_binlog',
      'Aurora MySQL 3.03.1+: enhanced binlog (aurora_enhanced_binlog=1, binlog_backup=0, binlog_replication_globaldb=0). Not with Backtrack or global-database binlog replication.',
      true,
    );
    this.dbName = str('db_name', 'Source database.', 'fdb');
    this.dbTable = str('db_table', 'Source table.', 'rndc14');

    this.redisEndpoint = str(
      'redis_endpoint',
      'Host name of the Redis (8.2+, RediSearch + RedisJSON) server.',
    );
    this.redisPort = num('redis_port', 'Redis port.', 6379, 1, 65535);
    this.redisTls = bool('redis_tls', 'Connect to Redis with TLS.', true);
    this.redisAuthSecretArn = arn('redis_auth_secret_arn', 'Secrets Manager ARN of the Redis password.');
    this.redisAuthSecretJsonKey = str(
      'redis_auth_secret_json_key',
      'If the Redis secret is JSON, the key holding the password (e.g. "password"); empty: the whole secret string is the password.',
      '',
    );
    this.redisSecurityGroupId = str(
      'redis_security_group_id',
      'Security group of the Redis server; an ingress rule from the drugsync tasks on redis_port is added to it.',
    );

    this.containerImage = v('container_image', {
      type: VariableType.STRING,
      description:
        'ECR image URI of drugsync (ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG or @sha256:…), built as docs/image.md describes; its ENTRYPOINT runs the CLI, the tasks pass the command.',
      validation: [
        {
          condition:
            '${can(regex("^[0-9]{12}[.]dkr[.]ecr[.][a-z0-9-]+[.]amazonaws[.]com([.]cn)?/[a-z0-9._/-]+[:@]", var.container_image))}',
          errorMessage:
            'container_image must be an ECR image URI with a tag or digest (the task pull permission is scoped to that repository).',
        },
      ],
    });
    this.cpuArchitecture = v('cpu_architecture', {
      type: VariableType.STRING,
      description: 'CPU architecture of the image (and the ECS tasks): X86_64 or ARM64.',
      default: 'X86_64',
      validation: [
        {
          condition: '${contains(["X86_64", "ARM64"], var.cpu_architecture)}',
          errorMessage: 'cpu_architecture must be X86_64 or ARM64.',
        },
      ],
    });
    this.titanModelId = str(
      'titan_model_id',
      'Bedrock model id of the embedding model (InvokeModel is granted on this model only).',
      'amazon.titan-embed-text-v2:0',
    );
    this.embeddingDimensions = v('embedding_dimensions', {
      type: VariableType.NUMBER,
      description: 'Vector dimensions (Titan Text Embeddings v2: 256, 512 or 1024).',
      default: 1024,
      validation: [
        {
          condition: '${contains([256, 512, 1024], var.embedding_dimensions)}',
          errorMessage: 'embedding_dimensions must be 256, 512 or 1024 for Titan Text Embeddings v2.',
        },
      ],
    });
    this.embeddingConcurrency = num(
      'embedding_concurrency',
      'Concurrent Bedrock calls per process.',
      8,
      1,
      512,
    );
    this.embeddingRpm = num('embedding_rpm', 'Bedrock requests per minute per process.', 6000, 1, 1_000_000);

    this.kinesisStreamMode = v('kinesis_stream_mode', {
      type: VariableType.STRING,
      description: 'ON_DEMAND (default) or PROVISIONED (then kinesis_shard_count applies).',
      default: 'ON_DEMAND',
      validation: [
        {
          condition: '${contains(["ON_DEMAND", "PROVISIONED"], var.kinesis_stream_mode)}',
          errorMessage: 'kinesis_stream_mode must be ON_DEMAND or PROVISIONED.',
        },
      ],
    });
    this.kinesisShardCount = num(
      'kinesis_shard_count',
      'Shards when kinesis_stream_mode is PROVISIONED.',
      2,
      1,
      10000,
    );
    this.kinesisRetentionHours = num(
      'kinesis_retention_hours',
      'Kinesis retention (hours): how long the embedder may be down before unread changes expire.',
      d.kinesisRetentionHours,
      24,
      8760,
    );
    this.kinesisKmsKeyId = str(
      'kinesis_kms_key_id',
      'KMS key of the stream. The default AWS-managed key needs no grants; a customer key needs kms:GenerateDataKey (reader) and kms:Decrypt (embedder) in its key policy.',
      'alias/aws/kinesis',
    );

    this.readerCpu = num('reader_cpu', 'Reader task CPU units.', 512, 256, 16384);
    this.readerMemory = num('reader_memory', 'Reader task memory (MiB).', 1024, 512, 122880);
    this.embedderCpu = num('embedder_cpu', 'Embedder task CPU units.', 1024, 256, 16384);
    this.embedderMemory = num('embedder_memory', 'Embedder task memory (MiB).', 2048, 512, 122880);
    this.backfillCpu = num('backfill_cpu', 'Backfill task CPU units.', 2048, 256, 16384);
    this.backfillMemory = num('backfill_memory', 'Backfill task memory (MiB).', 4096, 512, 122880);
    this.verifyCpu = num('verify_cpu', 'Verify task CPU units.', 1024, 256, 16384);
    this.verifyMemory = num('verify_memory', 'Verify task memory (MiB).', 2048, 512, 122880);

    this.logRetentionDays = v('log_retention_days', {
      type: VariableType.NUMBER,
      description: 'Retention of every drugsync log group (a CloudWatch-allowed value).',
      default: d.logRetentionDays,
      validation: [
        {
          condition:
            '${contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)}',
          errorMessage:
            'log_retention_days must be a value CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, …).',
        },
      ],
    });
    this.alarmSubscriptions = alarmSubscriptionsVariable(v, naming);
    this.readerStallAlarmSeconds = num(
      'reader_stall_alarm_seconds',
      'Alarm when the reader has made no progress this long although the binlog is ahead of it, or cannot tell (ReaderStallSeconds; a reader that emits nothing alarms too).',
      d.readerStallAlarmSeconds,
      30,
      86_400,
    );
    this.embedderStallAlarmSeconds = num(
      'embedder_stall_alarm_seconds',
      'Alarm when the embedder has applied nothing and not polled a shard at its tip for this long (EmbedderStallSeconds; an embedder that emits nothing alarms too).',
      d.embedderStallAlarmSeconds,
      30,
      86_400,
    );
    this.dlqAgeAlarmSeconds = num(
      'dlq_age_alarm_seconds',
      'Alarm when the oldest dead letter is this old (seconds): it was notified and nobody replayed it. At most 7 days: letters expire after 14.',
      d.dlqAgeAlarmSeconds,
      300,
      DLQ_AGE_ALARM_MAX_SECONDS,
    );
    this.readerLagAlarmSeconds = num(
      'reader_lag_alarm_seconds',
      'Alarm when the reader is this far behind the binlog.',
      d.readerLagAlarmSeconds,
      1,
      86_400,
    );
    // Someone must be woken while most of the stream's retention is left to fix the embedder before
    // unread records expire. (A validation naming another variable: Terraform ≥ 1.9.)
    const maxAgePerHour = 3_600_000 * ITERATOR_AGE_MAX_RETENTION_FRACTION;
    this.iteratorAgeAlarmMs = v('iterator_age_alarm_ms', {
      type: VariableType.NUMBER,
      description: `Alarm when the oldest unread Kinesis record is this old (ms); at most ${ITERATOR_AGE_MAX_RETENTION_FRACTION * 100} % of kinesis_retention_hours.`,
      default: d.iteratorAgeAlarmMs,
      validation: [
        {
          condition: '${var.iterator_age_alarm_ms >= 1000}',
          errorMessage: 'iterator_age_alarm_ms must be at least 1000.',
        },
        {
          condition: `\${var.iterator_age_alarm_ms <= var.kinesis_retention_hours * ${maxAgePerHour}}`,
          errorMessage: `iterator_age_alarm_ms must be at most ${ITERATOR_AGE_MAX_RETENTION_FRACTION * 100} % of kinesis_retention_hours: the alarm has to fire while most of the stream's retention is left.`,
        },
      ],
    });
    this.verifyScheduleEnabled = bool(
      'verify_schedule_enabled',
      'Run `drugsync verify` on a schedule (EventBridge → ECS task) to catch drift.',
      d.verifyScheduleEnabled,
    );
    this.verifyScheduleExpression = str(
      'verify_schedule_expression',
      'EventBridge schedule of the verify task.',
      'rate(1 day)',
    );
  }
}

/** One e-mail or HTTPS endpoint the alarm topic notifies. */
export const ALARM_SUBSCRIPTION_PROTOCOLS = ['email', 'https'] as const;

/**
 * `alarm_subscriptions`: who the alarm topic notifies. Required with at least one entry in prod (an alarm
 * nobody receives is the silent failure this stack exists to prevent); optional in dev, where the apply
 * output `alarm_recipients` then says NOBODY.
 */
function alarmSubscriptionsVariable(
  v: (name: string, config: TerraformVariableConfig) => TerraformVariable,
  naming: Naming,
): TerraformVariable {
  const name = 'alarm_subscriptions';
  const required = naming.stage === 'prod';
  const protocols = ALARM_SUBSCRIPTION_PROTOCOLS.map((p) => `"${p}"`).join(', ');
  return v(name, {
    type: VariableType.list(
      VariableType.object({ protocol: VariableType.STRING, endpoint: VariableType.STRING }),
    ),
    description:
      'Who receives the alarms: a list of {protocol = "email" | "https", endpoint = address or https:// URL}. ' +
      'E-mail recipients confirm the link AWS sends them; an HTTPS endpoint (pager, chat webhook) must confirm the subscription itself. ' +
      (required ? 'Required in prod (at least one).' : 'Optional in dev (default: nobody).'),
    ...(required ? {} : { default: [] }),
    validation: [
      ...(required
        ? [
            {
              condition: `\${length(var.${name}) > 0}`,
              errorMessage: `${name} needs at least one e-mail or HTTPS endpoint in prod: an alarm nobody receives is no alarm.`,
            },
          ]
        : []),
      {
        condition: `\${alltrue([for s in var.${name} : contains([${protocols}], s.protocol)])}`,
        errorMessage: `every ${name} entry needs protocol "email" or "https".`,
      },
      {
        condition: `\${alltrue([for s in var.${name} : s.protocol != "https" || startswith(s.endpoint, "https://")])}`,
        errorMessage: `an https entry of ${name} needs an https:// URL as its endpoint.`,
      },
      {
        condition: `\${alltrue([for s in var.${name} : s.protocol != "email" || can(regex("^[^@ ]+@[^@ ]+$", s.endpoint))])}`,
        errorMessage: `an email entry of ${name} needs an e-mail address as its endpoint.`,
      },
    ],
  });
}
