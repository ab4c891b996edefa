/**
 * One streaming session of the binlog reader: from a start position until it stops, goes idle
 * (--once-idle) or fails. It turns binlog callbacks into change events for the publisher, pauses the source
 * while the publisher queue is full, and writes a checkpoint for each commit whose records Kinesis
 * acknowledged (CommitTracker → CheckpointChain). Any failure (a handler exception, the stream, Kinesis,
 * Redis, the stall watchdog, a lost lease) ends it: `result` rejects and the reader restarts from the
 * checkpoint.
 */
import type { BinlogPositionStore } from '../core/checkpoint.ts';
import type { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { REQUEST_TIMEOUT_MS } from '../core/clients/http.ts';
import { CheckpointChain } from './checkpoint-chain.ts';
import { CommitTracker } from './commit-tracker.ts';
import { classifyDdl } from './ddl.ts';
import { rowRecord, tableRecord } from '../core/events.ts';
import { rowChangeEvents, tableEvent } from './row-events.ts';
import type { TxInfo } from './row-events.ts';
import type { KinesisSink } from './kinesis-sink.ts';
import type { Publisher } from './publisher.ts';
import type { ReaderConfig } from './reader-config.ts';
import type { ReaderStats } from './reader-stats.ts';
import type { BinlogHandler, BinlogSource, EventPlace, RowsEvent } from './source.ts';
import { StallWatchdog } from './stall-watchdog.ts';
import type { FilePos } from './stall-watchdog.ts';
import type { SessionStart } from './start-position.ts';

export type SessionEnd = 'stopped' | 'idle';

/** How long a graceful stop waits for the queued records to be acknowledged. */
const STOP_DRAIN_MS = 7_000;
const IDLE_CHECK_MS = 100;

export interface SessionDeps {
  config: Pick<ReaderConfig, 'DB_NAME' | 'DB_TABLE' | 'KINESIS_STREAM' | 'READER_STALL_SECONDS'>;
  /** --once-idle: end the session ('idle') after this many seconds without a change to the table */
  onceIdleSeconds?: number | undefined;
  log: Logger;
  stats: ReaderStats;
  sink: KinesisSink;
  source: BinlogSource;
  publisher: Publisher;
  checkpoints: Pick<BinlogPositionStore, 'save'>;
  /** the open shards' hash keys (a table event goes to each) */
  serverPosition(): Promise<FilePos | null>;
  streamError(e: unknown, start: SessionStart['from']): Promise<DrugsyncError>;
}

/** The --once-idle condition: caught up, everything checkpointed, and quiet for long enough. */
export function idleExitDue(s: {
  caughtUp: boolean;
  checkpointed: boolean;
  quietMs: number;
  idleMs: number;
}): boolean {
  return s.caughtUp && s.checkpointed && s.quietMs >= s.idleMs;
}

export class ReaderSession {
  readonly result: Promise<SessionEnd>;
  private settle!: (v: SessionEnd) => void;
  private reject!: (e: unknown) => void;
  private finished = false;
  private tx: TxInfo | null = null;
  /** txid of the current transaction when it has deleted rows of the table (a commit event follows it) */
  private txDeletes: string | null = null;
  private readonly commits = new CommitTracker();
  private readonly chain: CheckpointChain;
  private readonly watchdog: StallWatchdog;
  private lastOwnEventAt = Date.now();
  /** with --once-idle: checks every IDLE_CHECK_MS whether the session has been caught up and idle long enough to end */
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: SessionDeps,
    private readonly start: SessionStart,
  ) {
    this.result = new Promise<SessionEnd>((res, rej) => {
      this.settle = res;
      this.reject = rej;
    });
    this.result.catch(() => undefined); // observed by the reader; not unhandled meanwhile
    this.chain = new CheckpointChain(deps.checkpoints, {
      onSaved: (t) => {
        deps.stats.checkpoint = t.pos;
        deps.stats.checkpointCommitTs = t.ts;
      },
      onError: this.fail,
    });
    this.watchdog = this.createWatchdog();
    deps.publisher.onFailure(this.fail);
    deps.publisher.onAck = () => this.acknowledged();
  }

  /** Starts reading; resolves/rejects like `result`. */
  run(): Promise<SessionEnd> {
    this.watchdog.start();
    if (this.deps.onceIdleSeconds !== undefined) {
      const idleMs = this.deps.onceIdleSeconds * 1000;
      this.idleTimer = setInterval(() => this.checkIdle(idleMs), IDLE_CHECK_MS);
    }
    this.deps.source.start(this.start.from, this.handler());
    return this.result;
  }

  /** Ends the session before it read anything (the reader was stopped while it started). */
  async abandon(): Promise<SessionEnd> {
    this.finished = true;
    await this.cleanup();
    return 'stopped';
  }

  /** Nothing queued, no commit waiting for its acknowledgement, no open transaction. */
  idle(): boolean {
    return this.deps.publisher.idle && this.commits.pending === 0 && this.tx === null;
  }

  /** Ends the session with `e` (the first failure wins). */
  readonly fail = (e: unknown): void => {
    if (this.finished) return;
    this.finished = true;
    void this.cleanup().then(
      () => this.reject(e),
      () => this.reject(e),
    );
  };

  /** Graceful stop: stops reading, waits for the queue to be acknowledged, writes the checkpoint. */
  stop(): void {
    if (this.finished) return;
    this.deps.stats.state = 'stopping';
    this.deps.source.pause();
    this.drainAndStop().catch((e: unknown) => (this.finished ? this.reject(e) : this.fail(e)));
  }

  private async drainAndStop(): Promise<void> {
    const { publisher, log } = this.deps;
    const acked = await publisher.waitIdle(STOP_DRAIN_MS);
    this.advance();
    await this.chain.flush();
    if (this.finished) return;
    this.finished = true;
    if (!acked)
      log.warn('stopping with records not yet acknowledged: they are re-read from the checkpoint next time', {
        queued: publisher.queuedRecords,
      });
    await this.cleanup();
    this.settle('stopped');
  }

  private async cleanup(): Promise<void> {
    this.watchdog.stop();
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.deps.publisher.close();
    await this.deps.source.stop();
  }

  private checkIdle(idleMs: number): void {
    if (this.finished || this.chain.busy) return;
    const due = idleExitDue({
      caughtUp: this.idle(),
      checkpointed: this.chain.upToDate,
      quietMs: Date.now() - this.lastOwnEventAt,
      idleMs,
    });
    if (!due) return;
    this.finished = true;
    void this.cleanup().then(() => this.settle('idle'), this.reject);
  }

  private createWatchdog(): StallWatchdog {
    const { config, publisher, source } = this.deps;
    const stallMs = config.READER_STALL_SECONDS * 1000;
    const from = this.start.from;
    return new StallWatchdog(
      {
        stallMs,
        // past the client's request timeout (every call ends by then) and the binlog stall bound
        putStallMs: Math.max(stallMs, 2 * REQUEST_TIMEOUT_MS),
        stream: config.KINESIS_STREAM,
        probe: () => this.deps.serverPosition(),
        finished: () => this.finished,
        atServerEnd: () => this.confirmCaughtUp(),
        paused: () => source.paused,
        putStalledMs: () => publisher.stalledMs,
        queuedRecords: () => publisher.queuedRecords,
        fail: this.fail,
      },
      'file' in from ? from : null,
    );
  }

  // ---- acknowledgements, checkpoints, backpressure ----------------------------------------------------

  /** Offers the newest fully acknowledged commit as the checkpoint. */
  private advance(): void {
    const reached = this.commits.takeAcknowledged(this.deps.publisher.ackedSeq);
    if (reached) this.chain.offer(reached);
  }

  private acknowledged(): void {
    const { publisher, source, stats } = this.deps;
    this.advance();
    stats.queueRecords = publisher.queuedRecords;
    stats.queueBytes = publisher.bytes;
    if (source.paused && publisher.drained) {
      stats.paused = false;
      source.resume();
    }
  }

  /** Pauses reading while the publisher queue is full (resumed in `acknowledged`). */
  private backpressure(): void {
    const { publisher, source, stats, log } = this.deps;
    stats.queueRecords = publisher.queuedRecords;
    stats.queueBytes = publisher.bytes;
    if (publisher.full && !source.paused) {
      source.pause();
      stats.paused = true;
      log.debug('publisher queue full: reading paused', {
        records: publisher.queuedRecords,
        bytes: publisher.bytes,
      });
    }
  }

  /**
   * The server has nothing more to send: with everything read acknowledged and checkpointed, the reader is
   * caught up, which counts as progress (./progress.ts); otherwise work is pending and it does not.
   */
  private confirmCaughtUp(): void {
    if (this.idle() && this.chain.upToDate && !this.chain.busy) this.deps.stats.caughtUp += 1;
  }

  /** A commit point: a checkpoint candidate once every record queued so far is acknowledged. */
  private commitPoint(e: EventPlace): void {
    this.watchdog.seen(e.file, e.next);
    const pos = { file: e.file, pos: e.next, ...(e.gtid ? { gtid: e.gtid } : {}) };
    this.commits.add(this.deps.publisher.enqueuedSeq, { pos, ts: e.ts });
    this.advance();
  }

  // ---- binlog callbacks ----------------------------------------------------------------------------------

  private handler(): BinlogHandler {
    return {
      onRotate: this.guard((file: string, pos: number) => this.watchdog.seen(file, pos)),
      onBegin: this.guard((e: EventPlace) => this.onBegin(e)),
      onRows: this.guard((e: RowsEvent) => this.onRows(e)),
      onCommit: this.guard((e: EventPlace & { xid: string | null }) => this.onCommit(e)),
      onStatement: this.guard((e: EventPlace & { query: string; schema: string }) => this.onStatement(e)),
      onHeartbeat: this.guard(() => {}),
      onServerHeartbeat: this.guard((file: string, pos: number) => {
        this.watchdog.seen(file, pos);
        this.confirmCaughtUp();
      }),
      onError: (e) => void this.deps.streamError(e, this.start.from).then(this.fail, this.fail),
    };
  }

  /**
   * Wraps a callback: nothing after the end, queued while a table event is pending, the packet noted for
   * the watchdog, and an exception ends the session (zongji would stop silently).
   */
  private guard<A extends unknown[]>(fn: (...a: A) => void): (...a: A) => void {
    return (...a: A) => {
      if (this.finished) return;
      try {
        this.watchdog.packet();
        fn(...a);
      } catch (e) {
        this.fail(e);
      }
    };
  }

  private onBegin(e: EventPlace): void {
    this.txDeletes = null;
    this.tx = { txid: e.gtid ?? `${e.file}:${e.pos}`, gtid: e.gtid, ts: e.ts };
    if (e.next > 0) this.watchdog.seen(e.file, e.next);
  }

  private onRows(e: RowsEvent): void {
    const { config, publisher, stats } = this.deps;
    if (e.schema !== config.DB_NAME || e.table !== config.DB_TABLE) return;
    const t = this.tx ?? { txid: `${e.file}:${e.pos}`, gtid: e.gtid, ts: e.ts };
    const events = rowChangeEvents(e, t);
    if (this.tx && !this.txDeletes && events.some((x) => x.type === 'delete')) this.txDeletes = this.tx.txid;
    publisher.enqueue(events.map(rowRecord));
    stats.rowEvents += events.length;
    stats.lastEventTs = t.ts;
    this.lastOwnEventAt = Date.now();
    this.backpressure();
  }

  private onCommit(e: EventPlace & { xid: string | null }): void {
    const { config, publisher, stats } = this.deps;
    if (this.txDeletes !== null) {
      // the end of a transaction that deleted rows, on every shard (see the 'commit' table event)
      const q = { ...e, query: 'COMMIT', txid: this.txDeletes };
      publisher.enqueue([tableRecord(tableEvent('commit', q, config.DB_NAME, config.DB_TABLE))]);
      this.txDeletes = null;
    }
    this.tx = null;
    stats.transactions += 1;
    this.commitPoint(e);
  }

  private onStatement(e: EventPlace & { query: string; schema: string }): void {
    const { config, log } = this.deps;
    this.tx = null;
    const kind = classifyDdl(e.query, e.schema, { schema: config.DB_NAME, table: config.DB_TABLE });
    if (kind === 'alter') {
      log.info('ALTER TABLE on the source table: decoding continues with the binlog column metadata', {
        statement: e.query.slice(0, 200),
        file: e.file,
        pos: e.pos,
      });
    }
    if (kind === 'truncate' || kind === 'resync') this.sendTableEvent(kind, e);
    else this.commitPoint(e);
  }

  /** Sends the table event: the sink puts it on every shard open when it is sent. */
  private sendTableEvent(
    kind: 'truncate' | 'resync',
    e: EventPlace & { query: string; schema: string },
  ): void {
    const { config, publisher, stats, log } = this.deps;
    publisher.enqueue([tableRecord(tableEvent(kind, e, config.DB_NAME, config.DB_TABLE))]);
    stats.tableEvents += 1;
    stats.lastEventTs = e.ts;
    log.warn(`${kind} of the source table: table event sent to every shard`, {
      statement: e.query.slice(0, 200),
      file: e.file,
      pos: e.pos,
    });
    this.commitPoint(e);
    this.backpressure();
  }
}
