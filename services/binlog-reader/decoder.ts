/**
 * drugsync's row decoder in zongji: rows of the tables ./row-image.ts has a plan for are read by it instead
 * of zongji's per-value code (value for value the same; why and which types: row-image.ts).
 *
 * How it plugs in: zongji parses a rows event's rows in the event's constructor, through the event class'
 * `_fetchOneRow(parser)`. `hookRowsEventClass(event)` wraps that method on the class of the first rows event
 * of each kind a source sees (WriteRows, UpdateRows, DeleteRows: the very classes zongji instantiates; the
 * first event of each kind is still decoded by zongji); the wrapper decodes with row-image.ts only for ZongJi
 * instances marked with `useFastRowDecoder(zongji)`, and calls zongji's own method for every other instance
 * and every table it does not support. The hook checks what it relies on before wrapping; if zongji changed,
 * the class is left alone and the reader says so once. Errors (and the events zongji cannot decode):
 * ./decode-errors.ts.
 */
import { binlogDecodeError, errorText, RowImageError } from './decode-errors.ts';
import type { DecodePlace } from './decode-errors.ts';
import { readRowImage, rowPlan } from './row-image.ts';
import type { RowPlan, ZParser, ZTableMap } from './row-image.ts';

const FAST = Symbol.for('drugsync.fastRowDecoder');
/** Set on a rows event whose rows are left to zongji after row-image.ts failed on one of them. */
const FALLBACK = Symbol.for('drugsync.rowDecoderFallback');

/** What the hook touches on a zongji rows event. */
interface ZRowsEvent {
  _zongji?: Record<symbol, unknown> & { options?: { filename?: unknown } };
  _hasTwoRows?: boolean;
  tableId?: number;
  tableMap?: Record<number, ZTableMap>;
  columns_present_bitmap?: Buffer;
  columns_present_bitmap2?: Buffer;
  nextPosition?: number;
  size?: number;
  useChecksum?: boolean;
  [FALLBACK]?: boolean;
  _fetchOneRow?: (parser: ZParser) => unknown;
}

type ZFetch = (this: ZRowsEvent, parser: ZParser) => unknown;

/** What a marked ZongJi instance carries: where fallbacks are told, and the tables already told about. */
interface FastMark {
  warn: (message: string) => void;
  warned: Set<string>;
}

const hooked = new WeakSet<object>();

/**
 * Rows decoded by row-image.ts; by zongji for instances that asked for it (unsupported tables); by zongji
 * after row-image.ts failed on a row image (the fallback).
 */
export const rowDecoderStats = { fastRows: 0, zongjiRows: 0, fallbackRows: 0 };

/**
 * Test seam: makes the decoders fail on one column of one table, as a row image they cannot read would:
 * row-image.ts always, zongji's own decoder too when `zongji` is set. Off (null) outside the tests of the
 * fallback and of BINLOG_DECODE_FAILED.
 */
export const rowDecoderFaults: { table: string | null; column: string | null; zongji: boolean } = {
  table: null,
  column: null,
  zongji: false,
};

/** Marks a ZongJi instance: its rows are decoded by row-image.ts wherever the table allows; fallbacks go to `warn`. */
export function useFastRowDecoder(zongji: object, warn: (message: string) => void = () => {}): void {
  const mark: FastMark = { warn, warned: new Set() };
  (zongji as Record<symbol, unknown>)[FAST] = mark;
}

function placeOf(e: ZRowsEvent, tm: ZTableMap | undefined, column: string | null): DecodePlace {
  const file = e._zongji?.options?.filename;
  const header = e.useChecksum ? 23 : 19;
  const next = e.nextPosition ?? 0;
  return {
    file: typeof file === 'string' ? file : '(unknown)',
    pos: next > 0 ? next - (e.size ?? 0) - header : 0,
    schema: tm?.parentSchema ?? '(unknown)',
    table: tm?.tableName ?? '(unknown)',
    column,
  };
}

function faultOn(tm: ZTableMap | undefined, zongji: boolean): string | null {
  const f = rowDecoderFaults;
  if (f.column === null || !tm || tm.tableName !== f.table || (zongji && !f.zongji)) return null;
  return f.column;
}

/** One row (or before/after pair) by row-image.ts; throws RowImageError naming the column. */
function fastRow(e: ZRowsEvent, parser: ZParser, plan: RowPlan, tm: ZTableMap): unknown {
  const fault = faultOn(tm, false);
  if (fault !== null) throw new RowImageError(fault, new Error('decoder fault injected by a test'));
  const before = readRowImage(parser, plan, e.columns_present_bitmap as Buffer);
  if (!e._hasTwoRows) return before;
  return { before, after: readRowImage(parser, plan, e.columns_present_bitmap2 as Buffer) };
}

/** zongji's own row decoding, its failures as BINLOG_DECODE_FAILED naming the column. */
function zongjiRow(e: ZRowsEvent, parser: ZParser, original: ZFetch): unknown {
  const tm = e.tableMap?.[e.tableId as number];
  const start = parser._offset;
  const fault = faultOn(tm, true);
  let failure: unknown = null;
  if (fault === null) {
    try {
      return original.call(e, parser);
    } catch (err) {
      failure = err;
    }
  }
  // Failed: read it once more, noting each column zongji reaches, to name the one it fails on.
  parser._offset = start;
  let column: string | null = null;
  const columns = tm?.columns ?? [];
  const tracked = new Proxy(columns, {
    get(target, key, receiver) {
      if (typeof key === 'string' && /^\d+$/.test(key)) {
        column = target[Number(key)]?.name ?? null;
        if (column !== null && column === fault) throw new Error('zongji fault injected by a test');
      }
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
  const view = Object.create(e, {
    tableMap: { value: { [e.tableId as number]: { ...tm, columns: tracked } } },
  }) as ZRowsEvent;
  try {
    original.call(view, parser);
  } catch (err) {
    failure ??= err;
  }
  throw binlogDecodeError(placeOf(e, tm, column), failure);
}

/** Tells the instance's owner once per table that zongji decodes a row image row-image.ts could not read. */
function noteFallback(mark: FastMark, e: ZRowsEvent, tm: ZTableMap, err: unknown): void {
  const key = `${tm.parentSchema}.${tm.tableName}`;
  if (mark.warned.has(key)) return;
  mark.warned.add(key);
  const p = placeOf(e, tm, err instanceof RowImageError ? err.column : null);
  mark.warn(
    `drugsync's row decoder cannot read a row image of ${key} at ${p.file}:${p.pos}` +
      `${p.column === null ? '' : ` (column ${p.column})`}: ${errorText(err)}; zongji decodes that event ` +
      '(told once per table)',
  );
}

function fetchOneRowWith(original: ZFetch): ZFetch {
  return function fetchOneRow(this: ZRowsEvent, parser: ZParser): unknown {
    const mark = this._zongji?.[FAST] as FastMark | undefined;
    if (mark === undefined) return zongjiRow(this, parser, original);
    const tm = this.tableMap?.[this.tableId as number];
    const plan = tm && this[FALLBACK] !== true ? rowPlan(tm) : null;
    if (plan && tm) {
      const start = parser._offset;
      try {
        const row = fastRow(this, parser, plan, tm);
        rowDecoderStats.fastRows += 1;
        return row;
      } catch (err) {
        // the rest of this event goes to zongji, from this row's first byte
        parser._offset = start;
        this[FALLBACK] = true;
        noteFallback(mark, this, tm, err);
      }
    }
    if (this[FALLBACK] === true) rowDecoderStats.fallbackRows += 1;
    else rowDecoderStats.zongjiRows += 1;
    return zongjiRow(this, parser, original);
  };
}

/**
 * Wraps `_fetchOneRow` of the class of `event` (a zongji WriteRows/UpdateRows/DeleteRows instance), once
 * per class. Called with the first rows event of each kind a source emits: that event was decoded by zongji,
 * later ones go through the wrapper: decoded by row-image.ts for marked instances where the table allows (zongji
 * decodes a row image it fails on), by zongji otherwise, and a row image zongji cannot decode
 * either is BINLOG_DECODE_FAILED naming file, position, table and column. Returns why it could not, or null.
 */
export function hookRowsEventClass(event: object): string | null {
  const proto = Object.getPrototypeOf(event) as ZRowsEvent | null;
  if (!proto || hooked.has(proto)) return null;
  const e = event as ZRowsEvent;
  const original = proto._fetchOneRow;
  if (
    typeof original !== 'function' ||
    typeof e._zongji !== 'object' ||
    typeof e.tableId !== 'number' ||
    typeof e.tableMap !== 'object' ||
    !Buffer.isBuffer(e.columns_present_bitmap) ||
    typeof e._hasTwoRows !== 'boolean' ||
    typeof e.nextPosition !== 'number'
  ) {
    hooked.add(proto);
    return `zongji's rows event (${proto.constructor?.name ?? 'unknown'}) does not look as expected`;
  }
  hooked.add(proto);
  Object.defineProperty(proto, '_fetchOneRow', {
    configurable: true,
    writable: true,
    value: fetchOneRowWith(original as ZFetch),
  });
  return null;
}
