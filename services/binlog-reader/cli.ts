import type { Command } from 'commander';
import { redisCredentials } from '../core/clients/redis.ts';
import { decodeConfig } from '../core/config.ts';
import { DrugsyncError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { parseBinlogPosition } from '../core/position.ts';
import { readerConfigShape, startBinlogReader } from './reader.ts';

function seconds(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) {
    throw new DrugsyncError('CONFIG_INVALID', `--once-idle must be a number of seconds ≥ 0, got "${v}"`);
  }
  return n;
}

/** Commands of services/binlog-reader. */
export function registerBinlogReaderCommands(program: Command): void {
  program
    .command('binlog-reader')
    .description(
      'stream every change of the source table from the MySQL binlog into Kinesis (partition key NDC), ' +
        'checkpointing in Redis only what Kinesis acknowledged. Starts from the checkpoint, else the ' +
        "backfill's snapshot position, else --from/--from-gtid. One reader at a time (Redis lease). " +
        'SIGTERM/SIGINT: publishes what it holds, checkpoints and exits 0.',
    )
    .option('--from <file:pos>', 'start here when there is no checkpoint and no backfill snapshot position')
    .option('--from-gtid <gtid>', 'start after this GTID position (MariaDB domain-server-seq / MySQL set)')
    .option(
      '--once-idle <seconds>',
      'exit 0 once the table had no change for this long and all is checkpointed',
      seconds,
    )
    .addHelpText(
      'after',
      '\nSettings (environment): DB_* (replication user), DB_SERVER_ID, REDIS_*, KINESIS_STREAM, KINESIS_ENDPOINT,\n' +
        'READER_LEASE_TTL_MS, READER_QUEUE_RECORDS, READER_QUEUE_BYTES, READER_STALL_SECONDS,\n' +
        'READER_HEARTBEAT_SECONDS, READER_METRICS_SECONDS, READER_KINESIS_OUTAGE_SECONDS, READER_MAX_BACKOFF_SECONDS.\n' +
        'See docs/binlog-reader.md.',
    )
    .action(async (o: { from?: string; fromGtid?: string; onceIdle?: number }) => {
      const config = decodeConfig(readerConfigShape);
      const from = o.from ? parseBinlogPosition(o.from) : undefined;
      const log = createLogger({ service: 'binlog-reader' });
      // the Redis secret (REDIS_SECRET_ARN) is read before the reader's client connects with it
      await redisCredentials(config, { log }).current();
      const reader = startBinlogReader(
        config,
        { log },
        {
          ...(from ? { from } : {}),
          ...(o.fromGtid ? { fromGtid: o.fromGtid } : {}),
          ...(o.onceIdle !== undefined ? { onceIdleSeconds: o.onceIdle } : {}),
        },
      );
      const onSignal = (sig: string) => {
        log.info('signal received: publishing what is held, checkpointing, exiting', { signal: sig });
        void reader.stop();
        // the promise of exit within 10 s: a hard deadline if a socket hangs
        setTimeout(() => {
          log.error('stop did not finish within 9.5 s: exiting; the checkpoint covers what was acknowledged');
          process.exit(1);
        }, 9_500).unref();
      };
      process.once('SIGTERM', () => onSignal('SIGTERM'));
      process.once('SIGINT', () => onSignal('SIGINT'));
      const result = await reader.done;
      log.info('binlog reader stopped', {
        reason: result.reason,
        row_events: result.stats.rowEvents,
        table_events: result.stats.tableEvents,
        checkpoint: result.stats.checkpoint,
      });
    });
}
