/**
 * Watching a service's metrics as CloudWatch would read them: an emitter (../../services/core/metrics.ts)
 * whose EMF lines are parsed back and kept, a clock the test can move ahead (a stall of minutes in a test of
 * seconds: the metric is what is asserted, never the wall clock), and waits on the emitted values.
 */
import { expect } from 'vitest';
import { createLogger } from '../../services/core/log.ts';
import type { Logger } from '../../services/core/log.ts';
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

/** A logger for a service under faults, which it logs as errors by design: shown only with TEST_LOG_LEVEL. */
export function faultLog(service: string): Logger {
  const level = process.env.TEST_LOG_LEVEL as 'debug' | undefined;
  return createLogger({ service }, level ? { level } : { level: 'error', write: () => undefined });
}

export interface StallCheck {
  metrics: MetricWatch;
  clock: JumpClock;
  /** the stall metric */
  name: MetricName;
  /** the alarm's threshold (seconds) */
  threshold: number;
  /** a healthy service's stall stays below this */
  healthy: number;
  /** the service's `done`: it must still run */
  done: Promise<unknown>;
}

/**
 * Progress has stopped: the stall grows past what a healthy service shows; then, with the clock moved past
 * the alarm threshold, the next three values all read above it, each at least the one before, and the
 * service still runs. Returns those three values.
 */
export async function expectStallPastThreshold(c: StallCheck): Promise<number[]> {
  await c.metrics.waitFor(c.name, (v) => v > c.healthy, c.metrics.records.length, 'progress stopped');
  const from = c.metrics.records.length;
  c.clock.jump((c.threshold + 60) * 1000);
  const stalls = await c.metrics.next(c.name, 3, from);
  expect(stalls.every((v) => v > c.threshold)).toBe(true);
  expect([...stalls].sort((a, b) => a - b)).toEqual(stalls);
  expect(await stillRunning(c.done)).toBe(true);
  return stalls;
}
