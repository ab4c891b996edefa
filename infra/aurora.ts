/**
 * Aurora MySQL binlog settings for change data capture: a cluster parameter group (aurora-mysql8.0) with
 * row-based, full-image, full-metadata binlogs. Attaching it to the existing cluster is the user's
 * explicit choice (variable attach_aurora_parameter_group), never a side effect of `apply`; the one-time
 * retention SQL and the reboot are documented in docs/deploy.md.
 */
import { Construct } from 'constructs';
import { Fn, TerraformResource, Token } from 'cdktf';
import type { IResolvable } from 'cdktf';
import { RdsClusterParameterGroup } from '@cdktf/provider-aws/lib/rds-cluster-parameter-group/index.js';
import type { Naming } from './config.ts';

export const AURORA_PARAMETER_FAMILY = 'aurora-mysql8.0';

/** The SQL to run once as the master user: keep binlogs long enough to restart the reader after an outage. */
export const BINLOG_RETENTION_SQL = "CALL mysql.rds_set_configuration('binlog retention hours', 72);";

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

  constructor(scope: Construct, id: string, p: AuroraProps) {
    super(scope, id);
    const onOff = (on: string, off: string) => Token.asString(Fn.conditional(p.enhancedBinlog, on, off));
    this.parameterGroup = new RdsClusterParameterGroup(this, 'binlog', {
      name: p.naming.name('binlog'),
      family: AURORA_PARAMETER_FAMILY,
      description: 'drugsync: row-based binlog with full row images and metadata for CDC',
      parameter: [
        // the reader decodes row events only; statement/mixed logging would hide row changes
        { name: 'binlog_format', value: 'ROW', applyMethod: 'pending-reboot' },
        // before and after images of every column: deletes and NDC changes carry the whole row
        { name: 'binlog_row_image', value: 'FULL', applyMethod: 'pending-reboot' },
        // column names in the binlog: DDL-safe decoding without guessing column order
        { name: 'binlog_row_metadata', value: 'FULL', applyMethod: 'pending-reboot' },
        // enhanced binlog (Aurora MySQL 3.03.1+): lower binlog overhead on the writer
        { name: 'aurora_enhanced_binlog', value: onOff('1', '0'), applyMethod: 'pending-reboot' },
        { name: 'binlog_backup', value: onOff('0', '1'), applyMethod: 'pending-reboot' },
        { name: 'binlog_replication_globaldb', value: onOff('0', '1'), applyMethod: 'pending-reboot' },
      ],
      tags: p.naming.tags(),
    });

    // Explicit opt-in only: modifies a cluster this stack does not own. Static parameters take effect
    // after the writer reboots, which stays the operator's decision (docs/deploy.md).
    // A plain `terraform_data` resource (Terraform ≥ 1.4). Not cdktf's DataResource class: that one asks
    // the terraform binary for its version at synth, and synth must work without terraform installed.
    this.attachment = new TerraformResource(this, 'attach', {
      terraformResourceType: 'terraform_data',
      count: Token.asNumber(Fn.conditional(p.attach, 1, 0)),
      provisioners: [
        {
          type: 'local-exec',
          command:
            'aws rds modify-db-cluster --region "$REGION" --db-cluster-identifier "$CLUSTER" ' +
            '--db-cluster-parameter-group-name "$GROUP" --apply-immediately',
          environment: {
            REGION: p.region,
            CLUSTER: p.clusterIdentifier,
            GROUP: this.parameterGroup.name,
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
