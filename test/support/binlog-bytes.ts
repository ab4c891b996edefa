/**
 * MySQL binlog bytes without a server (test support): binlog files, the replication wire form of their
 * events, and the events inside a TRANSACTION_PAYLOAD.
 *
 * - File: the 4-byte magic `FE 62 69 6E`, then events back to back. Each event is a 19-byte header
 *   (timestamp 4, type 1, server id 4, event size 4 — header and checksum included —, end position 4,
 *   flags 2, little-endian), its body, and a CRC32 of everything before it when the stream has checksums.
 * - FORMAT_DESCRIPTION (the first event of a file): binlog version (2), server version (50, NUL-padded),
 *   creation time (4), header length (1), one post-header length per event type, the checksum algorithm
 *   (1: CRC32) and the event's own checksum field (4, present whatever the algorithm).
 * - Wire (a dump session, `*.packets.txt`: one hex string a line): each event behind a status byte `00`,
 *   checksum included; the first is an artificial ROTATE (end position 0) sent before the FDE.
 * - TRANSACTION_PAYLOAD (type 40, `binlog_transaction_compression=ON`): a header of (field type, length,
 *   value) triples in length-encoded integers up to an end mark 0 — 1 payload size, 2 compression type
 *   (0 zstd, 255 none), 3 uncompressed size — then the payload: whole events without checksums.
 *
 * Every event read here is checked: its size against the bytes, its end position against where the next
 * one starts (files), its CRC32 when the FDE names one. A stream that fails a check throws, naming where.
 */
import { readFileSync } from 'node:fs';
import { crc32, zstdDecompressSync } from 'node:zlib';

export const BINLOG_MAGIC = Buffer.from([0xfe, 0x62, 0x69, 0x6e]);
export const EVENT_HEADER_LENGTH = 19;
const CHECKSUM_LENGTH = 4;
/** FDE body before the post-header lengths: binlog version, server version, creation time, header length */
const FDE_FIXED_LENGTH = 2 + 50 + 4 + 1;

/** The type codes these tests meet (libbinlogevents' Log_event_type; 100 is Aurora's own). */
export const EventType = {
  QUERY: 2,
  STOP: 3,
  ROTATE: 4,
  FORMAT_DESCRIPTION: 15,
  XID: 16,
  TABLE_MAP: 19,
  ROWS_QUERY: 29,
  WRITE_ROWS_V2: 30,
  UPDATE_ROWS_V2: 31,
  DELETE_ROWS_V2: 32,
  GTID: 33,
  ANONYMOUS_GTID: 34,
  PREVIOUS_GTIDS: 35,
  PARTIAL_UPDATE_ROWS: 39,
  TRANSACTION_PAYLOAD: 40,
  AURORA_PADDING: 100,
} as const;

/** LOG_EVENT_IGNORABLE_F: a reader that does not know the event's type may skip it. */
export const IGNORABLE_FLAG = 0x80;

export interface BinlogEvent {
  /** byte offset of the event in its file (end position − size on the wire; within a payload: its offset) */
  at: number;
  timestamp: number;
  type: number;
  serverId: number;
  size: number;
  /** end position in the header (0: artificial events, events inside a payload) */
  next: number;
  flags: number;
  /** the whole event: header, body and, where the stream has them, the CRC32 */
  bytes: Buffer;
  /** between the header and the checksum */
  body: Buffer;
  checksum: boolean;
}

export interface FormatDescription {
  binlogVersion: number;
  serverVersion: string;
  headerLength: number;
  /** post-header length by event type code (index 0 unused; a type past the list has none) */
  postHeaderLengths: number[];
  checksum: 'NONE' | 'CRC32';
}

export interface BinlogStream {
  /** file name or fixture name, for messages */
  name: string;
  fde: FormatDescription;
  events: BinlogEvent[];
}

function fail(where: string, what: string): never {
  throw new Error(`${where}: ${what}`);
}

/** The event at `at` in `buf` (header fields and bytes), its size checked against what is there. */
function eventAt(buf: Buffer, at: number, checksum: boolean, where: string): BinlogEvent {
  if (at + EVENT_HEADER_LENGTH > buf.length) fail(where, `event header cut short at ${at}`);
  const size = buf.readUInt32LE(at + 9);
  const min = EVENT_HEADER_LENGTH + (checksum ? CHECKSUM_LENGTH : 0);
  if (size < min || at + size > buf.length)
    fail(where, `event at ${at} declares ${size} bytes, ${buf.length - at} are there`);
  const bytes = buf.subarray(at, at + size);
  return {
    at,
    timestamp: bytes.readUInt32LE(0),
    type: bytes[4] as number,
    serverId: bytes.readUInt32LE(5),
    size,
    next: bytes.readUInt32LE(13),
    flags: bytes.readUInt16LE(17),
    bytes,
    body: bytes.subarray(EVENT_HEADER_LENGTH, size - (checksum ? CHECKSUM_LENGTH : 0)),
    checksum,
  };
}

/** LOG_EVENT_BINLOG_IN_USE_F: set in an open file's FDE, cleared in place at close. */
const BINLOG_IN_USE_FLAG = 0x1;

function checkCrc(e: BinlogEvent, where: string): void {
  const stored = e.bytes.readUInt32LE(e.size - CHECKSUM_LENGTH);
  const covered = Buffer.from(e.bytes.subarray(0, e.size - CHECKSUM_LENGTH));
  // the server toggles the FDE's in-use flag without rewriting its checksum, which is of the flag cleared
  // (Log_event_footer::event_checksum_test): files copied while open carry it set
  if (e.type === EventType.FORMAT_DESCRIPTION) covered[17] = (covered[17] as number) & ~BINLOG_IN_USE_FLAG;
  const computed = crc32(covered);
  if (stored !== computed)
    fail(where, `CRC32 of the event at ${e.at} (type ${e.type}) is ${computed}, the event says ${stored}`);
}

/** Reads a FORMAT_DESCRIPTION event (its bytes as a stream carries them, checksum field included). */
export function readFormatDescription(bytes: Buffer): FormatDescription {
  const where = 'FORMAT_DESCRIPTION';
  if (bytes[4] !== EventType.FORMAT_DESCRIPTION) fail(where, `type ${bytes[4]} is not 15`);
  const size = bytes.readUInt32LE(9);
  const body = bytes.subarray(EVENT_HEADER_LENGTH, size);
  // the algorithm byte and the 4-byte checksum field close the event whatever the algorithm (MySQL ≥ 5.6.1)
  const lengthsEnd = body.length - 1 - CHECKSUM_LENGTH;
  if (lengthsEnd <= FDE_FIXED_LENGTH) fail(where, `body of ${body.length} bytes is too short`);
  const algorithm = body[lengthsEnd] as number;
  if (algorithm !== 0 && algorithm !== 1) fail(where, `unknown checksum algorithm ${algorithm}`);
  return {
    binlogVersion: body.readUInt16LE(0),
    serverVersion: body.toString('latin1', 2, 52).replace(/\0+$/, ''),
    headerLength: body[56] as number,
    postHeaderLengths: [0, ...body.subarray(FDE_FIXED_LENGTH, lengthsEnd)],
    checksum: algorithm === 1 ? 'CRC32' : 'NONE',
  };
}

/** Every event of a binlog file, each checked (size, end position, CRC32). */
export function readBinlogFile(buf: Buffer, name = 'binlog'): BinlogStream {
  if (buf.length < 4 || !buf.subarray(0, 4).equals(BINLOG_MAGIC)) fail(name, 'no binlog magic FE 62 69 6E');
  if (buf.length < 4 + EVENT_HEADER_LENGTH) fail(name, 'no FORMAT_DESCRIPTION event');
  const fde = readFormatDescription(buf.subarray(4, 4 + buf.readUInt32LE(4 + 9)));
  if (fde.headerLength !== EVENT_HEADER_LENGTH) fail(name, `header length ${fde.headerLength}, not 19`);
  const checksum = fde.checksum === 'CRC32';
  const events: BinlogEvent[] = [];
  for (let at = 4; at < buf.length;) {
    const e = eventAt(buf, at, checksum, name);
    if (checksum) checkCrc(e, name);
    if (e.next !== at + e.size)
      fail(name, `event at ${at} ends at ${at + e.size}, its header says ${e.next}`);
    events.push(e);
    at += e.size;
  }
  return { name, fde, events };
}

/** A binlog file of the fixtures, read and checked. */
export function readBinlogFixture(path: string): BinlogStream {
  return readBinlogFile(readFileSync(path), path.slice(path.lastIndexOf('/') + 1));
}

/** The wire form of an event in a dump session: status byte 00, then the event as the stream holds it. */
export function wirePacket(e: BinlogEvent): Buffer {
  return Buffer.concat([Buffer.from([0]), e.bytes]);
}

/**
 * The events of a dump session (one wire packet a line, hex). The FDE among them decides the checksum;
 * each packet must hold exactly one event.
 */
export function readWirePackets(text: string, name = 'packets'): BinlogStream {
  const packets = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.length > 0)
    .map((l, i) => {
      if (!/^00([0-9a-f]{2})+$/i.test(l)) fail(name, `line ${i + 1} is not a packet with status byte 00`);
      return Buffer.from(l, 'hex').subarray(1);
    });
  const fdePacket = packets.find((p) => p[4] === EventType.FORMAT_DESCRIPTION);
  if (!fdePacket) fail(name, 'no FORMAT_DESCRIPTION event');
  const fde = readFormatDescription(fdePacket);
  const checksum = fde.checksum === 'CRC32';
  const events = packets.map((p, i) => {
    const e = eventAt(p, 0, checksum, `${name} packet ${i + 1}`);
    if (e.size !== p.length) fail(name, `packet ${i + 1} holds ${p.length} bytes, its event ${e.size}`);
    if (checksum) checkCrc(e, `${name} packet ${i + 1}`);
    return { ...e, at: e.next > 0 ? e.next - e.size : 0 };
  });
  return { name, fde, events };
}

/**
 * An event's bytes from its header fields and body (the reverse of reading one): size from the body, a
 * CRC32 appended when `checksum`.
 */
export function frameEvent(
  e: Pick<BinlogEvent, 'timestamp' | 'type' | 'serverId' | 'next' | 'flags'>,
  body: Buffer,
  checksum: boolean,
): Buffer {
  const size = EVENT_HEADER_LENGTH + body.length + (checksum ? CHECKSUM_LENGTH : 0);
  const header = Buffer.alloc(EVENT_HEADER_LENGTH);
  header.writeUInt32LE(e.timestamp, 0);
  header[4] = e.type;
  header.writeUInt32LE(e.serverId, 5);
  header.writeUInt32LE(size, 9);
  header.writeUInt32LE(e.next, 13);
  header.writeUInt16LE(e.flags, 17);
  const unsummed = Buffer.concat([header, body]);
  if (!checksum) return unsummed;
  const crc = Buffer.alloc(CHECKSUM_LENGTH);
  crc.writeUInt32LE(crc32(unsummed), 0);
  return Buffer.concat([unsummed, crc]);
}

/** The event `frameEvent` bytes stand for, at `at`. */
export function eventOf(bytes: Buffer, at: number, checksum: boolean): BinlogEvent {
  return { ...eventAt(bytes, 0, checksum, 'framed event'), at };
}

/** A length-encoded integer (MySQL protocol) at `at`: its value and the offset past it. */
export function lengthEncoded(b: Buffer, at: number): [number, number] {
  const first = b[at] as number;
  if (first < 0xfb) return [first, at + 1];
  if (first === 0xfc) return [b.readUInt16LE(at + 1), at + 3];
  if (first === 0xfd) return [b.readUIntLE(at + 1, 3), at + 4];
  if (first === 0xfe) return [Number(b.readBigUInt64LE(at + 1)), at + 9];
  throw new Error(`invalid length-encoded integer 0x${first.toString(16)} at ${at}`);
}

/** `n` as a length-encoded integer. */
export function lengthEncodedBytes(n: number): Buffer {
  if (n < 0xfb) return Buffer.from([n]);
  if (n <= 0xffff) return Buffer.from([0xfc, n & 0xff, n >> 8]);
  if (n <= 0xffffff) return Buffer.from([0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16]);
  const b = Buffer.alloc(9);
  b[0] = 0xfe;
  b.writeBigUInt64LE(BigInt(n), 1);
  return b;
}

export interface TransactionPayload {
  compression: 'zstd' | 'none';
  payloadSize: number;
  uncompressedSize: number;
  /** the transaction's events (no checksums: the payload event's own covers them) */
  events: BinlogEvent[];
}

/** The header fields of a TRANSACTION_PAYLOAD body, and where its payload starts. */
function payloadHeader(body: Buffer): { fields: Map<number, number>; start: number } {
  const fields = new Map<number, number>();
  let at = 0;
  for (;;) {
    if (at >= body.length) throw new Error('TRANSACTION_PAYLOAD header has no end mark');
    const [type, afterType] = lengthEncoded(body, at);
    if (type === 0) return { fields, start: afterType };
    const [length, afterLength] = lengthEncoded(body, afterType);
    const [value, afterValue] = lengthEncoded(body, afterLength);
    if (afterValue - afterLength !== length)
      throw new Error(
        `TRANSACTION_PAYLOAD field ${type} declares ${length} bytes, holds ${afterValue - afterLength}`,
      );
    fields.set(type, value);
    at = afterValue;
  }
}

/** Unwraps a TRANSACTION_PAYLOAD event (zstd or uncompressed) into the events it carries, each checked. */
export function readTransactionPayload(e: BinlogEvent): TransactionPayload {
  if (e.type !== EventType.TRANSACTION_PAYLOAD) throw new Error(`event type ${e.type} is not 40`);
  const { fields, start } = payloadHeader(e.body);
  const compressionType = fields.get(2) ?? 0;
  if (compressionType !== 0 && compressionType !== 255)
    throw new Error(
      `TRANSACTION_PAYLOAD compression type ${compressionType} is neither zstd (0) nor none (255)`,
    );
  const payload = e.body.subarray(start);
  const payloadSize = fields.get(1) ?? payload.length;
  if (payloadSize !== payload.length)
    throw new Error(`TRANSACTION_PAYLOAD declares ${payloadSize} payload bytes, holds ${payload.length}`);
  const raw = compressionType === 0 ? zstdDecompressSync(payload) : payload;
  const uncompressedSize = fields.get(3) ?? raw.length;
  if (uncompressedSize !== raw.length)
    throw new Error(
      `TRANSACTION_PAYLOAD declares ${uncompressedSize} uncompressed bytes, holds ${raw.length}`,
    );
  const events: BinlogEvent[] = [];
  for (let at = 0; at < raw.length;) {
    const inner = eventAt(raw, at, false, `payload of the event at ${e.at}`);
    events.push(inner);
    at += inner.size;
  }
  return { compression: compressionType === 0 ? 'zstd' : 'none', payloadSize, uncompressedSize, events };
}
