/**
 * Watching a service's metrics as CloudWatch would read them: an emitter (../../services/core/metrics.ts)
 * whose EMF lines are parsed back and kept, a clock the test can move ahead (a stall of minutes in a test of
 * seconds: the metric is what is asserted, never the wall clock), and waits on the emitted values.
 */
import { createMetricEmitter, parseEmfLine } from '../../services/core/metrics.ts';
import type { EmfRecord, MetricEmitter, MetricName, MetricService } from '../../services/core/metrics.ts';
import { eventually } from './stack.ts';

export interface MetricWatch {
  emitter: MetricEmitter;
  records: EmfRecord[];
  /** Every value of `name` emitted from record index `from` on. */
  values(name: MetricName, from?: number): number[];
  /** Waits for a record from index `from` on whose `name` satisfies `ok`; returns its index. */
  waitFor(name: MetricName, ok: (v: number) => boolean, from: number, what: string): Promise<number>;
  /** Waits for the next `n` values of `name` emitted from index `from` on. */
  next(name: MetricName, n: number, from: number): Promise<number[]>;
}

export function watchMetrics(service: MetricService, timeoutMs = 90_000): MetricWatch {
  const records: EmfRecord[] = [];
  const emitter = createMetricEmitter(service, 'test', {
    enabled: true,
    write: (line) => {
      const r = parseEmfLine(line);
      if (r) records.push(r);
    },
  });
  const scalar = (r: EmfRecord, name: MetricName) => {
    const v = r.values[name];
    return typeof v === 'number' ? v : undefined;
  };
  const values = (name: MetricName, from = 0) =>
    records
      .slice(from)
      .map((r) => scalar(r, name))
      .filter((v): v is number => v !== undefined);
  return {
    emitter,
    records,
    values,
    waitFor: (name, ok, from, what) =>
      eventually(
        async () => {
          const i = records.findIndex((r, j) => {
            const v = scalar(r, name);
            return j >= from && v !== undefined && ok(v);
          });
          if (i < 0) throw new Error(`last values ${values(name).slice(-3).join(', ')}`);
          return i + 1;
        },
        timeoutMs,
        `${name}: ${what}`,
      ).then((i) => i - 1),
    next: (name, n, from) =>
      eventually(
        async () => {
          const v = values(name, from);
          return v.length >= n ? v.slice(0, n) : false;
        },
        timeoutMs,
        `${n} values of ${name}`,
      ),
  };
}

/** Date.now() moved ahead on demand. */
export interface JumpClock {
  now: () => number;
  jump(ms: number): void;
}

export function jumpClock(): JumpClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    jump: (ms) => {
      offset += ms;
    },
  };
}

/** True while `p` has not settled (the service still runs). */
export async function stillRunning(p: Promise<unknown>): Promise<boolean> {
  const pending = Symbol('pending');
  // the sentinel resolves after the pending jobs of a settled `p` have run
  const later = new Promise<symbol>((r) => setImmediate(() => r(pending)));
  const first = await Promise.race([
    p.then(
      () => null,
      () => null,
    ),
    later,
  ]);
  return first === pending;
}
