/**
 * Alarms on everything that means "Redis is falling behind or losing changes", all notifying one SNS topic
 * per stage (subscribe e-mail/pager to it): Kinesis iterator age, Lambda errors and throttles, dead letters,
 * the reader's own lag metric, and the reader task not running.
 *
 * The topic is not KMS-encrypted on purpose: CloudWatch alarms cannot publish to a topic under the
 * AWS-managed SNS key, and alarm notifications carry no data (names and thresholds only).
 */
import { Construct } from 'constructs';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import type { CloudwatchMetricAlarmConfig } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy/index.js';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

/** What the binlog reader publishes (EMF log lines, services/binlog-reader/reader.ts). */
export const READER_LAG_METRIC = {
  namespace: 'drugsync',
  metricName: 'ReaderLagSeconds',
  dimensions: { Service: 'binlog-reader' } as Record<string, string>,
};

export interface ObservabilityProps {
  naming: Naming;
  streamName: string;
  functionName: string;
  dlqName: string;
  clusterName: string;
  clusterArn: string;
  readerServiceName: string;
  /** family of the verify task: a verify run that exits non-zero (drift found, or failed) is notified */
  verifyFamily: string;
  iteratorAgeAlarmMs: number;
  readerLagAlarmSeconds: number;
  accountId: string;
}

export class Observability extends Construct {
  readonly topic: SnsTopic;
  readonly alarms: Record<string, CloudwatchMetricAlarm> = {};
  readonly verifyFailed: CloudwatchEventRule;

  constructor(scope: Construct, id: string, p: ObservabilityProps) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'alarms', { name: p.naming.name('alarms'), tags: p.naming.tags() });
    const alarm = (
      what: string,
      description: string,
      c: Omit<CloudwatchMetricAlarmConfig, 'alarmName' | 'alarmDescription'>,
    ) => {
      this.alarms[what] = new CloudwatchMetricAlarm(this, what, {
        alarmName: p.naming.name(what),
        alarmDescription: description,
        alarmActions: [this.topic.arn],
        okActions: [this.topic.arn],
        tags: p.naming.tags(),
        ...c,
      });
    };

    alarm('stream-iterator-age', 'Kinesis records wait unread: the embedder falls behind (Redis is stale).', {
      namespace: 'AWS/Kinesis',
      metricName: 'GetRecords.IteratorAgeMilliseconds',
      dimensions: { StreamName: p.streamName },
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: p.iteratorAgeAlarmMs,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
    });
    alarm(
      'embedder-errors',
      'The embedder Lambda failed invocations (Redis outage, bug): batches are retried.',
      {
        namespace: 'AWS/Lambda',
        metricName: 'Errors',
        dimensions: { FunctionName: p.functionName },
        statistic: 'Sum',
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      },
    );
    alarm(
      'embedder-throttles',
      'The embedder Lambda was throttled: raise concurrency or lower parallelization.',
      {
        namespace: 'AWS/Lambda',
        metricName: 'Throttles',
        dimensions: { FunctionName: p.functionName },
        statistic: 'Sum',
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      },
    );
    alarm('dlq-depth', 'Change events were dead-lettered: inspect with `drugsync dlq list`, then replay.', {
      namespace: 'AWS/SQS',
      metricName: 'ApproximateNumberOfMessagesVisible',
      dimensions: { QueueName: p.dlqName },
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 1,
      threshold: 0,
      comparisonOperator: 'GreaterThanThreshold',
      treatMissingData: 'notBreaching',
    });
    alarm('reader-lag', 'The binlog reader is behind the source (ReaderLagSeconds).', {
      namespace: READER_LAG_METRIC.namespace,
      metricName: READER_LAG_METRIC.metricName,
      dimensions: READER_LAG_METRIC.dimensions,
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: p.readerLagAlarmSeconds,
      comparisonOperator: 'GreaterThanThreshold',
      // no metric means no reader: the reader-not-running alarm covers that
      treatMissingData: 'notBreaching',
    });
    alarm('reader-not-running', 'No binlog reader task is running: changes are not captured.', {
      namespace: 'ECS/ContainerInsights',
      metricName: 'RunningTaskCount',
      dimensions: { ClusterName: p.clusterName, ServiceName: p.readerServiceName },
      statistic: 'Minimum',
      period: 60,
      evaluationPeriods: 3,
      threshold: 1,
      comparisonOperator: 'LessThanThreshold',
      treatMissingData: 'breaching',
    });

    // `drugsync verify` exits non-zero when Redis differs from MySQL (or it could not compare): tell someone
    this.verifyFailed = new CloudwatchEventRule(this, 'verify-failed', {
      name: p.naming.name('verify-failed'),
      description: 'drugsync verify found drift or failed (task stopped with a non-zero exit code)',
      eventPattern: tfJson({
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          clusterArn: [p.clusterArn],
          group: [`family:${p.verifyFamily}`],
          lastStatus: ['STOPPED'],
          containers: { exitCode: [{ 'anything-but': 0 }] },
        },
      }),
      tags: p.naming.tags(),
    });
    new CloudwatchEventTarget(this, 'verify-failed-target', {
      rule: this.verifyFailed.name,
      targetId: 'alarm-topic',
      arn: this.topic.arn,
    });
    new SnsTopicPolicy(this, 'alarms-policy', {
      arn: this.topic.arn,
      policy: tfJson({
        Version: '2012-10-17',
        Statement: [
          {
            Sid: 'VerifyFailedEvents',
            Effect: 'Allow',
            Principal: { Service: 'events.amazonaws.com' },
            Action: ['sns:Publish'],
            Resource: [this.topic.arn],
            Condition: { ArnEquals: { 'aws:SourceArn': this.verifyFailed.arn } },
          },
          {
            Sid: 'CloudWatchAlarms',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['sns:Publish'],
            Resource: [this.topic.arn],
            Condition: { StringEquals: { 'aws:SourceAccount': p.accountId } },
          },
        ],
      }),
    });
  }
}
