/**
 * The concurrent-writer scenario, once: a realistic writer (the `--simulate-changes` simulator) commits
 * changes to the suite's table while the pipeline streams and the test does its damage (kills, outages,
 * repairs); then the writer stops and the pipeline must converge: `drugsync verify` reports Redis equal to
 * MySQL. Used by the chaos, supervision and snapshot-method tests; `convergedVerify` alone by the others.
 */
import type { Env } from '../../services/core/config.ts';
import { createLogger } from '../../services/core/log.ts';
import { startSimulator } from '../../services/cli/simulate.ts';
import type { Simulator, SimulatorOptions, SimulatorStats } from '../../services/cli/simulate.ts';
import { runCli } from './pipeline.ts';
import { adminConnection, eventually } from './stack.ts';

export interface WriterOptions {
  /** changes per second */
  rate: number;
  seed: number;
  /** the writer stops by itself after this many (default: when `during` has finished) */
  maxChanges?: number;
  onChange?: SimulatorOptions['onChange'];
}

export interface WriteResult<T> {
  /** what `during` returned */
  result: T;
  /** the writer's counts once it stopped */
  writer: SimulatorStats;
  /** the `verify --json` report that found Redis equal to MySQL */
  verify: Record<string, unknown>;
  /** from the writer's stop until that report */
  convergedSeconds: number;
}

/**
 * Starts the writer on its own admin connection, runs `during(writer)` while it writes, stops it (also when
 * `during` throws), then waits until `verify` reports Redis equal to MySQL (`convergeMs`). A writer with
 * `maxChanges` is waited for before it is stopped.
 */
export async function whileWriting<T>(
  env: Env,
  opts: WriterOptions,
  during: (writer: Simulator) => Promise<T>,
  convergeMs = 240_000,
): Promise<WriteResult<T>> {
  const conn = await adminConnection(env, env.DB_NAME);
  const writer = await startSimulator(conn, {
    rate: opts.rate,
    schema: env.DB_NAME as string,
    table: env.DB_TABLE ?? 'rndc14',
    seed: opts.seed,
    log: createLogger({ service: 'test-writer' }, { level: 'warn' }),
    ...(opts.maxChanges === undefined ? {} : { maxChanges: opts.maxChanges }),
    ...(opts.onChange ? { onChange: opts.onChange } : {}),
  });
  let result: T;
  try {
    result = await during(writer);
    if (opts.maxChanges !== undefined) await writer.done;
  } finally {
    await writer.stop();
    await conn.end();
  }
  const stopped = Date.now();
  const verify = await convergedVerify(env, convergeMs);
  return { result, writer: writer.stats, verify, convergedSeconds: (Date.now() - stopped) / 1000 };
}

/**
 * `drugsync verify --json` until it reports Redis equal to MySQL (changes still in flight are not counted
 * against it); its report. On timeout the error carries the last report (or the command's stderr).
 */
export async function convergedVerify(env: Env, timeoutMs = 240_000): Promise<Record<string, unknown>> {
  return (await convergedVerifyRun(env, timeoutMs)).json;
}

/** `convergedVerify`, returning the whole run of the command that reported equality (stdout, stderr too). */
export async function convergedVerifyRun(
  env: Env,
  timeoutMs = 240_000,
): Promise<Awaited<ReturnType<typeof runCli>>> {
  let last: unknown = null;
  try {
    return await eventually(
      async () => {
        const v = await runCli(env, ['verify', '--json']);
        last = v.status === 0 || v.json.ok === false ? v.json : v.stderr.slice(-2000);
        return v.json.ok === true ? v : null;
      },
      timeoutMs,
      'verify to report Redis equal to MySQL',
    );
  } catch (e) {
    throw new Error(`${(e as Error).message}; last verify: ${JSON.stringify(last)}`, { cause: e });
  }
}
