/**
 * A faster decoder of binlog row images, for the column types of rndc14 (and of most catalogue tables):
 * integers up to INT (signed and unsigned), DECIMAL, text CHAR/VARCHAR in a UTF-8 charset, DATE and
 * DATETIME(0–6). It gives exactly what zongji's own decoder gives with `dateStrings: true` (DECIMAL as exact
 * strings, zero dates and microseconds kept), value for value: test/decoder.test.ts holds the two to each
 * other on a live MariaDB's binlog events, edge values included, and test/decoder-mysql8.unit.test.ts on real
 * MySQL 8.0.22–8.4.8 binlogs without a server (re-run both on a zongji upgrade). A table with any other column
 * type (BIGINT, FLOAT, TIMESTAMP, TIME, BLOB/TEXT, JSON, ENUM/SET, BIT, binary strings, other charsets ...) is
 * decoded by zongji, as before, for as long as its table map lasts.
 *
 * Why: decoding two 68-column images was ~40% of the binlog reader's thread (zongji reads through property
 * getters, slices a Buffer per value, copies each DECIMAL and builds every date string with a padding
 * helper), and that thread bounds the reader.
 *
 * How it plugs in: zongji parses a rows event's rows in the event's constructor, through the event class'
 * `_fetchOneRow(parser)`. `hookRowsEventClass(event)` wraps that method on the class of the first rows event
 * of each kind a source sees (WriteRows, UpdateRows, DeleteRows: the very classes zongji instantiates; the
 * first event of each kind is still decoded by zongji); the wrapper decodes with this module only for ZongJi
 * instances marked with `useFastRowDecoder(zongji)`, and calls zongji's own method for every other instance
 * and every table it does not support. The hook checks what it relies on before wrapping; if zongji changed,
 * the class is left alone and the reader says so once.
 */

import { DrugsyncError } from '../core/errors.ts';

type Row = Record<string, string | number | null>;

/** zongji's parser: the fields a row decoder reads and moves. */
interface ZParser {
  _buffer: Buffer;
  _offset: number;
}

interface ZColumn {
  name: string;
  charset: string | null | undefined;
  type: number;
  metadata: Record<string, number> | undefined;
}

interface ZColumnSchema {
  COLUMN_TYPE: string;
  UNSIGNED?: boolean;
}

export interface ZTableMap {
  columns: ZColumn[];
  columnSchemas: ZColumnSchema[];
  parentSchema: string;
  tableName: string;
}

// MySQL type codes (zongji's lib/common.js MysqlTypes)
const T = {
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  DATE: 10,
  INT24: 9,
  VARCHAR: 15,
  DATETIME2: 18,
  NEWDECIMAL: 246,
  STRING: 254,
} as const;

const enum K {
  INT,
  TEXT1,
  TEXT2,
  DECIMAL,
  DATE,
  DATETIME2,
}

interface Col {
  name: string;
  kind: K;
  /** INT: bytes, 1 to 4 */
  size: number;
  /** INT: the first raw value that stands for a negative number (Infinity when unsigned) */
  negativeFrom: number;
  /** DATETIME2: fractional digits; DECIMAL: scale */
  fsp: number;
  dec: DecimalLayout | undefined;
}

/** Every column plan has the same fields (one object shape on the hot path). */
function col(name: string, kind: K, more: Partial<Omit<Col, 'name' | 'kind'>> = {}): Col {
  const { size = 0, negativeFrom = Infinity, fsp = 0, dec } = more;
  return { name, kind, size, negativeFrom, fsp, dec };
}

interface DecimalLayout {
  scale: number;
  uncompIntegral: number;
  uncompFractional: number;
  compIntegral: number;
  compFractional: number;
  size: number;
}

export interface RowPlan {
  readonly columns: Col[];
  readonly schemas: ZColumnSchema[];
}

/** Charsets zongji decodes as UTF-8 (its ICONV_CHARSET_OVERRIDES and default). */
const UTF8_CHARSETS = new Set(['utf8', 'utf8mb3', 'utf8mb4']);
/** Logical and binary types that ride on CHAR/VARCHAR codes (zongji formats them specially). */
const NOT_TEXT = /^(uuid$|inet4$|inet6$|vector|binary|varbin)/;
/** Bytes of the integer types read here (BIGINT, like every type not planned here, is left to zongji). */
const INT_BYTES = new Map<number, number>([
  [T.TINY, 1],
  [T.SHORT, 2],
  [T.INT24, 3],
  [T.LONG, 4],
]);
const COMPRESSED_BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4] as const;
const BIT_COUNT = Uint8Array.from({ length: 256 }, (_, v) => {
  let c = 0;
  for (let x = v; x; x >>= 1) c += x & 1;
  return c;
});

function unsignedOf(s: ZColumnSchema): boolean {
  return s.UNSIGNED !== undefined ? s.UNSIGNED : s.COLUMN_TYPE.indexOf('unsigned') !== -1;
}

function decimalLayout(precision: number, scale: number): DecimalLayout {
  const integral = precision - scale;
  const uncompIntegral = Math.floor(integral / 9);
  const uncompFractional = Math.floor(scale / 9);
  const compIntegral = integral - uncompIntegral * 9;
  const compFractional = scale - uncompFractional * 9;
  return {
    scale,
    uncompIntegral,
    uncompFractional,
    compIntegral,
    compFractional,
    size:
      uncompIntegral * 4 +
      (COMPRESSED_BYTES[compIntegral] as number) +
      uncompFractional * 4 +
      (COMPRESSED_BYTES[compFractional] as number),
  };
}

/** The plan for one column, or null when zongji must decode the table. */
function planColumn(c: ZColumn, s: ZColumnSchema | undefined): Col | null {
  if (!s) return null;
  const md = c.metadata ?? {};
  const size = INT_BYTES.get(c.type);
  if (size !== undefined) {
    return col(c.name, K.INT, { size, negativeFrom: unsignedOf(s) ? Infinity : 2 ** (8 * size - 1) });
  }
  switch (c.type) {
    case T.VARCHAR:
    case T.STRING: {
      if (NOT_TEXT.test(s.COLUMN_TYPE)) return null;
      const charset = c.charset ?? 'utf8';
      if (!UTF8_CHARSETS.has(charset)) return null;
      const maxLength = md.max_length;
      if (typeof maxLength !== 'number') return null;
      return col(c.name, maxLength > 255 ? K.TEXT2 : K.TEXT1);
    }
    case T.NEWDECIMAL: {
      const { precision, decimals } = md;
      if (typeof precision !== 'number' || typeof decimals !== 'number' || precision < decimals) return null;
      return col(c.name, K.DECIMAL, { fsp: decimals, dec: decimalLayout(precision, decimals) });
    }
    case T.DATE:
      return col(c.name, K.DATE);
    case T.DATETIME2: {
      const fsp = md.decimals ?? 0;
      if (!Number.isInteger(fsp) || fsp < 0 || fsp > 6) return null;
      return col(c.name, K.DATETIME2, { fsp });
    }
    default:
      return null;
  }
}

const plans = new WeakMap<ZColumn[], RowPlan | null>();

/** The decoding plan of a table map (cached while zongji keeps the same column list), or null. */
export function rowPlan(tm: ZTableMap): RowPlan | null {
  const cols = tm.columns;
  if (!Array.isArray(cols)) return null;
  const cached = plans.get(cols);
  if (cached !== undefined && (cached === null || cached.schemas === tm.columnSchemas)) return cached;
  let plan: RowPlan | null = { columns: [], schemas: tm.columnSchemas };
  for (let i = 0; i < cols.length; i++) {
    const col = planColumn(cols[i] as ZColumn, tm.columnSchemas?.[i]);
    if (!col) {
      plan = null;
      break;
    }
    plan.columns.push(col);
  }
  plans.set(cols, plan);
  return plan;
}

/** zongji's zeroPad(n, 2) for the 0–63 that 5- and 6-bit date fields hold. */
function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}
/** zongji's zeroPad: the last `size` characters of the digits, left-padded with zeros. */
function pad(s: string, size: number): string {
  return s.length >= size ? s.slice(s.length - size) : '0'.repeat(size - s.length) + s;
}

/** A big-endian signed integer of `size` bytes; `flip` toggles the top bit of the first byte (DECIMAL sign). */
function beSigned(b: Buffer, o: number, size: number, flip: number): number {
  const b0 = (b[o] as number) ^ flip;
  switch (size) {
    case 1:
      return b0 >= 128 ? b0 - 256 : b0;
    case 2: {
      const v = (b0 << 8) | (b[o + 1] as number);
      return v >= 0x8000 ? v - 0x10000 : v;
    }
    case 3: {
      const v = (b0 << 16) | ((b[o + 1] as number) << 8) | (b[o + 2] as number);
      return v >= 0x800000 ? v - 0x1000000 : v;
    }
    default:
      return (
        (b0 << 24) | ((b[o + 1] as number) << 16) | ((b[o + 2] as number) << 8) | (b[o + 3] as number) | 0
      );
  }
}

/** DECIMAL as zongji's parseNewDecimal gives it (an exact string). */
function readDecimal(b: Buffer, start: number, d: DecimalLayout): string {
  if (start + d.size > b.length) throw new RangeError(`DECIMAL past the end of the row buffer at ${start}`);
  const positive = ((b[start] as number) & 0x80) === 0x80;
  const mask = positive ? 0 : -1;
  let o = start;
  let flip = 0x80; // the sign bit sits in the first byte of the value, whichever group that is
  let intDigits = '';
  const ci = COMPRESSED_BYTES[d.compIntegral] as number;
  if (ci > 0) {
    intDigits += String(beSigned(b, o, ci, flip) ^ mask);
    o += ci;
    flip = 0;
  }
  for (let i = 0; i < d.uncompIntegral; i++) {
    intDigits += pad(String(beSigned(b, o, 4, flip) ^ mask), 9);
    o += 4;
    flip = 0;
  }
  let z = 0;
  while (z < intDigits.length - 1 && intDigits.charCodeAt(z) === 48) z++;
  intDigits = intDigits.length === 0 ? '0' : intDigits.slice(z);
  let out = (positive ? '' : '-') + intDigits;
  if (d.scale > 0) {
    let frac = '';
    for (let i = 0; i < d.uncompFractional; i++) {
      frac += pad(String(beSigned(b, o, 4, flip) ^ mask), 9);
      o += 4;
      flip = 0;
    }
    const cf = COMPRESSED_BYTES[d.compFractional] as number;
    if (cf > 0) frac += pad(String(beSigned(b, o, cf, flip) ^ mask), d.compFractional);
    out += `.${frac}`;
  }
  return out;
}

function dateString(year: number, month: number, day: number): string {
  return `${pad(String(year), 4)}-${pad2(month)}-${pad2(day)}`;
}

/**
 * Decodes one row image at the parser's offset and moves it past the row, as zongji's readRow does: a
 * column absent from `present` is null without using a null bit; a null bit set is null.
 */
export function readRowImage(parser: ZParser, plan: RowPlan, present: Buffer): Row {
  const cols = plan.columns;
  const at = { i: 0 };
  try {
    return readColumns(parser, plan, present, at);
  } catch (e) {
    const col = cols[Math.min(at.i, cols.length - 1)];
    throw new RowImageError(col?.name ?? null, e);
  }
}

/** A row image this module could not read, with the column it was reading. */
export class RowImageError extends Error {
  readonly column: string | null;
  constructor(column: string | null, cause: unknown) {
    super(`${column === null ? 'row image' : `column ${column}`}: ${errorText(cause)}`, { cause });
    this.name = 'RowImageError';
    this.column = column;
  }
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Reads every column of the row at the parser's offset; `at.i` follows the column being read. */
function readColumns(parser: ZParser, plan: RowPlan, present: Buffer, at: { i: number }): Row {
  const b = parser._buffer;
  const cols = plan.columns;
  const n = cols.length;
  // every bit of the bitmap counts towards the null bitmap's size, as in zongji (padding bits too)
  let presentCount = 0;
  for (let i = 0; i < present.length; i++) presentCount += BIT_COUNT[present[i] as number] as number;
  const nulls = parser._offset;
  let o = nulls + ((presentCount + 7) >> 3);
  const row: Row = {};
  for (let i = 0, nb = 0; i < n; i++) {
    at.i = i;
    const c = cols[i] as Col;
    if (((present[i >> 3] as number) & (1 << (i & 7))) === 0) {
      row[c.name] = null;
      continue;
    }
    if ((b[nulls + (nb >> 3)] as number) & (1 << (nb & 7))) {
      row[c.name] = null;
      nb++;
      continue;
    }
    nb++;
    o = readValue(b, c, o, row);
  }
  if (o > b.length) throw new RangeError(`row image past the end of the event (${o} > ${b.length})`);
  parser._offset = o;
  return row;
}

/** Reads the non-null value of column `c` at offset `o` into `row`; returns the offset past it. */
function readValue(b: Buffer, c: Col, o: number, row: Row): number {
  switch (c.kind) {
    case K.TEXT1:
      return readText(b, c, o, b[o] as number, 1, row);
    case K.TEXT2:
      return readText(b, c, o, b.readUInt16LE(o), 2, row);
    case K.INT: {
      const raw = littleEndian(b, o, c.size);
      row[c.name] = raw >= c.negativeFrom ? raw - 2 * c.negativeFrom : raw;
      return o + c.size;
    }
    case K.DECIMAL: {
      const d = c.dec as DecimalLayout;
      row[c.name] = readDecimal(b, o, d);
      return o + d.size;
    }
    case K.DATE: {
      const raw = b.readUIntLE(o, 3);
      row[c.name] = dateString(raw >>> 9, (raw >>> 5) & 0x0f, raw & 0x1f);
      return o + 3;
    }
    case K.DATETIME2:
      return readDatetime2(b, c, o, row);
  }
  return o;
}

/**
 * The unsigned `size`-byte (1 to 4) little-endian integer at `o`; NaN past the end of `b` (readColumns then
 * throws: the row is past the end of the event). Faster than Buffer's readIntLE/readUIntLE, which dispatch
 * on the size again and check the bounds for every call.
 */
function littleEndian(b: Buffer, o: number, size: number): number {
  let v = b[o] as number;
  if (size > 1) v += (b[o + 1] as number) * 0x100;
  if (size > 2) v += (b[o + 2] as number) * 0x10000;
  if (size > 3) v += (b[o + 3] as number) * 0x1000000;
  return v;
}

/** A UTF-8 string of `len` bytes behind a `prefix`-byte length at `o`. */
function readText(b: Buffer, c: Col, o: number, len: number, prefix: number, row: Row): number {
  const end = o + prefix + len;
  if (end > b.length) throw new RangeError(`column ${c.name} past the end of the row buffer`);
  row[c.name] = b.toString('utf8', o + prefix, end);
  return end;
}

/** DATETIME2: 40 bits big-endian, sign(1) year*13+month(17) day(5) hour(5) minute(6) second(6), then fsp. */
function readDatetime2(b: Buffer, c: Col, o: number, row: Row): number {
  if (o + 5 > b.length) throw new RangeError(`column ${c.name} past the end of the row buffer`);
  const high = b.readInt32BE(o);
  const low = b.readInt32BE(o + 1);
  o += 5;
  const yearMonth = (high >> 14) & 0x1ffff;
  let s =
    `${dateString(Math.floor(yearMonth / 13), yearMonth % 13, (low >> 17) & 0x1f)} ` +
    `${pad2((low >> 12) & 0x1f)}:${pad2((low >> 6) & 0x3f)}:${pad2(low & 0x3f)}`;
  if (c.fsp > 0) {
    const size = (c.fsp + 1) >> 1;
    let fraction = beSigned(b, o, size, 0);
    o += size;
    if (c.fsp % 2 !== 0) fraction /= 10;
    if (fraction < 0) fraction *= -1;
    s += `.${pad(String(fraction), c.fsp)}`;
  }
  row[c.name] = s;
  return o;
}

// ---- the hook into zongji ------------------------------------------------------------------------------

const FAST = Symbol.for('drugsync.fastRowDecoder');
/** Set on a rows event whose rows are left to zongji after this module failed on one of them. */
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
 * Rows decoded by this module; by zongji for instances that asked for this one (unsupported tables); by
 * zongji after this module failed on a row image (the fallback).
 */
export const rowDecoderStats = { fastRows: 0, zongjiRows: 0, fallbackRows: 0 };

/**
 * Test seam: makes the decoders fail on one column of one table, as a row image they cannot read would:
 * this module always, zongji's own decoder too when `zongji` is set. Off (null) outside the tests of the
 * fallback and of BINLOG_DECODE_FAILED.
 */
export const rowDecoderFaults: { table: string | null; column: string | null; zongji: boolean } = {
  table: null,
  column: null,
  zongji: false,
};

/** Marks a ZongJi instance: its rows are decoded here wherever the table allows; fallbacks go to `warn`. */
export function useFastRowDecoder(zongji: object, warn: (message: string) => void = () => {}): void {
  const mark: FastMark = { warn, warned: new Set() };
  (zongji as Record<symbol, unknown>)[FAST] = mark;
}

/** Where a row image sits, for messages and BINLOG_DECODE_FAILED. */
export interface DecodePlace {
  file: string;
  /** byte offset of the rows event (or, when unknown, of the last event before it) */
  pos: number;
  schema: string;
  table: string;
  column: string | null;
}

/**
 * A row image neither decoder can read: the reader stops (not retryable), naming the event and the column,
 * instead of restarting into the same event forever or skipping a change.
 */
export function binlogDecodeError(p: DecodePlace, cause: unknown): DrugsyncError {
  const column = p.column === null ? '' : ` (column ${p.column})`;
  return new DrugsyncError(
    'BINLOG_DECODE_FAILED',
    `cannot decode a row image of ${p.schema}.${p.table} at ${p.file}:${p.pos}${column}: ${errorText(cause)}`,
    {
      context: { file: p.file, pos: p.pos, table: `${p.schema}.${p.table}`, column: p.column },
      cause,
      remedy:
        "the reader stops rather than skip this change: check the column's type and value at that position " +
        '(mariadb-binlog --start-position) against what @vlasky/zongji decodes, and upgrade it or change the ' +
        'column type; to move past the event without it, delete the reader checkpoint and re-run the backfill ' +
        '(`drugsync backfill --restart`), whose snapshot includes the change',
    },
  );
}

/**
 * MySQL 8 events whose rows zongji 0.9 cannot read: it parses past them and emits one error, written by its
 * event class (`unsupportedReason`), naming the event type and the server setting. test/decoder-mysql8.unit.test.ts
 * holds this list to zongji's messages on real MySQL 8 binlogs.
 */
const UNDECODED_EVENTS = [
  {
    event: 'TRANSACTION_PAYLOAD_EVENT',
    type: 40,
    setting: 'binlog_transaction_compression',
    written: 'ON (the transaction is one zstd-compressed event)',
    fix: 'binlog_transaction_compression=OFF',
  },
  {
    event: 'PARTIAL_UPDATE_ROWS_EVENT',
    type: 39,
    setting: 'binlog_row_value_options',
    written: 'PARTIAL_JSON (updates of JSON columns are written as diffs)',
    fix: "binlog_row_value_options='' (the default)",
  },
] as const;

/**
 * A stream error that is zongji reading past an event whose rows it cannot decode (a compressed transaction,
 * a partial JSON update), as BINLOG_DECODE_FAILED: the reader stops instead of losing the rows, or restarting
 * into the same event forever. `pos` is where the event starts: the end of the last event the source saw
 * (zongji complains before it hands the event over; an event it filtered in between makes `pos` earlier).
 * Both settings can be set per session, so a check of their global values at start does not rule them out.
 */
export function undecodedEventError(e: unknown, file: string, pos: number): DrugsyncError | null {
  if (!(e instanceof Error)) return null;
  const u = UNDECODED_EVENTS.find((x) => e.message.includes(x.event));
  if (!u) return null;
  return new DrugsyncError(
    'BINLOG_DECODE_FAILED',
    `a ${u.event} (type ${u.type}) at ${file}:${pos}: its rows cannot be decoded; ${u.setting} was ` +
      `${u.written} when it was written`,
    {
      context: { file, pos, event: u.event, setting: u.setting },
      cause: e,
      remedy:
        `set ${u.fix} on the server (Aurora: the DB cluster parameter group) and in every session or ` +
        'application that changes it; the reader stops rather than skip this transaction, whichever tables ' +
        'it touches: to move past it, delete the reader checkpoint and re-run the backfill ' +
        '(`drugsync backfill --restart`), whose snapshot includes its changes',
    },
  );
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

/** One row (or before/after pair) by this module; throws RowImageError naming the column. */
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

/** Tells the instance's owner once per table that zongji decodes a row image this module could not read. */
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
 * later ones go through the wrapper: decoded here for marked instances where the table allows (zongji
 * decodes a row image this module fails on), by zongji otherwise, and a row image zongji cannot decode
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
