/**
 * Realistic change events for embedder tests: full 68-column rndc14 rows (as the binlog reader carries
 * them: strings for VARCHAR/DECIMAL/DATETIME(6), numbers for INT, zero dates kept), change events built
 * from them with increasing binlog positions, and Kinesis-style records. The in-memory fakes that follow
 * the services' contracts are in fake-*.ts beside this file; putEvents (onto a stack stream) in put-events.ts.
 */
import { encodeChangeEvent } from '../../services/core/events.ts';
import type { ChangeEvent, RowChangeEvent, TableEvent } from '../../services/core/events.ts';
import { sourcePosition } from '../../services/core/position.ts';
import type { SourcePosition } from '../../services/core/position.ts';
import { RNDC14_COLUMNS, ZERO_DATE } from '../../services/core/rndc14.ts';
import type { Rndc14Row } from '../../services/core/rndc14.ts';
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
