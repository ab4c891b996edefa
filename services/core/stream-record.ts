/**
 * How change events travel in Kinesis records: the framing's one owner (encode and decode side by side).
 *
 * A record's data is one of:
 * - `kpl+zstd` (what the binlog reader writes by default): a zstd frame whose content is a KPL aggregated
 *   record (./kpl.ts) of change events, the events of one shard in order. Catalogue row events compress
 *   ~8× together (~90–130 bytes an event at level 6) against ~2.2× one at a time, which is what lets a
 *   shard's 1 MB/s carry ~10,000 events/s (docs/change-event.md).
 * - `kpl`: the same aggregate uncompressed (`KINESIS_AGGREGATE_COMPRESSION=none`): any KCL application,
 *   Lambda with the awslabs deaggregator or Firehose reads it as is, at ~1/7 of the events per second.
 * - `gzip` / `json`: one event per record, gzip-compressed or plain, as readers before aggregation wrote
 *   them; still read, so a stream holding both drains.
 * Readers tell them apart by their first bytes: 28 B5 2F FD (zstd), F3 89 9A C2 (KPL), 1F 8B (gzip), `{`.
 */
import zlib from 'node:zlib';
import { DrugsyncError, errorMessage } from './errors.ts';
import { decodeAggregate, isAggregate } from './kpl.ts';

export type RecordFraming = 'kpl+zstd' | 'kpl' | 'gzip' | 'json';
export type AggregateCompression = 'zstd' | 'none';

const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd] as const;
/** zstd level: 6 takes ~12–14 µs an event on a worker thread and makes events ~20 % smaller than level 3. */
export const AGGREGATE_ZSTD_LEVEL = 6;

/** One change event of a record: its JSON bytes, partition key and place in the record. */
export interface UserRecord {
  json: Uint8Array;
  partitionKey: string;
  /** index of the event in its aggregate; null for a single-event record */
  subSequence: number | null;
}

export function isZstd(data: Uint8Array): boolean {
  return data.length > 4 && ZSTD_MAGIC.every((b, i) => data[i] === b);
}

function isGzip(data: Uint8Array): boolean {
  return data.length > 2 && data[0] === 0x1f && data[1] === 0x8b;
}

export function framingOf(data: Uint8Array): RecordFraming | null {
  if (isZstd(data)) return 'kpl+zstd';
  if (isAggregate(data)) return 'kpl';
  if (isGzip(data)) return 'gzip';
  return data[0] === 0x7b ? 'json' : null;
}

/** The record's data for an aggregate, compressed as configured. */
export function frameAggregate(kpl: Buffer, compression: AggregateCompression): Buffer {
  if (compression === 'none') return kpl;
  return zlib.zstdCompressSync(kpl, {
    params: { [zlib.constants.ZSTD_c_compressionLevel]: AGGREGATE_ZSTD_LEVEL },
  });
}

/**
 * The change events of one record, in order. Throws STREAM_RECORD_INVALID (with the framing and the
 * reason) for data no framing reads: the caller dead-letters the whole record with that reason.
 */
export function decodeStreamRecord(data: Uint8Array, partitionKey: string): UserRecord[] {
  const framing = framingOf(data);
  try {
    switch (framing) {
      case 'kpl+zstd':
        return fromAggregate(zlib.zstdDecompressSync(data));
      case 'kpl':
        return fromAggregate(data);
      case 'gzip':
        return [{ json: zlib.gunzipSync(data), partitionKey, subSequence: null }];
      case 'json':
        return [{ json: data, partitionKey, subSequence: null }];
      default:
        throw new Error(`unknown framing (first bytes ${Buffer.from(data.subarray(0, 4)).toString('hex')})`);
    }
  } catch (e) {
    throw new DrugsyncError('STREAM_RECORD_INVALID', `a ${framing ?? 'stream'} record could not be read`, {
      cause: e,
      context: { partitionKey, bytes: data.length, reason: errorMessage(e) },
      remedy:
        'the record is dead-lettered whole; `drugsync dlq list` shows it, `verify --repair` restores the rows',
    });
  }
}

function fromAggregate(kpl: Uint8Array): UserRecord[] {
  return decodeAggregate(kpl).map((r, i) => ({ json: r.data, partitionKey: r.partitionKey, subSequence: i }));
}

/**
 * The id of an event on its shard (what checkpoints and dead letters name): the record's sequence number,
 * with `:index` for an event of an aggregate (KCL's "extended sequence number"). A checkpoint on an aggregate's
 * event re-reads that aggregate and skips its events up to the index: a crash inside an aggregate re-applies
 * none of what was applied (and at most that aggregate's events were in flight), and skips nothing.
 */
export function eventId(sequenceNumber: string, subSequence: number | null): string {
  return subSequence === null ? sequenceNumber : `${sequenceNumber}:${subSequence}`;
}

export function parseEventId(id: string): { sequenceNumber: string; subSequence: number | null } {
  const colon = id.indexOf(':');
  if (colon < 0) return { sequenceNumber: id, subSequence: null };
  return { sequenceNumber: id.slice(0, colon), subSequence: Number(id.slice(colon + 1)) };
}

/** Where to open a shard iterator to read what follows event `checkpoint`. */
export function iteratorAfter(checkpoint: string): {
  ShardIteratorType: 'AFTER_SEQUENCE_NUMBER' | 'AT_SEQUENCE_NUMBER';
  StartingSequenceNumber: string;
} {
  const { sequenceNumber, subSequence } = parseEventId(checkpoint);
  return subSequence === null
    ? { ShardIteratorType: 'AFTER_SEQUENCE_NUMBER', StartingSequenceNumber: sequenceNumber }
    : { ShardIteratorType: 'AT_SEQUENCE_NUMBER', StartingSequenceNumber: sequenceNumber };
}

/** Whether event `id` is at or before event `checkpoint` on the same shard (already applied). */
export function isAtOrBefore(id: string, checkpoint: string): boolean {
  const e = parseEventId(id);
  const cp = parseEventId(checkpoint);
  if (e.sequenceNumber !== cp.sequenceNumber) return BigInt(e.sequenceNumber) < BigInt(cp.sequenceNumber);
  return cp.subSequence === null || (e.subSequence ?? 0) <= cp.subSequence;
}
