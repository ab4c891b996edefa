/**
 * Request pacing whose rate adapts (AIMD). It starts at the configured budget (`maxRpm`, Infinity for none)
 * and spaces requests evenly on a schedule (request i at t0 + i / rate: a late timer is caught up by the next
 * slot, an idle spell earns no burst), so a budget equal to a quota enforced over a short rolling window
 * does not overrun it. On a throttle (at most once a second, so one burst of 429s counts once) the rate is
 * cut to 95% of what it was, bounded by the rate the server accepted over the last second (so a budget far
 * above the hidden quota, or no budget at all, comes down at once); that rate is remembered as the ceiling.
 * It climbs back fast (20% of the ceiling per second of successes) to 99% of the ceiling, then probes above
 * it, slowly at first (0.5% a second, doubling every second without a throttle), up to the budget: at a
 * hidden quota Q it spends most of its time between 0.99 Q and Q and is throttled every second or two, not
 * several times a second, while a ceiling estimated too low is outgrown in seconds.
 */
import { sleep } from '../backoff.ts';

const DECREASE = 0.95;
const INCREASE = 0.2;
const PROBE = 0.005;
const RECOVER_TO = 0.99;
/** the floor of a cut rate, requests per minute */
const MIN_RPM = 6;
/** accepted requests in the last second needed before they are trusted as a rate estimate */
const MIN_SAMPLES = 10;
/** beyond this many remembered answers the ones older than a second are dropped at once */
const MAX_REMEMBERED = 10_000;

/** Milliseconds on a monotonic clock, and a wait on that clock (tests inject a fake one). */
export interface LimiterClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: LimiterClock = { now: () => performance.now(), sleep: (ms) => sleep(ms) };

export class AdaptiveRateLimiter {
  private nextAt = 0;
  private lastCut = -Infinity;
  private ref = 0;
  private readonly recent: number[] = [];
  rpm: number;
  cuts = 0;

  constructor(
    readonly maxRpm: number,
    private readonly clock: LimiterClock = systemClock,
  ) {
    this.rpm = maxRpm;
  }

  /** Waits for this request's slot on the schedule (at once with no budget). */
  async acquire(): Promise<void> {
    if (!Number.isFinite(this.rpm)) return;
    const now = this.clock.now();
    const slot = Math.max(now, this.nextAt);
    this.nextAt = slot + 60_000 / this.rpm;
    if (slot - now >= 1) await this.clock.sleep(slot - now);
  }

  /** Successes in the last second. */
  private recentSuccesses(now: number): number {
    while (this.recent.length && (this.recent[0] as number) < now - 1_000) this.recent.shift();
    return this.recent.length;
  }

  private remember(now: number): void {
    this.recent.push(now);
    if (this.recent.length > MAX_REMEMBERED) this.recentSuccesses(now);
  }

  /** A request the server refused as throttled: cut the rate (at most once a second). */
  onThrottle(): void {
    const now = this.clock.now();
    if (now - this.lastCut < 1000) return;
    // What the server accepted over the last second bounds the cut, so a budget far above the hidden quota
    // (or no budget at all) comes down in one step (accepted counts lag and jitter: within 20% of the
    // paced rate, the paced rate is the better estimate). With too few samples (a cold start, an idle spell)
    // a budget is cut as it is; with no budget there is nothing to estimate from yet: the refused request
    // backs off and the next throttle, with samples, sets the rate.
    const n = this.recentSuccesses(now);
    if (!Number.isFinite(this.rpm) && n < MIN_SAMPLES) return;
    this.lastCut = now;
    this.cuts++;
    const accepted = n * 60;
    const current =
      !Number.isFinite(this.rpm) || (n >= MIN_SAMPLES && accepted < 0.8 * this.rpm) ? accepted : this.rpm;
    this.rpm = Math.max(MIN_RPM, current * DECREASE);
    this.ref = current;
    // the next request waits one interval at the new rate (the refused ones are retried after their backoff)
    this.nextAt = Math.max(this.nextAt, now + 60_000 / this.rpm);
  }

  /** A request the server answered without throttling (success or not): counts toward the accepted rate. */
  onAnswered(): void {
    this.remember(this.clock.now());
  }

  /** A request that succeeded: counts toward the accepted rate and raises the rate after a cut. */
  onSuccess(): void {
    const now = this.clock.now();
    this.remember(now);
    if (!Number.isFinite(this.rpm) || this.ref === 0) return;
    // Each success adds (share · base) / (rpm / 60): `share` of the base per second of successes. Below 99%
    // of the ceiling: 20% of the ceiling a second. Above: a probe that starts at 0.5% a second and doubles
    // every second without a throttle (up to 20%, of the current rate once it is past the ceiling), so a
    // ceiling estimated too low is left behind in seconds while a true one is met gently.
    const recovered = Math.min(this.maxRpm, RECOVER_TO * this.ref);
    if (this.rpm < recovered) {
      this.rpm = Math.min(recovered, this.rpm + (INCREASE * 60 * this.ref) / this.rpm);
      return;
    }
    const share = Math.min(INCREASE, PROBE * 2 ** ((now - this.lastCut) / 1000));
    const base = Math.max(this.ref, this.rpm);
    this.rpm = Math.min(this.maxRpm, this.rpm + (share * 60 * base) / this.rpm);
  }
}
