/**
 * Binlog row images read for the column types of rndc14 (and of most catalogue tables): integers up to INT
 * (signed and unsigned), DECIMAL, text CHAR/VARCHAR in a UTF-8 charset, DATE and DATETIME(0–6). It gives
 * exactly what zongji's own decoder gives with `dateStrings: true` (DECIMAL as exact strings, zero dates and
 * microseconds kept), value for value: test/decoder.test.ts holds the two to each other on a live MariaDB's
 * binlog events, edge values included, and test/decoder-mysql8.unit.test.ts on real MySQL 8.0.22–8.4.8
 * binlogs without a server (re-run both on a zongji upgrade). A table with any other column type (BIGINT,
 * FLOAT, TIMESTAMP, TIME, BLOB/TEXT, JSON, ENUM/SET, BIT, binary strings, other charsets ...) has no plan
 * (`rowPlan` is null): zongji decodes it, as before, for as long as its table map lasts.
 *
 * Why: decoding two 68-column images was ~40% of the binlog reader's thread (zongji reads through property
 * getters, slices a Buffer per value, copies each DECIMAL and builds every date string with a padding
 * helper), and that thread bounds the reader. The plan of a table (one `Col` per column, one object shape)
 * and the per-value readers are in this one module on purpose: the column kinds are a `const enum` that
 * the readers' switch compares as plain numbers, which tsx and esbuild inline within a file, not across
 * modules; and every value is read without a call into another module.
 *
 * ./decoder.ts hooks this into zongji's rows-event classes; ./decode-errors.ts has the errors.
 */
import { RowImageError } from './decode-errors.ts';

type Row = Record<string, string | number | null>;

/** zongji's parser: the fields a row decoder reads and moves. */
export interface ZParser {
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
