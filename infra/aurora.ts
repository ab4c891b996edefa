/**
 * Aurora MySQL settings for change data capture: a cluster parameter group (aurora-mysql8.0) with
 * row-based, full-image, full-metadata binlogs and TLS required. Attaching it to the existing cluster is
 * the user's explicit choice (variable attach_aurora_parameter_group), never a side effect of `apply`, and
 * never replaces a group that holds other settings: infra/scripts/attach-parameter-group.sh attaches only
 * over a default group and otherwise refuses with the commands to run instead. The one-time retention SQL
 * and the reboot are documented in docs/deploy.md.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Construct } from 'constructs';
import { AssetType, Fn, TerraformAsset, TerraformResource, Token } from 'cdktf';
import type { IResolvable } from 'cdktf';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group/index.js';
import type { Naming } from './config.ts';

export const AURORA_PARAMETER_FAMILY = 'aurora-mysql8.0';

/** The SQL to run once as the master user: keep binlogs long enough to restart the reader after an outage. */
export const BINLOG_RETENTION_SQL = "CALL mysql.rds_set_configuration('binlog retention hours', 72);";

/** The attach step (bash; copied into the synthesized stack as an asset and run by local-exec). */
export const ATTACH_SCRIPT = path.join(
  path.dirname(fileURLToPath(import.meta.url)),
  'scripts',
  'attach-parameter-group.sh',
);

export interface AuroraProps {
  naming: Naming;
  clusterIdentifier: string;
  region: string;
  attach: IResolvable;
  enhancedBinlog: IResolvable;
}

export class AuroraBinlogSettings extends Construct {
  readonly parameterGroup: RdsClusterParameterGroup;
  readonly attachment: TerraformResource;
  readonly attachScript: TerraformAsset;

  constructor(scope: Construct, id: string, p: AuroraProps) {
    super(scope, id);
    const onOff = (on: string, off: string) => Token.asString(Fn.conditional(p.enhancedBinlog, on, off));
    const parameters: { name: string; value: string }[] = [
      // the reader decodes row events only; statement/mixed logging would hide row changes
      { name: 'binlog_format', value: 'ROW' },
      // before and after images of every column: deletes and NDC changes carry the whole row
      { name: 'binlog_row_image', value: 'FULL' },
      // column names in the binlog: DDL-safe decoding without guessing column order
      { name: 'binlog_row_metadata', value: 'FULL' },
      // enhanced binlog (Aurora MySQL 3.03.1+): lower binlog overhead on the writer
      { name: 'aurora_enhanced_binlog', value: onOff('1', '0') },
      { name: 'binlog_backup', value: onOff('0', '1') },
      { name: 'binlog_replication_globaldb', value: onOff('0', '1') },
      // every connection encrypted: the services connect with DB_TLS=true and the RDS CA bundle
      { name: 'require_secure_transport', value: 'ON' },
    ];
    this.parameterGroup = new RdsClusterParameterGroup(this, 'binlog', {
      name: p.naming.name('binlog'),
      family: AURORA_PARAMETER_FAMILY,
      description: 'drugsync: row-based binlog with full row images and metadata for CDC',
      // everything lands together at the writer reboot the operator schedules (docs/deploy.md)
      parameter: parameters.map((x) => ({ ...x, applyMethod: 'pending-reboot' })),
      tags: p.naming.tags(),
    });

    // Explicit opt-in only: modifies a cluster this stack does not own, and only over a default group (the
    // script refuses anything else). Static parameters take effect after the writer reboots, which stays
    // the operator's decision (docs/deploy.md). A plain `terraform_data` resource (Terraform ≥ 1.4), not
    // cdktf's DataResource class: that one asks the terraform binary for its version at synth, and synth
    // must work without terraform installed.
    this.attachScript = new TerraformAsset(this, 'attach-script', {
      path: ATTACH_SCRIPT,
      type: AssetType.FILE,
    });
    this.attachment = new TerraformResource(this, 'attach', {
      terraformResourceType: 'terraform_data',
      count: Token.asNumber(Fn.conditional(p.attach, 1, 0)),
      provisioners: [
        {
          type: 'local-exec',
          interpreter: ['bash'],
          // relative to the stack directory, where terraform runs (the asset is copied there by synth)
          command: this.attachScript.path,
          environment: {
            REGION: p.region,
            CLUSTER: p.clusterIdentifier,
            GROUP: this.parameterGroup.name,
            PARAMETERS: parameters.map((x) => `${x.name}=${x.value}`).join(' '),
          },
        },
      ],
    });
    this.attachment.addOverride('triggers_replace', {
      parameter_group: this.parameterGroup.name,
      cluster: p.clusterIdentifier,
    });
  }
}
