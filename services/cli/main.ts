/**
 * `drugsync` — the one CLI in front of every job. Each service registers its own commands.
 * Exit codes: 0 success, 1 failure, 2 bad configuration or usage.
 */
import { Command, CommanderError } from 'commander';
import { DrugsyncError } from '../core/errors.ts';
import { createLogger, describeErrorMasked, redact } from '../core/log.ts';
import { registerCommands } from './commands.ts';

export function buildProgram(): Command {
  const program = new Command('drugsync')
    .description(
      'Keeps a RedisJSON + RediSearch copy of fdb.rndc14 exact and current: backfill, binlog → Kinesis, embedder.',
    )
    .showHelpAfterError()
    .exitOverride();
  registerCommands(program);
  return program;
}

/**
 * A command started by a supervisor (`drugsync run` / `stream`) has an IPC channel to it. The channel closes
 * when the supervisor is gone, however it died (kill -9, an OOM kill, a wrapper that exits without passing
 * the signal on): that is this process' SIGTERM, so the reader and the embedder finish their in-flight batch
 * and checkpoint, then exit, instead of running on as orphans. A command with SIGTERM handlers gets them
 * called; one without any ends as on a SIGTERM. The channel does not keep the process alive.
 */
export function stopWhenSupervisorGone(): void {
  if (!process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => {
    createLogger({ service: 'cli' }).warn(
      'the supervisor is gone (its channel closed): stopping as on SIGTERM',
      {
        pid: process.pid,
      },
    );
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
    else process.kill(process.pid, 'SIGTERM');
  });
}

export async function main(argv: string[]): Promise<void> {
  stopWhenSupervisorGone();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode === 0 ? 0 : 2;
      return;
    }
    const log = createLogger({ service: 'cli' });
    if (e instanceof DrugsyncError) {
      log.error(e.message.split('\n')[0] ?? e.message, { error: e });
      if (process.stderr.isTTY) process.stderr.write(describeErrorMasked(e) + '\n');
      else if (e.code === 'CONFIG_INVALID') process.stderr.write(redact(e.message) + '\n');
      process.exitCode = e.code === 'CONFIG_INVALID' ? 2 : 1;
      return;
    }
    log.error('unexpected failure', {
      error: e instanceof Error ? { message: e.message, stack: e.stack } : e,
    });
    process.exitCode = 1;
  }
}
