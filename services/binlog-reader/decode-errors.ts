/**
 * The binlog decoder's errors: a row image drugsync's row reader (./row-image.ts) could not read
 * (`RowImageError`, the hook then leaves the event to zongji), one neither decoder can read
 * (BINLOG_DECODE_FAILED, the reader stops), and MySQL 8 events whose rows zongji 0.9 cannot decode at all
 * (a compressed transaction, a partial JSON update: BINLOG_DECODE_FAILED naming the server setting).
 */
import { DrugsyncError } from '../core/errors.ts';

/** A row image ./row-image.ts could not read, with the column it was reading. */
export class RowImageError extends Error {
  readonly column: string | null;
  constructor(column: string | null, cause: unknown) {
    super(`${column === null ? 'row image' : `column ${column}`}: ${errorText(cause)}`, { cause });
    this.name = 'RowImageError';
    this.column = column;
  }
}

/** The message of a cause as it is (a DrugsyncError's too: no code or remedy added to a decoder's message). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
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
