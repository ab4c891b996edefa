/**
 * Realistic change events for embedder tests: full 68-column rndc14 rows (as the binlog reader carries
 * them: strings for VARCHAR/DECIMAL/DATETIME(6), numbers for INT, zero dates kept), change events built
 * from them with increasing binlog positions, Kinesis-style records, and — for UNIT tests only — in-memory
 * fakes of the store, embedding service, dead-letter queue and table state that follow their contracts.
 */
import { createHash } from 'node:crypto';
import { ListShardsCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import type { KinesisClient, PutRecordsRequestEntry } from '@aws-sdk/client-kinesis';
import type { DrugsyncError } from '../../services/core/errors.ts';
import { compressRecord, encodeChangeEvent } from '../../services/core/events.ts';
import type { ChangeEvent, RowChangeEvent, TableEvent } from '../../services/core/events.ts';
import { sourcePosition } from '../../services/core/position.ts';
import type { SourcePosition } from '../../services/core/position.ts';
import { RNDC14_COLUMNS, ZERO_DATE } from '../../services/core/rndc14.ts';
import type { Rndc14Row } from '../../services/core/rndc14.ts';
import type { ApplyResult, DocMeta, DrugStore, StoreOp, UpsertOp } from '../../services/core/drug-store.ts';
import type { DrugFields } from '../../services/core/mapping.ts';
import type {
  EmbeddingResult,
  EmbeddingService,
  EmbeddingStats,
} from '../../services/core/embedding/types.ts';
import type { DeadLetter, DeadLetterInput, DeadLetterQueue } from '../../services/embedder/dlq.ts';
import { toDeadLetter } from '../../services/embedder/dlq.ts';
import type { PendingResync, PendingTruncate, TableState } from '../../services/embedder/table-state.ts';
import type { StreamRecord } from '../../services/embedder/types.ts';

const PRODUCTS: [string, string, string, string][] = [
  // LN, BN, DF, PD
  ['LISINOPRIL 10 MG TABLET', 'PRINIVIL', '1', 'BOTTLE'],
  ['LISINOPRIL 20 MG TABLET', 'ZESTRIL', '1', 'BOTTLE'],
  ['ATORVASTATIN 40 MG TABLET', 'LIPITOR', '1', 'BOTTLE'],
  ['METFORMIN HCL 500 MG TABLET', 'GLUCOPHAGE', '1', 'BOTTLE'],
  ['AMOXICILLIN 250 MG/5 ML SUSP', '', '2', 'BOTTLE'],
  ['INSULIN GLARGINE 100 UNIT/ML', 'LANTUS', '2', 'VIAL'],
  ['HYDROCODONE-APAP 5-325 MG TAB', 'NORCO', '1', 'BLIST PACK'],
  ['OMEPRAZOLE DR 20 MG CAPSULE', 'PRILOSEC', '1', 'BOTTLE'],
  ['SERTRALINE HCL 50 MG TABLET', 'ZOLOFT', '1', 'BOTTLE'],
  ['HYDROCORTISONE 1% CREAM', '', '3', 'BOX'],
  ['ENOXAPARIN 40 MG/0.4 ML SYRINGE', 'LOVENOX', '2', 'SYRINGE'],
  ['ALPRAZOLAM 0.5 MG TABLET', 'XANAX', '1', 'BOTTLE'],
];

/** 11-digit NDC: labeler(5) + product(4) + package(2). */
export function ndcFor(i: number): string {
  const labeler = 2 + (i % 97) * 101;
  const product = (i * 37) % 10000;
  const pkg = i % 100;
  return `${String(labeler).padStart(5, '0')}${String(product).padStart(4, '0')}${String(pkg).padStart(2, '0')}`;
}

/** A full rndc14 row, deterministic in `i`; `over` replaces columns. */
export function makeRow(i: number, over: Partial<Rndc14Row> = {}): Rndc14Row {
  const [ln, bn, df, pd] = PRODUCTS[i % PRODUCTS.length] as [string, string, string, string];
  const innov = bn && i % 3 === 0 ? '1' : '0';
  const row: Rndc14Row = {};
  for (const c of RNDC14_COLUMNS) {
    switch (c.kind) {
      case 'varchar':
        row[c.name] = '';
        break;
      case 'decimal':
        row[c.name] = '0.000';
        break;
      case 'datetime':
        row[c.name] = ZERO_DATE;
        break;
      default:
        row[c.name] = 0;
    }
  }
  Object.assign(row, {
    NDC: ndcFor(i),
    LBLRID: `A${String(10000 + (i % 4590)).padStart(5, '0')}`,
    LN: ln,
    LN60: ln,
    BN: bn,
    GCN_SEQNO: 1000 + (i % 32257),
    INNOV: innov,
    GNI: '1',
    GMI: '4',
    GTI: '4',
    DF: df,
    PS: i % 2 ? '100.000' : '1000.000',
    PD: pd,
    DEA: ln.startsWith('HYDROCODONE') ? '2' : ln.startsWith('ALPRAZOLAM') ? '4' : '0',
    CL: 'F',
    OBC: 'AB',
    DADDNC: '2019-03-14 00:00:00.000000',
    DUPDC: '2024-11-02 00:00:00.000000',
    HCFA_UNIT: df === '1' ? 'TAB' : 'ML',
    HCFA_PS: '100.000',
    SHLF_PCK: 1,
    SHIPPER: 12,
    GPI: '9',
    GSI: '9',
    PS_EQUIV: '100.000',
  });
  return { ...row, ...over } as Rndc14Row;
}

/** Builds change events with increasing binlog positions, as one binlog reader would. */
export class EventFactory {
  private offset = 4;
  private readonly ts: number;
  constructor(
    private readonly file = 'binlog.000003',
    ts = Date.now() - 1000,
    private readonly schema = 'fdb',
    private readonly table = 'rndc14',
  ) {
    this.ts = Math.floor(ts / 1000) * 1000;
  }

  private nextPos(): { pos: SourcePosition; binlog: RowChangeEvent['binlog'] } {
    this.offset += 300;
    return {
      pos: sourcePosition(this.file, this.offset, 0),
      binlog: { file: this.file, pos: this.offset, row: 0, next: this.offset + 280 },
    };
  }

  private base() {
    const { pos, binlog } = this.nextPos();
    return {
      v: 1 as const,
      schema: this.schema,
      table: this.table,
      pos,
      binlog,
      gtid: `0-1-${this.offset}`,
      ts: this.ts,
      txid: String(this.offset),
    };
  }

  insert(row: Rndc14Row): RowChangeEvent {
    return { ...this.base(), type: 'insert', ndc: String(row.NDC), before: null, after: row };
  }

  update(before: Rndc14Row, after: Rndc14Row): RowChangeEvent {
    return { ...this.base(), type: 'update', ndc: String(after.NDC), before, after };
  }

  delete(row: Rndc14Row): RowChangeEvent {
    return { ...this.base(), type: 'delete', ndc: String(row.NDC), before: row, after: null };
  }

  /** An UPDATE that changed the primary key: delete of the old NDC + insert of the new one. */
  ndcChange(before: Rndc14Row, after: Rndc14Row): [RowChangeEvent, RowChangeEvent] {
    const from = String(before.NDC);
    const to = String(after.NDC);
    const a = this.base();
    const b = { ...a, pos: sourcePosition(this.file, a.binlog.pos, 1), binlog: { ...a.binlog, row: 1 } };
    return [
      { ...a, type: 'delete', ndc: from, before, after: null, ndc_change: { from, to } },
      { ...b, type: 'insert', ndc: to, before: null, after, ndc_change: { from, to } },
    ];
  }

  truncate(): TableEvent {
    return { ...this.base(), type: 'truncate', statement: `TRUNCATE TABLE ${this.table}` };
  }

  /** The end of transaction `txid`, which deleted rows (the binlog reader sends it to every shard). */
  commit(txid: string): TableEvent {
    return { ...this.base(), type: 'commit', txid, statement: 'COMMIT' };
  }

  resync(): TableEvent {
    return {
      ...this.base(),
      type: 'resync',
      statement: `RENAME TABLE ${this.table} TO ${this.table}_old, ${this.table}_new TO ${this.table}`,
    };
  }
}

/** Wraps events as one shard's Kinesis records (sequence numbers increasing). */
export class RecordFactory {
  private seq = 49_650_000_000_000_000_000_000_000_000_000_000_000_000_000n;
  constructor(readonly shardId = 'shardId-000000000000') {}
  record(e: ChangeEvent | Uint8Array, partitionKey?: string): StreamRecord {
    this.seq += 1000n;
    const data = e instanceof Uint8Array ? e : encodeChangeEvent(e);
    return {
      sequenceNumber: this.seq.toString(),
      partitionKey: partitionKey ?? ('ndc' in (e as object) ? String((e as RowChangeEvent).ndc) : 'table'),
      shardId: this.shardId,
      data,
      approximateArrivalTimestamp: Date.now(),
    };
  }
  records(events: (ChangeEvent | Uint8Array)[]): StreamRecord[] {
    return events.map((e) => this.record(e));
  }
}

// ---------------------------------------------------------------- unit-test fakes (never in integration)

interface StoredDoc {
  fields: DrugFields;
  embedding: number[];
}

/** In-memory DrugStore following the contract in services/core/drug-store.ts. Unit tests only. */
export class MemoryDrugStore implements DrugStore {
  readonly docs = new Map<string, StoredDoc>();
  readonly meta = new Map<string, DocMeta>();
  readonly applied: StoreOp[] = [];
  failNext: Error | null = null;

  async ensureIndex(): Promise<void> {}

  async getMeta(ndcs: readonly string[]): Promise<Map<string, DocMeta | null>> {
    if (this.failNext) throw this.takeFailure();
    return new Map(ndcs.map((n) => [n, this.meta.get(n) ?? null]));
  }

  private takeFailure(): Error {
    const e = this.failNext as Error;
    this.failNext = null;
    return e;
  }

  async apply(ops: readonly StoreOp[]): Promise<ApplyResult[]> {
    if (this.failNext) throw this.takeFailure();
    return ops.map((op) => ({ ndc: op.ndc, outcome: this.applyOne(op) }));
  }

  private applyOne(op: StoreOp): ApplyResult['outcome'] {
    const m = this.meta.get(op.ndc);
    if (op.kind === 'delete') {
      if (m && m.pos >= op.pos) return 'stale';
      const had = this.docs.delete(op.ndc);
      this.meta.set(op.ndc, { pos: op.pos, contentHash: null, textHash: null, tombstone: true });
      this.applied.push(op);
      return had ? 'deleted' : 'tombstoned';
    }
    if (m && m.pos >= op.pos) return 'stale';
    const doc = this.docs.get(op.ndc);
    if (doc && m && !m.tombstone && m.contentHash === op.contentHash) {
      m.pos = op.pos;
      return 'unchanged';
    }
    if (!op.embedding) {
      if (!doc || !m || m.tombstone || m.textHash !== op.textHash) return 'needs_embedding';
      this.docs.set(op.ndc, { fields: op.fields, embedding: doc.embedding });
      this.meta.set(op.ndc, {
        pos: op.pos,
        contentHash: op.contentHash,
        textHash: op.textHash,
        tombstone: false,
      });
      this.applied.push(op);
      return 'fields_updated';
    }
    this.docs.set(op.ndc, { fields: op.fields, embedding: op.embedding });
    this.meta.set(op.ndc, {
      pos: op.pos,
      contentHash: op.contentHash,
      textHash: op.textHash,
      tombstone: false,
    });
    this.applied.push(op);
    return 'written';
  }

  async sweepOlderThan(pos: SourcePosition): Promise<number> {
    let n = 0;
    for (const [ndc, m] of this.meta) {
      if (!m.tombstone && m.pos < pos && this.docs.delete(ndc)) {
        this.meta.set(ndc, { pos, contentHash: null, textHash: null, tombstone: true });
        n++;
      }
    }
    return n;
  }

  /** Seeds a document as if written earlier (a backfill, say). */
  seed(op: UpsertOp & { embedding: number[] }): void {
    this.applyOne(op);
  }
}

/** Deterministic vector of a text. */
export function fakeVector(text: string, dims: number): number[] {
  const h = createHash('sha256').update(text).digest();
  return Array.from({ length: dims }, (_, i) => ((h[i % h.length] as number) - 128) / 128);
}

/** In-memory EmbeddingService with a cache and a call log; texts can be made to fail. Unit tests only. */
export class MemoryEmbeddingService implements EmbeddingService {
  readonly model = 'fake-embed-v1';
  readonly cache = new Map<string, number[]>();
  /** every text sent to the "model" */
  readonly calls: string[] = [];
  /** text → error to report for it (poison when not retryable) */
  readonly failing = new Map<string, DrugsyncError>();
  private readonly total: EmbeddingStats = {
    texts: 0,
    cacheHits: 0,
    requests: 0,
    throttled: 0,
    retries: 0,
    failed: 0,
  };
  constructor(readonly dimensions = 16) {}

  async embedTexts(texts: Iterable<string>): Promise<EmbeddingResult> {
    const distinct = [...new Set(texts)];
    const stats: EmbeddingStats = {
      texts: distinct.length,
      cacheHits: 0,
      requests: 0,
      throttled: 0,
      retries: 0,
      failed: 0,
    };
    const vectors = new Map<string, number[]>();
    const failures = new Map<string, DrugsyncError>();
    for (const t of distinct) {
      const hit = this.cache.get(t);
      if (hit) {
        stats.cacheHits++;
        vectors.set(t, hit);
        continue;
      }
      stats.requests++;
      this.calls.push(t);
      const err = this.failing.get(t);
      if (err) {
        stats.failed++;
        failures.set(t, err);
        continue;
      }
      const v = fakeVector(t, this.dimensions);
      this.cache.set(t, v);
      vectors.set(t, v);
    }
    for (const k of Object.keys(stats) as (keyof EmbeddingStats)[]) this.total[k] += stats[k];
    return { vectors, failures, stats };
  }

  totals(): EmbeddingStats {
    return { ...this.total };
  }
}

export class MemoryDeadLetterQueue implements DeadLetterQueue {
  readonly kind = 'redis' as const;
  readonly letters: DeadLetter[] = [];
  private n = 0;
  async put(entries: readonly DeadLetterInput[]): Promise<void> {
    for (const e of entries) this.letters.push(toDeadLetter(e, `${Date.now()}-${this.n++}`, new Date()));
  }
  async list(limit = 1000): Promise<DeadLetter[]> {
    return this.letters.slice(0, limit);
  }
  async remove(ids: readonly string[]): Promise<number> {
    let n = 0;
    for (const id of ids) {
      const i = this.letters.findIndex((l) => l.id === id);
      if (i >= 0) {
        this.letters.splice(i, 1);
        n++;
      }
    }
    return n;
  }
}

export class MemoryTableState implements TableState {
  truncate: PendingTruncate | null = null;
  floor: SourcePosition | null = null;
  readonly resyncs = new Map<string, PendingResync>();
  resyncFloor: SourcePosition | null = null;
  async read() {
    return {
      truncate: this.truncate ? { ...this.truncate, shards: [...this.truncate.shards] } : null,
      floor: this.floor,
      resyncs: [...this.resyncs.values()],
      resyncFloor: this.resyncFloor,
    };
  }
  async recordTruncate(e: TableEvent, shardId: string, now: number): Promise<boolean> {
    if (this.floor && this.floor >= e.pos) return false;
    if (this.truncate && this.truncate.pos > e.pos) return false;
    if (this.truncate && this.truncate.pos === e.pos) {
      if (!this.truncate.shards.includes(shardId)) this.truncate.shards.push(shardId);
      return false;
    }
    this.truncate = { pos: e.pos, statement: e.statement, seenAt: now, lastRowAt: now, shards: [shardId] };
    return true;
  }
  async noteRowActivity(now: number): Promise<void> {
    if (this.truncate && now > this.truncate.lastRowAt) this.truncate.lastRowAt = now;
  }
  async recordResync(e: TableEvent, shardId: string, now: number): Promise<number> {
    if (this.resyncFloor && this.resyncFloor >= e.pos) return this.resyncs.size;
    const cur = this.resyncs.get(e.pos) ?? {
      pos: e.pos,
      statement: e.statement,
      ts: e.ts,
      seenAt: now,
      shards: [],
    };
    if (!cur.shards.includes(shardId)) cur.shards.push(shardId);
    this.resyncs.set(e.pos, cur);
    return this.resyncs.size;
  }
  async completeResync(pos: SourcePosition): Promise<void> {
    if (!this.resyncFloor || this.resyncFloor < pos) this.resyncFloor = pos;
    for (const k of [...this.resyncs.keys()]) if (k <= pos) this.resyncs.delete(k);
  }
  async completeTruncate(pos: SourcePosition): Promise<void> {
    if (this.truncate?.pos === pos) this.truncate = null;
    if (!this.floor || this.floor < pos) this.floor = pos;
  }
}

// ---------------------------------------------------------------- Kinesis producer for integration tests

/**
 * Puts change events on a stream as the binlog reader would: row events with the NDC as partition key,
 * table events (truncate, resync) once to every open shard (ExplicitHashKey = the shard's start key).
 */
export async function putEvents(
  kinesis: Pick<KinesisClient, 'send'>,
  stream: string,
  events: readonly (ChangeEvent | Uint8Array)[],
): Promise<void> {
  const shards = (await kinesis.send(new ListShardsCommand({ StreamName: stream }))).Shards ?? [];
  const open = shards.filter((s) => !s.SequenceNumberRange?.EndingSequenceNumber);
  const entries: PutRecordsRequestEntry[] = [];
  for (const e of events) {
    if (e instanceof Uint8Array) {
      entries.push({ Data: e, PartitionKey: 'poison' });
    } else if (e.type === 'truncate' || e.type === 'resync' || e.type === 'commit') {
      for (const s of open)
        entries.push({
          Data: encodeChangeEvent(e),
          PartitionKey: 'table',
          ExplicitHashKey: s.HashKeyRange?.StartingHashKey,
        });
    } else {
      // row events compressed, as the binlog reader writes them by default; table events plain (both occur)
      entries.push({
        Data: compressRecord(encodeChangeEvent(e)),
        PartitionKey: (e as RowChangeEvent).ndc,
      });
    }
  }
  // sequential calls keep each shard's order equal to the events' order
  for (let i = 0; i < entries.length; i += 500) {
    const out = await kinesis.send(
      new PutRecordsCommand({ StreamName: stream, Records: entries.slice(i, i + 500) }),
    );
    if (out.FailedRecordCount) throw new Error(`${out.FailedRecordCount} records were not put on ${stream}`);
  }
}
