/**
 * Recorded binlog bytes read by zongji's own parser and by the reader's own source, without a server.
 *
 * `ReplayZongJi` is a real ZongJi (@vlasky/zongji 0.9) whose `start()` feeds the packets of a stream to
 * zongji's binlog command (`lib/sequence/binlog.js`: the packet and event classes, GTID tracking and schema
 * filters a dump session goes through), the way zongji's own test/parser.js replays its captures, instead of
 * opening a connection. `createZongjiSource`'s `createZongji` option hands it to the reader's source, so the
 * source's dispatch, positions, error mapping and drugsync's row decoder hooked into zongji's rows-event
 * classes all read these bytes as they read a server's.
 *
 * What a server connection adds is done as ZongJi's binlogHandler (index.js) does it: a TableMap with
 * column names (binlog_row_metadata=FULL) builds its column schemas from the event; one without (MINIMAL)
 * gets the table's INFORMATION_SCHEMA.COLUMNS rows (`columns`, what zongji's metadata query would return)
 * when its table id is new or its name or column count changed; every event carries the current GTID.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import ZongJi from '@vlasky/zongji';
import type { ColumnSchema, ZongJiOptions } from '@vlasky/zongji';
import { createZongjiSource } from '../../services/binlog-reader/zongji-source.ts';
import type { BinlogHandler, EventPlace, RowsEvent } from '../../services/binlog-reader/source.ts';
import { wirePacket } from './binlog-bytes.ts';
import type { BinlogStream } from './binlog-bytes.ts';

/** A dump-session packet as zongji's binlog command reads it (the subset of a mysql2 packet it uses). */
interface ReplayPacket {
  buffer: Buffer;
  offset: number;
  end: number;
  isEOF(): boolean;
  isError(): boolean;
}

/** What ZongJi's binlog handler sees of an event. */
export interface ZEvent {
  getTypeName(): string;
  gtid?: string;
  _filtered?: boolean;
}

export interface ZTableMapEvent extends ZEvent {
  tableId: number;
  schemaName: string;
  tableName: string;
  columnCount: number;
  hasSelfDescribingMetadata(): boolean;
  hasAmbiguousTemporalColumns(): boolean;
  buildColumnSchemas(): ColumnSchema[];
  updateColumnInfo(): void;
}

type BinlogCommandClass = new (callback: (error: unknown, event: ZEvent | undefined) => void) => {
  binlogData(packet: ReplayPacket, connection: unknown): unknown;
};

/** The ZongJi fields a dump session sets up (index.js start()). */
interface ZongJiState {
  tableMap: Record<
    number,
    { columnSchemas: ColumnSchema[]; parentSchema: string; tableName: string; columns?: unknown[] }
  >;
  _filters(options: ZongJiOptions): void;
  _currentGtid: string | undefined;
  useChecksum: boolean;
  isMariaDb: boolean;
  connection: unknown;
  ready: boolean;
  stopped: boolean;
}

const zongjiRoot = dirname(createRequire(import.meta.url).resolve('@vlasky/zongji'));
// zongji's package exports only its index: its binlog command is loaded from its file, the same module
// instance index.js uses (so drugsync's hook on the rows-event classes applies to both)
const { default: initBinlogClass } = (await import(
  pathToFileURL(join(zongjiRoot, 'lib', 'sequence', 'binlog.js')).href
)) as { default: (zongji: unknown) => BinlogCommandClass };

export interface ReplayInput {
  stream: BinlogStream;
  /** INFORMATION_SCHEMA.COLUMNS rows by `schema.table`, for table maps without column names (MINIMAL) */
  columns?: Record<string, ColumnSchema[]>;
}

function packetOf(e: BinlogStream['events'][number]): ReplayPacket {
  const buffer = wirePacket(e);
  return { buffer, offset: 0, end: buffer.length, isEOF: () => false, isError: () => false };
}

/** A ZongJi whose dump session is the replay of a recorded stream (see the module comment). */
export class ReplayZongJi extends ZongJi {
  /** SQL the source sent on the binlog connection (heartbeat settings) */
  readonly queries: string[] = [];
  /** every event this ZongJi emitted, in order */
  readonly events: ZEvent[] = [];
  /** resolves once every packet of the stream went through zongji's binlog command */
  readonly replayed: Promise<void>;
  private finish: () => void = () => {};

  constructor(
    readonly settings: Record<string, unknown>,
    private readonly input: ReplayInput,
  ) {
    super(settings as ConstructorParameters<typeof ZongJi>[0]);
    this.replayed = new Promise((resolve) => (this.finish = resolve));
  }

  private get state(): ZongJiState {
    return this as unknown as ZongJiState;
  }

  override start(options: ZongJiOptions = {}): void {
    const z = this.state;
    z._filters(options);
    z.connection = {
      config: this.settings,
      pause: () => {},
      resume: () => {},
      query: (sql: string, cb: (err: unknown) => void) => {
        this.queries.push(sql);
        cb(null);
      },
    };
    z.useChecksum = this.input.stream.fde.checksum === 'CRC32';
    z.isMariaDb = false;
    z.stopped = false;
    z.ready = true;
    this.emit('ready');
    setImmediate(() => this.replay());
  }

  override stop(): void {
    this.state.stopped = true;
    this.state.ready = false;
    this.emit('stopped');
  }

  private replay(): void {
    const Binlog = initBinlogClass(this);
    const command = new Binlog((error, event) => this.handle(error, event));
    for (const e of this.input.stream.events) {
      if (this.state.stopped) break;
      command.binlogData(packetOf(e), this.state.connection);
    }
    this.finish();
  }

  /** ZongJi's binlogHandler, with the metadata query answered from `columns`. */
  private handle(error: unknown, event: ZEvent | undefined): void {
    if (error) {
      this.emit('error', error);
      return;
    }
    if (this.state.stopped || event === undefined || event._filtered === true) return;
    if (event.getTypeName() === 'TableMap' && !this.mapTable(event as ZTableMapEvent)) return;
    if (!('gtid' in event)) event.gtid = this.state._currentGtid;
    this.events.push(event);
    this.emit('binlog', event);
  }

  /** The table map entry zongji would keep for this TableMap; false when zongji would halt instead. */
  private mapTable(event: ZTableMapEvent): boolean {
    const z = this.state;
    if (event.hasSelfDescribingMetadata() && !(z.isMariaDb && event.hasAmbiguousTemporalColumns())) {
      z.tableMap[event.tableId] = {
        columnSchemas: event.buildColumnSchemas(),
        parentSchema: event.schemaName,
        tableName: event.tableName,
      };
      event.updateColumnInfo();
      return true;
    }
    const cached = z.tableMap[event.tableId];
    if (cached && cached.tableName === event.tableName && cached.columns?.length === event.columnCount)
      return true;
    const rows = this.input.columns?.[`${event.schemaName}.${event.tableName}`];
    if (!rows) {
      this.emit(
        'error',
        new Error(`Insufficient permissions to access: ${event.schemaName}.${event.tableName}`),
      );
      return false;
    }
    // a fresh copy per query, as mysql2 returns it (zongji writes UNSIGNED into these rows)
    z.tableMap[event.tableId] = {
      columnSchemas: rows.map((r) => ({ ...r })),
      parentSchema: event.schemaName,
      tableName: event.tableName,
    };
    try {
      event.updateColumnInfo();
      return true;
    } catch (err) {
      delete z.tableMap[event.tableId];
      this.emit('error', err);
      return false;
    }
  }
}

/** One call of the source to its handler, as data (onHeartbeat calls are counted, not listed). */
export type HandlerCall =
  | { call: 'begin'; place: EventPlace }
  | { call: 'rows'; event: RowsEvent }
  | { call: 'commit'; place: EventPlace; xid: string | null }
  | { call: 'statement'; place: EventPlace; query: string; schema: string }
  | { call: 'rotate'; file: string; pos: number }
  | { call: 'error'; error: unknown };

export interface SourceReplay {
  calls: HandlerCall[];
  heartbeats: number;
  /** what the source told its `warn` (fast decoder hook and fallbacks) */
  warnings: string[];
  zongji: ReplayZongJi;
}

export interface SourceReplayOptions extends ReplayInput {
  /** the reader's table: rows of other tables are not passed on */
  schema: string;
  table: string;
  /** drugsync's row decoder where the table allows (the reader's default), or zongji's throughout */
  fastRows: boolean;
  /** mysql2 settings laid over the source's (another capture's connection options) */
  connectionConfig?: Record<string, unknown>;
}

function recordingHandler(calls: HandlerCall[], counts: { heartbeats: number }): BinlogHandler {
  return {
    onBegin: (place) => calls.push({ call: 'begin', place }),
    onRows: (event) => calls.push({ call: 'rows', event }),
    onCommit: ({ xid, ...place }) => calls.push({ call: 'commit', place, xid }),
    onStatement: ({ query, schema, ...place }) => calls.push({ call: 'statement', place, query, schema }),
    onRotate: (file, pos) => calls.push({ call: 'rotate', file, pos }),
    onHeartbeat: () => (counts.heartbeats += 1),
    onError: (error) => calls.push({ call: 'error', error }),
  };
}

/**
 * The reader's source (`createZongjiSource`, as reader-mysql.ts opens it) over a recorded stream: every
 * handler call it makes, from the stream's first event (file = the stream's name, position 4).
 */
export async function replayThroughSource(o: SourceReplayOptions): Promise<SourceReplay> {
  const calls: HandlerCall[] = [];
  const counts = { heartbeats: 0 };
  const warnings: string[] = [];
  let zongji: ReplayZongJi | undefined;
  const source = createZongjiSource({
    host: 'replay.invalid',
    port: 3306,
    user: 'replay',
    password: 'replay',
    serverId: 1,
    schema: o.schema,
    table: o.table,
    heartbeatSeconds: 0,
    fastRows: o.fastRows,
    warn: (m) => warnings.push(m),
    createZongji: (settings) => (zongji = new ReplayZongJi({ ...settings, ...o.connectionConfig }, o)),
  });
  source.start({ file: o.stream.name, pos: 4 }, recordingHandler(calls, counts));
  if (!zongji) throw new Error('the source did not build its ZongJi through createZongji');
  await zongji.replayed;
  await new Promise((resolve) => setImmediate(resolve));
  await source.stop();
  return { calls, heartbeats: counts.heartbeats, warnings, zongji };
}
