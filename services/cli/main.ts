/**
 * `drugsync` — the one CLI in front of every job. Each service registers its own commands.
 * Exit codes: 0 success, 1 failure, 2 bad configuration or usage.
 */
import { Command, CommanderError } from 'commander';
import pkg from '../../package.json' with { type: 'json' };
import { DrugsyncError } from '../core/errors.ts';
import { createLogger, describeErrorMasked, redact } from '../core/log.ts';
import { registerCommands } from './commands.ts';

/** package.json's version (inlined by the bundle: the image has no package.json beside dist/ to read). */
export const VERSION: string = pkg.version;

export function buildProgram(): Command {
  const program = new Command('drugsync')
    .description(
      'Keeps a RedisJSON + RediSearch copy of fdb.rndc14 exact and current: backfill, binlog → Kinesis, embedder.',
    )
    .version(VERSION, '-V, --version', 'print the version')
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

/** Errors of a write to an output whose reader is gone: the pipe closed (EPIPE), or it did before (destroyed). */
const CLOSED_OUTPUT = new Set(['EPIPE', 'ERR_STREAM_DESTROYED']);

/**
 * Output to a closed pipe ends quietly, whichever command (`drugsync search x | head -1`, `drugsync status
 * --watch | head -1`, `drugsync config | head -1`): no `Unhandled 'error' event` stack trace.
 * - stdout closed: nobody reads the results any more. A command with SIGTERM handlers (the binlog reader,
 *   the embedder, `stream`, `status --watch`) stops as on SIGTERM (finishes its batch, checkpoints); any
 *   other exits at once with the code it already has (0 unless it had failed).
 * - stderr closed: only the diagnostics are gone; the command goes on (its results are on stdout, a
 *   service's work is the stream itself) and later writes to stderr are dropped.
 * Any other output error is thrown as before.
 */
export function exitQuietlyOnClosedPipe(): void {
  let stdoutClosed = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (!CLOSED_OUTPUT.has(e.code ?? '')) throw e;
    if (stdoutClosed) return;
    stdoutClosed = true;
    if (process.listenerCount('SIGTERM') > 0) process.emit('SIGTERM', 'SIGTERM');
    else process.exit();
  });
  process.stderr.on('error', (e: NodeJS.ErrnoException) => {
    if (!CLOSED_OUTPUT.has(e.code ?? '')) throw e;
  });
}

export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnClosedPipe();
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
