/**
 * The embedder Lambda (Kinesis → Redis) in the VPC, its Kinesis event source mapping and its maintenance
 * schedule. The mapping reports partial batch failures (the handler returns the shard's first failed
 * sequence number), bisects a batch whose invocation throws, bounds retries and record age, and sends what
 * it gives up on to the encrypted dead-letter queue.
 */
import { Construct } from 'constructs';
import { AssetType, Fn, TerraformAsset, Token } from 'cdktf';
import type { IResolvable } from 'cdktf';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function/index.js';
import { LambdaEventSourceMapping } from '@cdktf/provider-aws/lib/lambda-event-source-mapping/index.js';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission/index.js';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import type { ITerraformDependable } from 'cdktf';
import { EMBEDDER_HANDLER, LAMBDA_RUNTIME, bundleEmbedder } from './bundle.ts';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

export interface EmbedderProps {
  naming: Naming;
  roleArn: string;
  /** the role's policy: the mapping is created only once the role may read the stream */
  rolePolicy: ITerraformDependable;
  logGroupName: string;
  logGroup: ITerraformDependable;
  subnetIds: string[];
  securityGroupId: string;
  architecture: string;
  memoryMb: number;
  timeoutSeconds: number;
  streamArn: string;
  streamName: string;
  dlqArn: string;
  dlqUrl: string;
  redisHost: string;
  redisPort: number;
  redisTls: string;
  redisSecretArn: string;
  redisSecretJsonKey: string;
  titanModelId: string;
  embeddingDimensions: number;
  embeddingConcurrency: number;
  embeddingRpm: number;
  batchSize: number;
  batchingWindowSeconds: number;
  parallelizationFactor: number;
  maximumRetryAttempts: number;
  maximumRecordAgeSeconds: number;
  bisectOnError: IResolvable;
}

export class Embedder extends Construct {
  readonly fn: LambdaFunction;
  readonly mapping: LambdaEventSourceMapping;
  readonly asset: TerraformAsset;
  readonly maintenance: CloudwatchEventRule;

  constructor(scope: Construct, id: string, p: EmbedderProps) {
    super(scope, id);
    const bundle = bundleEmbedder();
    this.asset = new TerraformAsset(this, 'code', { path: bundle.dir, type: AssetType.ARCHIVE });
    this.fn = new LambdaFunction(this, 'function', {
      functionName: p.naming.name('embedder'),
      description: 'drugsync embedder: Kinesis change events → Redis documents and vectors',
      role: p.roleArn,
      runtime: LAMBDA_RUNTIME,
      handler: EMBEDDER_HANDLER,
      filename: this.asset.path,
      sourceCodeHash: Fn.filebase64sha256(this.asset.path),
      // X86_64 → x86_64, ARM64 → arm64 (Lambda's spelling of the same image architecture variable)
      architectures: [Fn.lower(p.architecture)],
      memorySize: p.memoryMb,
      timeout: p.timeoutSeconds,
      vpcConfig: { subnetIds: p.subnetIds, securityGroupIds: [p.securityGroupId] },
      loggingConfig: { logFormat: 'Text', logGroup: p.logGroupName },
      environment: {
        variables: {
          // AWS_REGION is set by Lambda itself (reserved)
          DRUGSYNC_STAGE: p.naming.stage,
          DRUGSYNC_NO_ENV_FILE: '1',
          REDIS_HOST: p.redisHost,
          REDIS_PORT: Token.asString(Fn.tostring(p.redisPort)),
          REDIS_TLS: p.redisTls,
          // the ARN, never the password: the runtime reads it from Secrets Manager (docs/deploy.md)
          REDIS_PASSWORD_SECRET_ARN: p.redisSecretArn,
          REDIS_PASSWORD_SECRET_JSON_KEY: p.redisSecretJsonKey,
          KINESIS_STREAM: p.streamName,
          EMBEDDING_PROVIDER: 'titan',
          EMBEDDING_MODEL: p.titanModelId,
          EMBEDDING_DIMENSIONS: Token.asString(Fn.tostring(p.embeddingDimensions)),
          EMBEDDING_CONCURRENCY: Token.asString(Fn.tostring(p.embeddingConcurrency)),
          EMBEDDING_RPM: Token.asString(Fn.tostring(p.embeddingRpm)),
          DLQ_QUEUE_URL: p.dlqUrl,
          LOG_FORMAT: 'json',
          NODE_OPTIONS: '--enable-source-maps',
        },
      },
      tags: p.naming.tags(),
      dependsOn: [p.logGroup, p.rolePolicy],
    });

    this.mapping = new LambdaEventSourceMapping(this, 'stream-mapping', {
      functionName: this.fn.arn,
      eventSourceArn: p.streamArn,
      // from the oldest record kept: a change made before the first deploy finished is not lost
      startingPosition: 'TRIM_HORIZON',
      batchSize: p.batchSize,
      maximumBatchingWindowInSeconds: p.batchingWindowSeconds,
      parallelizationFactor: p.parallelizationFactor,
      functionResponseTypes: ['ReportBatchItemFailures'],
      bisectBatchOnFunctionError: p.bisectOnError,
      maximumRetryAttempts: p.maximumRetryAttempts,
      maximumRecordAgeInSeconds: p.maximumRecordAgeSeconds,
      destinationConfig: { onFailure: { destinationArn: p.dlqArn } },
      dependsOn: [p.rolePolicy],
    });

    // docs/embedder.md: an invocation without Records runs maintenance (settled truncate sweep)
    this.maintenance = new CloudwatchEventRule(this, 'maintenance', {
      name: p.naming.name('embedder-maintenance'),
      description: 'drugsync embedder maintenance (sweep of a settled truncate)',
      scheduleExpression: 'rate(1 minute)',
      tags: p.naming.tags(),
    });
    new CloudwatchEventTarget(this, 'maintenance-target', {
      rule: this.maintenance.name,
      targetId: 'embedder-maintenance',
      arn: this.fn.arn,
      input: tfJson({ maintenance: true }),
    });
    new LambdaPermission(this, 'maintenance-permission', {
      statementId: 'AllowMaintenanceSchedule',
      action: 'lambda:InvokeFunction',
      functionName: this.fn.functionName,
      principal: 'events.amazonaws.com',
      sourceArn: this.maintenance.arn,
    });
  }
}
