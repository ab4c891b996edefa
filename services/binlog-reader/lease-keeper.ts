/**
 * One reader at a time: the reader's hold on its Redis lease (services/core/lease.ts). `acquire` waits for
 * the lease (logging the holder every 20 tries) and keeps renewing it with `keepLease`; a session `watch`es
 * the hold and ends with READER_LEASE_HELD when it is lost (taken by another owner, or not renewed within
 * two thirds of the TTL); the reader then waits for the lease again.
 */
import { DrugsyncError, errorMessage } from '../core/errors.ts';
import { keepLease } from '../core/lease.ts';
import type { Lease, LeaseHolder, LeaseKeeper } from '../core/lease.ts';
import type { Logger } from '../core/log.ts';

export interface LeaseWait {
  /** the reader is stopping: give up waiting */
  stopping(): boolean;
  /** waits between tries (interrupted by a stop) */
  sleep(ms: number): Promise<void>;
  /** another reader holds the lease (told every 20 tries) */
  onHeld(holder: LeaseHolder): Promise<void>;
}

export class ReaderLease {
  private keeper: LeaseKeeper | null = null;
  private lost: DrugsyncError | null = null;
  private onLost: ((e: DrugsyncError) => void) | null = null;

  constructor(
    private readonly lease: Lease,
    private readonly ttlMs: number,
    private readonly log: Logger,
  ) {}

  /** Held and being renewed. */
  get held(): boolean {
    return this.keeper !== null;
  }

  /** Waits until the lease is ours, then keeps it; false when the reader stopped first. */
  async acquire(w: LeaseWait): Promise<boolean> {
    let tries = 0;
    while (!w.stopping()) {
      try {
        if (await this.lease.tryAcquire()) {
          this.log.info('reader lease taken', { key: this.lease.key, owner: this.lease.owner });
          this.keep();
          return true;
        }
        const holder = await this.lease.holder();
        if (tries++ % 20 === 0) {
          this.log.warn('another binlog reader holds the lease: waiting', {
            key: this.lease.key,
            holder: holder.owner,
            expires_in_ms: holder.ttlMs,
          });
          await w.onHeld(holder);
        }
      } catch (e) {
        this.log.warn('cannot reach Redis for the lease: retrying', { error: errorMessage(e) });
      }
      await w.sleep(Math.max(200, Math.floor(this.ttlMs / 3)));
    }
    return false;
  }

  /** `fail` is called once if the lease is lost while watched (at once when it already is). */
  watch(fail: (e: DrugsyncError) => void): void {
    if (this.lost) fail(this.lost);
    else this.onLost = fail;
  }

  unwatch(): void {
    this.onLost = null;
  }

  /** Stops renewing (the lease was lost, or the reader stops). */
  drop(): void {
    this.keeper?.stop();
    this.keeper = null;
  }

  /** Stops renewing and deletes the lease if it is still ours; a failure is logged (the lease expires). */
  async release(): Promise<void> {
    this.drop();
    try {
      await this.lease.release();
    } catch (e) {
      this.log.warn('cannot release the reader lease (it expires by itself)', { error: errorMessage(e) });
    }
  }

  private keep(): void {
    this.lost = null;
    this.keeper = keepLease(this.lease, this.ttlMs, (cause) => {
      this.lost = new DrugsyncError(
        'READER_LEASE_HELD',
        `the reader lease was lost: ${errorMessage(cause)}`,
        {
          context: { key: this.lease.key },
          cause,
          retryable: true,
          remedy:
            'the reader waits for the lease and resumes from its checkpoint; another reader may hold it',
        },
      );
      this.onLost?.(this.lost);
    });
  }
}
