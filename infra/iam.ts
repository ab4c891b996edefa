/**
 * IAM: one task role and one execution role per ECS workload, built only from resource
 * ARNs. No wildcard action anywhere; a wildcard resource only where AWS offers none, named by an entry of
 * WILDCARD_RESOURCE_ALLOWLIST (iam-allowlist.ts) — the builder refuses anything else at synth time.
 */
import { Construct } from 'constructs';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role/index.js';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy/index.js';
import { DrugsyncError } from '../services/core/errors.ts';
import { WILDCARD_RESOURCE_ALLOWLIST, isWildcardAction, isWildcardResource } from './iam-allowlist.ts';
import type { Naming } from './config.ts';
import { tfJson } from './json.ts';

export interface Statement {
  sid: string;
  actions: string[];
  resources: string[];
  /** id of the WILDCARD_RESOURCE_ALLOWLIST entry, required when a resource contains "*" */
  wildcardAllowance?: string;
  condition?: Record<string, Record<string, string | string[]>>;
}

function invalid(message: string, context: Record<string, string>): never {
  throw new DrugsyncError('CONFIG_INVALID', message, {
    context,
    remedy:
      'name the exact actions and resource ARNs; a wildcard resource needs an entry in infra/iam-allowlist.ts explaining why AWS offers no narrower one',
  });
}

/** Checks one statement against the rules and returns it in IAM's JSON shape. */
export function policyStatement(s: Statement): Record<string, unknown> {
  if (s.actions.length === 0 || s.resources.length === 0) {
    invalid(`IAM statement ${s.sid} has no action or no resource`, { sid: s.sid });
  }
  for (const a of s.actions) {
    if (isWildcardAction(a))
      invalid(`IAM statement ${s.sid} uses the wildcard action "${a}"`, { sid: s.sid, action: a });
  }
  const wild = s.resources.filter(isWildcardResource);
  if (wild.length > 0) {
    const entry = WILDCARD_RESOURCE_ALLOWLIST.find((e) => e.id === s.wildcardAllowance);
    if (!entry) {
      invalid(
        `IAM statement ${s.sid} has the wildcard resource(s) ${wild.join(', ')} without an allow-list entry`,
        {
          sid: s.sid,
        },
      );
    }
    const extra = s.actions.filter((a) => !entry.actions.includes(a));
    if (extra.length > 0) {
      invalid(`IAM statement ${s.sid}: ${extra.join(', ')} not covered by allow-list entry ${entry.id}`, {
        sid: s.sid,
        allowance: entry.id,
      });
    }
  }
  return {
    Sid: s.sid,
    Effect: 'Allow',
    Action: s.actions,
    Resource: s.resources,
    ...(s.condition ? { Condition: s.condition } : {}),
  };
}

/** A policy document as a JSON string (tokens inside resolve to Terraform interpolations). */
export function policyDocument(statements: Statement[]): string {
  return JSON.stringify(policyDocumentObject(statements));
}

/** A checked policy document (object form; see json.ts for how it is rendered). */
export function policyDocumentObject(statements: Statement[]): Record<string, unknown> {
  const sids = new Set<string>();
  for (const s of statements) {
    if (sids.has(s.sid)) invalid(`duplicate IAM statement id ${s.sid}`, { sid: s.sid });
    sids.add(s.sid);
  }
  return { Version: '2012-10-17', Statement: statements.map(policyStatement) };
}

export function assumeRolePolicy(
  service: string,
  conditions?: Record<string, Record<string, string>>,
): Record<string, unknown> {
  return {
    Version: '2012-10-17',
    Statement: [
      {
        Effect: 'Allow',
        Principal: { Service: service },
        Action: 'sts:AssumeRole',
        ...(conditions ? { Condition: conditions } : {}),
      },
    ],
  };
}

export interface RoleProps {
  naming: Naming;
  /** short name: the role is `drugsync-{stage}-{what}` */
  what: string;
  description: string;
  service: 'ecs-tasks.amazonaws.com' | 'events.amazonaws.com';
  statements: Statement[];
  accountId: string;
  /**
   * aws:SourceAccount condition on the trust policy (confused-deputy guard). Only where AWS documents that
   * the service sets the key when assuming the role (ECS task roles); elsewhere the role could not be
   * assumed at all.
   */
  guardSourceAccount?: boolean;
}

/** A role with exactly one inline policy (no managed policies: everything is visible and tested here). */
export class ServiceRole extends Construct {
  readonly role: IamRole;
  readonly policy: IamRolePolicy;
  constructor(scope: Construct, id: string, p: RoleProps) {
    super(scope, id);
    this.role = new IamRole(this, 'role', {
      name: p.naming.name(p.what),
      description: p.description,
      assumeRolePolicy: tfJson(
        assumeRolePolicy(
          p.service,
          p.guardSourceAccount ? { StringEquals: { 'aws:SourceAccount': p.accountId } } : undefined,
        ),
      ),
      tags: p.naming.tags(),
    });
    this.policy = new IamRolePolicy(this, 'policy', {
      name: p.naming.name(p.what),
      role: this.role.id,
      policy: tfJson(policyDocumentObject(p.statements)),
    });
  }
  get arn(): string {
    return this.role.arn;
  }
}

/** Everything the roles are built from: ARNs only. */
export interface IamInputs {
  naming: Naming;
  accountId: string;
  partition: string;
  region: string;
  streamArn: string;
  dlqArn: string;
  dbSecretArn: string;
  redisSecretArn: string;
  titanModelId: string;
  ecrRepositoryArn: string;
  logGroups: { reader: string; backfill: string; verify: string; embedder: string };
}

const logStreams = (groupArn: string) => `${groupArn}:log-stream:*`;

/** Roles of every service. Who may do what is decided here and nowhere else. */
export class ServiceRoles extends Construct {
  readonly readerTask: ServiceRole;
  readonly readerExecution: ServiceRole;
  readonly backfillTask: ServiceRole;
  readonly backfillExecution: ServiceRole;
  readonly verifyTask: ServiceRole;
  readonly verifyExecution: ServiceRole;
  readonly embedderTask: ServiceRole;
  readonly embedderExecution: ServiceRole;

  constructor(scope: Construct, id: string, i: IamInputs) {
    super(scope, id);
    const base = { naming: i.naming, accountId: i.accountId };
    const titanArn = `arn:${i.partition}:bedrock:${i.region}::foundation-model/${i.titanModelId}`;
    const readDbSecret: Statement = {
      sid: 'ReadReplicationUserSecret',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [i.dbSecretArn],
    };
    // every service reads the Redis password itself (and again after a rotation)
    const readRedisSecret: Statement = {
      sid: 'ReadRedisPassword',
      actions: ['secretsmanager:GetSecretValue'],
      resources: [i.redisSecretArn],
    };
    const invokeTitan: Statement = {
      sid: 'InvokeTitanEmbeddings',
      actions: ['bedrock:InvokeModel'],
      resources: [titanArn],
    };

    /** ECS execution role: pull the image, write its log group (no secret: the services read their own). */
    const execution = (what: string, logGroupArn: string) =>
      new ServiceRole(this, `${what}-execution`, {
        ...base,
        what: `${what}-exec`,
        description: `ECS execution role of drugsync ${what}: image pull, logs`,
        service: 'ecs-tasks.amazonaws.com',
        statements: [
          {
            sid: 'EcrAuthToken',
            actions: ['ecr:GetAuthorizationToken'],
            // AWS offers no resource-level permission for GetAuthorizationToken (see iam-allowlist.ts)
            resources: ['*'],
            wildcardAllowance: 'ecr-auth-token',
          },
          {
            sid: 'PullImage',
            actions: ['ecr:BatchCheckLayerAvailability', 'ecr:GetDownloadUrlForLayer', 'ecr:BatchGetImage'],
            resources: [i.ecrRepositoryArn],
          },
          {
            sid: 'WriteOwnLogGroup',
            actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
            // stream names are chosen at run time; only streams of our own group (see iam-allowlist.ts)
            resources: [logStreams(logGroupArn)],
            wildcardAllowance: 'log-streams-of-own-group',
          },
        ],
      });

    this.readerExecution = execution('reader', i.logGroups.reader);
    this.backfillExecution = execution('backfill', i.logGroups.backfill);
    this.verifyExecution = execution('verify', i.logGroups.verify);
    this.embedderExecution = execution('embedder', i.logGroups.embedder);

    this.readerTask = new ServiceRole(this, 'reader-task', {
      ...base,
      what: 'reader',
      guardSourceAccount: true,
      description: 'drugsync binlog reader: replication user and Redis secrets, put to the change stream',
      service: 'ecs-tasks.amazonaws.com',
      statements: [
        readDbSecret,
        readRedisSecret,
        {
          sid: 'PublishChanges',
          actions: [
            'kinesis:PutRecords',
            'kinesis:PutRecord',
            'kinesis:ListShards',
            'kinesis:DescribeStreamSummary',
          ],
          resources: [i.streamArn],
        },
      ],
    });
    this.backfillTask = new ServiceRole(this, 'backfill-task', {
      ...base,
      what: 'backfill',
      guardSourceAccount: true,
      description: 'drugsync backfill: replication user and Redis secrets, Titan embeddings',
      service: 'ecs-tasks.amazonaws.com',
      statements: [readDbSecret, readRedisSecret, invokeTitan],
    });
    this.verifyTask = new ServiceRole(this, 'verify-task', {
      ...base,
      what: 'verify',
      guardSourceAccount: true,
      description:
        'drugsync verify (and verify --repair): replication user and Redis secrets, Titan embeddings',
      service: 'ecs-tasks.amazonaws.com',
      statements: [readDbSecret, readRedisSecret, invokeTitan],
    });
    // construct id 'embedder' kept: upgrading a deployment that ran the Lambda driver updates this role in
    // place rather than creating a second role of the same name
    this.embedderTask = new ServiceRole(this, 'embedder', {
      ...base,
      what: 'embedder',
      guardSourceAccount: true,
      description:
        'drugsync embedder: read the change stream, replication user secret (re-sync, truncate sweep), Titan, dead letters',
      service: 'ecs-tasks.amazonaws.com',
      statements: [
        {
          sid: 'ReadChangeStream',
          actions: [
            'kinesis:GetRecords',
            'kinesis:GetShardIterator',
            'kinesis:DescribeStream',
            'kinesis:DescribeStreamSummary',
            'kinesis:ListShards',
          ],
          resources: [i.streamArn],
        },
        readDbSecret,
        readRedisSecret,
        invokeTitan,
        {
          sid: 'DeadLetters',
          actions: ['sqs:SendMessage'],
          resources: [i.dlqArn],
        },
      ],
    });
  }
}
