/**
 * The change-event format: the contract between the binlog reader (producer) and the embedder (consumer).
 * Version 1. A `ChangeEvent` is UTF-8 JSON; how events are framed into Kinesis records (KPL aggregates, zstd
 * by default; older single-event gzip or plain records) is core/stream-record.ts's, see docs/change-event.md.
 * Row events are routed by the NDC as partition key, table events (truncate, resync, commit) go to every
 * shard so each shard sees them in order with its own row events. The JSON Schema is docs/change-event.schema.json, generated
 * from the zod schema below (`npx drugsync events schema`).
 */
import zlib from 'node:zlib';
import { z } from 'zod';
import { DrugsyncError } from './errors.ts';
import { isSourcePosition, SOURCE_POSITION_RE } from './position.ts';
import type { SourcePosition } from './position.ts';
import type { Rndc14Row } from './rndc14.ts';

export const EVENT_VERSION = 1 as const;

const rowSchema = z.record(z.string(), z.union([z.string(), z.number(), z.null()]));
const sourcePositionSchema = z.string().regex(SOURCE_POSITION_RE, 'not a SourcePosition');

const common = {
  v: z.literal(EVENT_VERSION),
  /** Source schema and table (always the configured table; other tables never reach the stream). */
  schema: z.string(),
  table: z.string(),
  /** Orders every change of one NDC: binlog file sequence, rows-event offset, row index. */
  pos: sourcePositionSchema,
  /** Where the event sits in the binlog: file, offset of its rows (or query) event, row index, end offset. */
  binlog: z.object({
    file: z.string(),
    pos: z.number().int(),
    row: z.number().int(),
    next: z.number().int(),
  }),
  /** GTID of the transaction (MariaDB domain-server-seq or MySQL uuid:n), null without GTIDs. */
  gtid: z.string().nullable(),
  /** Commit time of the transaction, epoch milliseconds (binlog header time, second precision). */
  ts: z.number().int(),
  /** Transaction id: the GTID where there is one, else file:offset of the transaction's first event (rows are
   *  published before the commit, so the XID is not known yet; this id is the same for every row and re-read). */
  txid: z.string(),
};

export const rowChangeEventSchema = z.object({
  ...common,
  type: z.enum(['insert', 'update', 'delete']),
  ndc: z.string().min(1),
  before: rowSchema.nullable(),
  after: rowSchema.nullable(),
  /** Set when an UPDATE changed the primary key: the other NDC of the pair (delete old + insert new). */
  ndc_change: z.object({ from: z.string(), to: z.string() }).optional(),
});

export const tableEventSchema = z.object({
  ...common,
  /**
   * truncate: TRUNCATE TABLE — every document older than `pos` goes once the reload has settled.
   * resync: the table was replaced (RENAME, DROP + CREATE, ALTER ... RENAME): re-sync by difference.
   * commit: the transaction `txid`, which deleted rows, has committed: every row event of it is on every
   *   shard before this one (consumers may hold a transaction's deletes until its commit, so a DELETE-all +
   *   INSERT-all never empties search). Changes nothing by itself; added in version 1 without breaking it
   *   (a consumer that does not know it must ignore it).
   */
  type: z.enum(['truncate', 'resync', 'commit']),
  /** The statement that caused it (first 500 characters). */
  statement: z.string(),
});

export const changeEventSchema = z.discriminatedUnion('type', [rowChangeEventSchema, tableEventSchema]);

export type RowChangeEvent = Omit<z.infer<typeof rowChangeEventSchema>, 'pos' | 'before' | 'after'> & {
  pos: SourcePosition;
  before: Rndc14Row | null;
  after: Rndc14Row | null;
};
export type TableEvent = Omit<z.infer<typeof tableEventSchema>, 'pos'> & { pos: SourcePosition };
export type ChangeEvent = RowChangeEvent | TableEvent;

export function isRowEvent(e: ChangeEvent): e is RowChangeEvent {
  return e.type === 'insert' || e.type === 'update' || e.type === 'delete';
}

/**
 * The JSON bytes of one event. JSON.stringify writes keys in the order the event object was built, and the
 * builders (services/binlog-reader/row-events.ts) build every event in the format's fixed key order: the
 * common fields (v, schema, table, pos, binlog, gtid, ts, txid) and `type` come before any row image or
 * statement. `peekChangeEvent` below relies on that order: the first `"type":"` and `"txid":"` in the text
 * are the event's own, never a column of a row image (test/events.unit.test.ts holds both to it).
 */
export function encodeChangeEvent(e: ChangeEvent): Buffer {
  const json = JSON.stringify(e);
  // ASCII text (nearly every event) is its own UTF-8: copied as latin1, ~6× faster than Buffer.from's UTF-8
  // encoder on these strings; any other character makes the UTF-8 length exceed the string's length
  return Buffer.byteLength(json, 'utf8') === json.length
    ? Buffer.from(json, 'latin1')
    : Buffer.from(json, 'utf8');
}

const TYPE_KEY = Buffer.from('"type":"');
const TXID_KEY = Buffer.from('"txid":"');
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const EVENT_TYPES = new Set<string>(['insert', 'update', 'delete', 'truncate', 'resync', 'commit']);

/**
 * An event's type and transaction id read from its JSON bytes (as encoded by `encodeChangeEvent`, not
 * compressed) without parsing the record: a byte search for the first `"type":"` and `"txid":"`, which the
 * encoder's fixed key order makes the event's own (see `encodeChangeEvent`). null where the key is missing
 * or the type unknown. Agrees with `decodeChangeEvent` on every valid event (test/events.unit.test.ts).
 */
export function peekChangeEvent(json: Uint8Array): {
  type: ChangeEvent['type'] | null;
  txid: string | null;
} {
  const b = Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  const type = stringAfter(b, TYPE_KEY);
  return {
    type: type !== null && EVENT_TYPES.has(type) ? (type as ChangeEvent['type']) : null,
    txid: stringAfter(b, TXID_KEY),
  };
}

/** The JSON string value that follows the first `key` (which ends with the value's opening quote). */
function stringAfter(b: Buffer, key: Buffer): string | null {
  const at = b.indexOf(key);
  if (at < 0) return null;
  const start = at + key.length;
  let escaped = false;
  for (let i = start; i < b.length; i++) {
    const c = b[i];
    if (c === BACKSLASH) {
      escaped = true;
      i++; // the escaped character, a quote among them, does not end the string
    } else if (c === QUOTE) {
      const raw = b.toString('utf8', start, i);
      // an escape (a quote, backslash or control character in the value) is rare: let JSON read just it
      return escaped ? unescapeJsonString(raw) : raw;
    }
  }
  return null;
}

function unescapeJsonString(raw: string): string | null {
  try {
    return JSON.parse(`"${raw}"`) as string;
  } catch {
    return null;
  }
}

/** A change event to publish: the encoded event and its partition key; a table event goes to every shard. */
export interface OutRecord {
  data: Buffer;
  partitionKey: string;
  /** A table event for every open shard, at its place in each shard's order (the sink expands it). */
  broadcast?: boolean;
  /** For messages: the NDC (row events) or null (table events). */
  ndc: string | null;
}

/** Partition key of table events (the sink picks their shards: all of them). */
export const TABLE_EVENT_PARTITION_KEY = '#table';

/** A row event is partitioned by its NDC: every change of one NDC lands on one shard, in order. */
export function rowRecord(ev: RowChangeEvent): OutRecord {
  return { data: encodeChangeEvent(ev), partitionKey: ev.ndc, ndc: ev.ndc };
}

/** A table event goes to every open shard, listed by the sink when it sends it (resharding). */
export function tableRecord(ev: TableEvent): OutRecord {
  return { data: encodeChangeEvent(ev), partitionKey: TABLE_EVENT_PARTITION_KEY, broadcast: true, ndc: null };
}

/**
 * Single-event records (`KINESIS_AGGREGATION=false`, and every record written before aggregation): the
 * UTF-8 JSON of one event, as is or gzip-compressed (`EVENT_GZIP`: a row event with both images shrinks
 * ~3.5×). Readers tell them apart by the gzip magic bytes (JSON starts with `{`); aggregates: stream-record.ts.
 */
export function isGzip(data: Uint8Array): boolean {
  return data.length > 2 && data[0] === 0x1f && data[1] === 0x8b;
}

/** gzip level 1: speed over ratio (JSON of row images compresses ~3.8× even so). */
export const RECORD_GZIP_OPTIONS: zlib.ZlibOptions = { level: 1 };

/**
 * One record, gzip-compressed, synchronously: ~35–40 µs for a 2.7 KB row event with both images on the
 * CI machine (zlib's async API costs more: a stream per call). The binlog reader compresses whole batches
 * on a worker thread instead (services/core/compressor.ts), off the thread that decodes the binlog.
 */
export function compressRecord(data: Buffer): Buffer {
  return zlib.gzipSync(data, RECORD_GZIP_OPTIONS);
}

/** The JSON bytes of a record, decompressed when it was compressed. */
export function recordJson(data: Uint8Array): Buffer {
  const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return isGzip(b) ? zlib.gunzipSync(b) : b;
}

/** Decodes one record. Throws EVENT_DECODE_FAILED / EVENT_VERSION_UNSUPPORTED with the reason. */
export function decodeChangeEvent(
  data: Uint8Array | string,
  context: Record<string, string> = {},
): ChangeEvent {
  let text: string;
  try {
    text = typeof data === 'string' ? data : recordJson(data).toString('utf8');
  } catch (e) {
    throw new DrugsyncError(
      'EVENT_DECODE_FAILED',
      'change event looks gzip-compressed but does not decompress',
      {
        context,
        cause: e,
        remedy:
          'the record is corrupt or was not written by a drugsync binlog reader; inspect it with `drugsync dlq list`',
      },
    );
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new DrugsyncError('EVENT_DECODE_FAILED', 'change event is not valid JSON', {
      context: { ...context, preview: text.slice(0, 120) },
      cause: e,
      remedy: 'the record was not written by a drugsync binlog reader; inspect it with `drugsync dlq list`',
    });
  }
  const v = (raw as { v?: unknown } | null)?.v;
  if (v !== EVENT_VERSION) {
    throw new DrugsyncError(
      'EVENT_VERSION_UNSUPPORTED',
      `change event version ${String(v)} is not supported`,
      {
        context: { ...context, supported: String(EVENT_VERSION) },
        remedy: 'run an embedder of the same drugsync version as the binlog reader',
      },
    );
  }
  // The hand-written check accepts exactly what the schema accepts (test/events.unit.test.ts holds them to it)
  // at a tenth of the cost; zod runs only to explain a record that fails it.
  if (isChangeEventShape(raw)) return raw;
  const parsed = changeEventSchema.safeParse(raw);
  if (!parsed.success) {
    throw new DrugsyncError(
      'EVENT_DECODE_FAILED',
      `change event does not match schema v${EVENT_VERSION}: ${parsed.error.issues
        .map((i) => `${i.path.join('.')}: ${i.message}`)
        .join('; ')}`,
      { context: { ...context, preview: text.slice(0, 120) } },
    );
  }
  return parsed.data as ChangeEvent;
}

const ROW_TYPES = new Set(['insert', 'update', 'delete']);
const TABLE_TYPES = new Set(['truncate', 'resync', 'commit']);

function isObject(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function isRowImage(x: unknown): boolean {
  if (x === null) return true;
  if (!isObject(x)) return false;
  for (const k in x) {
    const v = x[k];
    if (v !== null && typeof v !== 'string' && typeof v !== 'number') return false;
  }
  return true;
}

/** The schema of `changeEventSchema`, checked by hand (the consumer's hot path). */
export function isChangeEventShape(x: unknown): x is ChangeEvent {
  if (!isObject(x)) return false;
  const b = x.binlog;
  if (
    x.v !== EVENT_VERSION ||
    typeof x.schema !== 'string' ||
    typeof x.table !== 'string' ||
    !isSourcePosition(x.pos) ||
    !isObject(b) ||
    typeof b.file !== 'string' ||
    !Number.isInteger(b.pos) ||
    !Number.isInteger(b.row) ||
    !Number.isInteger(b.next) ||
    (x.gtid !== null && typeof x.gtid !== 'string') ||
    !Number.isInteger(x.ts) ||
    typeof x.txid !== 'string' ||
    typeof x.type !== 'string'
  )
    return false;
  if (TABLE_TYPES.has(x.type)) return typeof x.statement === 'string';
  if (!ROW_TYPES.has(x.type)) return false;
  if (typeof x.ndc !== 'string' || x.ndc.length === 0) return false;
  if (!('before' in x) || !('after' in x) || !isRowImage(x.before) || !isRowImage(x.after)) return false;
  const c = x.ndc_change;
  return c === undefined || (isObject(c) && typeof c.from === 'string' && typeof c.to === 'string');
}

/** JSON Schema of the format, for docs/change-event.schema.json (its description points to the framing). */
export function changeEventJsonSchema(): unknown {
  return z.toJSONSchema(
    changeEventSchema.meta({
      title: 'drugsync change event, version 1',
      description:
        'One change event: the JSON of one event, not a Kinesis record. How events are framed in Kinesis ' +
        'records (KPL aggregates, zstd-compressed by default; single gzip or JSON events before aggregation), ' +
        'routed to shards and named `sequence:index`: docs/change-event.md.',
    }),
  );
}
