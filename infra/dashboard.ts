/**
 * The stage's CloudWatch dashboard `drugsync-{stage}-pipeline`: where on-call looks first. The alarms'
 * states on top, then one graph per question, each alarm's threshold drawn on its graph as a horizontal
 * annotation that references the alarm's own `threshold` (a tfvars override moves the line with the alarm):
 *
 * reader lag and stall · reader events/s · embedder stall · embedder lag and Kinesis iterator age ·
 * embedder throughput · commit-to-Redis latency (p50, p99) · dead letters (depth, age of the oldest) ·
 * the last verify's differences · tasks running.
 *
 * Every metric it plots is one a service emits (names and dimensions from services/core/metrics.ts) or one
 * AWS publishes (AWS/Kinesis, AWS/SQS, ECS/ContainerInsights); test/infra.test.ts checks both.
 *
 * The body is JSON with numbers that are Terraform references (the thresholds). In the JSON output they are
 * written unquoted, `"value":${aws_cloudwatch_metric_alarm.x.threshold}`, so Terraform's interpolation leaves
 * a JSON number; the HCL export writes the same text indented, as a heredoc (./json.ts: checkov's HCL parser
 * cannot read a `jsonencode(...)` of an object).
 */
import { Construct } from 'constructs';
import { Token } from 'cdktf';
import { CloudwatchDashboard } from '@cdktf/provider-aws/lib/cloudwatch-dashboard/index.js';
import type { CloudwatchMetricAlarm } from '@cdktf/provider-aws/lib/cloudwatch-metric-alarm/index.js';
import { METRIC_NAMESPACE, METRICS, metricDimensions } from '../services/core/metrics.ts';
import type { MetricName, MetricService } from '../services/core/metrics.ts';
import type { Naming } from './config.ts';
import { hclOutput } from './json.ts';

export interface DashboardProps {
  naming: Naming;
  region: string;
  streamName: string;
  dlqName: string;
  clusterName: string;
  readerServiceName: string;
  embedderServiceName: string;
  /** infra/observability.ts' alarms by name (thresholds, the alarm-state widget) */
  alarms: Readonly<Record<string, CloudwatchMetricAlarm>>;
}

/** One line of a graph: [namespace, metric, dimension name, value, …, {options}]. */
type MetricLine = (string | Record<string, unknown>)[];
interface Annotation {
  label: string;
  value: number;
}
interface Widget {
  type: 'metric' | 'alarm';
  width: number;
  height: number;
  properties: Record<string, unknown>;
}

const WIDTH = 12;
const HEIGHT = 6;

export class Dashboard extends Construct {
  readonly dashboard: CloudwatchDashboard;

  constructor(
    scope: Construct,
    id: string,
    private readonly p: DashboardProps,
  ) {
    super(scope, id);
    const widgets = [
      this.alarmStates(),
      ...this.readerWidgets(),
      ...this.embedderWidgets(),
      ...this.restWidgets(),
    ];
    this.dashboard = new CloudwatchDashboard(this, 'pipeline', {
      dashboardName: p.naming.name('pipeline'),
      dashboardBody: dashboardBody({ widgets }),
    });
  }

  /** A drugsync metric as its service emits it. */
  private ours(service: MetricService, name: MetricName, options: Record<string, unknown> = {}): MetricLine {
    const dims = metricDimensions(service, this.p.naming.stage);
    return [METRIC_NAMESPACE, name, ...Object.entries(dims).flat(), options];
  }

  /** The named alarm's threshold, as a line on its graph. */
  private threshold(alarm: string, label: string): Annotation {
    const a = this.p.alarms[alarm];
    if (!a) throw new Error(`dashboard: no alarm named ${alarm}`);
    return { label: `${this.p.naming.name(alarm)} alarm: ${label}`, value: a.threshold };
  }

  private graph(title: string, metrics: MetricLine[], o: GraphOptions = {}): Widget {
    return {
      type: 'metric',
      width: WIDTH,
      height: HEIGHT,
      properties: {
        title,
        view: 'timeSeries',
        region: this.p.region,
        period: o.period ?? 60,
        ...(o.start ? { start: o.start } : {}),
        stat: o.stat ?? 'Maximum',
        metrics,
        ...(o.annotations ? { annotations: { horizontal: o.annotations } } : {}),
        yAxis: { left: { min: 0, ...(o.label ? { label: o.label, showUnits: false } : {}) } },
      },
    };
  }

  private alarmStates(): Widget {
    return {
      type: 'alarm',
      width: 2 * WIDTH,
      height: 3,
      properties: {
        // (no double quote in any text of the body: cdktf's HCL export would not escape it)
        title: 'Alarms: any not OK has its runbook line in docs/deploy.md, section 6',
        alarms: Object.values(this.p.alarms).map((a) => a.arn),
      },
    };
  }

  private readerWidgets(): Widget[] {
    return [
      this.graph(
        'Binlog reader: lag and stall (seconds)',
        [
          this.ours('reader', METRICS.ReaderLagSeconds, { label: 'lag (from the checkpoint)' }),
          this.ours('reader', METRICS.ReaderStallSeconds, { label: 'stall (no progress)' }),
        ],
        {
          label: 'seconds',
          annotations: [
            this.threshold('reader-lag', 'lag'),
            this.threshold('reader-stall', 'stall (no datapoint = breaching)'),
          ],
        },
      ),
      this.graph(
        'Binlog reader: change events published per second',
        [this.ours('reader', METRICS.ReaderEventsPerSecond, { label: 'events/s' })],
        { stat: 'Average', label: 'events/s' },
      ),
    ];
  }

  private embedderWidgets(): Widget[] {
    const p = this.p;
    return [
      this.graph(
        'Embedder: stall (seconds)',
        [this.ours('embedder', METRICS.EmbedderStallSeconds, { label: 'stall (least advanced shard)' })],
        {
          label: 'seconds',
          annotations: [this.threshold('embedder-stall', 'stall (no datapoint = breaching)')],
        },
      ),
      this.graph(
        'Embedder: lag behind the stream (ms)',
        [
          this.ours('embedder', METRICS.EmbedderMillisBehindLatest, { label: 'MillisBehindLatest (aged)' }),
          [
            'AWS/Kinesis',
            'GetRecords.IteratorAgeMilliseconds',
            'StreamName',
            p.streamName,
            { label: 'iterator age' },
          ],
        ],
        { label: 'ms', annotations: [this.threshold('stream-iterator-age', 'iterator age')] },
      ),
      this.graph(
        'Embedder: records per minute',
        [
          this.ours('embedder', METRICS.EmbedderRecordsApplied, { label: 'applied' }),
          this.ours('embedder', METRICS.EmbedderEmbeddings, { label: 'embedding requests' }),
          this.ours('embedder', METRICS.EmbedderStaleRefused, { label: 'refused as stale' }),
          this.ours('embedder', METRICS.EmbedderDeadLetters, { label: 'dead-lettered' }),
        ],
        { stat: 'Sum', label: 'records' },
      ),
      this.graph(
        'Embedder: source commit → Redis (ms)',
        [
          this.ours('embedder', METRICS.EmbedderCommitToRedisLatency, { stat: 'p50', label: 'p50' }),
          this.ours('embedder', METRICS.EmbedderCommitToRedisLatency, { stat: 'p99', label: 'p99' }),
        ],
        { label: 'ms' },
      ),
    ];
  }

  private restWidgets(): Widget[] {
    const p = this.p;
    const running = (what: string, service: string): MetricLine => [
      'ECS/ContainerInsights',
      'RunningTaskCount',
      'ClusterName',
      p.clusterName,
      'ServiceName',
      service,
      { label: `${what} tasks` },
    ];
    return [
      this.graph(
        'Dead letters: in the queue',
        [['AWS/SQS', 'ApproximateNumberOfMessagesVisible', 'QueueName', p.dlqName, { label: 'letters' }]],
        { label: 'letters', annotations: [this.threshold('dlq-depth', 'any letter')] },
      ),
      this.graph(
        'Dead letters: age of the oldest (seconds)',
        [['AWS/SQS', 'ApproximateAgeOfOldestMessage', 'QueueName', p.dlqName, { label: 'oldest letter' }]],
        { period: 300, label: 'seconds', annotations: [this.threshold('dlq-age', 'not replayed')] },
      ),
      this.graph(
        'Last verify: differences between MySQL and Redis (missing + extra + stale)',
        [this.ours('verify', METRICS.VerifyDifferences, { label: 'differences' })],
        {
          // verify runs daily (verify_schedule_expression): a week of results whatever range the dashboard shows
          period: 3600,
          start: '-P7D',
          label: 'documents',
          // the verify-failed EventBridge rule notifies on any difference (its task exits 1): no metric alarm
          annotations: [{ label: 'verify-failed notifies above 0', value: 0 }],
        },
      ),
      this.graph(
        'Tasks running',
        [running('reader', p.readerServiceName), running('embedder', p.embedderServiceName)],
        {
          stat: 'Minimum',
          label: 'tasks',
          annotations: [
            this.threshold('reader-not-running', 'reader below it'),
            this.threshold('embedder-not-running', 'embedder below it'),
          ],
        },
      ),
    ];
  }
}

interface GraphOptions {
  period?: number;
  /** this graph's own time range (ISO 8601 duration back from now), e.g. -P7D */
  start?: string;
  stat?: string;
  label?: string;
  annotations?: Annotation[];
}

/**
 * The dashboard body as JSON text, where each number that is a Terraform reference is written unquoted so that
 * Terraform's interpolation leaves a JSON number; indented in the HCL export, which cdktf then writes as a
 * heredoc (the same template to Terraform).
 */
export function dashboardBody(body: unknown): string {
  const refs: string[] = [];
  const replacer = (_key: string, value: unknown): unknown => {
    if (typeof value !== 'number' || !Token.isUnresolved(value)) return value;
    refs.push(Token.asString(value));
    return `@@ref${refs.length - 1}@@`;
  };
  const text = JSON.stringify(body, replacer, hclOutput() ? 2 : undefined);
  return text.replace(/"@@ref(\d+)@@"/g, (_m, i: string) => refs[Number(i)] as string);
}
