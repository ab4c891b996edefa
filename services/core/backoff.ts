/**
 * Retry waits, one formula for every service: exponential growth from `baseMs`, capped at `maxMs`, then
 * jitter so that many clients failing together do not retry together.
 */

export type Jitter = 'full' | 'half' | 'none';

export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  /** full: anywhere in [0, cap); half: in [cap/2, cap); none (default): the cap itself. */
  jitter?: Jitter;
}

/**
 * The wait before retry number `attempt` (0 for the first retry): `min(maxMs, baseMs * 2 ** attempt)`, then
 * jittered. `random` returns a number in [0, 1) (tests inject a fixed one).
 */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const cap = Math.min(opts.maxMs, opts.baseMs * 2 ** attempt);
  if (opts.jitter === 'full') return random() * cap;
  if (opts.jitter === 'half') return cap * (0.5 + random() / 2);
  return cap;
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects); clears its timer either way. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
