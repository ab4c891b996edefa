/**
 * The Kinesis Producer Library's aggregated record format: encoder, decoder and size accounting, side by side.
 *
 *   record = magic F3 89 9A C2 · protobuf AggregatedRecord · MD5(protobuf) (16 bytes)
 *
 *   message AggregatedRecord { repeated string partition_key_table = 1; repeated string explicit_hash_key_table = 2;
 *                              repeated Record records = 3; }
 *   message Record { required uint64 partition_key_index = 1; optional uint64 explicit_hash_key_index = 2;
 *                    required bytes data = 3; repeated Tag tags = 4; }
 *   message Tag { required string key = 1; optional string value = 2; }
 *
 * (github.com/awslabs/amazon-kinesis-producer, aggregation-format.md). KCL applications, Lambda with the
 * awslabs deaggregation library and Firehose read it natively. The protobuf is written and read here by hand
 * (a fixed, tiny schema): no runtime dependency, one buffer allocation per aggregate, and the byte size of an
 * aggregate is known exactly before it is built, so a builder can stop below the 1 MiB record limit.
 * test/kpl.test.ts holds it to the awslabs `aws-kinesis-agg` library both ways.
 */
import crypto from 'node:crypto';

export const KPL_MAGIC = Buffer.from([0xf3, 0x89, 0x9a, 0xc2]);
const DIGEST_BYTES = 16;

/** One user record of an aggregate. */
export interface SubRecord {
  partitionKey: string;
  explicitHashKey?: string;
  data: Uint8Array;
}

function varintSize(n: number): number {
  let size = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    size++;
  }
  return size;
}

function writeVarint(buf: Buffer, p: number, n: number): number {
  while (n >= 0x80) {
    buf[p++] = (n & 0x7f) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[p++] = n;
  return p;
}

function readVarint(buf: Uint8Array, p: number): [number, number] {
  let n = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (p >= buf.length) throw new Error('truncated varint');
    const b = buf[p++] as number;
    n += (b & 0x7f) * scale;
    if (b < 0x80) return [n, p];
    scale *= 128;
  }
  throw new Error('varint longer than 10 bytes');
}

/** Bytes of a length-delimited field (tag, length, payload). */
const fieldSize = (len: number) => 1 + varintSize(len) + len;

function recordBodySize(pkIndex: number, ehkIndex: number | undefined, dataLen: number): number {
  return (
    1 + varintSize(pkIndex) + (ehkIndex === undefined ? 0 : 1 + varintSize(ehkIndex)) + fieldSize(dataLen)
  );
}

/**
 * Collects user records into one aggregate and knows its exact encoded size at every step. `fits` says
 * whether one more record keeps the aggregate within `maxBytes`; the caller flushes first when it does not.
 */
export class AggregateBuilder {
  private readonly pkIndex = new Map<string, number>();
  private readonly ehkIndex = new Map<string, number>();
  private readonly records: { pk: number; ehk: number | undefined; data: Uint8Array }[] = [];
  private protoBytes = 0;

  get count(): number {
    return this.records.length;
  }

  /** Encoded size of the aggregate as it stands (magic + protobuf + digest). */
  get bytes(): number {
    return KPL_MAGIC.length + this.protoBytes + DIGEST_BYTES;
  }

  /** The bytes `r` would add. */
  sizeOf(r: SubRecord): number {
    let add = 0;
    const pk = this.pkIndex.get(r.partitionKey);
    if (pk === undefined) add += fieldSize(Buffer.byteLength(r.partitionKey));
    let ehk: number | undefined;
    if (r.explicitHashKey !== undefined) {
      ehk = this.ehkIndex.get(r.explicitHashKey);
      if (ehk === undefined) add += fieldSize(Buffer.byteLength(r.explicitHashKey));
      ehk ??= this.ehkIndex.size;
    }
    return add + fieldSize(recordBodySize(pk ?? this.pkIndex.size, ehk, r.data.length));
  }

  fits(r: SubRecord, maxBytes: number): boolean {
    return this.bytes + this.sizeOf(r) <= maxBytes;
  }

  add(r: SubRecord): void {
    this.protoBytes += this.sizeOf(r);
    let pk = this.pkIndex.get(r.partitionKey);
    if (pk === undefined) this.pkIndex.set(r.partitionKey, (pk = this.pkIndex.size));
    let ehk: number | undefined;
    if (r.explicitHashKey !== undefined) {
      ehk = this.ehkIndex.get(r.explicitHashKey);
      if (ehk === undefined) this.ehkIndex.set(r.explicitHashKey, (ehk = this.ehkIndex.size));
    }
    this.records.push({ pk, ehk, data: r.data });
  }

  /** The aggregate's bytes; the builder is empty again afterwards. */
  build(): Buffer {
    const out = Buffer.allocUnsafe(this.bytes);
    KPL_MAGIC.copy(out, 0);
    let p = KPL_MAGIC.length;
    for (const k of this.pkIndex.keys()) p = writeString(out, p, 0x0a, k);
    for (const k of this.ehkIndex.keys()) p = writeString(out, p, 0x12, k);
    for (const r of this.records) {
      out[p++] = 0x1a;
      p = writeVarint(out, p, recordBodySize(r.pk, r.ehk, r.data.length));
      out[p++] = 0x08;
      p = writeVarint(out, p, r.pk);
      if (r.ehk !== undefined) {
        out[p++] = 0x10;
        p = writeVarint(out, p, r.ehk);
      }
      out[p++] = 0x1a;
      p = writeVarint(out, p, r.data.length);
      out.set(r.data, p);
      p += r.data.length;
    }
    crypto.createHash('md5').update(out.subarray(KPL_MAGIC.length, p)).digest().copy(out, p);
    this.pkIndex.clear();
    this.ehkIndex.clear();
    this.records.length = 0;
    this.protoBytes = 0;
    return out;
  }
}

function writeString(out: Buffer, p: number, tag: number, s: string): number {
  out[p++] = tag;
  const len = Buffer.byteLength(s);
  p = writeVarint(out, p, len);
  out.write(s, p, len, 'utf8');
  return p + len;
}

/** The aggregate of `records`, in order. */
export function encodeAggregate(records: readonly SubRecord[]): Buffer {
  const b = new AggregateBuilder();
  for (const r of records) b.add(r);
  return b.build();
}

/** Cheap check: does `data` start with the KPL magic (a candidate aggregate)? */
export function isAggregate(data: Uint8Array): boolean {
  return (
    data.length >= KPL_MAGIC.length + DIGEST_BYTES &&
    data[0] === 0xf3 &&
    data[1] === 0x89 &&
    data[2] === 0x9a &&
    data[3] === 0xc2
  );
}

/**
 * The user records of an aggregate, in order. Throws (with what is wrong) when the digest does not match or
 * the protobuf is malformed: the caller dead-letters the record with that reason.
 */
export function decodeAggregate(data: Uint8Array): SubRecord[] {
  if (!isAggregate(data)) throw new Error('not a KPL aggregated record (no magic F3899AC2)');
  const body = data.subarray(KPL_MAGIC.length, data.length - DIGEST_BYTES);
  const digest = crypto.createHash('md5').update(body).digest();
  if (!digest.equals(data.subarray(data.length - DIGEST_BYTES))) {
    throw new Error('KPL aggregated record: MD5 digest does not match its protobuf (corrupt record)');
  }
  const pks: string[] = [];
  const ehks: string[] = [];
  const raw: { pk: number; ehk: number | undefined; data: Uint8Array }[] = [];
  for (let p = 0; p < body.length;) {
    const [tag, q] = readVarint(body, p);
    const [len, start] = readVarint(body, q);
    const end = start + len;
    if ((tag & 7) !== 2 || end > body.length)
      throw new Error(`KPL aggregated record: bad field at byte ${p}`);
    const chunk = body.subarray(start, end);
    if (tag >> 3 === 1) pks.push(Buffer.from(chunk).toString('utf8'));
    else if (tag >> 3 === 2) ehks.push(Buffer.from(chunk).toString('utf8'));
    else if (tag >> 3 === 3) raw.push(decodeRecordBody(chunk));
    p = end;
  }
  return raw.map((r, i) => {
    const partitionKey = pks[r.pk];
    if (partitionKey === undefined)
      throw new Error(`KPL aggregated record: record ${i} names no partition key`);
    const explicitHashKey = r.ehk === undefined ? undefined : ehks[r.ehk];
    return explicitHashKey === undefined
      ? { partitionKey, data: r.data }
      : { partitionKey, explicitHashKey, data: r.data };
  });
}

function decodeRecordBody(b: Uint8Array): { pk: number; ehk: number | undefined; data: Uint8Array } {
  let pk = -1;
  let ehk: number | undefined;
  let data: Uint8Array | undefined;
  for (let p = 0; p < b.length;) {
    const [tag, q] = readVarint(b, p);
    if ((tag & 7) === 0) {
      const [v, next] = readVarint(b, q);
      if (tag >> 3 === 1) pk = v;
      else if (tag >> 3 === 2) ehk = v;
      p = next;
    } else if ((tag & 7) === 2) {
      const [len, start] = readVarint(b, q);
      if (tag >> 3 === 3) data = b.subarray(start, start + len);
      p = start + len; // tags (field 4) are skipped
    } else {
      throw new Error(`KPL aggregated record: unexpected wire type ${tag & 7} in a record`);
    }
  }
  if (pk < 0 || !data)
    throw new Error('KPL aggregated record: a record lacks its partition key index or data');
  return { pk, ehk, data };
}
