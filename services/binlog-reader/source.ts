/**
 * The binlog behind a small interface: a `BinlogSource` reads from a position and calls a `BinlogHandler`
 * in binlog order; it can be paused (backpressure) and stopped. `createZongjiSource` wraps @vlasky/zongji;
 * tests drive the reader with a fake source that implements the same interface.
 *
 * zongji facts this relies on (see docs/binlog-reader.md):
 * - dateStrings: true keeps DATETIME(6) microseconds and zero dates; DECIMAL arrives as exact strings.
 * - With binlog_row_metadata=FULL every TableMap carries the column names, so ALTER TABLE never leaves
 *   stale column metadata behind.
 * - `includeSchema` filters row events only; query events (DDL, TRUNCATE) always arrive.
 * - A handler exception would silently stop zongji: every callback is wrapped and routed to onError.
 * - `stop()` emits spurious TypeErrors while the server is still sending: errors after a deliberate stop
 *   are ignored.
 * - zongji passes its connection options (TLS included) to mysql2 for both of its connections, the control
 *   connection and the binlog one.
 * - An exception while decoding an event reaches us as an 'error': row images go through ./decoder.ts' hook
 *   (BINLOG_DECODE_FAILED with the column); what the hook does not see (the first rows event of each kind,
 *   other events, zongji's "Unsupported type") is recognised here by where it was thrown. zongji's error for
 *   a MySQL 8 event whose rows it skips (TRANSACTION_PAYLOAD, PARTIAL_UPDATE_ROWS) is BINLOG_DECODE_FAILED
 *   too (`undecodedEventError`); event types it does not know (Aurora's 100) reach onHeartbeat.
 */
import ZongJi from '@vlasky/zongji';
import type { SslOptions } from 'mysql2';
import { DrugsyncError } from '../core/errors.ts';
import type { BinlogPosition } from '../core/position.ts';
import { binlogDecodeError, undecodedEventError } from './decode-errors.ts';
import { hookRowsEventClass, useFastRowDecoder } from './decoder.ts';

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

export interface ZongjiSourceOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** mysql2's TLS options for both zongji connections (mysqlTlsOptions); undefined: plain. */
  ssl?: SslOptions | undefined;
  serverId: number;
  schema: string;
  table: string;
  /** Ask the server for a heartbeat event every N seconds while idle (0: off). */
  heartbeatSeconds: number;
  /** Decode row images with ./decoder.ts where the table allows (false: zongji's own decoder throughout). */
  fastRows?: boolean;
  /** Told once when the fast decoder cannot hook into zongji (rows are then decoded by zongji). */
  warn?: (message: string) => void;
  /**
   * Longest run of binlog events handled without yielding to the event loop (default 10 ms). After a pause,
   * megabytes of binlog wait in the socket and Node reads them back to back: without a yield, responses
   * from Kinesis and the calls that follow wait behind ~130 ms of decoding.
   */
  burstMs?: number;
  /**
   * Builds the ZongJi instance from the settings the source gives it (default: `new ZongJi(settings)`). Tests
   * replay recorded binlog bytes through the source with it (test/support/zongji-replay.ts).
   */
  createZongji?: (settings: Record<string, unknown>) => object;
}

interface ZEvent {
  getTypeName(): string;
  timestamp: number;
  nextPosition: number;
  size: number;
  gtid?: string;
  rows?: Row[] | { before: Row; after: Row }[];
  /** TableMap events */
  tableName?: string;
  schemaName?: string;
  tableId?: number;
  tableMap?: Record<number, { parentSchema: string; tableName: string }>;
  query?: string;
  schema?: string;
  xid?: number | string;
  binlogName?: string;
  position?: number;
}

interface ZongjiLike {
  on(ev: string, fn: (...a: unknown[]) => void): void;
  start(opts: Record<string, unknown>): void;
  stop(): void;
  connection: { pause(): void; resume(): void; query(sql: string, cb: (err: unknown) => void): void } | null;
  useChecksum: boolean;
}

/** The first stack frame outside Node's own code lies in zongji's event parsing (not in its protocol code). */
const ZONGJI_PARSING = /@vlasky[\\/]zongji[\\/]lib[\\/](?!sequence[\\/])/;

/**
 * A stream error that is a failure to decode an event (BINLOG_DECODE_FAILED, not retryable: a restart
 * would fail on the same event), or null. MySQL errors carry an errno/sqlState and stay as they are.
 */
export function decodeFailure(e: unknown, file: string, pos: number, table: string): DrugsyncError | null {
  if (e instanceof DrugsyncError) return e.code === 'BINLOG_DECODE_FAILED' ? e : null;
  if (!(e instanceof Error)) return null;
  const mysqlError = e as { errno?: unknown; sqlState?: unknown; code?: unknown };
  if (mysqlError.errno !== undefined || mysqlError.sqlState !== undefined) return null;
  const undecoded = undecodedEventError(e, file, pos);
  if (undecoded) return undecoded;
  const unsupported = /^Unsupported type "[^"]*" on column "([^"]*)"/.exec(e.message);
  const frame = (e.stack ?? '')
    .split('\n')
    .slice(1)
    .find((l) => !/\(node:|at node:/.test(l));
  if (!unsupported && !(frame && ZONGJI_PARSING.test(frame))) return null;
  const [schema, name] = table.includes('.') ? table.split('.', 2) : ['(unknown)', table];
  return binlogDecodeError(
    { file, pos, schema: schema as string, table: name as string, column: unsupported?.[1] ?? null },
    e,
  );
}

/**
 * Bounded bursts: past `burstMs` of handling since the event loop last turned, the connection is paused
 * (mysql2 holds the rest of its packets) and resumed on the next turn, after other I/O had its go.
 */
class BurstLimiter {
  /** times reading was paused for a turn of the event loop */
  yields = 0;
  private burstStart = 0;
  private yielding = false;

  constructor(
    private readonly burstMs: number,
    private readonly connection: () => ZongjiLike['connection'],
    /** paused on purpose: leave the connection alone */
    private readonly paused: () => boolean,
    private readonly stopped: () => boolean,
  ) {}

  /** Called for each event before it is handled. */
  note(): void {
    const now = performance.now();
    if (this.burstStart === 0) {
      this.burstStart = now;
      setImmediate(() => {
        this.burstStart = 0;
      });
      return;
    }
    const conn = this.connection();
    if (this.yielding || this.paused() || now - this.burstStart <= this.burstMs || !conn) return;
    this.yielding = true;
    this.yields += 1;
    conn.pause();
    setImmediate(() => {
      this.yielding = false;
      this.burstStart = 0;
      if (!this.paused() && !this.stopped()) this.connection()?.resume();
    });
  }
}

function rowsOp(typeName: string): RowsEvent['op'] {
  if (typeName === 'WriteRows') return 'insert';
  return typeName === 'UpdateRows' ? 'update' : 'delete';
}

/** zongji behind the BinlogSource interface (see the module comment). */
class ZongjiSource implements BinlogSource {
  private z: ZongjiLike | null = null;
  private stopped = false;
  private isPaused = false;
  private failed = false;
  /** the current binlog file */
  private file = '';
  /** the end of the last event seen and the last table mapped: where an event that fails to decode starts */
  private lastNext = 0;
  private lastTable: string;
  private readonly bursts: BurstLimiter;

  constructor(private readonly o: ZongjiSourceOptions) {
    this.lastTable = `${o.schema}.${o.table}`;
    this.bursts = new BurstLimiter(
      o.burstMs ?? 10,
      () => this.z?.connection ?? null,
      () => this.isPaused,
      () => this.stopped,
    );
  }

  start(from: StartFrom, h: BinlogHandler): void {
    if (this.z) throw new Error('a BinlogSource starts once');
    if ('file' in from) {
      this.file = from.file;
      this.lastNext = from.pos;
    }
    const zj = this.connect();
    zj.on('error', (e) => this.fail(h, e));
    zj.on('ready', () => this.askForHeartbeats(zj, h));
    zj.on('binlog', (raw) => this.onBinlog(raw as ZEvent, h));
    const base = { serverId: this.o.serverId, includeSchema: { [this.o.schema]: [this.o.table] } };
    if ('gtid' in from) zj.start({ ...base, gtidSet: from.gtid });
    else zj.start({ ...base, filename: from.file, position: from.pos });
  }

  pause(): void {
    if (this.isPaused || this.stopped) return;
    this.isPaused = true;
    this.z?.connection?.pause();
  }

  resume(): void {
    if (!this.isPaused || this.stopped) return;
    this.isPaused = false;
    this.z?.connection?.resume();
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get yields(): number {
    return this.bursts.yields;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const zj = this.z;
    if (!zj) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      zj.on('stopped', () => {
        clearTimeout(t);
        resolve();
      });
      zj.stop();
    });
  }

  private connect(): ZongjiLike {
    const o = this.o;
    const settings = {
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      ...(o.ssl ? { ssl: o.ssl } : {}),
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
      charset: 'utf8mb4_general_ci',
    };
    const zj = (o.createZongji ? o.createZongji(settings) : new ZongJi(settings)) as unknown as ZongjiLike;
    this.z = zj;
    if (o.fastRows) useFastRowDecoder(zj, (message) => o.warn?.(message));
    return zj;
  }

  private fail(h: BinlogHandler, e: unknown): void {
    if (this.stopped || this.failed) return; // after a deliberate stop zongji emits spurious TypeErrors
    this.failed = true;
    h.onError(decodeFailure(e, this.file, this.lastNext, this.lastTable) ?? e);
  }

  /**
   * Queued before the dump command (zongji enqueues it right after 'ready'): the server then sends a
   * heartbeat event every N seconds while it has nothing else to send.
   */
  private askForHeartbeats(zj: ZongjiLike, h: BinlogHandler): void {
    if (this.o.heartbeatSeconds <= 0 || !zj.connection) return;
    const ns = BigInt(this.o.heartbeatSeconds) * 1_000_000_000n;
    zj.connection.query(`SET @master_heartbeat_period = ${ns}`, (err) => {
      if (err) this.fail(h, err);
    });
  }

  private place(e: ZEvent): EventPlace {
    const next = e.nextPosition;
    const headerLen = this.z?.useChecksum ? 23 : 19;
    return {
      file: this.file,
      pos: next > 0 ? next - e.size - headerLen : 0,
      next,
      ts: e.timestamp,
      gtid: e.gtid ?? null,
    };
  }

  private onBinlog(e: ZEvent, h: BinlogHandler): void {
    if (this.stopped || this.failed) return;
    this.bursts.note();
    if (e.nextPosition > 0) this.lastNext = e.nextPosition;
    try {
      this.dispatch(e, h);
    } catch (err) {
      this.fail(h, err);
    }
  }

  /** One zongji event to the handler call it stands for. */
  private dispatch(e: ZEvent, h: BinlogHandler): void {
    switch (e.getTypeName()) {
      case 'Rotate':
        this.file = e.binlogName as string;
        h.onRotate(this.file, e.position ?? 4);
        return;
      case 'MariadbGtid':
      case 'Gtid':
        h.onBegin({ ...this.place(e), gtid: e.gtid ?? null });
        return;
      case 'AnonymousGtid':
        h.onBegin({ ...this.place(e), gtid: null });
        return;
      case 'Query':
        this.dispatchQuery(e, h);
        return;
      case 'Xid':
        h.onCommit({ ...this.place(e), xid: e.xid === undefined ? null : String(e.xid) });
        return;
      case 'XaPrepare':
        throw new DrugsyncError(
          'BINLOG_DECODE_FAILED',
          'an XA PREPARE event group is in the binlog: XA transactions are not supported',
          {
            context: { file: this.file, next: e.nextPosition },
            remedy: 'do not write rndc14 inside XA transactions',
          },
        );
      case 'TableMap':
        this.lastTable = `${e.schemaName ?? ''}.${e.tableName ?? ''}`;
        h.onHeartbeat();
        return;
      case 'WriteRows':
      case 'UpdateRows':
      case 'DeleteRows':
        this.dispatchRows(e, h);
        return;
      default:
        h.onHeartbeat();
    }
  }

  /** BEGIN / XA START → onBegin, COMMIT / ROLLBACK / XA COMMIT → onCommit, anything else → onStatement. */
  private dispatchQuery(e: ZEvent, h: BinlogHandler): void {
    const q = (e.query ?? '').trim();
    const upper = q.toUpperCase();
    if (upper === 'BEGIN' || upper.startsWith('XA START') || upper.startsWith('XA END')) {
      h.onBegin(this.place(e));
    } else if (upper === 'COMMIT' || upper === 'ROLLBACK' || upper.startsWith('XA COMMIT')) {
      h.onCommit({ ...this.place(e), xid: null });
    } else {
      h.onStatement({ ...this.place(e), query: q, schema: e.schema ?? '' });
    }
  }

  /** Rows of the configured table → onRows; rows of other tables only show the server is alive. */
  private dispatchRows(e: ZEvent, h: BinlogHandler): void {
    // hooked for every source: decode failures then name their column (the fast decoder: marked ones)
    const why = hookRowsEventClass(e);
    if (why && this.o.fastRows) this.o.warn?.(`${why}: row images are decoded by zongji`);
    const tm = e.tableMap?.[e.tableId as number];
    if (!tm || tm.parentSchema !== this.o.schema || tm.tableName !== this.o.table) {
      h.onHeartbeat();
      return;
    }
    h.onRows({
      ...this.place(e),
      op: rowsOp(e.getTypeName()),
      schema: tm.parentSchema,
      table: tm.tableName,
      rows: e.rows ?? [],
    } as RowsEvent);
  }
}

export function createZongjiSource(o: ZongjiSourceOptions): BinlogSource {
  return new ZongjiSource(o);
}

/** A start position as zongji wants it. */
export function startFromPosition(p: BinlogPosition): StartFrom {
  return { file: p.file, pos: p.pos };
}
