/**
 * One stage of drugsync on AWS: composes the constructs of infra/, one per concern, in dependency order.
 * Stack id and every resource name carry the stage (`drugsync-{stage}-…`).
 */
import type { Construct } from 'constructs';
import {
  Fn,
  LocalBackend,
  Op,
  S3Backend,
  TerraformLocal,
  TerraformOutput,
  TerraformStack,
  Token,
} from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider/index.js';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity/index.js';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition/index.js';
import { Naming, STAGE_DEFAULTS } from './config.ts';
import type { Stage } from './config.ts';
import { Inputs } from './inputs.ts';
import { Network } from './network.ts';
import { AuroraBinlogSettings } from './aurora.ts';
import { ChangeStream } from './stream.ts';
import { DeadLetterQueue } from './dlq.ts';
import { LogGroups } from './logs.ts';
import { ServiceRoles } from './iam.ts';
import { Cluster } from './cluster.ts';
import type { ServiceEnvironment } from './container.ts';
import { ReaderService } from './reader.ts';
import { BackfillTask } from './backfill.ts';
import { ScheduledVerify } from './verify.ts';
import { EmbedderService } from './embedder.ts';
import { Observability } from './observability.ts';
import { Dashboard } from './dashboard.ts';

export interface DrugsyncStackOptions {
  stage: Stage;
  /** S3 bucket for Terraform state (key drugsync/{stage}/terraform.tfstate); unset → local state file */
  stateBucket?: string | undefined;
}

export class DrugsyncStack extends TerraformStack {
  readonly naming: Naming;
  readonly inputs: Inputs;
  readonly embedder: EmbedderService;

  constructor(scope: Construct, id: string, o: DrugsyncStackOptions) {
    super(scope, id);
    const naming = (this.naming = new Naming(o.stage));
    const vars = (this.inputs = new Inputs(this, 'inputs', naming, STAGE_DEFAULTS[o.stage]));
    const region = vars.region.stringValue;

    new AwsProvider(this, 'aws', { region, defaultTags: [{ tags: naming.tags() }] });
    if (o.stateBucket) {
      const backend = new S3Backend(this, {
        bucket: o.stateBucket,
        key: `drugsync/${o.stage}/terraform.tfstate`,
        region: process.env.DRUGSYNC_TF_STATE_REGION ?? 'us-east-1',
        encrypt: true,
      });
      // S3-native state locking (Terraform ≥ 1.10); cdktf 0.21's config type predates it
      backend.addOverride('use_lockfile', true);
    } else {
      // relative to cdktf.out/stacks/<stack>: the state lives in the project root, survives a re-synth,
      // and the synthesized JSON names no machine-specific path
      new LocalBackend(this, { path: `../../../terraform.${id}.tfstate` });
    }
    const account = new DataAwsCallerIdentity(this, 'account');
    const partition = new DataAwsPartition(this, 'partition');

    // ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO:TAG → the repository ARN the image pull is scoped to
    const image = vars.containerImage.stringValue;
    // (character classes instead of backslash escapes: the pattern passes through HCL string quoting)
    const imageParts = Fn.regex(
      '^([0-9]{12})[.]dkr[.]ecr[.]([a-z0-9-]+)[.]amazonaws[.]com(?:[.]cn)?/([^:@]+)',
      image,
    );
    // computed once as locals, so the container definitions and policies reference `local.…` (plain JSON)
    const ecrRepositoryArn = new TerraformLocal(
      this,
      'ecr_repository_arn',
      Fn.format('arn:%s:ecr:%s:%s:repository/%s', [
        partition.partition,
        Fn.element(imageParts, 1),
        Fn.element(imageParts, 0),
        Fn.element(imageParts, 2),
      ]),
    ).asString;
    const redisSecretArn = vars.redisAuthSecretArn.stringValue;
    const redisJsonKey = vars.redisAuthSecretJsonKey.stringValue;
    // ECS `valueFrom`: the whole secret string, or one key of a JSON secret (ARN:key::)
    const redisPasswordValueFrom = new TerraformLocal(
      this,
      'redis_password_value_from',
      Fn.conditional(
        Op.lt(Fn.lengthOf(redisJsonKey), 1),
        redisSecretArn,
        Fn.format('%s:%s::', [redisSecretArn, redisJsonKey]),
      ),
    ).asString;
    const subnetIds = vars.privateSubnetIds.listValue;

    const network = new Network(this, 'network', {
      naming,
      vpcId: vars.vpcId.stringValue,
      auroraSecurityGroupId: vars.auroraSecurityGroupId.stringValue,
      auroraPort: vars.auroraPort.numberValue,
      redisSecurityGroupId: vars.redisSecurityGroupId.stringValue,
      redisPort: vars.redisPort.numberValue,
    });
    new AuroraBinlogSettings(this, 'aurora', {
      naming,
      clusterIdentifier: vars.auroraClusterIdentifier.stringValue,
      region,
      attach: vars.auroraAttachParameterGroup.booleanValue,
      enhancedBinlog: vars.auroraEnhancedBinlog.booleanValue,
    });
    const stream = new ChangeStream(this, 'stream', {
      naming,
      mode: vars.kinesisStreamMode.stringValue,
      shardCount: vars.kinesisShardCount.numberValue,
      retentionHours: vars.kinesisRetentionHours.numberValue,
      kmsKeyId: vars.kinesisKmsKeyId.stringValue,
    }).stream;
    const dlq = new DeadLetterQueue(this, 'dlq', { naming }).queue;
    const logs = new LogGroups(this, 'logs', { naming, retentionDays: vars.logRetentionDays.numberValue });
    const roles = new ServiceRoles(this, 'iam', {
      naming,
      accountId: account.accountId,
      partition: partition.partition,
      region,
      streamArn: stream.arn,
      dlqArn: dlq.arn,
      dbSecretArn: vars.auroraSecretArn.stringValue,
      redisSecretArn,
      titanModelId: vars.titanModelId.stringValue,
      ecrRepositoryArn,
      logGroups: {
        reader: logs.reader.arn,
        backfill: logs.backfill.arn,
        verify: logs.verify.arn,
        embedder: logs.embedder.arn,
      },
    });
    const cluster = new Cluster(this, 'ecs', { naming }).cluster;

    const env: ServiceEnvironment = {
      stage: naming.stage,
      region,
      dbHost: vars.auroraEndpoint.stringValue,
      dbPort: vars.auroraPort.numberValue,
      dbName: vars.dbName.stringValue,
      dbTable: vars.dbTable.stringValue,
      dbSecretArn: vars.auroraSecretArn.stringValue,
      redisHost: vars.redisEndpoint.stringValue,
      redisPort: vars.redisPort.numberValue,
      redisTls: Fn.tostring(vars.redisTls.booleanValue),
      redisPasswordValueFrom,
      streamName: stream.name,
      titanModelId: vars.titanModelId.stringValue,
      embeddingDimensions: vars.embeddingDimensions.numberValue,
      embeddingConcurrency: vars.embeddingConcurrency.numberValue,
      embeddingRpm: vars.embeddingRpm.numberValue,
    };
    const common = { naming, image, region, env, cpuArchitecture: vars.cpuArchitecture.stringValue };

    const reader = new ReaderService(this, 'reader', {
      ...common,
      cpu: vars.readerCpu.numberValue,
      memory: vars.readerMemory.numberValue,
      taskRoleArn: roles.readerTask.arn,
      executionRoleArn: roles.readerExecution.arn,
      logGroupName: logs.reader.name,
      clusterArn: cluster.arn,
      subnetIds,
      securityGroupId: network.reader.id,
    });
    const backfill = new BackfillTask(this, 'backfill', {
      ...common,
      cpu: vars.backfillCpu.numberValue,
      memory: vars.backfillMemory.numberValue,
      taskRoleArn: roles.backfillTask.arn,
      executionRoleArn: roles.backfillExecution.arn,
      logGroupName: logs.backfill.name,
    });
    const verify = new ScheduledVerify(this, 'verify', {
      ...common,
      accountId: account.accountId,
      cpu: vars.verifyCpu.numberValue,
      memory: vars.verifyMemory.numberValue,
      taskRoleArn: roles.verifyTask.arn,
      executionRoleArn: roles.verifyExecution.arn,
      logGroupName: logs.verify.name,
      clusterArn: cluster.arn,
      subnetIds,
      securityGroupId: network.jobs.id,
      scheduleEnabled: vars.verifyScheduleEnabled.booleanValue,
      scheduleExpression: vars.verifyScheduleExpression.stringValue,
    });
    const embedder = (this.embedder = new EmbedderService(this, 'embedder', {
      ...common,
      cpu: vars.embedderCpu.numberValue,
      memory: vars.embedderMemory.numberValue,
      taskRoleArn: roles.embedderTask.arn,
      executionRoleArn: roles.embedderExecution.arn,
      logGroupName: logs.embedder.name,
      clusterArn: cluster.arn,
      subnetIds,
      securityGroupId: network.embedder.id,
      dlqUrl: dlq.url,
    }));
    const observability = new Observability(this, 'observability', {
      naming,
      streamName: stream.name,
      dlqName: dlq.name,
      clusterName: cluster.name,
      clusterArn: cluster.arn,
      readerServiceName: reader.service.name,
      embedderServiceName: embedder.service.name,
      verifyFamily: verify.task.taskDefinition.family,
      verifyScheduleRuleName: verify.rule.name,
      accountId: account.accountId,
      iteratorAgeAlarmMs: vars.iteratorAgeAlarmMs.numberValue,
      readerLagAlarmSeconds: vars.readerLagAlarmSeconds.numberValue,
      readerStallAlarmSeconds: vars.readerStallAlarmSeconds.numberValue,
      embedderStallAlarmSeconds: vars.embedderStallAlarmSeconds.numberValue,
      dlqAgeAlarmSeconds: vars.dlqAgeAlarmSeconds.numberValue,
      alarmSubscriptions: vars.alarmSubscriptions.value,
    });
    const dashboard = new Dashboard(this, 'dashboard', {
      naming,
      region,
      streamName: stream.name,
      dlqName: dlq.name,
      clusterName: cluster.name,
      readerServiceName: reader.service.name,
      embedderServiceName: embedder.service.name,
      alarms: observability.alarms,
    }).dashboard;

    const out = (name: string, value: string, description: string) => {
      const o = new TerraformOutput(this, name, { value, description });
      o.overrideLogicalId(name);
    };
    out('stream_name', stream.name, 'Kinesis change stream (KINESIS_STREAM).');
    out('stream_arn', stream.arn, 'Kinesis change stream ARN.');
    out('dlq_url', dlq.url, 'Dead-letter queue (DLQ_QUEUE_URL for `drugsync dlq list/replay`).');
    out('dlq_arn', dlq.arn, 'Dead-letter queue ARN.');
    out('cluster_name', cluster.name, 'ECS cluster.');
    out('reader_service_name', reader.service.name, 'ECS service of the binlog reader.');
    out('reader_task_definition_arn', reader.task.taskDefinition.arn, 'Reader task definition.');
    out(
      'backfill_task_definition_arn',
      backfill.task.taskDefinition.arn,
      'Backfill task definition (run-task).',
    );
    out('verify_task_definition_arn', verify.task.taskDefinition.arn, 'Verify task definition (run-task).');
    out('embedder_service_name', embedder.service.name, 'ECS service of the embedder.');
    out('embedder_task_definition_arn', embedder.task.taskDefinition.arn, 'Embedder task definition.');
    out('alarm_topic_arn', observability.topic.arn, 'SNS topic of every alarm (alarm_subscriptions).');
    out(
      'alarm_recipients',
      '${length(var.alarm_subscriptions) > 0 ? join(", ", formatlist("%s:%s", var.alarm_subscriptions[*].protocol, var.alarm_subscriptions[*].endpoint)) : "NOBODY: set alarm_subscriptions, or no alarm reaches anyone"}',
      'Who the alarms reach (alarm_subscriptions; e-mail recipients must confirm the link AWS sends).',
    );
    out(
      'dashboard_url',
      Fn.format('https://%s.console.aws.amazon.com/cloudwatch/home?region=%s#dashboards/dashboard/%s', [
        region,
        region,
        dashboard.dashboardName,
      ]),
      'CloudWatch dashboard of this stage: alarm states, lag, stall, throughput, dead letters, last verify.',
    );
    out(
      'aurora_parameter_group',
      `${naming.name('binlog')}`,
      'Cluster parameter group with the binlog settings.',
    );
    out(
      'backfill_run_task_network',
      Token.asString(
        Fn.format('awsvpcConfiguration={subnets=[%s],securityGroups=[%s],assignPublicIp=DISABLED}', [
          Fn.join(',', subnetIds),
          network.jobs.id,
        ]),
      ),
      'The --network-configuration of `aws ecs run-task` for backfill and verify.',
    );
  }
}
