/**
 * Where a session starts, in order: the checkpoint, else the backfill's snapshot position, else --from,
 * else --from-gtid; none → BINLOG_NO_START_POSITION (run the backfill first).
 */
import type { CheckpointStore } from '../core/checkpoint.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import { formatBinlogPosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import type { ReaderOptions } from './reader-config.ts';
import type { StartFrom } from './source.ts';

export interface SessionStart {
  from: StartFrom;
  /** for logs and `stats.startedFrom`: where the position came from */
  label: string;
  /** the file position (null for a GTID start) */
  pos: BinlogPosition | null;
}

export interface StartSources {
  checkpoints: Pick<CheckpointStore, 'load'>;
  snapshots: { load(): Promise<BinlogPosition | null> };
  options: Pick<ReaderOptions, 'from' | 'fromGtid'>;
  keys: Pick<Keys, 'readerCheckpoint' | 'backfillSnapshot'>;
}

function fromFile(p: BinlogPosition, what: string): SessionStart {
  return { from: { file: p.file, pos: p.pos }, label: `${what} ${formatBinlogPosition(p)}`, pos: p };
}

export async function resolveStart(s: StartSources): Promise<SessionStart> {
  const cp = await s.checkpoints.load();
  if (cp) return fromFile(cp, 'checkpoint');
  const snap = await s.snapshots.load();
  if (snap) return fromFile(snap, 'backfill snapshot');
  if (s.options.from) return fromFile(s.options.from, '--from');
  if (s.options.fromGtid)
    return { from: { gtid: s.options.fromGtid }, label: `--from-gtid ${s.options.fromGtid}`, pos: null };
  throw new DrugsyncError('BINLOG_NO_START_POSITION', 'the binlog reader has no position to start from', {
    context: { checkpoint_key: s.keys.readerCheckpoint, snapshot_key: s.keys.backfillSnapshot },
    remedy:
      'run the backfill first (`drugsync backfill`): it loads Redis and records where the reader starts; ' +
      'or pass --from FILE:POS / --from-gtid GTID when Redis already holds the data up to that point',
  });
}
