/**
 * Binlog positions.
 *
 * - `BinlogPosition` {file, pos, gtid?}: where a reader resumes (a checkpoint) or where a snapshot stands.
 * - `SourcePosition`: a fixed-width string that orders every change drugsync writes: binlog file sequence,
 *   byte offset of the rows event, index of the row inside that event. Plain string comparison orders it,
 *   which is what the Redis Lua script does, and it survives JSON and Redis unchanged.
 *
 * A snapshot at {file, pos} has SourcePosition (seq, pos, 0); any row event committed after the snapshot
 * starts at a larger offset (its transaction's GTID/BEGIN event sits at `pos`), so it always compares newer.
 */
import { DrugsyncError } from './errors.ts';

export interface BinlogPosition {
  file: string;
  pos: number;
  /**
   * When the server has GTIDs: a reader checkpoint's last transaction (MariaDB domain-server-seq, MySQL
   * uuid:N), a snapshot's GTID position (MariaDB) or executed set (MySQL). Not used for ordering; it proves
   * the position on its server and lets a failover resume by GTID (./source-identity.ts).
   */
  gtid?: string | undefined;
  /** The server the position belongs to: a `sourceKey` (./source-identity.ts); absent in older checkpoints. */
  source?: string | undefined;
}

export type SourcePosition = string & { readonly __brand?: 'SourcePosition' };

const SEQ_WIDTH = 10;
const POS_WIDTH = 15;
const ROW_WIDTH = 7;
/** Digits of the row index at the end of a SourcePosition. */
export const ROW_DIGITS = ROW_WIDTH;

/** The numeric suffix of a binlog file name (`binlog.000012` → 12). */
export function binlogSequence(file: string): number {
  const m = /\.(\d+)$/.exec(file);
  if (!m) {
    throw new DrugsyncError('CHECKPOINT_INVALID', `binlog file name has no numeric suffix: "${file}"`, {
      context: { file },
      remedy: 'binlog files are named <base>.<number>; pass --from FILE:POS with a real file name',
    });
  }
  return Number(m[1]);
}

export function sourcePosition(file: string, pos: number, row = 0): SourcePosition {
  return `${String(binlogSequence(file)).padStart(SEQ_WIDTH, '0')}:${String(pos).padStart(POS_WIDTH, '0')}:${String(row).padStart(ROW_WIDTH, '0')}`;
}

export function snapshotSourcePosition(p: BinlogPosition): SourcePosition {
  return sourcePosition(p.file, p.pos, 0);
}

/** The shape of a SourcePosition string (the change-event schema validates `pos` with it). */
export const SOURCE_POSITION_RE = new RegExp(`^\\d{${SEQ_WIDTH}}:\\d{${POS_WIDTH}}:\\d{${ROW_WIDTH}}$`);

export function isSourcePosition(s: unknown): s is SourcePosition {
  return typeof s === 'string' && SOURCE_POSITION_RE.test(s);
}

export function compareSourcePositions(a: SourcePosition, b: SourcePosition): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Orders binlog positions by file sequence, then offset. */
export function compareBinlogPositions(a: BinlogPosition, b: BinlogPosition): number {
  const sa = binlogSequence(a.file);
  const sb = binlogSequence(b.file);
  if (sa !== sb) return sa - sb;
  return a.pos - b.pos;
}

/** `binlog.000012:1234` → {file, pos}. */
export function parseBinlogPosition(text: string): BinlogPosition {
  const m = /^(.+):(\d+)$/.exec(text.trim());
  if (!m) {
    throw new DrugsyncError('CHECKPOINT_INVALID', `not a binlog position: "${text}"`, {
      remedy: 'write it as FILE:POS, e.g. binlog.000012:1234',
    });
  }
  const p = { file: m[1] as string, pos: Number(m[2]) };
  binlogSequence(p.file);
  return p;
}

export function formatBinlogPosition(p: BinlogPosition): string {
  return `${p.file}:${p.pos}${p.gtid ? ` (gtid ${p.gtid})` : ''}`;
}

/** Checkpoints are stored as this JSON text: {file, pos, gtid?, source?}. */
export function serializePosition(p: BinlogPosition): string {
  return JSON.stringify({
    file: p.file,
    pos: p.pos,
    ...(p.gtid ? { gtid: p.gtid } : {}),
    ...(p.source ? { source: p.source } : {}),
  });
}

export function deserializePosition(text: string): BinlogPosition {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new DrugsyncError('CHECKPOINT_INVALID', `checkpoint is not JSON: ${text.slice(0, 80)}`, {
      cause: e,
    });
  }
  const o = v as Partial<BinlogPosition>;
  if (typeof o?.file !== 'string' || typeof o.pos !== 'number' || !Number.isInteger(o.pos) || o.pos < 0) {
    throw new DrugsyncError('CHECKPOINT_INVALID', `checkpoint lacks file/pos: ${text.slice(0, 80)}`);
  }
  binlogSequence(o.file);
  return {
    file: o.file,
    pos: o.pos,
    gtid: typeof o.gtid === 'string' ? o.gtid : undefined,
    ...(typeof o.source === 'string' ? { source: o.source } : {}),
  };
}
