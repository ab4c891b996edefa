/**
 * The CDKTF app, offline: the synthesized Terraform JSON of each stage holds every resource the pipeline
 * needs with its key properties; every IAM policy document is free of wildcard actions and of unexplained
 * wildcard resources; dev and prod never share a name; a snapshot (hashes masked) guards the rest; and
 * `npm run synth` writes cdktf.out/ without a terraform binary. One synth per stage for the whole file.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { App, Testing } from 'cdktf';
import { DrugsyncStack } from '../infra/stack.ts';
import { STAGES, stagesFromEnv } from '../infra/config.ts';
import type { Stage } from '../infra/config.ts';
import {
  WILDCARD_RESOURCE_ALLOWLIST,
  allowanceFor,
  isWildcardAction,
  isWildcardResource,
} from '../infra/iam-allowlist.ts';
import { policyDocument } from '../infra/iam.ts';
import { BINLOG_RETENTION_SQL } from '../infra/aurora.ts';
import { EMBEDDER_HANDLER, LAMBDA_RUNTIME, bundleEmbedder } from '../infra/bundle.ts';
import { READER_LAG_METRIC } from '../infra/observability.ts';
import { createEntryHandler, resolveRedisPassword } from '../infra/embedder-entry.ts';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const synthesized: Partial<Record<Stage, Json>> = {};
const rawDev: { text: string } = { text: '' };

function synthStage(stage: Stage): { text: string; json: Json } {
  const app = Testing.app();
  const stack = new DrugsyncStack(app, `drugsync-${stage}`, { stage });
  const text = Testing.synth(stack);
  return { text, json: JSON.parse(text) as Json };
}

function tf(stage: Stage): Json {
  const j = synthesized[stage];
  if (!j) throw new Error(`stage ${stage} was not synthesized in beforeAll`);
  return j;
}

/** The resources of one type (values), failing when there are none. */
function resources(j: Json, type: string): Json[] {
  const r = (j.resource?.[type] ?? {}) as Record<string, Json>;
  return Object.values(r);
}

function one(j: Json, type: string, pred: (r: Json) => boolean = () => true): Json {
  const found = resources(j, type).filter(pred);
  expect(found, `exactly one ${type} matching`).toHaveLength(1);
  return found[0] as Json;
}

function containerOf(td: Json): Json {
  const defs = JSON.parse(td.container_definitions as string) as Json[];
  expect(defs).toHaveLength(1);
  return defs[0] as Json;
}

function envOf(container: Json): Record<string, string> {
  return Object.fromEntries(
    (container.environment as { name: string; value: string }[]).map((e) => [e.name, e.value]),
  );
}

/** Every string in the tree that parses as an IAM policy document (has a Statement). */
function policyDocuments(node: unknown, where = '$'): { where: string; doc: Json }[] {
  const out: { where: string; doc: Json }[] = [];
  if (typeof node === 'string') {
    const t = node.trim();
    if (t.startsWith('{') && t.includes('"Statement"')) {
      const doc = JSON.parse(t) as Json; // a policy that is not valid JSON fails the test here
      out.push({ where, doc });
    }
  } else if (Array.isArray(node)) {
    node.forEach((v, i) => out.push(...policyDocuments(v, `${where}[${i}]`)));
  } else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) out.push(...policyDocuments(v, `${where}.${k}`));
  }
  return out;
}

const list = (v: unknown): string[] =>
  v === undefined ? [] : Array.isArray(v) ? (v as string[]) : [v as string];

/** Rule violations of one policy document (empty = clean). */
function violations(where: string, doc: Json): string[] {
  const problems: string[] = [];
  for (const [i, s] of (list(doc.Statement) as unknown as Json[]).entries()) {
    const at = `${where} statement ${s.Sid ?? i}`;
    if (s.NotAction !== undefined) problems.push(`${at}: NotAction`);
    if (s.NotResource !== undefined) problems.push(`${at}: NotResource`);
    if (s.Principal === '*' || list(s.Principal?.AWS).includes('*')) problems.push(`${at}: Principal *`);
    const actions = list(s.Action);
    for (const a of actions) if (isWildcardAction(a)) problems.push(`${at}: wildcard action ${a}`);
    // trust policies carry no Resource; every permission statement must
    if (s.Principal === undefined && list(s.Resource).length === 0) problems.push(`${at}: no Resource`);
    const wild = list(s.Resource).filter(isWildcardResource);
    if (wild.length > 0 && !allowanceFor(actions, wild)) {
      problems.push(`${at}: unexplained wildcard resource ${wild.join(', ')} for ${actions.join(', ')}`);
    }
  }
  return problems;
}

/** Actions granted on each resource across one role's policy. */
function grants(j: Json, roleName: string): { actions: string[]; resources: string[] }[] {
  const role = one(j, 'aws_iam_role', (r) => r.name === roleName);
  const roleRef = Object.entries(j.resource.aws_iam_role as Record<string, Json>).find(
    ([, r]) => r === role,
  )?.[0];
  const policy = one(j, 'aws_iam_role_policy', (p) => p.role === `\${aws_iam_role.${roleRef}.id}`);
  return (JSON.parse(policy.policy as string).Statement as Json[]).map((s) => ({
    actions: list(s.Action),
    resources: list(s.Resource),
  }));
}

const allNames = (j: Json): string[] => {
  const names: string[] = [];
  for (const [type, rs] of Object.entries(j.resource as Record<string, Record<string, Json>>)) {
    for (const r of Object.values(rs)) {
      // (a parameter group's `family` is the engine family, not a name)
      const keys = [
        'name',
        'function_name',
        'alarm_name',
        ...(type === 'aws_ecs_task_definition' ? ['family'] : []),
      ];
      for (const k of keys) {
        if (typeof r[k] === 'string' && !r[k].startsWith('${')) names.push(r[k] as string);
      }
    }
  }
  return names;
};

beforeAll(() => {
  for (const stage of STAGES) {
    const { text, json } = synthStage(stage);
    synthesized[stage] = json;
    if (stage === 'dev') rawDev.text = text;
  }
}, 120_000);

describe('stages', () => {
  it('selects stages from STAGE and refuses unknown ones', () => {
    expect(stagesFromEnv({})).toEqual(['dev', 'prod']);
    expect(stagesFromEnv({ STAGE: 'prod' })).toEqual(['prod']);
    expect(stagesFromEnv({ STAGE: 'dev, prod' })).toEqual(['dev', 'prod']);
    expect(() => stagesFromEnv({ STAGE: 'qa' })).toThrow(/unknown stage\(s\): qa/);
  });

  it('gives dev and prod disjoint resource names, each carrying its stage', () => {
    const dev = allNames(tf('dev'));
    const prod = allNames(tf('prod'));
    expect(dev.length).toBeGreaterThan(20);
    expect(dev.length).toBe(prod.length);
    expect(dev.filter((n) => prod.includes(n))).toEqual([]);
    for (const n of dev) expect(n).toMatch(/drugsync-dev-/);
    for (const n of prod) expect(n).toMatch(/drugsync-prod-/);
  });

  it('guards the stage variable against another stage’s tfvars', () => {
    const v = tf('prod').variable.stage as Json;
    expect(v.default).toBe('prod');
    expect(v.validation[0].condition).toBe('${var.stage == "prod"}');
  });
});

describe('inputs', () => {
  it('declares a variable for everything that already exists', () => {
    const vars = tf('dev').variable as Json;
    for (const name of [
      'vpc_id',
      'private_subnet_ids',
      'aurora_endpoint',
      'aurora_cluster_identifier',
      'aurora_port',
      'aurora_secret_arn',
      'aurora_security_group_id',
      'redis_endpoint',
      'redis_port',
      'redis_auth_secret_arn',
      'redis_security_group_id',
      'container_image',
      'region',
      'stage',
      'titan_model_id',
      'embedding_dimensions',
    ]) {
      expect(vars[name], name).toBeDefined();
      expect(typeof vars[name].description, `${name} description`).toBe('string');
    }
    // what already exists has no default: terraform asks for it instead of guessing
    for (const name of [
      'vpc_id',
      'aurora_endpoint',
      'aurora_secret_arn',
      'redis_endpoint',
      'container_image',
    ]) {
      expect(vars[name].default, name).toBeUndefined();
    }
    expect(vars.attach_aurora_parameter_group.default).toBe(false);
  });
});

describe('aurora', () => {
  it('creates an aurora-mysql8.0 cluster parameter group with row-based full binlogs', () => {
    const pg = one(tf('dev'), 'aws_rds_cluster_parameter_group');
    expect(pg.family).toBe('aurora-mysql8.0');
    expect(pg.name).toBe('drugsync-dev-binlog');
    const params = Object.fromEntries((pg.parameter as Json[]).map((p) => [p.name, p.value]));
    expect(params).toMatchObject({
      binlog_format: 'ROW',
      binlog_row_image: 'FULL',
      binlog_row_metadata: 'FULL',
      aurora_enhanced_binlog: '${var.aurora_enhanced_binlog ? "1" : "0"}',
      binlog_backup: '${var.aurora_enhanced_binlog ? "0" : "1"}',
    });
  });

  it('attaches the group to the existing cluster only when the user asks', () => {
    const attach = one(tf('dev'), 'terraform_data');
    expect(attach.count).toBe('${var.attach_aurora_parameter_group ? 1 : 0}');
    const exec = attach.provisioner[0]['local-exec'] as Json;
    expect(exec.command).toContain('aws rds modify-db-cluster');
    expect(exec.environment.CLUSTER).toBe('${var.aurora_cluster_identifier}');
    // nothing else in the stack touches the cluster
    expect(tf('dev').resource.aws_rds_cluster).toBeUndefined();
    expect(BINLOG_RETENTION_SQL).toBe("CALL mysql.rds_set_configuration('binlog retention hours', 72);");
  });
});

describe('kinesis', () => {
  it('is on-demand by default, KMS-encrypted, 48 h retention, shards only when provisioned', () => {
    const j = tf('dev');
    const s = one(j, 'aws_kinesis_stream');
    expect(s.name).toBe('drugsync-dev-changes');
    expect(s.encryption_type).toBe('KMS');
    expect(s.kms_key_id).toBe('${var.kinesis_kms_key_id}');
    expect(s.stream_mode_details.stream_mode).toBe('${var.kinesis_stream_mode}');
    expect(s.shard_count).toBe(
      '${(var.kinesis_stream_mode == "PROVISIONED") ? var.kinesis_shard_count : null}',
    );
    expect(s.retention_period).toBe('${var.kinesis_retention_hours}');
    expect(j.variable.kinesis_stream_mode.default).toBe('ON_DEMAND');
    expect(j.variable.kinesis_retention_hours.default).toBe(48);
    expect(j.variable.kinesis_kms_key_id.default).toBe('alias/aws/kinesis');
  });
});

describe('reader service', () => {
  it('runs exactly one reader and never two at once during a deployment', () => {
    const svc = one(tf('dev'), 'aws_ecs_service');
    expect(svc.name).toBe('drugsync-dev-reader');
    expect(svc.desired_count).toBe(1);
    expect(svc.deployment_minimum_healthy_percent).toBe(0);
    expect(svc.deployment_maximum_percent).toBe(100);
    expect(svc.launch_type).toBe('FARGATE');
    expect(svc.network_configuration.assign_public_ip).toBe(false);
    expect(svc.network_configuration.subnets).toBe('${var.private_subnet_ids}');
  });

  it('runs binlog-reader with the services’ environment and the Redis password from Secrets Manager', () => {
    const j = tf('dev');
    const td = one(j, 'aws_ecs_task_definition', (t) => t.family === 'drugsync-dev-reader');
    expect(td.requires_compatibilities).toEqual(['FARGATE']);
    expect(td.network_mode).toBe('awsvpc');
    const c = containerOf(td);
    expect([...c.entryPoint, ...c.command]).toEqual(['node', 'bin/drugsync.mjs', 'binlog-reader']);
    expect(c.stopTimeout).toBe(120);
    const env = envOf(c);
    expect(env).toMatchObject({
      DB_HOST: '${var.aurora_endpoint}',
      DB_PORT: '${tostring(var.aurora_port)}',
      DB_NAME: '${var.db_name}',
      DB_TABLE: '${var.db_table}',
      DB_SECRET_ARN: '${var.aurora_secret_arn}',
      REDIS_HOST: '${var.redis_endpoint}',
      REDIS_PORT: '${tostring(var.redis_port)}',
      REDIS_TLS: '${tostring(var.redis_tls)}',
      AWS_REGION: '${var.region}',
      EMBEDDING_PROVIDER: 'titan',
      EMBEDDING_MODEL: '${var.titan_model_id}',
      EMBEDDING_DIMENSIONS: '${tostring(var.embedding_dimensions)}',
      LOG_FORMAT: 'json',
    });
    expect(env.KINESIS_STREAM).toMatch(/^\$\{aws_kinesis_stream\.[^.]+\.name\}$/);
    // secrets are never plain values
    for (const name of Object.keys(env)) expect(name).not.toMatch(/PASSWORD/);
    expect(c.secrets).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: '${local.redis_password_value_from}' }]);
    expect(j.locals.redis_password_value_from).toContain('var.redis_auth_secret_arn');
    expect(c.logConfiguration.logDriver).toBe('awslogs');
  });
});

describe('backfill and verify tasks', () => {
  it('define on-demand backfill and verify task definitions with their own log groups', () => {
    const j = tf('dev');
    const backfill = containerOf(
      one(j, 'aws_ecs_task_definition', (t) => t.family === 'drugsync-dev-backfill'),
    );
    expect(backfill.command).toEqual(['backfill']);
    expect(backfill.entryPoint).toEqual(['node', 'bin/drugsync.mjs']);
    const verify = containerOf(one(j, 'aws_ecs_task_definition', (t) => t.family === 'drugsync-dev-verify'));
    expect(verify.command).toEqual(['verify', '--json']);
    expect(backfill.logConfiguration.options['awslogs-group']).not.toBe(
      verify.logConfiguration.options['awslogs-group'],
    );
    // backfill is not a service: only the reader runs permanently
    expect(resources(j, 'aws_ecs_service')).toHaveLength(1);
  });

  it('schedules verify through EventBridge → ECS, enabled per stage', () => {
    const j = tf('dev');
    const rule = one(j, 'aws_cloudwatch_event_rule', (r) => r.name === 'drugsync-dev-verify');
    expect(rule.schedule_expression).toBe('${var.verify_schedule_expression}');
    expect(rule.state).toBe('${var.verify_schedule_enabled ? "ENABLED" : "DISABLED"}');
    const target = one(j, 'aws_cloudwatch_event_target', (t) => t.target_id === 'verify-task');
    expect(target.ecs_target.launch_type).toBe('FARGATE');
    expect(target.ecs_target.task_definition_arn).toMatch(/aws_ecs_task_definition\.verify_task/);
    expect(j.variable.verify_schedule_enabled.default).toBe(false);
    expect(tf('prod').variable.verify_schedule_enabled.default).toBe(true);
  });
});

describe('embedder Lambda', () => {
  it('runs the bundled handler on nodejs22.x in the VPC with its environment', () => {
    const j = tf('dev');
    const fn = one(j, 'aws_lambda_function');
    expect(fn.function_name).toBe('drugsync-dev-embedder');
    expect(fn.runtime).toBe(LAMBDA_RUNTIME);
    expect(fn.runtime).toBe('nodejs22.x');
    expect(fn.handler).toBe(EMBEDDER_HANDLER);
    expect(fn.filename).toMatch(/^assets\/embedder_code_[0-9A-F]+\/[0-9A-F]+\/archive\.zip$/);
    expect(fn.source_code_hash).toContain('filebase64sha256');
    expect(fn.vpc_config.subnet_ids).toBe('${var.private_subnet_ids}');
    expect(fn.vpc_config.security_group_ids).toHaveLength(1);
    const env = fn.environment.variables as Record<string, string>;
    expect(env).toMatchObject({
      REDIS_HOST: '${var.redis_endpoint}',
      REDIS_PASSWORD_SECRET_ARN: '${var.redis_auth_secret_arn}',
      EMBEDDING_PROVIDER: 'titan',
      LOG_FORMAT: 'json',
    });
    expect(env.DLQ_QUEUE_URL).toMatch(/^\$\{aws_sqs_queue\.[^.]+\.url\}$/);
    expect(env.REDIS_PASSWORD).toBeUndefined();
    expect(env.AWS_REGION).toBeUndefined(); // reserved by Lambda
  });

  it('maps the stream with partial batch failures, bisect, bounded retries and age, and a DLQ', () => {
    const j = tf('dev');
    const m = one(j, 'aws_lambda_event_source_mapping');
    expect(m.function_response_types).toEqual(['ReportBatchItemFailures']);
    expect(m.bisect_batch_on_function_error).toBe('${var.embedder_bisect_on_error}');
    expect(m.maximum_retry_attempts).toBe('${var.embedder_maximum_retry_attempts}');
    expect(m.maximum_record_age_in_seconds).toBe('${var.embedder_maximum_record_age_seconds}');
    expect(m.parallelization_factor).toBe('${var.embedder_parallelization_factor}');
    expect(m.batch_size).toBe('${var.embedder_batch_size}');
    expect(m.maximum_batching_window_in_seconds).toBe('${var.embedder_batching_window_seconds}');
    expect(m.starting_position).toBe('TRIM_HORIZON');
    expect(m.event_source_arn).toMatch(/^\$\{aws_kinesis_stream\.[^.]+\.arn\}$/);
    expect(m.destination_config.on_failure.destination_arn).toMatch(/^\$\{aws_sqs_queue\.[^.]+\.arn\}$/);
    const v = j.variable as Json;
    expect(v.embedder_bisect_on_error.default).toBe(true);
    expect(v.embedder_maximum_retry_attempts.default).toBeGreaterThan(0);
    expect(v.embedder_maximum_record_age_seconds.default).toBeGreaterThanOrEqual(60);
    const dlq = one(j, 'aws_sqs_queue');
    expect(dlq.name).toBe('drugsync-dev-embedder-dlq');
    expect(dlq.sqs_managed_sse_enabled).toBe(true);
  });

  it('bundles services/embedder/lambda.ts into one ES module that loads and exports handler', async () => {
    const b = bundleEmbedder();
    expect(fs.existsSync(b.file)).toBe(true);
    const out = Object.values(b.metafile.outputs).find((o) => o.entryPoint);
    const externals = (out?.imports ?? []).filter((i) => i.external).map((i) => i.path);
    // only Node built-ins and the SDK the runtime provides stay outside the bundle
    // supports-color: optional dependency of `debug`, required inside try/catch (absent → no colours)
    const optional = ['supports-color'];
    const stray = externals.filter(
      (p) => !p.startsWith('@aws-sdk/') && !isBuiltin(p) && !optional.includes(p),
    );
    expect(stray).toEqual([]);
    const mod = (await import(b.file)) as { handler?: unknown };
    expect(typeof mod.handler).toBe('function');
  });
});

function isBuiltin(p: string): boolean {
  return (
    [
      'fs',
      'path',
      'os',
      'url',
      'util',
      'events',
      'stream',
      'crypto',
      'net',
      'tls',
      'dns',
      'http',
      'https',
      'zlib',
      'buffer',
      'string_decoder',
      'assert',
      'child_process',
      'module',
      'timers',
      'process',
      'tty',
      'worker_threads',
    ].includes(p.split('/')[0] ?? '') || p.startsWith('node:')
  );
}

describe('network', () => {
  it('lets the reader and jobs reach Aurora on its port and every service reach Redis, nothing more', () => {
    const j = tf('dev');
    const ingress = resources(j, 'aws_vpc_security_group_ingress_rule');
    const aurora = ingress.filter((r) => r.security_group_id === '${var.aurora_security_group_id}');
    const redis = ingress.filter((r) => r.security_group_id === '${var.redis_security_group_id}');
    expect(aurora).toHaveLength(2);
    expect(redis).toHaveLength(3);
    expect(ingress).toHaveLength(aurora.length + redis.length);
    for (const r of aurora)
      expect([r.from_port, r.to_port]).toEqual(['${var.aurora_port}', '${var.aurora_port}']);
    for (const r of redis)
      expect([r.from_port, r.to_port]).toEqual(['${var.redis_port}', '${var.redis_port}']);
    const embedderSg = one(j, 'aws_security_group', (s) => s.name === 'drugsync-dev-embedder');
    expect(embedderSg.ingress).toBeUndefined();
    const egress = resources(j, 'aws_vpc_security_group_egress_rule');
    // egress: Aurora (reader, jobs), Redis (3), HTTPS (3)
    expect(egress).toHaveLength(8);
    for (const r of egress.filter((e) => e.cidr_ipv4 !== undefined)) expect(r.from_port).toBe(443);
  });
});

describe('observability', () => {
  it('alarms on iterator age, Lambda errors and throttles, DLQ depth, reader lag and a stopped reader', () => {
    const j = tf('dev');
    const alarms = resources(j, 'aws_cloudwatch_metric_alarm');
    const by = (metric: string) => one(j, 'aws_cloudwatch_metric_alarm', (a) => a.metric_name === metric);
    expect(by('GetRecords.IteratorAgeMilliseconds').threshold).toBe('${var.iterator_age_alarm_ms}');
    expect(by('Errors').namespace).toBe('AWS/Lambda');
    expect(by('Throttles').namespace).toBe('AWS/Lambda');
    const dlq = by('ApproximateNumberOfMessagesVisible');
    expect([dlq.comparison_operator, dlq.threshold]).toEqual(['GreaterThanThreshold', 0]);
    const lag = by(READER_LAG_METRIC.metricName);
    expect(lag.namespace).toBe('drugsync');
    expect(lag.dimensions).toEqual(READER_LAG_METRIC.dimensions);
    expect(lag.threshold).toBe('${var.reader_lag_alarm_seconds}');
    const running = by('RunningTaskCount');
    expect([running.comparison_operator, running.threshold, running.treat_missing_data]).toEqual([
      'LessThanThreshold',
      1,
      'breaching',
    ]);
    const cluster = one(j, 'aws_ecs_cluster');
    expect(cluster.setting).toEqual([{ name: 'containerInsights', value: 'enabled' }]);
    for (const a of alarms) expect(a.alarm_actions).toHaveLength(1);
  });

  it('notifies the alarm topic when a verify run exits non-zero (drift or failure)', () => {
    const j = tf('dev');
    const rule = one(j, 'aws_cloudwatch_event_rule', (r) => r.name === 'drugsync-dev-verify-failed');
    const pattern = JSON.parse(rule.event_pattern as string) as Json;
    expect(pattern['detail-type']).toEqual(['ECS Task State Change']);
    expect(pattern.detail.lastStatus).toEqual(['STOPPED']);
    expect(pattern.detail.group).toEqual(['family:${aws_ecs_task_definition.verify_task_AAEA1F99.family}']);
    expect(pattern.detail.containers.exitCode).toEqual([{ 'anything-but': 0 }]);
    const target = one(j, 'aws_cloudwatch_event_target', (t) => t.target_id === 'alarm-topic');
    expect(target.arn).toMatch(/^\$\{aws_sns_topic\.[^.]+\.arn\}$/);
    const policy = JSON.parse(one(j, 'aws_sns_topic_policy').policy as string) as Json;
    const events = (policy.Statement as Json[]).find((s) => s.Principal.Service === 'events.amazonaws.com');
    expect(events?.Condition.ArnEquals['aws:SourceArn']).toMatch(
      /aws_cloudwatch_event_rule\.observability_verify-failed/,
    );
  });

  it('keeps every log group on a retention', () => {
    const j = tf('dev');
    const groups = resources(j, 'aws_cloudwatch_log_group');
    expect(groups.map((g) => g.name).sort()).toEqual([
      '/aws/lambda/drugsync-dev-embedder',
      '/ecs/drugsync-dev-backfill',
      '/ecs/drugsync-dev-reader',
      '/ecs/drugsync-dev-verify',
    ]);
    for (const g of groups) expect(g.retention_in_days).toBe('${var.log_retention_days}');
    expect(j.variable.log_retention_days.default).toBe(14);
    expect(tf('prod').variable.log_retention_days.default).toBe(90);
  });

  it('outputs the stream, the DLQ, the task definitions and the Lambda', () => {
    const out = tf('dev').output as Json;
    for (const name of [
      'stream_name',
      'stream_arn',
      'dlq_url',
      'dlq_arn',
      'reader_task_definition_arn',
      'backfill_task_definition_arn',
      'verify_task_definition_arn',
      'embedder_function_name',
      'embedder_function_arn',
      'cluster_name',
      'backfill_run_task_network',
    ]) {
      expect(out[name], name).toBeDefined();
    }
  });
});

describe('IAM', () => {
  it('has no wildcard action and no unexplained wildcard resource in any policy document', () => {
    for (const stage of STAGES) {
      const docs = policyDocuments(tf(stage));
      // 8 role policies + 8 trust policies + the alarm topic's policy
      expect(docs.length).toBe(17);
      const problems = docs.flatMap(({ where, doc }) => violations(where, doc));
      expect(problems).toEqual([]);
    }
  });

  it('catches what it is meant to catch (the walker is not vacuous)', () => {
    const bad = {
      Statement: [
        { Sid: 'a', Effect: 'Allow', Action: 'kinesis:*', Resource: 'arn:aws:kinesis:us-east-1:1:stream/x' },
        { Sid: 'b', Effect: 'Allow', Action: ['kinesis:PutRecords'], Resource: '*' },
        { Sid: 'c', Effect: 'Allow', Action: ['ecr:GetAuthorizationToken', 's3:GetObject'], Resource: '*' },
        { Sid: 'd', Effect: 'Allow', NotAction: 'iam:PassRole', Resource: 'arn:aws:iam::1:role/x' },
      ],
    };
    expect(violations('bad', bad)).toHaveLength(4);
    // and the builder refuses them before they reach Terraform
    expect(() =>
      policyDocument([{ sid: 'x', actions: ['sqs:*'], resources: ['arn:aws:sqs:us-east-1:1:q'] }]),
    ).toThrow(/wildcard action/);
    expect(() => policyDocument([{ sid: 'y', actions: ['sqs:SendMessage'], resources: ['*'] }])).toThrow(
      /without an allow-list entry/,
    );
    expect(() =>
      policyDocument([
        { sid: 'z', actions: ['s3:GetObject'], resources: ['*'], wildcardAllowance: 'ecr-auth-token' },
      ]),
    ).toThrow(/not covered by allow-list entry ecr-auth-token/);
    for (const a of WILDCARD_RESOURCE_ALLOWLIST) expect(a.why.length).toBeGreaterThan(40);
  });

  it('gives Kinesis put to the reader only and get/describe to the embedder only', () => {
    const j = tf('dev');
    const reader = grants(j, 'drugsync-dev-reader').flatMap((g) => g.actions);
    const embedder = grants(j, 'drugsync-dev-embedder').flatMap((g) => g.actions);
    expect(reader).toContain('kinesis:PutRecords');
    expect(reader).not.toContain('kinesis:GetRecords');
    expect(embedder).toEqual(expect.arrayContaining(['kinesis:GetRecords', 'kinesis:GetShardIterator']));
    expect(embedder.filter((a) => a.startsWith('kinesis:Put'))).toEqual([]);
    for (const role of ['drugsync-dev-backfill', 'drugsync-dev-verify']) {
      expect(
        grants(j, role)
          .flatMap((g) => g.actions)
          .filter((a) => a.startsWith('kinesis:')),
      ).toEqual([]);
    }
    for (const role of ['drugsync-dev-reader', 'drugsync-dev-embedder']) {
      for (const g of grants(j, role).filter((x) => x.actions.some((a) => a.startsWith('kinesis:')))) {
        expect(g.resources).toEqual([expect.stringMatching(/^\$\{aws_kinesis_stream\.[^.]+\.arn\}$/)]);
      }
    }
  });

  it('grants bedrock:InvokeModel on the Titan model ARN only and secrets on the named secrets only', () => {
    const j = tf('dev');
    const statements = policyDocuments(j).flatMap(({ doc }) => list(doc.Statement) as unknown as Json[]);
    const on = (action: string) =>
      statements.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource));
    const model = on('bedrock:InvokeModel');
    expect(model.length).toBeGreaterThan(0);
    for (const r of model) {
      expect(r).toBe(
        'arn:${data.aws_partition.partition.partition}:bedrock:${var.region}::foundation-model/${var.titan_model_id}',
      );
    }
    expect(new Set(on('secretsmanager:GetSecretValue'))).toEqual(
      new Set(['${var.aurora_secret_arn}', '${var.redis_auth_secret_arn}']),
    );
    // the image pull is scoped to the repository of container_image
    expect(new Set(on('ecr:BatchGetImage'))).toEqual(new Set(['${local.ecr_repository_arn}']));
    expect(j.locals.ecr_repository_arn).toContain('var.container_image');
  });
});

describe('snapshot', () => {
  it('matches the committed dev stack (asset hashes masked)', () => {
    const masked = rawDev.text
      // the asset folder carries a content hash of the bundle: it changes with every embedder change
      .replace(/assets\/([A-Za-z0-9_]+?)_[0-9A-F]{8}\/[0-9A-F]{32}\//g, 'assets/$1_<id>/<hash>/');
    expect(JSON.parse(masked)).toMatchSnapshot();
  });
});

/** What `cdktf synth --hcl` does: SYNTH_HCL_OUTPUT=true while the app is built and synthesized. */
function synthHcl(outdir: string, stage: Stage): void {
  const before = process.env.SYNTH_HCL_OUTPUT;
  process.env.SYNTH_HCL_OUTPUT = 'true';
  try {
    const app = new App({ outdir, hclOutput: true });
    new DrugsyncStack(app, `drugsync-${stage}`, { stage });
    app.synth();
  } finally {
    if (before === undefined) delete process.env.SYNTH_HCL_OUTPUT;
    else process.env.SYNTH_HCL_OUTPUT = before;
  }
}

describe('HCL export', () => {
  it('renders JSON-valued attributes as jsonencode() and no variable as literal text', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-hcl-'));
    try {
      synthHcl(outdir, 'dev');
      const hcl = fs.readFileSync(path.join(outdir, 'stacks', 'drugsync-dev', 'cdk.tf'), 'utf8');
      // cdktf writes string attributes unescaped: a JSON string would end the HCL string at its first quote
      expect(hcl).not.toMatch(/= "[[{]"/);
      expect(hcl.match(/policy = "\$\{jsonencode\(/g)?.length).toBe(17);
      expect(hcl.match(/container_definitions = "\$\{jsonencode\(/g)?.length).toBe(3);
      // a reference must never end up as the literal text "var.x"
      expect(hcl).not.toMatch(/"(var|local|aws_[a-z_]+)\.[a-z_]+"/);
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});

describe('npm run synth', () => {
  const synthCli = (outdir: string) =>
    spawnSync(process.execPath, [path.resolve('node_modules', 'tsx', 'dist', 'cli.mjs'), 'main.ts'], {
      cwd: path.resolve('.'),
      // PATH without terraform: only the directory of node itself
      env: { ...process.env, PATH: path.dirname(process.execPath), CDKTF_OUTDIR: outdir, STAGE: '' },
      encoding: 'utf8',
      timeout: 60_000,
    });
  const zipHash = (outdir: string, j: Json) => {
    const zip = path.join(outdir, 'stacks', 'drugsync-dev', one(j, 'aws_lambda_function').filename as string);
    return createHash('sha256').update(fs.readFileSync(zip)).digest('hex');
  };

  it('writes cdktf.out/stacks/<stack>/cdk.tf.json for every stage without a terraform binary', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-synth-'));
    const again = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-synth-'));
    try {
      const r = synthCli(outdir);
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      for (const stage of STAGES) {
        const file = path.join(outdir, 'stacks', `drugsync-${stage}`, 'cdk.tf.json');
        const j = JSON.parse(fs.readFileSync(file, 'utf8')) as Json;
        expect(j.resource.aws_lambda_function).toBeDefined();
        const zip = path.join(
          outdir,
          'stacks',
          `drugsync-${stage}`,
          one(j, 'aws_lambda_function').filename as string,
        );
        expect(fs.statSync(zip).size).toBeGreaterThan(10_000);
        expect(j.terraform.backend.local.path).toBe(`../../../terraform.drugsync-${stage}.tfstate`);
      }
      // a second synth of the same code gives a byte-identical Lambda zip: plans stay quiet
      expect(synthCli(again).status).toBe(0);
      const read = (d: string) =>
        JSON.parse(fs.readFileSync(path.join(d, 'stacks', 'drugsync-dev', 'cdk.tf.json'), 'utf8')) as Json;
      expect(zipHash(again, read(again))).toBe(zipHash(outdir, read(outdir)));
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
      fs.rmSync(again, { recursive: true, force: true });
    }
  });
});

describe('embedder entry (Redis password from Secrets Manager)', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-auth-GhIjKl';
  const secrets = (value: string | undefined) => {
    const asked: string[] = [];
    return {
      asked,
      get: async (a: string) => {
        asked.push(a);
        return value;
      },
    };
  };

  it('reads the whole secret string, or one key of a JSON secret', async () => {
    const plain = secrets('s3cr3t-redis-pass');
    expect(await resolveRedisPassword({ REDIS_PASSWORD_SECRET_ARN: arn }, plain.get)).toBe(
      's3cr3t-redis-pass',
    );
    expect(plain.asked).toEqual([arn]);
    const json = secrets(JSON.stringify({ username: 'default', password: 'json-pass-42' }));
    const env = { REDIS_PASSWORD_SECRET_ARN: arn, REDIS_PASSWORD_SECRET_JSON_KEY: 'password' };
    expect(await resolveRedisPassword(env, json.get)).toBe('json-pass-42');
  });

  it('leaves an explicit REDIS_PASSWORD (local runs) and a missing ARN alone', async () => {
    const s = secrets('unused');
    expect(await resolveRedisPassword({ REDIS_PASSWORD: 'local' }, s.get)).toBe('local');
    expect(await resolveRedisPassword({}, s.get)).toBeUndefined();
    expect(s.asked).toEqual([]);
  });

  it('names the secret and the remedy when it cannot be used', async () => {
    const env = { REDIS_PASSWORD_SECRET_ARN: arn, REDIS_PASSWORD_SECRET_JSON_KEY: 'password' };
    await expect(resolveRedisPassword(env, secrets('not json').get)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      context: { secret_arn: arn, json_key: 'password' },
    });
    await expect(resolveRedisPassword(env, secrets('{"pass":"x"}').get)).rejects.toThrow(
      /no string field "password"/,
    );
    const denied = async () => {
      throw new Error('AccessDeniedException: not authorized to perform secretsmanager:GetSecretValue');
    };
    await expect(resolveRedisPassword(env, denied)).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      retryable: true,
    });
  });

  it('sets REDIS_PASSWORD once before the embedder runs, and retries a failed read', async () => {
    const env: Record<string, string | undefined> = { REDIS_PASSWORD_SECRET_ARN: arn };
    const seen: (string | undefined)[] = [];
    let reads = 0;
    const getSecret = () => async () => {
      reads += 1;
      if (reads === 1) throw new Error('ThrottlingException');
      return 'rotated-pass-7';
    };
    const h = createEntryHandler(
      async () => {
        seen.push(env.REDIS_PASSWORD);
        return { batchItemFailures: [] };
      },
      getSecret,
      env,
    );
    const event = { Records: [] };
    await expect(h(event)).rejects.toThrow(/Redis password secret/);
    expect(seen).toEqual([]);
    await h(event);
    await h(event);
    expect(seen).toEqual(['rotated-pass-7', 'rotated-pass-7']);
    expect(reads).toBe(2);
  });
});
