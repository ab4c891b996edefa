/**
 * `drugsync` — the one CLI in front of every job. Each service registers its own commands.
 * Exit codes: 0 success, 1 failure, 2 bad configuration or usage.
 */
import { Command, CommanderError } from 'commander';
import { DrugsyncError, errorMessage } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
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

export async function main(argv: string[]): Promise<void> {
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
      if (process.stderr.isTTY) process.stderr.write(errorMessage(e) + '\n');
      else if (e.code === 'CONFIG_INVALID') process.stderr.write(e.message + '\n');
      process.exitCode = e.code === 'CONFIG_INVALID' ? 2 : 1;
      return;
    }
    log.error('unexpected failure', {
      error: e instanceof Error ? { message: e.message, stack: e.stack } : e,
    });
    process.exitCode = 1;
  }
}
