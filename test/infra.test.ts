/**
 * The CDKTF app, offline: the synthesized Terraform JSON of each stage holds every resource the pipeline
 * needs with its key properties (two singleton ECS services — reader and embedder —, on-demand backfill and
 * verify tasks, all on read-only root filesystems with TLS to MySQL); nothing in the platform retries a
 * batch a finite number of times and then skips it; every IAM policy document is free of wildcard actions
 * and of unexplained wildcard resources; dev and prod never share a name; the Aurora parameter-group attach
 * step refuses to replace someone else's group (run against a fake `aws` on PATH); a snapshot (hashes
 * masked) guards the rest; and `npm run synth` writes cdktf.out/ without a terraform binary. One synth per
 * stage for the whole file.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Testing } from 'cdktf';
import { DrugsyncStack } from '../infra/stack.ts';
import { ITERATOR_AGE_MAX_RETENTION_FRACTION, STAGES, stagesFromEnv } from '../infra/config.ts';
import type { Stage } from '../infra/config.ts';
import {
  WILDCARD_RESOURCE_ALLOWLIST,
  allowanceFor,
  isWildcardAction,
  isWildcardResource,
} from '../infra/iam-allowlist.ts';
import { policyDocument } from '../infra/iam.ts';
import { ATTACH_SCRIPT, BINLOG_RETENTION_SQL } from '../infra/aurora.ts';
import { RDS_CA_FILE, STATE_DIR } from '../infra/container.ts';
import { synthStacks } from './support/synth.ts';
import { STAGE_DEFAULTS } from '../infra/config.ts';
import { STALL_METRICS } from '../infra/observability.ts';
import { METRICS, METRIC_NAMESPACE, SERVICE_METRICS, metricDimensions } from '../services/core/metrics.ts';
import type { MetricName } from '../services/core/metrics.ts';

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
  it('creates an aurora-mysql8.0 cluster parameter group with row-based full binlogs and TLS required', () => {
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
      require_secure_transport: 'ON',
    });
    for (const p of pg.parameter as Json[]) expect(p.apply_method, p.name).toBe('pending-reboot');
  });

  it('attaches the group only when the user asks, through the guarded script', () => {
    const j = tf('dev');
    const attach = one(j, 'terraform_data');
    expect(attach.count).toBe('${var.attach_aurora_parameter_group ? 1 : 0}');
    const exec = attach.provisioner[0]['local-exec'] as Json;
    expect(exec.interpreter).toEqual(['bash']);
    expect(exec.command).toMatch(
      /^assets\/aurora_attach-script_[0-9A-F]+\/[0-9A-F]+\/attach-parameter-group\.sh$/,
    );
    expect(exec.environment).toMatchObject({
      CLUSTER: '${var.aurora_cluster_identifier}',
      REGION: '${var.region}',
      GROUP: expect.stringMatching(/^\$\{aws_rds_cluster_parameter_group\.[^.]+\.name\}$/),
    });
    // the refusal message prints every parameter of our group
    const names = (one(j, 'aws_rds_cluster_parameter_group').parameter as Json[]).map((p) => p.name);
    const printed = (exec.environment.PARAMETERS as string)
      .replace(/\$\{[^}]*\}/g, 'X')
      .split(' ')
      .map((pair) => pair.split('=')[0]);
    expect(printed).toEqual(names);
    // nothing else in the stack touches the cluster
    expect(j.resource.aws_rds_cluster).toBeUndefined();
    expect(BINLOG_RETENTION_SQL).toBe("CALL mysql.rds_set_configuration('binlog retention hours', 72);");
  });
});

/** infra/scripts/attach-parameter-group.sh against a fake `aws` on PATH that logs its calls. */
describe('parameter-group guard (attach script)', () => {
  const PARAMETERS =
    'binlog_format=ROW binlog_row_image=FULL binlog_row_metadata=FULL aurora_enhanced_binlog=1 ' +
    'binlog_backup=0 binlog_replication_globaldb=0 require_secure_transport=ON';
  const FAKE_AWS = `#!/usr/bin/env bash
echo "$*" >> "$FAKE_AWS_LOG"
case "$1 $2" in
  "rds describe-db-clusters")
    if [[ -n "\${FAKE_DESCRIBE_ERROR:-}" ]]; then echo "$FAKE_DESCRIBE_ERROR" >&2; exit 254; fi
    echo "$FAKE_CURRENT_GROUP" ;;
  "rds modify-db-cluster") echo '{"DBCluster":{"DBClusterIdentifier":"fdb"}}' ;;
  *) echo "fake aws: unexpected call: $*" >&2; exit 99 ;;
esac
`;

  function attach(fake: { currentGroup?: string; describeError?: string }) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-attach-'));
    try {
      fs.writeFileSync(path.join(dir, 'aws'), FAKE_AWS, { mode: 0o755 });
      const log = path.join(dir, 'calls.log');
      fs.writeFileSync(log, '');
      const r = spawnSync('bash', [ATTACH_SCRIPT], {
        encoding: 'utf8',
        timeout: 30_000,
        env: {
          PATH: `${dir}${path.delimiter}${process.env.PATH ?? ''}`,
          REGION: 'us-east-1',
          CLUSTER: 'fdb',
          GROUP: 'drugsync-prod-binlog',
          PARAMETERS,
          FAKE_AWS_LOG: log,
          FAKE_CURRENT_GROUP: fake.currentGroup ?? '',
          ...(fake.describeError ? { FAKE_DESCRIBE_ERROR: fake.describeError } : {}),
        },
      });
      const calls = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
      return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }

  it('attaches over a default group', () => {
    const r = attach({ currentGroup: 'default.aurora-mysql8.0' });
    expect(r.status).toBe(0);
    expect(r.calls).toHaveLength(2);
    expect(r.calls[0]).toMatch(/^rds describe-db-clusters --region us-east-1 --db-cluster-identifier fdb /);
    expect(r.calls[1]).toBe(
      'rds modify-db-cluster --region us-east-1 --db-cluster-identifier fdb --db-cluster-parameter-group-name drugsync-prod-binlog --apply-immediately',
    );
    expect(r.stdout).toContain('Reboot the writer');
  });

  it('changes nothing when the cluster already uses our group', () => {
    const r = attach({ currentGroup: 'drugsync-prod-binlog' });
    expect(r.status).toBe(0);
    expect(r.calls).toHaveLength(1);
    expect(r.stdout).toContain('already uses drugsync-prod-binlog');
  });

  it('refuses to replace any other group and prints the commands to run instead', () => {
    const r = attach({ currentGroup: 'fdb-aurora-mysql8-tuned' });
    expect(r.status).toBe(3);
    // only the read: the cluster is left alone
    expect(r.calls).toHaveLength(1);
    expect(r.calls[0]).toMatch(/^rds describe-db-clusters /);
    expect(r.stderr).toContain('refusing to attach drugsync-prod-binlog');
    expect(r.stderr).toContain('"fdb-aurora-mysql8-tuned"');
    expect(r.stderr).toContain(
      'aws rds modify-db-cluster-parameter-group --region us-east-1 \\\n       --db-cluster-parameter-group-name fdb-aurora-mysql8-tuned',
    );
    expect(r.stderr).toContain('--source-db-cluster-parameter-group-identifier fdb-aurora-mysql8-tuned');
    expect(r.stderr).toContain(
      '--target-db-cluster-parameter-group-identifier fdb-aurora-mysql8-tuned-drugsync',
    );
    for (const pair of PARAMETERS.split(' ')) {
      const [name, value] = pair.split('=');
      expect(r.stderr).toContain(
        `"ParameterName=${name},ParameterValue=${value},ApplyMethod=pending-reboot"`,
      );
    }
    expect(r.stderr).toContain('attach_aurora_parameter_group = false');
  });

  it('fails without touching the cluster when it cannot read the current group', () => {
    const r = attach({
      describeError:
        'An error occurred (DBClusterNotFoundFault) when calling the DescribeDBClusters operation: DBCluster fdb not found.',
    });
    expect(r.status).toBe(2);
    expect(r.calls).toHaveLength(1);
    expect(r.stderr).toContain('DBClusterNotFoundFault');
    expect(r.stderr).toContain('cannot read the cluster parameter group of Aurora cluster "fdb"');
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

const taskDef = (j: Json, what: string) =>
  one(j, 'aws_ecs_task_definition', (t) => t.family === `drugsync-dev-${what}`);
const service = (j: Json, what: string) =>
  one(j, 'aws_ecs_service', (s) => s.name === `drugsync-dev-${what}`);

describe('singleton services (reader, embedder)', () => {
  it('run exactly one task each and never two at once during a deployment', () => {
    const j = tf('dev');
    expect(
      resources(j, 'aws_ecs_service')
        .map((s) => s.name as string)
        .sort(),
    ).toEqual(['drugsync-dev-embedder', 'drugsync-dev-reader']);
    for (const what of ['reader', 'embedder']) {
      const svc = service(j, what);
      expect(svc.desired_count, what).toBe(1);
      expect(svc.deployment_minimum_healthy_percent, what).toBe(0);
      expect(svc.deployment_maximum_percent, what).toBe(100);
      expect(svc.launch_type, what).toBe('FARGATE');
      expect(svc.network_configuration.assign_public_ip, what).toBe(false);
      expect(svc.network_configuration.subnets, what).toBe('${var.private_subnet_ids}');
      expect(svc.task_definition, what).toMatch(new RegExp(`^\\$\\{aws_ecs_task_definition\\.${what}_task_`));
      expect(containerOf(taskDef(j, what)).stopTimeout, what).toBe(120);
    }
    expect(containerOf(taskDef(j, 'reader')).command).toEqual(['binlog-reader']);
    expect(containerOf(taskDef(j, 'embedder')).command).toEqual(['embedder']);
  });

  it('runs binlog-reader with the services’ environment and the Redis password from Secrets Manager', () => {
    const j = tf('dev');
    const td = taskDef(j, 'reader');
    expect(td.requires_compatibilities).toEqual(['FARGATE']);
    expect(td.network_mode).toBe('awsvpc');
    const c = containerOf(td);
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
    expect(env.DLQ_QUEUE_URL).toBeUndefined();
    // secrets are never plain values
    for (const name of Object.keys(env)) expect(name).not.toMatch(/PASSWORD/);
    expect(c.secrets).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: '${local.redis_password_value_from}' }]);
    expect(j.locals.redis_password_value_from).toContain('var.redis_auth_secret_arn');
    expect(c.logConfiguration.logDriver).toBe('awslogs');
  });

  it('runs the embedder consumer with the DB settings (re-sync, truncate sweep), the stream and the DLQ', () => {
    const j = tf('dev');
    const td = taskDef(j, 'embedder');
    expect([td.cpu, td.memory]).toEqual(['${var.embedder_cpu}', '${var.embedder_memory}']);
    expect(td.task_role_arn).toMatch(/^\$\{aws_iam_role\.iam_embedder_role_[^.]+\.arn\}$/);
    const c = containerOf(td);
    const env = envOf(c);
    const readerEnv = envOf(containerOf(taskDef(j, 'reader')));
    // the same contract as the reader (DB_*, Redis, stream, embedding) plus its dead-letter queue
    const { DLQ_QUEUE_URL, ...rest } = env;
    expect(rest).toEqual(readerEnv);
    expect(DLQ_QUEUE_URL).toMatch(/^\$\{aws_sqs_queue\.[^.]+\.url\}$/);
    expect(env.DB_SECRET_ARN).toBe('${var.aurora_secret_arn}');
    expect(c.secrets).toEqual([{ name: 'REDIS_PASSWORD', valueFrom: '${local.redis_password_value_from}' }]);
    expect(c.logConfiguration.options['awslogs-group']).toMatch(/aws_cloudwatch_log_group\.logs_embedder_/);
    const svc = service(j, 'embedder');
    const sg = one(j, 'aws_security_group', (s) => s.name === 'drugsync-dev-embedder');
    const sgRef = Object.entries(j.resource.aws_security_group as Record<string, Json>).find(
      ([, s]) => s === sg,
    )?.[0];
    expect(svc.network_configuration.security_groups).toEqual([`\${aws_security_group.${sgRef}.id}`]);
  });
});

describe('every task (image contract)', () => {
  it('passes only the command, runs an init process, a read-only root and a writable /tmp', () => {
    const j = tf('dev');
    const tds = resources(j, 'aws_ecs_task_definition');
    expect(tds.map((t) => t.family as string).sort()).toEqual([
      'drugsync-dev-backfill',
      'drugsync-dev-embedder',
      'drugsync-dev-reader',
      'drugsync-dev-verify',
    ]);
    for (const td of tds) {
      const c = containerOf(td);
      const at = td.family as string;
      // the image's ENTRYPOINT runs the CLI
      expect(c.entryPoint, at).toBeUndefined();
      expect(c.readonlyRootFilesystem, at).toBe(true);
      expect(td.volume, at).toEqual([{ name: 'tmp' }]);
      expect(c.mountPoints, at).toEqual([{ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false }]);
      expect(c.linuxParameters, at).toEqual({ initProcessEnabled: true });
      expect(envOf(c), at).toMatchObject({
        DRUGSYNC_STATE_DIR: STATE_DIR,
        DB_TLS: 'true',
        DB_TLS_CA_FILE: RDS_CA_FILE,
        DRUGSYNC_NO_ENV_FILE: '1',
      });
    }
    expect(STATE_DIR.startsWith('/tmp/')).toBe(true);
    expect(RDS_CA_FILE).toBe('/app/certs/rds-global-bundle.pem');
  });
});

describe('backfill and verify tasks', () => {
  it('define on-demand backfill and verify task definitions with their own log groups', () => {
    const j = tf('dev');
    const backfill = containerOf(taskDef(j, 'backfill'));
    expect(backfill.command).toEqual(['backfill']);
    const verify = containerOf(taskDef(j, 'verify'));
    expect(verify.command).toEqual(['verify', '--json']);
    expect(backfill.logConfiguration.options['awslogs-group']).not.toBe(
      verify.logConfiguration.options['awslogs-group'],
    );
    // backfill and verify are not services: only the reader and the embedder run permanently
    const services = resources(j, 'aws_ecs_service').map((s) => s.task_definition as string);
    expect(services.some((t) => /backfill|verify/.test(t))).toBe(false);
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

describe('nothing dropped by the platform', () => {
  it('has no Lambda, no event source mapping, no retry budget that could skip a batch', () => {
    for (const stage of STAGES) {
      const j = tf(stage);
      expect(Object.keys(j.resource).filter((t) => t.startsWith('aws_lambda_'))).toEqual([]);
      // by construction there is none; should one ever come back it must retry forever, at any age
      for (const m of resources(j, 'aws_lambda_event_source_mapping')) {
        expect(m.maximum_retry_attempts).toBe(-1);
        expect(m.maximum_record_age_in_seconds ?? -1).toBe(-1);
      }
      const vars = Object.keys(j.variable as Json);
      expect(vars.filter((v) => /^(esm_|embedder_(batch|parallel|maximum|bisect|timeout))/.test(v))).toEqual(
        [],
      );
      // the only writer of the dead-letter queue is the embedder itself (DLQ_QUEUE_URL)
      expect(JSON.stringify(j.resource)).not.toMatch(/destination_config|on_failure/);
    }
  });

  it('keeps the iterator-age alarm well under the stream retention (defaults and a variable validation)', () => {
    for (const stage of STAGES) {
      const j = tf(stage);
      const age = one(
        j,
        'aws_cloudwatch_metric_alarm',
        (a) => a.alarm_name === `drugsync-${stage}-stream-iterator-age`,
      );
      expect(age.threshold).toBe('${var.iterator_age_alarm_ms}');
      const retentionMs = (j.variable.kinesis_retention_hours.default as number) * 3_600_000;
      expect(j.variable.iterator_age_alarm_ms.default).toBeLessThanOrEqual(
        retentionMs * ITERATOR_AGE_MAX_RETENTION_FRACTION,
      );
      const checks = j.variable.iterator_age_alarm_ms.validation as Json[];
      expect(checks.map((c) => c.condition as string)).toContain(
        `\${var.iterator_age_alarm_ms <= var.kinesis_retention_hours * ${3_600_000 * ITERATOR_AGE_MAX_RETENTION_FRACTION}}`,
      );
    }
  });
});

describe('network', () => {
  it('lets every workload reach Aurora and Redis on their ports and HTTPS, nothing more', () => {
    const j = tf('dev');
    const ingress = resources(j, 'aws_vpc_security_group_ingress_rule');
    const aurora = ingress.filter((r) => r.security_group_id === '${var.aurora_security_group_id}');
    const redis = ingress.filter((r) => r.security_group_id === '${var.redis_security_group_id}');
    // reader, jobs (backfill + verify), embedder (re-sync and truncate sweep read the table)
    expect(aurora).toHaveLength(3);
    expect(redis).toHaveLength(3);
    expect(ingress).toHaveLength(aurora.length + redis.length);
    for (const r of aurora)
      expect([r.from_port, r.to_port]).toEqual(['${var.aurora_port}', '${var.aurora_port}']);
    for (const r of redis)
      expect([r.from_port, r.to_port]).toEqual(['${var.redis_port}', '${var.redis_port}']);
    expect(aurora.map((r) => r.referenced_security_group_id as string).join(' ')).toMatch(
      /aws_security_group\.network_embedder_/,
    );
    const embedderSg = one(j, 'aws_security_group', (s) => s.name === 'drugsync-dev-embedder');
    expect(embedderSg.ingress).toBeUndefined();
    const egress = resources(j, 'aws_vpc_security_group_egress_rule');
    // egress: Aurora, Redis, HTTPS for each of the three groups
    expect(egress).toHaveLength(9);
    const embedderEgress = egress.filter((e) => /network_embedder_/.test(e.security_group_id as string));
    expect(new Set(embedderEgress.map((e) => e.from_port))).toEqual(
      new Set([443, '${var.aurora_port}', '${var.redis_port}']),
    );
    for (const r of egress.filter((e) => e.cidr_ipv4 !== undefined)) expect(r.from_port).toBe(443);
  });
});

describe('observability', () => {
  it('alarms on stalls, iterator age, DLQ depth and age, reader lag, a stopped reader or embedder, a verify not launched', () => {
    const j = tf('dev');
    const alarms = resources(j, 'aws_cloudwatch_metric_alarm');
    expect(alarms.map((a) => a.alarm_name as string).sort()).toEqual(
      [
        'dlq-age',
        'dlq-depth',
        'embedder-not-running',
        'embedder-stall',
        'reader-lag',
        'reader-not-running',
        'reader-stall',
        'stream-iterator-age',
        'verify-not-launched',
      ].map((n) => `drugsync-dev-${n}`),
    );
    const named = (n: string) =>
      one(j, 'aws_cloudwatch_metric_alarm', (a) => a.alarm_name === `drugsync-dev-${n}`);
    expect(alarms.filter((a) => a.namespace === 'AWS/Lambda')).toEqual([]);
    const age = named('stream-iterator-age');
    expect([age.namespace, age.metric_name]).toEqual(['AWS/Kinesis', 'GetRecords.IteratorAgeMilliseconds']);
    expect(age.threshold).toBe('${var.iterator_age_alarm_ms}');
    const dlq = named('dlq-depth');
    expect([dlq.metric_name, dlq.comparison_operator, dlq.threshold]).toEqual([
      'ApproximateNumberOfMessagesVisible',
      'GreaterThanThreshold',
      0,
    ]);
    const age2 = named('dlq-age');
    expect([age2.namespace, age2.metric_name, age2.dimensions.QueueName]).toEqual([
      'AWS/SQS',
      'ApproximateAgeOfOldestMessage',
      '${aws_sqs_queue.dlq_queue_2E673ECB.name}',
    ]);
    expect([age2.threshold, age2.treat_missing_data]).toEqual([
      '${var.dlq_age_alarm_seconds}',
      'notBreaching',
    ]);
    const lag = named('reader-lag');
    expect([lag.namespace, lag.metric_name]).toEqual([METRIC_NAMESPACE, METRICS.ReaderLagSeconds]);
    expect(lag.dimensions).toEqual(metricDimensions('reader', 'dev'));
    expect(lag.threshold).toBe('${var.reader_lag_alarm_seconds}');
    for (const what of ['reader', 'embedder']) {
      const running = named(`${what}-not-running`);
      expect([running.namespace, running.metric_name]).toEqual(['ECS/ContainerInsights', 'RunningTaskCount']);
      expect([running.comparison_operator, running.threshold, running.treat_missing_data]).toEqual([
        'LessThanThreshold',
        1,
        'breaching',
      ]);
      expect(running.dimensions.ServiceName).toMatch(
        new RegExp(`^\\$\\{aws_ecs_service\\.${what}_service_[^.]+\\.name\\}$`),
      );
    }
    const cluster = one(j, 'aws_ecs_cluster');
    expect(cluster.setting).toEqual([{ name: 'containerInsights', value: 'enabled' }]);
    for (const a of alarms) expect(a.alarm_actions).toHaveLength(1);
  });

  it('watches exactly the stall metrics the services emit, a missing datapoint counting as a stall', () => {
    // Prepare
    const j = tf('prod');
    const named = (n: string) =>
      one(j, 'aws_cloudwatch_metric_alarm', (a) => a.alarm_name === `drugsync-prod-${n}`);
    // Act
    const reader = named('reader-stall');
    const embedder = named('embedder-stall');
    // Assess: the names and dimensions the services emit them with (services/core/metrics.ts)
    expect(STALL_METRICS).toEqual([METRICS.ReaderStallSeconds, METRICS.EmbedderStallSeconds]);
    expect([reader.namespace, reader.metric_name, reader.dimensions]).toEqual([
      METRIC_NAMESPACE,
      METRICS.ReaderStallSeconds,
      metricDimensions('reader', 'prod'),
    ]);
    expect([embedder.namespace, embedder.metric_name, embedder.dimensions]).toEqual([
      METRIC_NAMESPACE,
      METRICS.EmbedderStallSeconds,
      metricDimensions('embedder', 'prod'),
    ]);
    expect(SERVICE_METRICS.reader).toContain(reader.metric_name);
    expect(SERVICE_METRICS.embedder).toContain(embedder.metric_name);
    for (const a of [reader, embedder]) {
      expect([a.statistic, a.period, a.evaluation_periods, a.datapoints_to_alarm]).toEqual([
        'Maximum',
        60,
        3,
        2,
      ]);
      expect([a.comparison_operator, a.treat_missing_data]).toEqual(['GreaterThanThreshold', 'breaching']);
      expect(a.alarm_actions).toEqual(['${aws_sns_topic.observability_alarms_32EEF168.arn}']);
    }
    expect(reader.threshold).toBe('${var.reader_stall_alarm_seconds}');
    expect(embedder.threshold).toBe('${var.embedder_stall_alarm_seconds}');
    const vars = j.variable as Json;
    expect(vars.reader_stall_alarm_seconds.default).toBe(STAGE_DEFAULTS.prod.readerStallAlarmSeconds);
    expect(vars.embedder_stall_alarm_seconds.default).toBe(STAGE_DEFAULTS.prod.embedderStallAlarmSeconds);
    expect(vars.dlq_age_alarm_seconds.default).toBe(STAGE_DEFAULTS.prod.dlqAgeAlarmSeconds);
    // only our progress heartbeats breach on missing data (the lag, the queue, the stream: their own reasons)
    const ours = resources(j, 'aws_cloudwatch_metric_alarm').filter((a) => a.namespace === METRIC_NAMESPACE);
    for (const a of ours)
      expect(a.treat_missing_data).toBe(STALL_METRICS.includes(a.metric_name) ? 'breaching' : 'notBreaching');
  });

  it('subscribes every alarm_subscriptions entry to the topic; prod requires at least one, dev says nobody', () => {
    // Prepare
    const dev = tf('dev');
    const prod = tf('prod');
    // Act
    const sub = one(dev, 'aws_sns_topic_subscription');
    const devVar = (dev.variable as Json).alarm_subscriptions;
    const prodVar = (prod.variable as Json).alarm_subscriptions;
    // Assess: one subscription per entry, keyed by endpoint, on the alarm topic
    expect(sub.for_each).toBe('${{ for key, val in var.alarm_subscriptions: val.endpoint => val }}');
    expect([sub.protocol, sub.endpoint]).toEqual(['${each.value.protocol}', '${each.value.endpoint}']);
    expect(sub.topic_arn).toBe('${aws_sns_topic.observability_alarms_32EEF168.arn}');
    expect(devVar.type).toBe('list(object({protocol=string, endpoint=string}))');
    expect(devVar.default).toEqual([]);
    expect(prodVar.default).toBeUndefined();
    const messages = (v: Json) => (v.validation as Json[]).map((x) => x.error_message as string);
    expect(messages(prodVar).some((m) => m.includes('at least one'))).toBe(true);
    expect(messages(devVar).some((m) => m.includes('at least one'))).toBe(false);
    expect(messages(prodVar).filter((m) => !m.includes('at least one'))).toEqual(messages(devVar));
    // the apply output says who receives them, or NOBODY
    expect((dev.output as Json).alarm_recipients.value).toContain('NOBODY');
  });

  it('notifies the alarm topic when a verify run exits non-zero, fails to start, or is not launched', () => {
    const j = tf('dev');
    const rule = one(j, 'aws_cloudwatch_event_rule', (r) => r.name === 'drugsync-dev-verify-failed');
    const pattern = JSON.parse(rule.event_pattern as string) as Json;
    expect(pattern['detail-type']).toEqual(['ECS Task State Change']);
    expect(pattern.detail.lastStatus).toEqual(['STOPPED']);
    expect(pattern.detail.group).toEqual(['family:${aws_ecs_task_definition.verify_task_AAEA1F99.family}']);
    expect(pattern.detail.$or).toEqual([
      { containers: { exitCode: [{ 'anything-but': 0 }] } },
      { stopCode: ['TaskFailedToStart'] },
      { containers: { exitCode: [{ exists: false }] } },
    ]);
    const target = one(j, 'aws_cloudwatch_event_target', (t) => t.target_id === 'alarm-topic');
    expect(target.arn).toMatch(/^\$\{aws_sns_topic\.[^.]+\.arn\}$/);
    const policy = JSON.parse(one(j, 'aws_sns_topic_policy').policy as string) as Json;
    const events = (policy.Statement as Json[]).find((s) => s.Principal.Service === 'events.amazonaws.com');
    expect(events?.Condition.ArnEquals['aws:SourceArn']).toMatch(
      /aws_cloudwatch_event_rule\.observability_verify-failed/,
    );
    // the schedule's RunTask call failing starts no task at all: EventBridge counts it
    const notLaunched = one(j, 'aws_cloudwatch_metric_alarm', (a) => a.metric_name === 'FailedInvocations');
    expect(notLaunched.namespace).toBe('AWS/Events');
    expect(notLaunched.dimensions).toEqual({
      RuleName: '${aws_cloudwatch_event_rule.verify_schedule_96A6880C.name}',
    });
    expect([notLaunched.statistic, notLaunched.comparison_operator, notLaunched.threshold]).toEqual([
      'Sum',
      'GreaterThanThreshold',
      0,
    ]);
  });

  it('keeps every log group on a retention', () => {
    const j = tf('dev');
    const groups = resources(j, 'aws_cloudwatch_log_group');
    expect(groups.map((g) => g.name).sort()).toEqual([
      '/ecs/drugsync-dev-backfill',
      '/ecs/drugsync-dev-embedder',
      '/ecs/drugsync-dev-reader',
      '/ecs/drugsync-dev-verify',
    ]);
    for (const g of groups) expect(g.retention_in_days).toBe('${var.log_retention_days}');
    expect(j.variable.log_retention_days.default).toBe(14);
    expect(tf('prod').variable.log_retention_days.default).toBe(90);
  });

  it('outputs the stream, the DLQ, the services and the task definitions', () => {
    const out = tf('dev').output as Json;
    expect(Object.keys(out).sort()).toEqual(
      [
        'alarm_recipients',
        'alarm_topic_arn',
        'aurora_parameter_group',
        'dashboard_url',
        'backfill_run_task_network',
        'backfill_task_definition_arn',
        'cluster_name',
        'dlq_arn',
        'dlq_url',
        'embedder_service_name',
        'embedder_task_definition_arn',
        'reader_service_name',
        'reader_task_definition_arn',
        'stream_arn',
        'stream_name',
        'verify_task_definition_arn',
      ].sort(),
    );
  });
});

describe('IAM', () => {
  it('has no wildcard action and no unexplained wildcard resource in any policy document', () => {
    for (const stage of STAGES) {
      const docs = policyDocuments(tf(stage));
      // 9 role policies (task + execution role of 4 workloads, the verify schedule) + 9 trust policies
      // + the alarm topic's policy
      expect(docs.length).toBe(19);
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
    expect(embedder.filter((a) => a.startsWith('kinesis:')).sort()).toEqual([
      'kinesis:DescribeStream',
      'kinesis:DescribeStreamSummary',
      'kinesis:GetRecords',
      'kinesis:GetShardIterator',
      'kinesis:ListShards',
    ]);
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

  it('gives the embedder task exactly: the stream, the DLQ, Titan, the two secrets — as an ECS task', () => {
    const j = tf('dev');
    const byAction = new Map<string, string[]>();
    for (const g of grants(j, 'drugsync-dev-embedder'))
      for (const a of g.actions) byAction.set(a, [...(byAction.get(a) ?? []), ...g.resources]);
    expect([...byAction.keys()].filter((a) => !a.startsWith('kinesis:')).sort()).toEqual([
      'bedrock:InvokeModel',
      'secretsmanager:GetSecretValue',
      'sqs:SendMessage',
    ]);
    expect(byAction.get('sqs:SendMessage')).toEqual([
      expect.stringMatching(/^\$\{aws_sqs_queue\.[^.]+\.arn\}$/),
    ]);
    expect(new Set(byAction.get('secretsmanager:GetSecretValue'))).toEqual(
      new Set(['${var.aurora_secret_arn}', '${var.redis_auth_secret_arn}']),
    );
    const role = one(j, 'aws_iam_role', (r) => r.name === 'drugsync-dev-embedder');
    const trust = JSON.parse(role.assume_role_policy as string) as Json;
    expect(trust.Statement[0].Principal).toEqual({ Service: 'ecs-tasks.amazonaws.com' });
    expect(trust.Statement[0].Condition).toEqual({
      StringEquals: { 'aws:SourceAccount': '${data.aws_caller_identity.account.account_id}' },
    });
    // its execution role pulls the image and writes its own log group only
    const exec = grants(j, 'drugsync-dev-embedder-exec');
    expect(exec.flatMap((g) => g.resources).filter((r) => r.includes('log-group'))).toEqual([]);
    expect(exec.find((g) => g.actions.includes('logs:PutLogEvents'))?.resources).toEqual([
      expect.stringMatching(/^\$\{aws_cloudwatch_log_group\.logs_embedder_[^.]+\.arn\}:log-stream:\*$/),
    ]);
    // no Lambda-era network-interface permissions anywhere
    const all = policyDocuments(j).flatMap(({ doc }) => list(doc.Statement) as unknown as Json[]);
    expect(all.flatMap((s) => list(s.Action)).filter((a) => a.startsWith('ec2:'))).toEqual([]);
    expect(WILDCARD_RESOURCE_ALLOWLIST.map((a) => a.id)).toEqual([
      'ecr-auth-token',
      'log-streams-of-own-group',
    ]);
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

/**
 * The dashboard body parsed: each unquoted Terraform reference (a threshold: `"value":${…}`) becomes the
 * number -(i + 1), its expression kept in `refs[i]`.
 */
function dashboardOf(j: Json): { name: string; widgets: Json[]; refs: string[] } {
  const d = one(j, 'aws_cloudwatch_dashboard');
  const refs: string[] = [];
  const text = (d.dashboard_body as string).replace(/:\$\{([^}]+)\}/g, (_m, expr: string) => {
    refs.push(expr);
    return `:${-refs.length}`;
  });
  return { name: d.dashboard_name as string, widgets: (JSON.parse(text) as Json).widgets as Json[], refs };
}

/** Every metric line of the dashboard's graphs: namespace, name, dimensions, and the graph it is on. */
function plotted(widgets: Json[]) {
  return widgets
    .filter((w) => w.type === 'metric')
    .flatMap((w) =>
      (w.properties.metrics as unknown[][]).map((line) => {
        const parts = line.filter((x) => typeof x === 'string') as string[];
        const [namespace, name, ...dims] = parts as [string, string, ...string[]];
        const dimensions: Record<string, string> = {};
        for (let i = 0; i + 1 < dims.length; i += 2) dimensions[dims[i] as string] = dims[i + 1] as string;
        return { namespace, name, dimensions, widget: w };
      }),
    );
}

describe('dashboard', () => {
  it('is one per stage, named for it, with the alarm states on top and every alarm of the stage in them', () => {
    for (const stage of STAGES) {
      // Act
      const { name, widgets } = dashboardOf(tf(stage));
      // Assess
      expect(name).toBe(`drugsync-${stage}-pipeline`);
      expect(widgets[0]?.type).toBe('alarm');
      const alarmIds = Object.keys(tf(stage).resource.aws_cloudwatch_metric_alarm as Json);
      expect([...(widgets[0]?.properties.alarms as string[])].sort()).toEqual(
        alarmIds.map((id) => `\${aws_cloudwatch_metric_alarm.${id}.arn}`).sort(),
      );
      for (const w of widgets.filter((x) => x.type === 'metric')) {
        expect(w.properties.region).toBe('${var.region}');
        expect(w.properties.view).toBe('timeSeries');
      }
    }
  });

  it('plots only metrics a service emits (with its dimensions) or AWS publishes, and every one we emit', () => {
    // Prepare
    const serviceOf = Object.fromEntries(
      (['reader', 'embedder', 'verify'] as const).map((s) => [metricDimensions(s).Service, s]),
    );
    // Act
    const lines = plotted(dashboardOf(tf('prod')).widgets);
    // Assess
    const ours = lines.filter((l) => l.namespace === METRIC_NAMESPACE);
    for (const l of ours) {
      const service = serviceOf[l.dimensions.Service as string];
      expect(service, `${l.name}: Service ${l.dimensions.Service}`).toBeDefined();
      expect(SERVICE_METRICS[service as 'reader']).toContain(l.name as MetricName);
      expect(l.dimensions).toEqual(metricDimensions(service as 'reader', 'prod'));
    }
    for (const l of lines.filter((x) => x.namespace !== METRIC_NAMESPACE))
      expect(['AWS/Kinesis', 'AWS/SQS', 'ECS/ContainerInsights'], `${l.namespace} ${l.name}`).toContain(
        l.namespace,
      );
    expect([...new Set(ours.map((l) => l.name))].sort()).toEqual(
      Object.values(SERVICE_METRICS).flat().sort(),
    );
    expect(lines.map((l) => l.name)).toEqual(
      expect.arrayContaining([
        'GetRecords.IteratorAgeMilliseconds',
        'ApproximateNumberOfMessagesVisible',
        'ApproximateAgeOfOldestMessage',
        'RunningTaskCount',
      ]),
    );
  });

  it('draws each alarm’s own threshold on the graph of the metric it watches', () => {
    // Prepare
    const j = tf('dev');
    const { widgets, refs } = dashboardOf(j);
    const lines = plotted(widgets);
    const alarms = Object.entries(j.resource.aws_cloudwatch_metric_alarm as Record<string, Json>);
    // Act: the alarms whose metric is plotted
    const drawn = alarms.filter(([, a]) =>
      lines.some((l) => l.namespace === a.namespace && l.name === a.metric_name),
    );
    // Assess: all but the verify schedule's (EventBridge invocations) are plotted
    expect(alarms.length - drawn.length).toBe(1);
    for (const [id, a] of drawn) {
      const graphs = lines
        .filter((l) => l.namespace === a.namespace && l.name === a.metric_name)
        .map((l) => l.widget);
      const values = graphs.flatMap((w) =>
        ((w.properties.annotations?.horizontal ?? []) as Json[]).map((h) => h.value as number),
      );
      const expr = `aws_cloudwatch_metric_alarm.${id}.threshold`;
      expect(
        values.some((v) => v < 0 && refs[-v - 1] === expr),
        `${a.alarm_name as string} threshold on its graph`,
      ).toBe(true);
    }
  });
});

describe('snapshot', () => {
  it('matches the committed dev stack (asset hashes masked)', () => {
    const masked = rawDev.text
      // the asset folder carries a content hash of the attach script (tested on its own above)
      .replace(/assets\/([A-Za-z0-9_-]+?)_[0-9A-F]{8}\/[0-9A-F]{32}\//g, 'assets/$1_<id>/<hash>/');
    expect(JSON.parse(masked)).toMatchSnapshot();
  });
});

/** Heredoc attributes of the HCL export: `type.name.attribute` → the document they hold. */
/** A JSON-valued attribute as Terraform reads it: a number that is a reference (`:${…}`) is kept as its text. */
function parseTemplateJson(text: string): unknown {
  return JSON.parse(text.replace(/(":\s*)(\$\{[^}]+\})/g, '$1"$2"'));
}

function hclHeredocs(hcl: string): Map<string, unknown> {
  const docs = new Map<string, unknown>();
  let block = '';
  for (const m of hcl.matchAll(
    /^resource "([a-z0-9_]+)" "([^"]+)" \{$|^([a-z_]+) = <<EOF\n([\s\S]*?)\nEOF$/gm,
  )) {
    if (m[1]) block = `${m[1]}.${m[2]}`;
    else docs.set(`${block}.${m[3]}`, parseTemplateJson(m[4] as string));
  }
  return docs;
}

describe('HCL export', () => {
  it("writes every JSON-valued attribute as a heredoc holding the JSON synth's document, and no variable as literal text", () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-hcl-'));
    try {
      synthStacks(outdir, ['dev'], { hcl: true }); // what `cdktf synth --hcl` does
      const hcl = fs.readFileSync(path.join(outdir, 'stacks', 'drugsync-dev', 'cdk.tf'), 'utf8');
      // cdktf writes one-line string attributes unescaped: a JSON string would end the HCL string at its first quote
      expect(hcl).not.toMatch(/= "[[{]"/);
      // (and checkov's HCL parser cannot read an object inside an interpolation: no jsonencode(…) either)
      expect(hcl).not.toMatch(/jsonencode\(/);
      const expected = new Map<string, unknown>();
      for (const [type, byName] of Object.entries(
        tf('dev').resource as Record<string, Record<string, Json>>,
      )) {
        for (const [name, body] of Object.entries(byName)) {
          for (const [attr, v] of Object.entries(body)) {
            if (typeof v === 'string' && /^[[{]/.test(v))
              expected.set(`${type}.${name}.${attr}`, parseTemplateJson(v));
          }
        }
      }
      // 19 IAM documents, 4 container definitions, 1 event pattern, 1 dashboard
      expect(expected.size).toBeGreaterThanOrEqual(25);
      expect(Object.fromEntries(hclHeredocs(hcl))).toEqual(Object.fromEntries(expected));
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

  it('writes cdktf.out/stacks/<stack>/cdk.tf.json and the attach script for every stage without terraform', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-synth-'));
    try {
      const r = synthCli(outdir);
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      for (const stage of STAGES) {
        const dir = path.join(outdir, 'stacks', `drugsync-${stage}`);
        const j = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.tf.json'), 'utf8')) as Json;
        expect(j.resource.aws_ecs_service).toBeDefined();
        expect(j.terraform.backend.local.path).toBe(`../../../terraform.drugsync-${stage}.tfstate`);
        // local-exec runs the script relative to the stack directory: it is there, byte for byte
        const script = one(j, 'terraform_data').provisioner[0]['local-exec'].command as string;
        expect(fs.readFileSync(path.join(dir, script), 'utf8')).toBe(fs.readFileSync(ATTACH_SCRIPT, 'utf8'));
      }
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
