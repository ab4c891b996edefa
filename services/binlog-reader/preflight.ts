/**
 * Preflight: every server setting and grant the reader depends on, checked at once at start. Problems
 * (the reader refuses to start) and warnings (retention) are reported together.
 */
import { DrugsyncError } from '../core/errors.ts';
import type { MysqlPool } from '../core/clients/mysql.ts';

export interface PreflightReport {
  server: string;
  mariadb: boolean;
  problems: string[];
  warnings: string[];
  /** binlog retention in seconds where it can be read (0 = never purged), else null */
  retentionSeconds: number | null;
}

type Row = Record<string, unknown>;

async function variable(pool: Pick<MysqlPool, 'query'>, name: string): Promise<string | null> {
  const rows = await pool.query<Row>(`SHOW GLOBAL VARIABLES LIKE ?`, [name]);
  const v = rows[0]?.Value ?? rows[0]?.value;
  return v === undefined || v === null ? null : String(v);
}

/** Reads what the grants of the current user allow (text of SHOW GRANTS). */
export function grantsAllow(
  grants: string[],
  schema: string,
  table: string,
): { replicationSlave: boolean; replicationClient: boolean; select: boolean } {
  let replicationSlave = false;
  let replicationClient = false;
  let select = false;
  const unq = (s: string) => s.replace(/[`'"]/g, '').toLowerCase();
  for (const g of grants) {
    const m = /^GRANT (.+?) ON (\S+) TO /i.exec(g);
    if (!m) continue;
    const privs = (m[1] as string).toUpperCase();
    const on = unq(m[2] as string);
    const all = /\bALL( PRIVILEGES)?\b/.test(privs);
    if (on === '*.*') {
      if (all || /\bREPLICATION (SLAVE|REPLICA)\b/.test(privs)) replicationSlave = true;
      if (all || /\b(REPLICATION CLIENT|BINLOG MONITOR|SLAVE MONITOR|REPLICA MONITOR|SUPER)\b/.test(privs))
        replicationClient = true;
    }
    const target = [`*.*`, `${schema.toLowerCase()}.*`, `${schema.toLowerCase()}.${table.toLowerCase()}`];
    if (target.includes(on) && (all || /\bSELECT\b/.test(privs))) select = true;
  }
  return { replicationSlave, replicationClient, select };
}

export async function preflight(
  pool: Pick<MysqlPool, 'query'>,
  schema: string,
  table: string,
): Promise<PreflightReport> {
  const version = String((await pool.query<Row>('SELECT VERSION() AS v'))[0]?.v ?? '');
  const mariadb = /mariadb/i.test(version);
  const problems: string[] = [];
  const warnings: string[] = [];

  const logBin = await variable(pool, 'log_bin');
  if (logBin?.toUpperCase() !== 'ON' && logBin !== '1')
    problems.push(`log_bin is ${logBin ?? 'unknown'}: the binary log must be on`);
  const format = await variable(pool, 'binlog_format');
  if (format?.toUpperCase() !== 'ROW') problems.push(`binlog_format is ${format}: must be ROW`);
  const image = await variable(pool, 'binlog_row_image');
  if (image !== null && image.toUpperCase() !== 'FULL')
    problems.push(`binlog_row_image is ${image}: must be FULL (events carry whole rows)`);
  const metadata = await variable(pool, 'binlog_row_metadata');
  if (metadata !== null && metadata.toUpperCase() !== 'FULL')
    problems.push(
      `binlog_row_metadata is ${metadata}: must be FULL (column names in the binlog keep decoding right across ALTER TABLE)`,
    );
  const compression = await variable(pool, 'binlog_transaction_compression');
  if (compression?.toUpperCase() === 'ON')
    problems.push('binlog_transaction_compression is ON: zongji cannot decode compressed transactions');

  // retention
  let retentionSeconds: number | null = null;
  const expSec = await variable(pool, 'binlog_expire_logs_seconds');
  const expDays = await variable(pool, 'expire_logs_days');
  if (expSec !== null && Number(expSec) > 0) retentionSeconds = Number(expSec);
  else if (expDays !== null && Number(expDays) > 0) retentionSeconds = Math.round(Number(expDays) * 86400);
  else if (expSec !== null || expDays !== null) retentionSeconds = 0;
  try {
    // Aurora / RDS: the binlog retention lives in mysql.rds_configuration (NULL = purged as soon as possible)
    const rds = await pool.query<Row>(
      "SELECT value FROM mysql.rds_configuration WHERE name = 'binlog retention hours'",
    );
    if (rds.length) {
      const hours = rds[0]?.value;
      if (hours === null || hours === undefined) {
        problems.push(
          "Aurora/RDS 'binlog retention hours' is NULL: binlogs are purged at once; run CALL mysql.rds_set_configuration('binlog retention hours', 72)",
        );
        retentionSeconds = null;
      } else retentionSeconds = Number(hours) * 3600;
    }
  } catch (e) {
    // mysql.rds_configuration exists only on RDS/Aurora; anywhere else the error is the expected answer
    if (!/doesn't exist|denied|Unknown table|1146|1142/i.test(e instanceof Error ? e.message : String(e)))
      throw e;
  }
  if (retentionSeconds !== null && retentionSeconds > 0 && retentionSeconds < 24 * 3600)
    warnings.push(
      `binlog retention is only ${Math.round(retentionSeconds / 3600)} h: a reader stopped longer than that needs a new backfill`,
    );

  const grants = (await pool.query<Row>('SHOW GRANTS')).map((r) => String(Object.values(r)[0]));
  const allow = grantsAllow(grants, schema, table);
  if (!allow.replicationSlave) problems.push('the user lacks REPLICATION SLAVE ON *.*');
  if (!allow.replicationClient)
    problems.push(
      `the user lacks ${mariadb ? 'BINLOG MONITOR (REPLICATION CLIENT)' : 'REPLICATION CLIENT'} ON *.*`,
    );
  if (!allow.select) problems.push(`the user lacks SELECT on ${schema}.${table}`);

  return { server: version, mariadb, problems, warnings, retentionSeconds };
}

export function preflightError(report: PreflightReport, host: string, port: number): DrugsyncError {
  return new DrugsyncError(
    'MYSQL_PREFLIGHT_FAILED',
    `MySQL is not ready for the binlog reader (${report.problems.length} problem(s)):\n  - ${report.problems.join('\n  - ')}`,
    {
      context: { host, port, server: report.server },
      remedy:
        'set the server variables (Aurora: the DB cluster parameter group, see docs/binlog-reader.md) and ' +
        'GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO <user>; GRANT SELECT ON <db>.* TO <user>',
    },
  );
}
