/**
 * Fixtures derived from real MySQL 8 binlog bytes (test support): one table's TABLE_MAP and rows events cut
 * down to some of its columns.
 *
 * Every value byte of a kept column, and every metadata byte that describes it, is the server's; what is
 * rewritten is the framing around them: the table map's column count, type list, per-column metadata, null
 * bits and optional metadata fields (signedness, charsets, names, ENUM/SET strings, geometry types, primary
 * key, visibility: each field's entries of dropped columns left out, column positions renumbered), the rows
 * events' column bitmaps and null bitmaps, and every event's size, end position and CRC32. Value lengths are
 * computed here from the table map (the layouts of libbinlogevents' Table_map_event), not by a decoder under
 * test. It turns a captured table that also holds BIGINT, TEXT, ENUM ... into a table of rndc14's column
 * types as MySQL 8 wrote them (which drugsync's row decoder takes whole).
 */
import {
  EVENT_HEADER_LENGTH,
  EventType,
  eventOf,
  frameEvent,
  lengthEncoded,
  lengthEncodedBytes,
} from './binlog-bytes.ts';
import type { BinlogEvent, BinlogStream } from './binlog-bytes.ts';

/** Column type codes (include/field_types.h) the layouts below need. */
const M = {
  DECIMAL: 0,
  TINY: 1,
  SHORT: 2,
  LONG: 3,
  FLOAT: 4,
  DOUBLE: 5,
  TIMESTAMP2: 17,
  LONGLONG: 8,
  INT24: 9,
  DATE: 10,
  YEAR: 13,
  VARCHAR: 15,
  BIT: 16,
  DATETIME2: 18,
  TIME2: 19,
  JSON: 245,
  NEWDECIMAL: 246,
  ENUM: 247,
  SET: 248,
  BLOB: 252,
  VAR_STRING: 253,
  STRING: 254,
  GEOMETRY: 255,
} as const;

/** Bytes of per-column metadata in a table map, by type (0 for the others). */
const META_BYTES = new Map<number, number>([
  [M.FLOAT, 1],
  [M.DOUBLE, 1],
  [M.VARCHAR, 2],
  [M.BIT, 2],
  [M.NEWDECIMAL, 2],
  [M.BLOB, 1],
  [M.JSON, 1],
  [M.GEOMETRY, 1],
  [M.STRING, 2],
  [M.VAR_STRING, 2],
  [M.TIMESTAMP2, 1],
  [M.DATETIME2, 1],
  [M.TIME2, 1],
]);
const FIXED_BYTES = new Map<number, number>([
  [M.TINY, 1],
  [M.SHORT, 2],
  [M.INT24, 3],
  [M.LONG, 4],
  [M.LONGLONG, 8],
  [M.FLOAT, 4],
  [M.DOUBLE, 8],
  [M.YEAR, 1],
  [M.DATE, 3],
]);
/** Optional metadata subsets, by the column's real type (Table_map_event's is_numeric_type etc.). */
const NUMERIC = new Set<number>([
  M.TINY,
  M.SHORT,
  M.INT24,
  M.LONG,
  M.LONGLONG,
  M.DECIMAL,
  M.NEWDECIMAL,
  M.FLOAT,
  M.DOUBLE,
  M.YEAR,
]);
const CHARACTER = new Set<number>([M.STRING, M.VAR_STRING, M.VARCHAR, M.BLOB]);
const ROWS_TYPES = new Set<number>([
  23,
  24,
  25,
  EventType.WRITE_ROWS_V2,
  EventType.UPDATE_ROWS_V2,
  EventType.DELETE_ROWS_V2,
]);
const TWO_IMAGES = new Set<number>([24, EventType.UPDATE_ROWS_V2]);

interface TableMapLayout {
  /** table id, flags, schema and table names: kept as they are */
  head: Buffer;
  name: string;
  types: number[];
  meta: Buffer[];
  nullable: Buffer;
  fields: { type: number; value: Buffer }[];
}

function readTableMap(body: Buffer): TableMapLayout {
  let at = 8;
  const schema = body.toString('utf8', at + 1, at + 1 + (body[at] as number));
  at += 1 + (body[at] as number) + 1;
  const table = body.toString('utf8', at + 1, at + 1 + (body[at] as number));
  at += 1 + (body[at] as number) + 1;
  const head = body.subarray(0, at);
  const [count, afterCount] = lengthEncoded(body, at);
  const types = [...body.subarray(afterCount, afterCount + count)];
  const [, afterMetaLength] = lengthEncoded(body, afterCount + count);
  at = afterMetaLength;
  const meta = types.map((t) => {
    const m = body.subarray(at, at + (META_BYTES.get(t) ?? 0));
    at += m.length;
    return m;
  });
  const nullable = body.subarray(at, at + ((count + 7) >> 3));
  at += nullable.length;
  const fields: TableMapLayout['fields'] = [];
  while (at < body.length) {
    const type = body[at] as number;
    const [length, start] = lengthEncoded(body, at + 1);
    fields.push({ type, value: body.subarray(start, start + length) });
    at = start + length;
  }
  return { head, name: `${schema}.${table}`, types, meta, nullable, fields };
}

function writeTableMap(t: TableMapLayout): Buffer {
  const meta = Buffer.concat(t.meta);
  return Buffer.concat([
    t.head,
    lengthEncodedBytes(t.types.length),
    Buffer.from(t.types),
    lengthEncodedBytes(meta.length),
    meta,
    t.nullable,
    ...t.fields.flatMap((f) => [Buffer.from([f.type]), lengthEncodedBytes(f.value.length), f.value]),
  ]);
}

/** ENUM and SET are written as STRING with the real type in their first metadata byte. */
function realType(type: number, meta: Buffer): number {
  return (type === M.STRING || type === M.VAR_STRING) && (meta[0] === M.ENUM || meta[0] === M.SET)
    ? (meta[0] as number)
    : type;
}

/** Bytes of a packed DECIMAL(precision, scale): 4 per 9 digits, the rest by digits left. */
function decimalBytes(precision: number, scale: number): number {
  const part = (digits: number) => Math.floor(digits / 9) * 4 + [0, 1, 1, 2, 2, 3, 3, 4, 4, 4][digits % 9]!;
  return part(precision - scale) + part(scale);
}

/** Bytes of the value of a column of `type` / `meta` at `at` of `b` (length prefixes included). */
function valueLength(b: Buffer, at: number, type: number, meta: Buffer): number {
  const fixed = FIXED_BYTES.get(type);
  if (fixed !== undefined) return fixed;
  const prefixed = (prefix: number) => prefix + b.readUIntLE(at, prefix);
  switch (type) {
    case M.NEWDECIMAL:
      return decimalBytes(meta[0] as number, meta[1] as number);
    case M.DATETIME2:
    case M.TIMESTAMP2:
    case M.TIME2:
      return (type === M.DATETIME2 ? 5 : type === M.TIMESTAMP2 ? 4 : 3) + (((meta[0] as number) + 1) >> 1);
    case M.VARCHAR:
      return prefixed(meta.readUInt16LE(0) > 255 ? 2 : 1);
    case M.STRING:
    case M.VAR_STRING: {
      if (realType(type, meta) !== type) return meta[1] as number; // ENUM: 1-2 bytes, SET: 1-8 bytes
      const maxLength = (((((meta[0] as number) >> 4) & 0x3) ^ 0x3) << 8) | (meta[1] as number);
      return prefixed(maxLength > 255 ? 2 : 1);
    }
    case M.BIT:
      return ((meta[1] as number) * 8 + (meta[0] as number) + 7) >> 3;
    case M.BLOB:
    case M.JSON:
    case M.GEOMETRY:
      return prefixed(meta[0] as number);
    default:
      throw new Error(`no value layout for column type ${type}`);
  }
}

function readBits(bytes: Buffer, n: number, msbFirst: boolean): boolean[] {
  return Array.from(
    { length: n },
    (_, i) => ((bytes[i >> 3] as number) & (msbFirst ? 0x80 >> (i & 7) : 1 << (i & 7))) !== 0,
  );
}

function writeBits(bits: boolean[], msbFirst: boolean): Buffer {
  const out = Buffer.alloc((bits.length + 7) >> 3);
  bits.forEach((bit, i) => {
    if (bit) out[i >> 3] = (out[i >> 3] as number) | (msbFirst ? 0x80 >> (i & 7) : 1 << (i & 7));
  });
  return out;
}

/** Length-encoded integers to the end of `b`. */
function integers(b: Buffer): number[] {
  const out: number[] = [];
  for (let at = 0; at < b.length;) {
    const [n, next] = lengthEncoded(b, at);
    out.push(n);
    at = next;
  }
  return out;
}

const ints = (ns: number[]) => Buffer.concat(ns.map(lengthEncodedBytes));

/** Per-entry byte runs of a field with one entry per column of its subset. */
function entries(b: Buffer, entryLength: (at: number) => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length;) {
    const end = at + entryLength(at);
    out.push(b.subarray(at, end));
    at = end;
  }
  return out;
}

/** One length-encoded string (COLUMN_NAME) or count + strings (ENUM/SET values), as bytes. */
function stringEntry(b: Buffer, at: number): number {
  const [length, start] = lengthEncoded(b, at);
  return start - at + length;
}
function stringListEntry(b: Buffer, at: number): number {
  let [count, next] = lengthEncoded(b, at);
  for (; count > 0; count--) next += stringEntry(b, next);
  return next - at;
}

/** A table map cut to the columns `keep` (ascending), each optional metadata field remapped. */
function keepInTableMap(t: TableMapLayout, keep: number[]): TableMapLayout {
  const real = t.types.map((type, i) => realType(type, t.meta[i] as Buffer));
  const subset = (test: (type: number) => boolean) => real.flatMap((type, i) => (test(type) ? [i] : []));
  const groups = {
    all: real.map((_, i) => i),
    numeric: subset((type) => NUMERIC.has(type)),
    character: subset((type) => CHARACTER.has(type)),
    enumSet: subset((type) => type === M.ENUM || type === M.SET),
    enums: subset((type) => type === M.ENUM),
    sets: subset((type) => type === M.SET),
    geometry: subset((type) => type === M.GEOMETRY),
  };
  const keepOf = (group: number[]) => group.map((col) => keep.includes(col));
  const nullable = readBits(t.nullable, t.types.length, false);
  const fields = t.fields
    .map((f) => ({ type: f.type, value: keepInField(f, groups, keepOf, keep) }))
    .filter((f): f is { type: number; value: Buffer } => f.value !== null);
  return {
    head: t.head,
    name: t.name,
    types: keep.map((i) => t.types[i] as number),
    meta: keep.map((i) => t.meta[i] as Buffer),
    nullable: writeBits(
      keep.map((i) => nullable[i] as boolean),
      false,
    ),
    fields,
  };
}

type Groups = Record<'all' | 'numeric' | 'character' | 'enumSet' | 'enums' | 'sets' | 'geometry', number[]>;

/** One optional metadata field for the kept columns; null when it has nothing left to say. */
function keepInField(
  f: { type: number; value: Buffer },
  g: Groups,
  keepOf: (group: number[]) => boolean[],
  keep: number[],
): Buffer | null {
  const pick = <T>(items: T[], group: number[]) => items.filter((_, i) => keepOf(group)[i]);
  const bitmap = (group: number[]) => {
    const kept = pick(readBits(f.value, group.length, true), group);
    return kept.length ? writeBits(kept, true) : null;
  };
  const perColumn = (group: number[], entryLength: (at: number) => number) => {
    const kept = pick(entries(f.value, entryLength), group);
    return kept.length ? Buffer.concat(kept) : null;
  };
  const defaultCharset = (group: number[]) => {
    const [collation, ...pairs] = integers(f.value);
    const kept = group.filter((col) => keep.includes(col));
    if (!kept.length) return null;
    const out = [collation as number];
    for (let i = 0; i + 1 < pairs.length; i += 2) {
      const at = kept.indexOf(group[pairs[i] as number] as number);
      if (at >= 0) out.push(at, pairs[i + 1] as number);
    }
    return ints(out);
  };
  const primaryKey = (stride: number) => {
    const ns = integers(f.value);
    const cols = ns.filter((_, i) => i % stride === 0);
    if (!cols.every((c) => keep.includes(c))) return null; // a key cut short is no key
    return ints(ns.map((n, i) => (i % stride === 0 ? keep.indexOf(n) : n)));
  };
  const lengthEncodedEntry = (at: number) => lengthEncoded(f.value, at)[1] - at;
  // field types: libbinlogevents' Table_map_event::Optional_metadata_field_type
  const byType: Record<number, () => Buffer | null> = {
    1: () => bitmap(g.numeric), // SIGNEDNESS
    2: () => defaultCharset(g.character), // DEFAULT_CHARSET
    3: () => perColumn(g.character, lengthEncodedEntry), // COLUMN_CHARSET
    4: () => perColumn(g.all, (at) => stringEntry(f.value, at)), // COLUMN_NAME
    5: () => perColumn(g.sets, (at) => stringListEntry(f.value, at)), // SET_STR_VALUE
    6: () => perColumn(g.enums, (at) => stringListEntry(f.value, at)), // ENUM_STR_VALUE
    7: () => perColumn(g.geometry, lengthEncodedEntry), // GEOMETRY_TYPE
    8: () => primaryKey(1), // SIMPLE_PRIMARY_KEY
    9: () => primaryKey(2), // PRIMARY_KEY_WITH_PREFIX
    10: () => defaultCharset(g.enumSet), // ENUM_AND_SET_DEFAULT_CHARSET
    11: () => perColumn(g.enumSet, lengthEncodedEntry), // ENUM_AND_SET_COLUMN_CHARSET
    12: () => bitmap(g.all), // COLUMN_VISIBILITY
  };
  const field = byType[f.type];
  if (!field) throw new Error(`table map optional metadata field ${f.type} is not known here`);
  return field();
}

/** A rows event body cut to the columns `keep`: bitmaps, null bitmaps and values of the kept columns. */
function keepInRows(body: Buffer, type: number, t: TableMapLayout, keep: number[]): Buffer {
  let at = 8 + (type >= EventType.WRITE_ROWS_V2 ? body.readUInt16LE(8) : 0);
  const head = body.subarray(0, at);
  const [count, afterCount] = lengthEncoded(body, at);
  if (count !== t.types.length)
    throw new Error(`rows event of ${count} columns, table map of ${t.types.length}`);
  at = afterCount;
  const bitmapBytes = (count + 7) >> 3;
  const presents = (TWO_IMAGES.has(type) ? [0, 1] : [0]).map((i) =>
    readBits(body.subarray(at + i * bitmapBytes, at + (i + 1) * bitmapBytes), count, false),
  );
  at += presents.length * bitmapBytes;
  const images: Buffer[] = [];
  while (at < body.length) {
    for (const present of presents) {
      const { image, end } = keepInImage(body, at, present, t, keep);
      images.push(image);
      at = end;
    }
  }
  return Buffer.concat([
    head,
    lengthEncodedBytes(keep.length),
    ...presents.map((p) =>
      writeBits(
        keep.map((i) => p[i] as boolean),
        false,
      ),
    ),
    ...images,
  ]);
}

/** One row image at `at`: the kept columns' null bits and values, and where the image ends. */
function keepInImage(
  b: Buffer,
  at: number,
  present: boolean[],
  t: TableMapLayout,
  keep: number[],
): { image: Buffer; end: number } {
  const presentCount = present.filter(Boolean).length;
  const nulls = readBits(b.subarray(at, at + ((presentCount + 7) >> 3)), presentCount, false);
  let o = at + ((presentCount + 7) >> 3);
  const keptNulls: boolean[] = [];
  const keptValues: Buffer[] = [];
  for (let i = 0, n = 0; i < t.types.length; i++) {
    if (!present[i]) continue;
    const isNull = nulls[n++] as boolean;
    const length = isNull ? 0 : valueLength(b, o, t.types[i] as number, t.meta[i] as Buffer);
    if (keep.includes(i)) {
      keptNulls.push(isNull);
      keptValues.push(b.subarray(o, o + length));
    }
    o += length;
  }
  return { image: Buffer.concat([writeBits(keptNulls, false), ...keptValues]), end: o };
}

/**
 * `stream` with table `table` (`schema.table`) cut to its columns `keep` (positions in the table): every
 * other event as it was, end positions moved by the bytes the cut removed before them (per file: a ROTATE
 * starts again), checksums recomputed.
 */
export function keepColumns(
  stream: BinlogStream,
  table: string,
  keep: number[],
  name = stream.name,
): BinlogStream {
  const sorted = [...keep].sort((a, b) => a - b);
  const maps = new Map<string, TableMapLayout>();
  let shift = 0;
  const events = stream.events.map((e): BinlogEvent => {
    const body = derivedBody(e, table, sorted, maps);
    const grown = EVENT_HEADER_LENGTH + body.length + (e.checksum ? 4 : 0) - e.size;
    const next = e.next > 0 ? e.next + shift + grown : 0;
    shift = e.type === EventType.ROTATE && e.next > 0 ? 0 : shift + grown;
    if (body === e.body && next === e.next) return e; // as the server wrote it (FDE in-use flag included)
    const at = e.next > 0 ? next - (e.size + grown) : e.at;
    return eventOf(frameEvent({ ...e, next }, body, e.checksum), at, e.checksum);
  });
  return { name, fde: stream.fde, events };
}

function derivedBody(
  e: BinlogEvent,
  table: string,
  keep: number[],
  maps: Map<string, TableMapLayout>,
): Buffer {
  const tableId = e.body.subarray(0, 6).toString('hex');
  if (e.type === EventType.TABLE_MAP) {
    const t = readTableMap(e.body);
    if (t.name !== table) return e.body;
    maps.set(tableId, t);
    return writeTableMap(keepInTableMap(t, keep));
  }
  const t = maps.get(tableId);
  if (!t) return e.body;
  if (e.type === EventType.PARTIAL_UPDATE_ROWS) throw new Error('a PARTIAL_UPDATE_ROWS event cannot be cut');
  return ROWS_TYPES.has(e.type) ? keepInRows(e.body, e.type, t, keep) : e.body;
}
