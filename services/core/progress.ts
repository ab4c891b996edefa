/**
 * Progress for long jobs: a bar on a TTY (cli-progress), a JSON log line every few seconds otherwise.
 */
import cliProgress from 'cli-progress';
import type { Logger } from './log.ts';

export interface Progress {
  update(done: number, fields?: Record<string, string | number>): void;
  stop(): void;
}

export interface ProgressOptions {
  label: string;
  total: number;
  unit?: string;
  log: Logger;
  /** seconds between log lines off a TTY */
  logEverySeconds?: number;
  tty?: boolean;
}

export function createProgress(opts: ProgressOptions): Progress {
  const started = Date.now();
  const rate = (done: number) => done / Math.max(0.001, (Date.now() - started) / 1000);
  if (opts.tty ?? process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        format: `${opts.label} [{bar}] {percentage}% {value}/{total} ${opts.unit ?? ''} | {rate}/s | ETA {eta_formatted} {extra}`,
        stream: process.stderr,
        hideCursor: true,
      },
      cliProgress.Presets.shades_classic,
    );
    bar.start(opts.total, 0, { rate: '0', extra: '' });
    return {
      update(done, fields = {}) {
        const extra = Object.entries(fields)
          .map(([k, v]) => `${k} ${v}`)
          .join(' | ');
        bar.update(done, { rate: Math.round(rate(done)).toLocaleString('en-US'), extra });
      },
      stop: () => bar.stop(),
    };
  }
  let last = 0;
  const every = (opts.logEverySeconds ?? 5) * 1000;
  let latest = 0;
  let latestFields: Record<string, string | number> = {};
  const emit = () =>
    opts.log.info(`${opts.label} progress`, {
      done: latest,
      total: opts.total,
      percent: opts.total ? Math.round((latest / opts.total) * 1000) / 10 : null,
      per_second: Math.round(rate(latest)),
      ...latestFields,
    });
  return {
    update(done, fields = {}) {
      latest = done;
      latestFields = fields;
      if (Date.now() - last >= every) {
        last = Date.now();
        emit();
      }
    },
    stop: () => emit(),
  };
}
