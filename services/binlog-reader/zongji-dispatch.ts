/**
 * zongji's binlog events → `BinlogHandler` calls (source.ts), in binlog order, for the zongji source
 * (zongji-source.ts). Also keeps where the stream is — the current file, the end of the last event, the last
 * table mapped — which is where an event that fails to decode starts (decode-failure.ts).
 *
 * - GTID / BEGIN / XA START → onBegin; XID / COMMIT / ROLLBACK / XA COMMIT → onCommit; any other query (DDL,
 *   TRUNCATE, GRANT ...) → onStatement; XA PREPARE is refused (BINLOG_DECODE_FAILED).
 * - Rows of the configured table → onRows; rows of other tables, table maps and event types zongji does not
 *   know (Aurora's 100) only show the server is alive (onHeartbeat); a heartbeat event → onServerHeartbeat.
 */
import { DrugsyncError } from '../core/errors.ts';
import { hookRowsEventClass } from './decoder.ts';
import type { BinlogHandler, EventPlace, Row, RowsEvent } from './source.ts';

/** A binlog event as zongji emits it (the fields we read). */
export interface ZEvent {
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

function rowsOp(typeName: string): RowsEvent['op'] {
  if (typeName === 'WriteRows') return 'insert';
  return typeName === 'UpdateRows' ? 'update' : 'delete';
}

/** One started zongji stream's events → its handler. */
export class ZongjiDispatch {
  /** the current binlog file */
  file = '';
  /** the end of the last event seen and the last table mapped: where an event that fails to decode starts */
  lastNext = 0;
  lastTable: string;

  constructor(
    /** zongji itself: whether the server's events carry a checksum (their header length) */
    private readonly zongji: { useChecksum: boolean },
    readonly handler: BinlogHandler,
    /** the configured table: its rows go to onRows */
    private readonly ours: { schema: string; table: string },
    from: { file: string; pos: number } | null,
    /** told when a rows event class cannot take the fast row decoder (undefined: not using it) */
    private readonly warnFastRows: ((message: string) => void) | undefined,
  ) {
    this.lastTable = `${ours.schema}.${ours.table}`;
    if (from) {
      this.file = from.file;
      this.lastNext = from.pos;
    }
  }

  /** One zongji event to the handler call it stands for. */
  dispatch(e: ZEvent): void {
    if (e.nextPosition > 0) this.lastNext = e.nextPosition;
    const h = this.handler;
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
      case 'Heartbeat':
        h.onHeartbeat();
        h.onServerHeartbeat?.(e.binlogName ?? this.file, e.position ?? e.nextPosition);
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

  private place(e: ZEvent): EventPlace {
    const next = e.nextPosition;
    const headerLen = this.zongji.useChecksum ? 23 : 19;
    return {
      file: this.file,
      pos: next > 0 ? next - e.size - headerLen : 0,
      next,
      ts: e.timestamp,
      gtid: e.gtid ?? null,
    };
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
    if (why && this.warnFastRows) this.warnFastRows(`${why}: row images are decoded by zongji`);
    const tm = e.tableMap?.[e.tableId as number];
    if (!tm || tm.parentSchema !== this.ours.schema || tm.tableName !== this.ours.table) {
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
