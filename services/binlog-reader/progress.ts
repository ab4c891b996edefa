/**
 * The reader's progress clock, behind ReaderStallSeconds and ReaderLagSeconds (../core/metrics.ts): when
 * did the reader last prove it moves, and up to when is the binlog known to be captured.
 *
 * Progress is only what the reader can prove:
 * - its checkpoint moved (a commit whose records Kinesis acknowledged was written to Redis);
 * - Kinesis acknowledged records past the furthest point any session reached from the current checkpoint
 *   (a transaction of 500,000 rows checkpoints only at its commit, and is progress all along; a session
 *   that fails at the same place again and again is not);
 * - the server said it has nothing more to send (a heartbeat event, which MySQL and MariaDB send only while
 *   the dump thread waits at the end of the binlog; or the stall watchdog's probe finding the server where
 *   the stream is) while everything read is checkpointed: the reader is caught up.
 * Anything else (a refused login, a lease held by another reader, a silent network, Kinesis down, the
 * server unreachable so nobody can say whether it is ahead) leaves the clock where it was: the stall
 * grows, and nothing reads healthy because the reader merely does nothing.
 *
 * `observe` samples the reader's counters (pure; time injected): the status publisher calls it on its own
 * timer, so the stall is known however the work loop is stuck. A progress between two samples is dated at
 * the later one: the stall may read up to one sampling period low, never high.
 */

/** What the reader's counters say at one moment. */
export interface ProgressSample {
  /** the last checkpoint written, serialized (null: none written by this process yet) */
  checkpoint: string | null;
  /** commit time (epoch ms, server clock) of the transaction at that checkpoint */
  checkpointCommitTs: number | null;
  /** identifies the running session: a new one re-reads from the checkpoint */
  session: number;
  /** records Kinesis acknowledged in that session */
  sessionAcked: number;
  /** times the server confirmed the reader caught up (heartbeat or probe with everything checkpointed) */
  caughtUp: number;
}

export class ReaderProgress {
  private progressAt: number;
  /** local time up to which the binlog is known captured by a caught-up confirmation (null: never) */
  private caughtUpAt: number | null = null;
  private commitTs: number | null = null;
  private last: ProgressSample | null = null;
  /** the session and its acknowledged count when the checkpoint last moved (or the session began) */
  private base = { session: -1, acked: 0 };
  /** the most records acknowledged past the current checkpoint by any session */
  private furthest = 0;

  constructor(private readonly startedAt: number) {
    this.progressAt = startedAt;
  }

  /** Takes one sample; any proof of progress since the previous one is dated `now`. */
  observe(s: ProgressSample, now: number): void {
    const prev = this.last;
    this.last = { ...s };
    if (s.checkpoint !== null && s.checkpoint !== prev?.checkpoint) {
      this.progressAt = now;
      this.commitTs = s.checkpointCommitTs;
      this.base = { session: s.session, acked: s.sessionAcked };
      this.furthest = 0;
    }
    if (s.caughtUp > (prev?.caughtUp ?? 0)) {
      this.progressAt = now;
      this.caughtUpAt = now;
    }
    if (s.session !== this.base.session) this.base = { session: s.session, acked: 0 };
    const past = s.sessionAcked - this.base.acked;
    if (past > this.furthest) {
      this.furthest = past;
      this.progressAt = now;
    }
  }

  /** Seconds since the last proven progress (since the start when there was none). */
  stallSeconds(now: number): number {
    return Math.max(0, (now - this.progressAt) / 1000);
  }

  /**
   * Seconds between now and the newest moment the binlog is known captured up to: the checkpoint's commit
   * time, or the last caught-up confirmation; since the start when neither is known.
   */
  lagSeconds(now: number): number {
    const known = Math.max(this.commitTs ?? -Infinity, this.caughtUpAt ?? -Infinity);
    const from = Number.isFinite(known) ? known : this.startedAt;
    return Math.max(0, (now - from) / 1000);
  }
}
