/**
 * Writes checkpoints one at a time, always the newest offered: while a write is in flight, newer commits
 * only replace the next target, so a burst of acknowledgements costs one write per round trip, never a
 * queue of them, and writes land in order. A failed write is reported to `onError` (the session ends): in
 * the reader, the store is fenced on the lease (core/checkpoint.ts), so a write refused because the lease
 * was lost ends the session with READER_LEASE_HELD and the reader waits for the lease again.
 */
import type { BinlogPositionStore } from '../core/checkpoint.ts';
import type { CommitPoint } from './commit-tracker.ts';

export interface CheckpointChainHooks {
  /** A checkpoint was written. */
  onSaved(point: CommitPoint): void;
  /** A write failed; the chain stops writing until the next offer. */
  onError(e: unknown): void;
}

export class CheckpointChain {
  private target: CommitPoint | null = null;
  private written: CommitPoint | null = null;
  private saving: Promise<void> | null = null;

  constructor(
    private readonly store: Pick<BinlogPositionStore, 'save'>,
    private readonly hooks: CheckpointChainHooks,
  ) {}

  /** Makes `point` the next checkpoint to write (written now, or after the write in flight). */
  offer(point: CommitPoint): void {
    this.target = point;
    this.writeNext();
  }

  /** A write is in flight. */
  get busy(): boolean {
    return this.saving !== null;
  }

  /** Every offered checkpoint is written (true also when none was offered). */
  get upToDate(): boolean {
    return this.target === null || this.written === this.target;
  }

  /** Resolves once no write is in flight (including writes chained while waiting). */
  async flush(): Promise<void> {
    while (this.saving) await this.saving;
  }

  private writeNext(): void {
    if (this.saving || !this.target) return;
    const t = this.target;
    this.saving = this.store.save(t.pos).then(
      () => {
        this.written = t;
        this.saving = null;
        this.hooks.onSaved(t);
        if (this.target !== t) this.writeNext();
      },
      (e: unknown) => {
        this.saving = null;
        this.hooks.onError(e);
      },
    );
  }
}
