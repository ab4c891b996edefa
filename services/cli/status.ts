/**
 * `drugsync status [--json] [--watch]`: where every part of the pipeline stands. One direction, one module a
 * step: status-gather.ts reads the servers (`StatusSources`), status-model.ts makes the report of them (the
 * status hashes decoded by their schemas in ../core/status/), status-view.ts draws it; this module prints the
 * table or the report's JSON, once or every second.
 */
import { sleep } from '../core/backoff.ts';
import { describeErrorMasked } from '../core/log.ts';
import { gatherStatus } from './status-gather.ts';
import type { StatusDeps } from './status-gather.ts';
import { statusModel } from './status-model.ts';
import type { StatusModel } from './status-model.ts';
import { colorWanted, redrawPrefix, renderStatus } from './status-view.ts';

export { statusDepsOf } from './status-gather.ts';
export type { StatusDeps } from './status-gather.ts';
/** the shape of `drugsync status --json` */
export type { ShardStatus, StatusReport } from './status-model.ts';

/** Reads the pipeline's state now and makes its report. */
export async function collectStatus(d: StatusDeps): Promise<StatusModel> {
  return statusModel(await gatherStatus(d), { retentionWarnSeconds: d.retentionWarnSeconds });
}

export interface PrintOptions {
  json: boolean;
  watch: boolean;
  /** where to write (stdout by default; tests pass a collector) */
  out?: Pick<NodeJS.WriteStream, 'write' | 'isTTY' | 'columns'>;
  /** ends --watch (SIGINT / SIGTERM by default) */
  signal?: AbortSignal;
  intervalMs?: number;
}

/** Prints the status once, or with `watch` every second until the signal (Ctrl-C). */
export async function printStatus(deps: StatusDeps, opts: PrintOptions): Promise<void> {
  const out = opts.out ?? process.stdout;
  const color = colorWanted(out.isTTY === true, process.env);
  const draw = async (): Promise<string> => {
    const model = await collectStatus(deps);
    return opts.json ? JSON.stringify(model.report) : renderStatus(model, { color }).join('\n');
  };
  if (!opts.watch) {
    out.write((await draw()) + '\n');
    return;
  }
  await watchStatus(draw, out, opts);
}

/** Draws a frame every interval until aborted: in place on a TTY, one after another otherwise. */
async function watchStatus(
  draw: () => Promise<string>,
  out: NonNullable<PrintOptions['out']>,
  opts: PrintOptions,
) {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  const signal = opts.signal ?? stop.signal;
  if (!opts.signal) {
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  }
  const inPlace = out.isTTY === true && !opts.json;
  let previous: string | null = null;
  try {
    while (!signal.aborted) {
      const started = Date.now();
      // A failed look (a server down) is shown in the frame and tried again at the next refresh.
      const frame = await draw().catch((e: unknown) => {
        const error = describeErrorMasked(e);
        return opts.json ? JSON.stringify({ error }) : `status unavailable: ${error}`;
      });
      out.write((inPlace && previous !== null ? redrawPrefix(previous, out.columns) : '') + frame + '\n');
      if (!inPlace && !opts.json) out.write('\n');
      previous = frame;
      await sleep(Math.max(0, (opts.intervalMs ?? 1000) - (Date.now() - started)), signal);
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
