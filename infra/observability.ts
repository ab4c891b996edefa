/**
 * Alarms on everything that means "Redis is falling behind or losing changes", all notifying one SNS topic
 * per stage, subscribed to by the `alarm_subscriptions` variable (e-mail, HTTPS; required in prod): the
 * reader's and the embedder's progress heartbeats (ReaderStallSeconds, EmbedderStallSeconds: missing data is
 * breaching, so a dead or silent process alarms too), the reader's lag, Kinesis iterator age (kept well under
 * the stream's retention by a validation of iterator_age_alarm_ms, infra/inputs.ts), dead letters (depth,
 * and the age of the oldest: notified and never replayed), the reader or embedder task not running, and a
 * verify run that found drift, failed, never started, or could not be launched by its schedule. Our metric
 * names, units and dimensions come from services/core/metrics.ts, as the services emit them.
 *
 * The topic is not KMS-encrypted on purpose: CloudWatch alarms cannot publish to a topic under the
 * AWS-managed SNS key, and alarm notifications carry no data (names and thresholds only).
 */
import { Construct } from 'constructs';
import { TerraformIterator } from 'cdktf';
import type { IResolvable } from 'cdktf';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic/index.js';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription/index.js';
import { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import type { CloudwatchMetricAlarmConfig } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy/index.js';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule/index.js';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target/index.js';
import { METRIC_NAMESPACE, METRICS, metricDimensions } from '../services/core/metrics.ts';
import type { MetricName, MetricService } from '../services/core/metrics.ts';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';
import { checkovSkip } from './checkov.ts';

/** The progress heartbeats: their alarms treat a minute without a datapoint as breaching. */
export const STALL_METRICS: readonly MetricName[] = [
  METRICS.ReaderStallSeconds,
  METRICS.EmbedderStallSeconds,
];

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
  readerStallAlarmSeconds: number;
  embedderStallAlarmSeconds: number;
  dlqAgeAlarmSeconds: number;
  /** the `alarm_subscriptions` variable: a list of {protocol, endpoint} */
  alarmSubscriptions: IResolvable;
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
    checkovSkip(this.topic, {
      id: 'CKV_AWS_26',
      reason:
        'CloudWatch alarms and EventBridge cannot publish to a topic under the AWS-managed SNS key (its key policy admits no service), and a key of our own only for notifications is not worth its key policy: they carry alarm names, states and thresholds and ECS task state changes (ARNs, exit codes), no catalogue row and no secret',
    });
    this.subscriptions();
    this.progressAlarms();
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

  /** One subscription per `alarm_subscriptions` entry, keyed by its endpoint. */
  private subscriptions(): void {
    const each = TerraformIterator.fromComplexList(this.p.alarmSubscriptions, 'endpoint');
    new SnsTopicSubscription(this, 'subscription', {
      forEach: each,
      topicArn: this.topic.arn,
      protocol: each.getString('protocol'),
      endpoint: each.getString('endpoint'),
    });
  }

  /** A drugsync metric of `service`, under the dimensions that service publishes it with. */
  private ours(service: MetricService, metricName: MetricName) {
    return {
      namespace: METRIC_NAMESPACE,
      metricName,
      dimensions: metricDimensions(service, this.p.naming.stage),
    };
  }

  /**
   * The progress heartbeats (services/binlog-reader/progress.ts, services/embedder/progress.ts): the highest
   * stall of a minute above the threshold in 2 of 3 minutes; a minute without a datapoint (process dead,
   * wedged, not logging) counts as above.
   */
  private progressAlarms(): void {
    const p = this.p;
    const stall = (what: string, service: MetricService, name: MetricName, threshold: number, text: string) =>
      this.alarm(what, text, {
        ...this.ours(service, name),
        statistic: 'Maximum',
        period: 60,
        evaluationPeriods: 3,
        datapointsToAlarm: 2,
        threshold,
        comparisonOperator: 'GreaterThanThreshold',
        treatMissingData: 'breaching',
      });
    stall(
      'reader-stall',
      'reader',
      METRICS.ReaderStallSeconds,
      p.readerStallAlarmSeconds,
      `The binlog reader makes no progress although the binlog is ahead of it, or cannot tell (${METRICS.ReaderStallSeconds}; no datapoint = breaching): changes are not captured. Run \`drugsync status\`.`,
    );
    stall(
      'embedder-stall',
      'embedder',
      METRICS.EmbedderStallSeconds,
      p.embedderStallAlarmSeconds,
      `The embedder applies nothing and does not reach the tip of its shards (${METRICS.EmbedderStallSeconds}; no datapoint = breaching): Redis goes stale. Run \`drugsync status\`.`,
    );
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
    this.alarm(
      'dlq-age',
      'The oldest dead letter has waited this long: it was notified and nobody replayed it (letters expire after 14 days). Run `drugsync dlq list`.',
      {
        namespace: 'AWS/SQS',
        metricName: 'ApproximateAgeOfOldestMessage',
        dimensions: { QueueName: p.dlqName },
        statistic: 'Maximum',
        period: 300,
        evaluationPeriods: 1,
        threshold: p.dlqAgeAlarmSeconds,
        comparisonOperator: 'GreaterThanThreshold',
        // SQS publishes for a queue that holds messages: no data means an empty, quiet queue
        treatMissingData: 'notBreaching',
      },
    );
    this.alarm('reader-lag', `The binlog reader is behind the source (${METRICS.ReaderLagSeconds}).`, {
      ...this.ours('reader', METRICS.ReaderLagSeconds),
      statistic: 'Maximum',
      period: 60,
      evaluationPeriods: 5,
      datapointsToAlarm: 3,
      threshold: p.readerLagAlarmSeconds,
      comparisonOperator: 'GreaterThanThreshold',
      // no metric means no reader: the reader-stall alarm (missing = breaching) covers that
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
