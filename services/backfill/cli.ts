import type { Command } from 'commander';
import { DrugsyncError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { openBackfillRuntime } from './runtime.ts';

export { backfillShape } from './runtime.ts';

/** Commands of services/backfill. */
export function registerBackfillCommands(program: Command): void {
  program
    .command('backfill')
    .description(
      'load the whole eligible catalogue into Redis from one consistent snapshot, resumably, embedding ' +
        'each distinct text once; records the binlog position the binlog reader continues from',
    )
    .option(
      '--part <i/n>',
      'load part i of n NDC ranges (balanced, shared by all parts; n processes in parallel)',
    )
    .option('--restart', 'start a fresh run (new snapshot) instead of resuming')
    .option('--retry-failed', 'retry only the rows listed as failed by earlier runs')
    .option('--max-drugs <n>', 'stop after N eligible rows (a capped run is never complete; MAX_DRUGS)')
    .option('--dry-run', 'read and map the snapshot, write nothing to Redis')
    .option('--json', 'print the summary as JSON on the last line')
    .addHelpText(
      'after',
      '\nSettings (environment): DB_* (MySQL), REDIS_*, EMBEDDING_* (provider, dimensions, concurrency, RPM),\n' +
        'BATCH_SIZE (documents per Redis pipeline), MAX_DRUGS, BACKFILL_WINDOW_ROWS, BACKFILL_WRITE_CONCURRENCY,\n' +
        'BACKFILL_SPOOL_DIR, SNAPSHOT_METHOD (auto | binlog-snapshot | table-lock). See docs/backfill.md.\n' +
        'Exit codes: 0 complete (or a deliberate --max-drugs / --dry-run run), 1 rows failed (fix the cause, then\n' +
        '--retry-failed), 2 invalid configuration.',
    )
    .action(
      async (o: {
        part?: string;
        restart?: boolean;
        retryFailed?: boolean;
        maxDrugs?: string;
        dryRun?: boolean;
        json?: boolean;
      }) => {
        const log = createLogger({ service: 'backfill' });
        const maxDrugs = o.maxDrugs === undefined ? undefined : Number(o.maxDrugs);
        if (maxDrugs !== undefined && (!Number.isInteger(maxDrugs) || maxDrugs < 0))
          throw new DrugsyncError(
            'CONFIG_INVALID',
            `--max-drugs must be a whole number ≥ 0, got ${o.maxDrugs}`,
          );
        const rt = await openBackfillRuntime(undefined, log);
        try {
          if (o.retryFailed) {
            const r = await rt.retryFailed();
            process.stdout.write(JSON.stringify(r) + '\n');
            if (!r.completed) process.exitCode = 1;
            return;
          }
          const s = await rt.run({
            part: o.part,
            restart: o.restart,
            dryRun: o.dryRun,
            ...(maxDrugs === undefined ? {} : { maxDrugs }),
          });
          if (o.json) process.stdout.write(JSON.stringify(s) + '\n');
          else
            process.stdout.write(
              `backfill ${s.completed ? 'COMPLETED' : 'NOT complete'}: ${s.successful} of ${s.total_processed} drugs, ${s.failed} failed, ` +
                `${s.embeddings_requested} embedding calls, ${s.embedding_cache_hits} cache hits, ${s.deleted_stale} stale removed, ` +
                `${s.duration_seconds} s (${s.drugs_per_second}/s), snapshot ${s.snapshot_position} (${s.snapshot_method})\n`,
            );
          if (s.failed > 0) {
            log.error('some rows failed: run `drugsync backfill --retry-failed` after fixing the cause', {
              failed: s.failed,
            });
            process.exitCode = 1;
          }
        } finally {
          await rt.close();
        }
      },
    );
}
