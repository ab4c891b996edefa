/**
 * The stall watchdog of a streaming session. Two ways a session can hang without an error:
 *
 * - the binlog socket goes silent although the server moved on (a half-open connection): after
 *   `stallMs` without a packet the server is asked where it is (SHOW MASTER STATUS); ahead of what we saw →
 *   BINLOG_STALLED (restart from the checkpoint); not ahead → the silence is just an idle server;
 * - a PutRecords call neither ends nor fails, holding the paused source forever: calls in flight for
 *   `putStallMs` without any outcome → KINESIS_PUT_STALLED.
 *
 * A probe that finds the server where the stream is tells `atServerEnd` (with heartbeats off, this is how an
 * idle database is told apart from a stuck reader). `tick()` is the whole check (clock injected, probe
 * injected); `start()` runs it on a timer.
 */
import { DrugsyncError } from '../core/errors.ts';

/** A binlog file and offset: the server's (SHOW MASTER STATUS) or the last one the stream showed us. */
export interface FilePos {
  file: string;
  pos: number;
}

export interface StallWatchdogDeps {
  stallMs: number;
  putStallMs: number;
  stream: string;
  /** The server's current binlog position (null: the server does not say). */
  probe(): Promise<FilePos | null>;
  /** The session ended (nothing to watch). */
  finished(): boolean;
  /** The probe found the server where the stream is: the silence is an idle server (progress, ./progress.ts). */
  atServerEnd?(): void;
  /** Reading is paused on purpose (backpressure, a table event): silence is expected. */
  paused(): boolean;
  /** How long PutRecords calls have been in flight without any outcome (ms), and the queue length. */
  putStalledMs(): number;
  queuedRecords(): number;
  fail(e: DrugsyncError | unknown): void;
  now?: () => number;
}

/** True when the server's position is past what the stream showed us (in another file, or further on). */
export function serverMovedOn(server: FilePos | null, seen: FilePos | null): boolean {
  return !!server && !!seen && (server.file !== seen.file || server.pos > seen.pos);
}

export class StallWatchdog {
  private lastPacketAt: number;
  private lastSeen: FilePos | null;
  private timer: NodeJS.Timeout | null = null;
  private readonly now: () => number;

  constructor(
    private readonly deps: StallWatchdogDeps,
    seen: FilePos | null,
  ) {
    this.now = deps.now ?? Date.now;
    this.lastPacketAt = this.now();
    this.lastSeen = seen ? { ...seen } : null;
  }

  /** The stream delivered something (any event). */
  packet(): void {
    this.lastPacketAt = this.now();
  }

  /** The stream showed us this position (a rotation, a transaction start, a commit). */
  seen(file: string, pos: number): void {
    this.lastSeen = { file, pos };
  }

  /** One check; a probe it starts reports through `fail` or resets the silence. */
  tick(): void {
    const d = this.deps;
    if (!d.finished() && d.putStalledMs() > d.putStallMs) {
      d.fail(this.putStalled());
      return;
    }
    if (d.finished() || d.paused() || !this.silent()) return;
    d.probe().then(
      (server) => this.judge(server),
      (e) => d.fail(e),
    );
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), Math.max(250, Math.floor(this.deps.stallMs / 4)));
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private silent(): boolean {
    return this.now() - this.lastPacketAt >= this.deps.stallMs;
  }

  private judge(server: FilePos | null): void {
    if (this.deps.finished() || !this.silent()) return;
    const seen = this.lastSeen;
    if (server && seen && serverMovedOn(server, seen)) {
      this.deps.fail(this.binlogStalled(server, seen));
      return;
    }
    this.lastPacketAt = this.now();
    // only the server's own word that it is not ahead proves the reader caught up
    if (server && seen) this.deps.atServerEnd?.();
  }

  private putStalled(): DrugsyncError {
    const d = this.deps;
    return new DrugsyncError(
      'KINESIS_PUT_STALLED',
      `PutRecords calls in flight for ${Math.round(d.putStalledMs() / 1000)} s without an answer or an error`,
      {
        context: { stream: d.stream, queued: d.queuedRecords() },
        retryable: true,
        remedy:
          'the reader restarts from its checkpoint (nothing acknowledged is lost); check Kinesis if this repeats',
      },
    );
  }

  private binlogStalled(server: FilePos, seen: FilePos): DrugsyncError {
    return new DrugsyncError(
      'BINLOG_STALLED',
      `no binlog event for ${Math.round((this.now() - this.lastPacketAt) / 1000)} s although the server moved on`,
      {
        context: { server: `${server.file}:${server.pos}`, seen: `${seen.file}:${seen.pos}` },
        retryable: true,
        remedy:
          'the reader restarts from its checkpoint; check the network between reader and MySQL if this repeats',
      },
    );
  }
}
