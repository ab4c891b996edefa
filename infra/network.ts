/**
 * Security groups. Each drugsync workload has its own group with no ingress and only the egress it needs:
 * Aurora and Redis (every workload: the embedder reads the table for its re-sync and truncate sweep) and
 * HTTPS to AWS APIs (Kinesis, Bedrock, Secrets Manager, SQS, ECR, Logs — through NAT or VPC endpoints). Matching ingress rules are added to the
 * existing Aurora and Redis groups as separate rule resources: those groups themselves stay unmanaged.
 */
import { Construct } from 'constructs';
import { SecurityGroup } from '@cdktf/provider-aws/lib/security-group/index.js';
import { VpcSecurityGroupEgressRule } from '@cdktf/provider-aws/lib/vpc-security-group-egress-rule/index.js';
import { VpcSecurityGroupIngressRule } from '@cdktf/provider-aws/lib/vpc-security-group-ingress-rule/index.js';
import type { Naming } from './config.ts';

export interface NetworkProps {
  naming: Naming;
  vpcId: string;
  auroraSecurityGroupId: string;
  auroraPort: number;
  redisSecurityGroupId: string;
  redisPort: number;
}

export class Network extends Construct {
  readonly reader: SecurityGroup;
  readonly jobs: SecurityGroup;
  readonly embedder: SecurityGroup;

  constructor(scope: Construct, id: string, p: NetworkProps) {
    super(scope, id);
    const group = (what: string, description: string) =>
      new SecurityGroup(this, what, {
        name: p.naming.name(what),
        description,
        vpcId: p.vpcId,
        // no inline rules: the rules are separate resources below (inline and separate rules would fight)
        tags: { ...p.naming.tags(), Name: p.naming.name(what) },
      });
    this.reader = group('reader', 'drugsync binlog reader: egress to Aurora, Redis, AWS APIs only');
    this.jobs = group('jobs', 'drugsync backfill and verify tasks: egress to Aurora, Redis, AWS APIs only');
    this.embedder = group('embedder', 'drugsync embedder: egress to Aurora, Redis, AWS APIs only');

    const egress = (
      sg: SecurityGroup,
      what: string,
      port: number,
      to: { sg?: string; cidr?: string },
      d: string,
    ) =>
      new VpcSecurityGroupEgressRule(this, `${sg.node.id}-to-${what}`, {
        securityGroupId: sg.id,
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        description: d,
        ...(to.sg ? { referencedSecurityGroupId: to.sg } : {}),
        ...(to.cidr ? { cidrIpv4: to.cidr } : {}),
      });
    const ingress = (target: string, targetName: string, from: SecurityGroup, port: number, d: string) =>
      new VpcSecurityGroupIngressRule(this, `${targetName}-from-${from.node.id}`, {
        securityGroupId: target,
        ipProtocol: 'tcp',
        fromPort: port,
        toPort: port,
        referencedSecurityGroupId: from.id,
        description: d,
      });

    for (const sg of [this.reader, this.jobs, this.embedder]) {
      egress(sg, 'aurora', p.auroraPort, { sg: p.auroraSecurityGroupId }, 'MySQL to Aurora');
      ingress(p.auroraSecurityGroupId, 'aurora', sg, p.auroraPort, `MySQL from ${p.naming.name(sg.node.id)}`);
      egress(sg, 'redis', p.redisPort, { sg: p.redisSecurityGroupId }, 'Redis');
      ingress(p.redisSecurityGroupId, 'redis', sg, p.redisPort, `Redis from ${p.naming.name(sg.node.id)}`);
      // AWS APIs have no fixed addresses: HTTPS anywhere (through NAT or VPC interface endpoints)
      egress(sg, 'https', 443, { cidr: '0.0.0.0/0' }, 'HTTPS to AWS APIs');
    }
  }
}
