/**
 * Alarms on everything that means "Redis is falling behind or losing changes", all notifying one SNS topic
 * per stage (subscribe e-mail/pager to it): Kinesis iterator age (kept well under the stream's retention by
 * a validation of iterator_age_alarm_ms, infra/inputs.ts),
 * dead letters, the reader's own lag metric, the reader or embedder task not running, and a verify run that
 * found drift, failed, never started, or could not be launched by its schedule.
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
import { METRIC_NAMESPACE, METRICS, metricDimensions } from '../services/core/metrics.ts';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

/** What the binlog reader publishes (EMF log lines, services/binlog-reader/status.ts): names from core/metrics.ts. */
export const READER_LAG_METRIC = {
  namespace: METRIC_NAMESPACE,
  metricName: METRICS.ReaderLagSeconds,
};

export interface ObservabilityProps {
  naming: Naming;
  streamName: string;
  dlqName: string;
  clusterName: string;
  clusterArn: string;
  readerServiceName: string;
  embedderServiceName: string;
  /** family of the verify task: a verify run that fails, finds drift or never starts is notified */
  verifyFamily: string;
  /** the EventBridge rule that runs verify on its schedule: a failed RunTask call is notified */
  verifyScheduleRuleName: string;
  iteratorAgeAlarmMs: number;
  readerLagAlarmSeconds: number;
  accountId: string;
}

type AlarmConfig = Omit<CloudwatchMetricAlarmConfig, 'alarmName' | 'alarmDescription'>;

export class Observability extends Construct {
  readonly topic: SnsTopic;
  readonly alarms: Record<string, CloudwatchMetricAlarm> = {};
  readonly verifyFailed: CloudwatchEventRule;

  constructor(
    scope: Construct,
    id: string,
    private readonly p: ObservabilityProps,
  ) {
    super(scope, id);
    this.topic = new SnsTopic(this, 'alarms', { name: p.naming.name('alarms'), tags: p.naming.tags() });
    this.pipelineAlarms();
    this.serviceAlarms();
    this.verifyFailed = this.verifyAlerts();
    this.topicPolicy();
  }

  private alarm(what: string, description: string, c: AlarmConfig): CloudwatchMetricAlarm {
    const a = new CloudwatchMetricAlarm(this, what, {
      alarmName: this.p.naming.name(what),
      alarmDescription: description,
      alarmActions: [this.topic.arn],
      okActions: [this.topic.arn],
      tags: this.p.naming.tags(),
      ...c,
    });
    this.alarms[what] = a;
    return a;
  }

  /** The stream falling behind, dead letters, the reader's lag. */
  private pipelineAlarms(): void {
    const p = this.p;
    this.alarm(
      'stream-iterator-age',
      'Kinesis records wait unread: the embedder falls behind (Redis is stale); unread records expire at the stream retention.',
      {
        namespace: 'AWS/Kinesis',
        metricName: 'GetRecords.IteratorAgeMilliseconds',
        dimensions: { StreamName: p.streamName },
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        threshold: p.iteratorAgeAlarmMs,
        comparisonOperator: 'GreaterThanThreshold',
        // no GetRecords at all means no consumer: the embedder-not-running alarm covers that
        treatMissingData: 'notBreaching',
      },
    );
    this.alarm(
      'dlq-depth',
      'Change events were dead-lettered: inspect with `drugsync dlq list`, then replay.',
      {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateNumberOfMessagesVisible',
        dimensions: { QueueName: p.dlqName },
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      },
    );
    this.alarm('reader-lag', `The binlog reader is behind the source (${METRICS.ReaderLagSeconds}).`, {
      namespace: READER_LAG_METRIC.namespace,
      metricName: READER_LAG_METRIC.metricName,
      dimensions: metricDimensions('reader', p.naming.stage),
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: p.readerLagAlarmSeconds,
      comparisonOperator: 'GreaterThanThreshold',
      // no metric means no reader: the reader-not-running alarm covers that
      treatMissingData: 'notBreaching',
    });
  }

  /** A singleton service (reader, embedder) with no running task (Container Insights). */
  private serviceAlarms(): void {
    const notRunning = (what: string, serviceName: string, description: string) =>
      this.alarm(`${what}-not-running`, description, {
        namespace: 'ECS/ContainerInsights',
        metricName: 'RunningTaskCount',
        dimensions: { ClusterName: this.p.clusterName, ServiceName: serviceName },
        statistic: 'Minimum',
        period: 60,
        evaluationPeriods: 3,
        threshold: 1,
        comparisonOperator: 'LessThanThreshold',
        treatMissingData: 'breaching',
      });
    notRunning(
      'reader',
      this.p.readerServiceName,
      'No binlog reader task is running: changes are not captured.',
    );
    notRunning(
      'embedder',
      this.p.embedderServiceName,
      'No embedder task is running: changes wait on the stream and Redis goes stale (records expire at the stream retention).',
    );
  }

  /**
   * `drugsync verify` exits non-zero when Redis differs from MySQL (or it could not compare); a task that
   * never started (image pull, secrets, capacity) has no exit code at all; a schedule whose RunTask call
   * fails starts no task. Each of them tells someone.
   */
  private verifyAlerts(): CloudwatchEventRule {
    const p = this.p;
    const rule = new CloudwatchEventRule(this, 'verify-failed', {
      name: p.naming.name('verify-failed'),
      description:
        'drugsync verify found drift, failed (non-zero exit code) or never started (TaskFailedToStart, no exit code)',
      eventPattern: tfJson({
        source: ['aws.ecs'],
        'detail-type': ['ECS Task State Change'],
        detail: {
          clusterArn: [p.clusterArn],
          group: [`family:${p.verifyFamily}`],
          lastStatus: ['STOPPED'],
          $or: [
            { containers: { exitCode: [{ 'anything-but': 0 }] } },
            { stopCode: ['TaskFailedToStart'] },
            { containers: { exitCode: [{ exists: false }] } },
          ],
        },
      }),
      tags: p.naming.tags(),
    });
    new CloudwatchEventTarget(this, 'verify-failed-target', {
      rule: rule.name,
      targetId: 'alarm-topic',
      arn: this.topic.arn,
    });
    this.alarm(
      'verify-not-launched',
      'The verify schedule could not start its ECS task (RunTask failed: permissions, network, capacity).',
      {
        namespace: 'AWS/Events',
        metricName: 'FailedInvocations',
        dimensions: { RuleName: p.verifyScheduleRuleName },
        statistic: 'Sum',
        period: 300,
        evaluationPeriods: 1,
        threshold: 0,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'notBreaching',
      },
    );
    return rule;
  }

  private topicPolicy(): void {
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
            Condition: { StringEquals: { 'aws:SourceAccount': this.p.accountId } },
          },
        ],
      }),
    });
  }
}
