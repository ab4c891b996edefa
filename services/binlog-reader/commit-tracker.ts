/**
 * Which commit may become the checkpoint. Each commit point of the binlog (XID, COMMIT, a standalone
 * statement) is noted with the publisher's sequence number at that moment: every record queued before the
 * commit has a sequence number up to it. Once Kinesis acknowledged every record up to that number, the
 * commit is fully published and its end position may be written as the checkpoint. Pure: no timers, no I/O.
 */
import type { BinlogPosition } from '../core/position.ts';

/** A commit point: where the next transaction starts and the commit's binlog time (ms). */
export interface CommitPoint {
  pos: BinlogPosition;
  ts: number;
}

interface PendingCommit extends CommitPoint {
  /** the publisher's enqueued sequence number when the commit was seen */
  seq: number;
}

export class CommitTracker {
  private readonly commits: PendingCommit[] = [];

  /** Notes a commit seen after `seq` records were queued. */
  add(seq: number, point: CommitPoint): void {
    this.commits.push({ seq, pos: point.pos, ts: point.ts });
  }

  /**
   * The newest commit whose records are all acknowledged (`ackedSeq`: every record up to it is), or null
   * when none became so since the last call; that commit and every older one are forgotten.
   */
  takeAcknowledged(ackedSeq: number): CommitPoint | null {
    let reached: PendingCommit | undefined;
    while (this.commits.length && (this.commits[0] as PendingCommit).seq <= ackedSeq)
      reached = this.commits.shift();
    return reached ? { pos: reached.pos, ts: reached.ts } : null;
  }

  /** Commits seen but not yet fully acknowledged. */
  get pending(): number {
    return this.commits.length;
  }
}
