import type { Command } from 'commander';
import { opsRuntime } from './runtime.ts';
import type { OpsRuntime } from './runtime.ts';
import { printStatus, statusDepsOf } from './status.ts';
import { formatReport, repair, verifyOnce } from '../core/reconcile.ts';
import type { VerifyReport } from '../core/reconcile.ts';
import { METRICS, createMetricEmitter } from '../core/metrics.ts';

/** verify, status: the commands an operator runs against a live pipeline. */
export function registerOpsCommands(program: Command): void {
  registerVerifyCommand(program);
  registerStatusCommand(program);
}

function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description(
      'compare MySQL and Redis completely (eligible rows vs documents, by NDC and content hash);\n' +
        'exit 0 only when they match. --repair re-syncs exactly the differing NDCs, then verifies again',
    )
    .option('--repair', 're-sync the missing, stale and extra NDCs (position-checked), then verify again')
    .option('--json', 'print {"source_rows","redis_docs","missing","extra","stale","ok"} as the last line')
    .action(async (o: { repair?: boolean; json?: boolean }) => {
      const rt = await opsRuntime('verify');
      try {
        const report = await verifyAndRepair(rt, !!o.repair);
        emitVerifyMetric(rt, report);
        if (!o.json || process.stderr.isTTY) process.stderr.write(formatReport(report) + '\n');
        if (o.json) process.stdout.write(JSON.stringify(verifyJson(report)) + '\n');
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        await rt.close();
      }
    });
}

/** One verify; with `repair` and a mismatch, re-syncs the differing NDCs and verifies again. */
async function verifyAndRepair(rt: OpsRuntime, repairing: boolean): Promise<VerifyReport> {
  const deps = {
    ...rt,
    schema: rt.config.DB_NAME,
    table: rt.config.DB_TABLE,
    snapshotMethod: rt.config.SNAPSHOT_METHOD,
  };
  const first = await verifyOnce(deps, { repair: repairing });
  if (!repairing || first.report.ok) return first.report;
  process.stderr.write(formatReport(first.report) + '\n');
  const fixed = await repair(deps, first.diff);
  rt.log.info('repair finished', { ...fixed });
  return (await verifyOnce(deps, { repair: false })).report;
}

/** VerifyDifferences (an EMF line under LOG_FORMAT=json): the dashboard's last verify result. */
function emitVerifyMetric(rt: OpsRuntime, report: VerifyReport): void {
  const differences = report.missing + report.extra + report.stale;
  createMetricEmitter('verify', rt.config.DRUGSYNC_STAGE).emit({ [METRICS.VerifyDifferences]: differences });
}

/** The `verify --json` line: the counts, the verdict, and where the snapshot was taken. */
function verifyJson(report: VerifyReport): Record<string, unknown> {
  const { source_rows, redis_docs, missing, extra, stale, ok } = report;
  return {
    source_rows,
    redis_docs,
    missing,
    extra,
    stale,
    ok,
    in_flight: report.in_flight,
    examples: report.examples,
    snapshot_position: report.snapshot_position,
    snapshot_method: report.snapshot_method,
  };
}

function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description(
      'one line per part: binlog source, binlog reader, Kinesis stream, embedder, Redis index (and backfill, ' +
        're-sync, load when known) with state, lag, rates, counts and checkpoint age; warnings last. ' +
        '--json prints every raw field; --watch refreshes every second until Ctrl-C',
    )
    .option('--json', 'print every field as JSON (one line per refresh with --watch)')
    .option('--watch', 'refresh every second until Ctrl-C (redrawn in place on a terminal)')
    .action(async (o: { json?: boolean; watch?: boolean }) => {
      const rt = await opsRuntime('status');
      try {
        await printStatus(statusDepsOf(rt), { json: !!o.json, watch: !!o.watch });
      } finally {
        await rt.close();
      }
    });
}
