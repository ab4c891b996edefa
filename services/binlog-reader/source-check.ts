/**
 * Before a session starts from a recorded position (the reader's checkpoint, or the backfill's snapshot
 * position), is the server reached now the one that position belongs to? `planResume` decides, from the
 * position and the server's state (core/source-identity.ts `probeSource`), pure:
 *
 * 1. No source recorded (written by an older drugsync): the position is upgraded (the caller records the
 *    server's identity with it). A reader checkpoint's GTID is still checked against the server on MariaDB.
 * 2. Same source: resume at the file position, after checking the server still has that position: its
 *    binlog must reach the position's file, and on MariaDB BINLOG_GTID_POS there must name the recorded
 *    GTID (a restored or rebuilt server with the same server_id fails this).
 * 3. Another source: resume by GTID only where the server's GTID state proves it continues the old one
 *    (`gtidContinuity`: a failover that kept GTIDs), and only when every position of this server orders
 *    after what Redis already holds (`ordersAfter`): the store keeps a document's newest change by binlog
 *    position, so changes at smaller positions would be refused as older. Otherwise BINLOG_SOURCE_CHANGED,
 *    naming both servers, the position, and what to do.
 */
import { DrugsyncError } from '../core/errors.ts';
import type { Keys } from '../core/keys.ts';
import { binlogSequence, formatBinlogPosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import {
  describeSource,
  gtidContinuity,
  parseMariadbGtids,
  parseSourceKey,
  resumeGtid,
  sameSource,
} from '../core/source-identity.ts';
import type { SourceIdentity, SourceState } from '../core/source-identity.ts';

export type ResumePlan =
  /** same server: resume at the file position; `upgrade`: the position has no recorded source yet */
  | { by: 'file'; upgrade: boolean }
  /** another server that provably continues the recorded one: resume after `gtid` */
  | { by: 'gtid'; gtid: string; recorded: SourceIdentity };

export interface RecordedStart {
  what: 'checkpoint' | 'backfill snapshot';
  pos: BinlogPosition;
}

export type RemedyKeys = Pick<Keys, 'readerCheckpoint' | 'backfillSnapshot' | 'docPrefix' | 'metaPrefix'>;

/**
 * Files after the recorded one that the old server may have written, and the reader published from, before
 * its checkpoint caught up (at most the publisher queue's worth): the new server's binlog must start past them.
 */
const UNCHECKPOINTED_FILES = 1;

export function planResume(r: RecordedStart, state: SourceState, keys: RemedyKeys): ResumePlan {
  const recorded = r.pos.source ? parseSourceKey(r.pos.source) : null;
  if (!recorded || sameSource(recorded, state.identity)) {
    // a legacy snapshot's GTID was read after the snapshot (@@gtid_binlog_pos): only exact GTIDs are checked
    const why = recorded || r.what === 'checkpoint' ? positionMismatch(r.pos, state) : null;
    if (why) throw sourceChanged(r, state, recorded, why, keys);
    return { by: 'file', upgrade: !recorded };
  }
  const c = gtidContinuity(recorded.flavor, r.pos.gtid, state);
  if (!c.proven) throw sourceChanged(r, state, recorded, `it is another server, and ${c.reason}`, keys);
  if (!ordersAfter(r.pos, state)) {
    throw sourceChanged(
      r,
      state,
      recorded,
      `its GTIDs prove continuity, but its binlog (from ${state.binlogs[0] ?? 'none'}) does not start after ` +
        `${r.pos.file}: its changes would sort before those Redis holds and be refused as older`,
      keys,
    );
  }
  return { by: 'gtid', gtid: c.gtid, recorded };
}

/** Every position of the server orders after the recorded one (and the file after it). */
export function ordersAfter(p: BinlogPosition, state: Pick<SourceState, 'binlogs'>): boolean {
  const oldest = state.binlogs[0];
  return oldest !== undefined && binlogSequence(oldest) > binlogSequence(p.file) + UNCHECKPOINTED_FILES;
}

/** Why the server does not hold the recorded position as it was recorded (null: it does, or cannot tell). */
export function positionMismatch(p: BinlogPosition, state: SourceState): string | null {
  const newest = state.binlogs.at(-1);
  if (newest !== undefined && binlogSequence(p.file) > binlogSequence(newest)) {
    return `its binlog ends at ${newest}, before ${p.file}: it is not the server that wrote the position (restored from an older state, or rebuilt)`;
  }
  if (state.identity.flavor !== 'mariadb' || !p.gtid || !state.binlogs.includes(p.file)) return null;
  let mine;
  try {
    mine = parseMariadbGtids(p.gtid);
  } catch {
    return `the recorded GTID ${p.gtid} is not a MariaDB GTID`;
  }
  if (state.gtidAt === null) return `no event of its binlog ends at ${p.file}:${p.pos}`;
  const at = parseMariadbGtids(state.gtidAt);
  const same = mine.every((g) =>
    at.some((x) => x.domain === g.domain && x.serverId === g.serverId && x.seq === g.seq),
  );
  return same
    ? null
    : `its binlog at ${p.file}:${p.pos} is at GTID ${state.gtidAt || '(none)'}, the position was recorded at ${p.gtid}: other transactions`;
}

function sourceChanged(
  r: RecordedStart,
  state: SourceState,
  recorded: SourceIdentity | null,
  why: string,
  keys: RemedyKeys,
): DrugsyncError {
  const was = recorded ? describeSource(recorded) : 'a server drugsync did not record (older checkpoint)';
  const binlogs = state.binlogs.length ? `${state.binlogs[0]}..${state.binlogs.at(-1)}` : 'none';
  return new DrugsyncError(
    'BINLOG_SOURCE_CHANGED',
    `the ${r.what} ${formatBinlogPosition(r.pos)} was recorded on ${was}, but the reader now reaches ` +
      `${describeSource(state.identity)} (binlogs ${binlogs}): ${why}`,
    {
      context: {
        recorded: formatBinlogPosition(r.pos),
        recorded_source: recorded ? describeSource(recorded) : null,
        server: describeSource(state.identity),
        server_version: state.version,
        server_binlogs: binlogs,
        server_gtids: state.gtidExecuted.slice(0, 200) || null,
        key: r.what === 'checkpoint' ? keys.readerCheckpoint : keys.backfillSnapshot,
      },
      remedy: remedy(r, state, keys),
    },
  );
}

/** The recorded GTID as `--from-gtid` takes it (a MySQL checkpoint's uuid:N stands for uuid:1-N). */
function fromGtid(r: RecordedStart, state: SourceState): string {
  if (!r.pos.gtid) return '<GTID>';
  try {
    return resumeGtid(r.pos.source ? parseSourceKey(r.pos.source).flavor : state.identity.flavor, r.pos.gtid);
  } catch {
    return '<GTID>';
  }
}

function remedy(r: RecordedStart, state: SourceState, keys: RemedyKeys): string {
  const del = `DEL ${keys.readerCheckpoint} ${keys.backfillSnapshot}`;
  if (!ordersAfter(r.pos, state)) {
    return (
      'if this server is now the source: its binlog positions do not order after those Redis holds, so ' +
      `reload from scratch: delete the documents and their bookkeeping (keys ${keys.docPrefix}* and ` +
      `${keys.metaPrefix}*), \`${del}\`, then \`drugsync backfill --restart\`. If it is not, point DB_HOST ` +
      'back at the server that wrote the position'
    );
  }
  return (
    `if this server is now the source: \`${del}\` and \`drugsync backfill --restart\` (the reader then ` +
    'starts at the new snapshot); or, where its GTID set proves it continues the old server, ' +
    `\`drugsync verify --repair\`, \`${del}\`, then \`drugsync binlog-reader --from-gtid ` +
    `${fromGtid(r, state)}\`. If it is not, point DB_HOST back at the server that wrote the position`
  );
}
