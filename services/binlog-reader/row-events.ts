/**
 * Binlog rows and statements → change events (services/core/events.ts, format v1; that module also turns
 * them into Kinesis records).
 */
import { DrugsyncError } from '../core/errors.ts';
import { EVENT_VERSION } from '../core/events.ts';
import type { RowChangeEvent, TableEvent } from '../core/events.ts';
import { ROW_DIGITS, sourcePosition } from '../core/position.ts';
import type { SourcePosition } from '../core/position.ts';
import type { Rndc14Row, RowValue } from '../core/rndc14.ts';
import type { EventPlace, Row, RowsEvent } from './source.ts';

export interface TxInfo {
  /** GTID where there is one, else `file:offset` of the transaction's first event (stable across re-reads). */
  txid: string;
  gtid: string | null;
  ts: number;
}

/** A binlog value as the event format carries it: strings, numbers, null. */
export function normalizeValue(v: unknown, column: string): RowValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'bigint') return v.toString();
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (v instanceof Date) {
    throw new DrugsyncError('BINLOG_DECODE_FAILED', `column ${column} decoded as a Date, not a string`, {
      context: { column },
      remedy: 'the binlog source must run with dateStrings: true',
    });
  }
  return JSON.stringify(v);
}

export function normalizeRow(row: Row): Rndc14Row {
  // strings, numbers and NULL (every value the fast decoder gives, nearly every value of zongji's) as
  // they are: the row itself is the image; otherwise a copy with the rest converted
  let plain = true;
  for (const k in row) {
    const v = row[k];
    if (typeof v !== 'string' && typeof v !== 'number' && v !== null) {
      plain = false;
      break;
    }
  }
  if (plain) return row as Rndc14Row;
  const out: Rndc14Row = {};
  for (const k in row) {
    const v = row[k];
    out[k] = typeof v === 'string' || typeof v === 'number' || v === null ? v : normalizeValue(v, k);
  }
  return out;
}

function ndcOf(row: Rndc14Row, e: RowsEvent, index: number, keyColumn: string): string {
  const v = row[keyColumn];
  if (v === null || v === undefined || v === '') {
    throw new DrugsyncError(
      'BINLOG_DECODE_FAILED',
      `row ${index} of a ${e.op} event on ${e.schema}.${e.table} has no ${keyColumn}`,
      {
        context: { file: e.file, pos: e.pos, row: index, columns: Object.keys(row).slice(0, 10) },
        remedy: `the table must keep its primary key column ${keyColumn}; check the latest ALTER TABLE`,
      },
    );
  }
  return String(v);
}

/**
 * Key order as the format has always been written: common fields, type, ndc, before, after (ndc_change).
 * peekChangeEvent (services/core/events.ts) relies on `txid` and `type` preceding the row images.
 */
function rowEvent(
  e: RowsEvent,
  tx: TxInfo,
  pos: SourcePosition,
  binlog: RowChangeEvent['binlog'],
  type: RowChangeEvent['type'],
  ndc: string,
  before: Rndc14Row | null,
  after: Rndc14Row | null,
): RowChangeEvent {
  return {
    v: EVENT_VERSION,
    schema: e.schema,
    table: e.table,
    pos,
    binlog,
    gtid: tx.gtid,
    ts: tx.ts,
    txid: tx.txid,
    type,
    ndc,
    before,
    after,
  };
}

/** One event per changed row; an UPDATE that changes the NDC becomes a delete (old) + insert (new). */
export function rowChangeEvents(e: RowsEvent, tx: TxInfo, keyColumn = 'NDC'): RowChangeEvent[] {
  const out: RowChangeEvent[] = [];
  const rows = e.rows;
  // the position of row i is the event's position with the row index: the prefix is formatted once
  const prefix = sourcePosition(e.file, e.pos, 0).slice(0, -ROW_DIGITS);
  for (let i = 0; i < rows.length; i++) {
    const raw = rows[i];
    const pos = (prefix + String(i).padStart(ROW_DIGITS, '0')) as SourcePosition;
    const binlog = { file: e.file, pos: e.pos, row: i, next: e.next };
    if (e.op === 'update') {
      const pair = raw as { before: Row; after: Row };
      const before = normalizeRow(pair.before);
      const after = normalizeRow(pair.after);
      const from = ndcOf(before, e, i, keyColumn);
      const to = ndcOf(after, e, i, keyColumn);
      if (from === to) {
        out.push(rowEvent(e, tx, pos, binlog, 'update', to, before, after));
      } else {
        const ndc_change = { from, to };
        out.push({ ...rowEvent(e, tx, pos, binlog, 'delete', from, before, null), ndc_change });
        out.push({ ...rowEvent(e, tx, pos, binlog, 'insert', to, null, after), ndc_change });
      }
    } else if (e.op === 'insert') {
      const after = normalizeRow(raw as Row);
      out.push(rowEvent(e, tx, pos, binlog, 'insert', ndcOf(after, e, i, keyColumn), null, after));
    } else {
      const before = normalizeRow(raw as Row);
      out.push(rowEvent(e, tx, pos, binlog, 'delete', ndcOf(before, e, i, keyColumn), before, null));
    }
  }
  return out;
}

/** A table event, keys in the format's order (peekChangeEvent relies on `type` and `txid` preceding `statement`). */
export function tableEvent(
  type: 'truncate' | 'resync' | 'commit',
  e: EventPlace & { query: string; txid?: string },
  schema: string,
  table: string,
): TableEvent {
  return {
    v: EVENT_VERSION,
    type,
    schema,
    table,
    pos: sourcePosition(e.file, e.pos, 0),
    binlog: { file: e.file, pos: e.pos, row: 0, next: e.next },
    gtid: e.gtid,
    ts: e.ts,
    txid: e.txid ?? e.gtid ?? `${e.file}:${e.pos}`,
    statement: e.query.slice(0, 500),
  };
}
