/**
 * The binlog behind a small interface: a `BinlogSource` reads from a position and calls a `BinlogHandler`
 * in binlog order; it can be paused (backpressure) and stopped. `createZongjiSource` (zongji-source.ts) wraps
 * @vlasky/zongji; tests drive the reader with a fake source that implements the same interface.
 */
import type { BinlogPosition } from '../core/position.ts';

export type Row = Record<string, unknown>;

/** Where an event sits: file, offset of the event, offset just past it. */
export interface EventPlace {
  file: string;
  /** byte offset of the event in `file` */
  pos: number;
  /** byte offset of the next event (the event's end_log_pos) */
  next: number;
  /** binlog header time, epoch ms */
  ts: number;
  gtid: string | null;
}

export interface RowsEvent extends EventPlace {
  op: 'insert' | 'update' | 'delete';
  schema: string;
  table: string;
  /** insert/delete: row images; update: {before, after} pairs */
  rows: Row[] | { before: Row; after: Row }[];
}

export interface BinlogHandler {
  /** A transaction (or standalone statement group) starts: GTID event, or BEGIN without GTIDs. */
  onBegin(e: EventPlace): void;
  onRows(e: RowsEvent): void;
  /** A transaction committed (XID, or COMMIT query): `next` is where the following transaction starts. */
  onCommit(e: EventPlace & { xid: string | null }): void;
  /** A statement outside a transaction (DDL, TRUNCATE, GRANT ...): a commit point of its own. */
  onStatement(e: EventPlace & { query: string; schema: string }): void;
  /** The stream moved to another file (also sent once at the start of the stream). */
  onRotate(file: string, pos: number): void;
  /** The server is alive (heartbeat, or any event that is not passed on). */
  onHeartbeat(): void;
  /**
   * A heartbeat event: the server has sent everything up to `file`:`pos` and waits for new binlog events
   * (sent every READER_HEARTBEAT_SECONDS while idle). Called after `onHeartbeat`.
   */
  onServerHeartbeat?(file: string, pos: number): void;
  /** The stream failed: the reader restarts from its checkpoint. */
  onError(e: unknown): void;
}

export type StartFrom = { file: string; pos: number } | { gtid: string };

export interface BinlogSource {
  start(from: StartFrom, handler: BinlogHandler): void;
  /** Stop reading from the socket (the server's writes back up in TCP); idempotent. */
  pause(): void;
  resume(): void;
  readonly paused: boolean;
  /** Times reading was paused for a turn of the event loop after a long burst (zongji source). */
  readonly yields?: number;
  /** Closes the connections; no handler call after it resolves. */
  stop(): Promise<void>;
}

/** A start position as zongji wants it. */
export function startFromPosition(p: BinlogPosition): StartFrom {
  return { file: p.file, pos: p.pos };
}
