/**
 * The consumer's run gate: one active consumer per stream (a Redis lease, services/core/lease.ts), and the
 * stop switch. The holder renews the lease while it runs; on a loss it stops applying at once (`halted`)
 * and wakes every sleeper so shards notice. `sleep` is cut short by a stop or a lease loss.
 */
import { errorMessage } from '../core/errors.ts';
import { keepLease } from '../core/lease.ts';
import type { Lease, LeaseKeeper } from '../core/lease.ts';
import type { Logger } from '../core/log.ts';
import { sleep } from '../core/backoff.ts';
import type { ConsumerStats } from './consumer-types.ts';

/** Warn about the lease's holder every this many polls while waiting. */
const WARN_EVERY_POLLS = 20;

export class ConsumerGate {
  private stopping = false;
  private leaseGone = false;
  /** the renewal of the lease while it is ours (null while waiting for it) */
  private keeper: LeaseKeeper | null = null;
  /** aborted on a stop or a lease loss: wakes every sleeper */
  private wake = new AbortController();

  constructor(
    readonly lease: Lease,
    private readonly ttlMs: number,
    private readonly stats: ConsumerStats,
    private readonly log: Logger,
  ) {}

  get stopped(): boolean {
    return this.stopping;
  }

  get lost(): boolean {
    return this.leaseGone;
  }

  /** Stop applying: a clean stop, or the lease is no longer surely ours. */
  halted(): boolean {
    return this.stopping || this.leaseGone || this.keeper === null || !this.keeper.valid();
  }

  /** Waits `ms`, or less when the consumer stops or loses its lease meanwhile. */
  sleep(ms: number): Promise<void> {
    return sleep(ms, this.wake.signal);
  }

  stop(): void {
    if (this.stopping) return;
    this.stopping = true;
    this.log.info('stopping: finishing in-flight batches');
    this.wake.abort();
  }

  loseLease(cause: unknown): void {
    if (this.leaseGone) return;
    this.leaseGone = true;
    this.stats.leaseLost++;
    this.log.error('embedder consumer lease lost: stopped applying (no checkpoint is written after this)', {
      key: this.lease.key,
      owner: this.lease.owner,
      cause: errorMessage(cause),
    });
    this.wake.abort();
  }

  /** Takes the lease, waiting (and saying who holds it) while another consumer has it. false: stopped. */
  async acquire(): Promise<boolean> {
    this.stats.state = 'waiting-lease';
    if (this.leaseGone) {
      this.leaseGone = false;
      this.wake = new AbortController();
    }
    const pollMs = Math.max(100, Math.floor(this.ttlMs / 5));
    for (let n = 0; !this.stopping; n++) {
      try {
        if (await this.lease.tryAcquire()) {
          this.stats.leaseHolder = null;
          this.stats.leaseTaken++;
          this.log.info('embedder consumer lease taken', { key: this.lease.key, owner: this.lease.owner });
          this.keeper = keepLease(this.lease, this.ttlMs, (cause) => this.loseLease(cause));
          this.stats.state = 'applying';
          return true;
        }
        await this.noteHolder(n);
      } catch (e) {
        this.log.warn('cannot reach Redis for the consumer lease: retrying', { error: errorMessage(e) });
      }
      await this.sleep(pollMs);
    }
    return false;
  }

  private async noteHolder(poll: number): Promise<void> {
    const h = await this.lease.holder();
    this.stats.leaseHolder = h;
    if (poll % WARN_EVERY_POLLS !== 0) return;
    this.log.warn('another embedder consumer holds the lease of this stream: waiting', {
      key: this.lease.key,
      holder_host: h.host,
      holder_pid: h.pid,
      holder_since: h.since,
      expires_in_ms: h.ttlMs,
    });
  }

  /** Stops renewing; on a clean end (not a loss) releases the lease so a successor starts at once. */
  async end(): Promise<void> {
    this.keeper?.stop();
    this.stats.state = 'stopped';
    if (this.leaseGone) return;
    await this.lease
      .release()
      .catch((e: unknown) =>
        this.log.warn('cannot release the consumer lease (it expires by itself)', { error: errorMessage(e) }),
      );
  }

  /** Stops renewing after the shards ended (a loss, or a stop). */
  pause(): void {
    this.keeper?.stop();
  }
}
