/**
 * Where a session starts, in order: the checkpoint, else the backfill's snapshot position, else --from,
 * else --from-gtid; none → BINLOG_NO_START_POSITION (run the backfill first).
 *
 * A recorded position (checkpoint, snapshot) is first checked against the server reached now
 * (./source-check.ts): the same server resumes at the file position; another server that provably
 * continues the recorded one (GTIDs) resumes by GTID, logged; anything else stops the reader with
 * BINLOG_SOURCE_CHANGED. A checkpoint written before sources were recorded is upgraded at once (the
 * server's identity is written with it, logged once: the next start finds it recorded). Every start
 * names the server it reads (`source`), which the session stamps on each checkpoint it writes.
 */
import type { BinlogPositionStore } from '../core/checkpoint.ts';
import { DrugsyncError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { formatBinlogPosition } from '../core/position.ts';
import type { BinlogPosition } from '../core/position.ts';
import { describeSource, sourceKey } from '../core/source-identity.ts';
import type { SourceState } from '../core/source-identity.ts';
import type { ReaderOptions } from './reader-config.ts';
import { planResume } from './source-check.ts';
import type { RecordedStart, RemedyKeys } from './source-check.ts';
import type { StartFrom } from './source.ts';

export interface SessionStart {
  from: StartFrom;
  /** for logs and `stats.startedFrom`: where the position came from */
  label: string;
  /** the file position (null for a GTID start) */
  pos: BinlogPosition | null;
  /** the server the session reads (a sourceKey), stamped on its checkpoints; null when not probed */
  source: string | null;
}

export interface StartSources {
  checkpoints: Pick<BinlogPositionStore, 'load' | 'save'>;
  snapshots: { load(): Promise<BinlogPosition | null> };
  options: Pick<ReaderOptions, 'from' | 'fromGtid'>;
  keys: RemedyKeys;
  /** The server's identity and GTID state (MariaDB: and the GTID at `at`); absent: nothing is checked. */
  probe?: ((at: BinlogPosition | null) => Promise<SourceState>) | undefined;
  log?: Logger | undefined;
}

function fromFile(p: BinlogPosition, what: string, source: string | null): SessionStart {
  return { from: { file: p.file, pos: p.pos }, label: `${what} ${formatBinlogPosition(p)}`, pos: p, source };
}

export async function resolveStart(sources: StartSources): Promise<SessionStart> {
  const cp = await sources.checkpoints.load();
  if (cp) return checkedStart(sources, { what: 'checkpoint', pos: cp });
  const snap = await sources.snapshots.load();
  if (snap) return checkedStart(sources, { what: 'backfill snapshot', pos: snap });
  const source = sources.probe ? sourceKey((await sources.probe(null)).identity) : null;
  if (sources.options.from) return fromFile(sources.options.from, '--from', source);
  if (sources.options.fromGtid) {
    const gtid = sources.options.fromGtid;
    return { from: { gtid }, label: `--from-gtid ${gtid}`, pos: null, source };
  }
  throw new DrugsyncError('BINLOG_NO_START_POSITION', 'the binlog reader has no position to start from', {
    context: { checkpoint_key: sources.keys.readerCheckpoint, snapshot_key: sources.keys.backfillSnapshot },
    remedy:
      'run the backfill first (`drugsync backfill`): it loads Redis and records where the reader starts; ' +
      'or pass --from FILE:POS / --from-gtid GTID when Redis already holds the data up to that point',
  });
}

/** A recorded position, checked against the server (./source-check.ts) before the session starts there. */
async function checkedStart(sources: StartSources, r: RecordedStart): Promise<SessionStart> {
  if (!sources.probe) return fromFile(r.pos, r.what, null);
  const state = await sources.probe(r.pos);
  const plan = planResume(r, state, sources.keys);
  const source = sourceKey(state.identity);
  const server = describeSource(state.identity);
  if (plan.by === 'gtid') {
    sources.log?.warn(
      'the source server changed and its GTIDs prove it continues the old one: resuming by GTID',
      {
        [r.what === 'checkpoint' ? 'checkpoint' : 'snapshot']: formatBinlogPosition(r.pos),
        recorded_source: describeSource(plan.recorded),
        server,
        gtid: plan.gtid,
      },
    );
    const label = `${r.what} ${formatBinlogPosition(r.pos)} → GTID ${plan.gtid} on ${server}`;
    return { from: { gtid: plan.gtid }, label, pos: null, source };
  }
  if (plan.upgrade) await upgrade(sources, r, state, source);
  return fromFile(r.pos, r.what, source);
}

/** A position recorded before sources were: the checkpoint is rewritten with the server's identity. */
async function upgrade(
  sources: StartSources,
  r: RecordedStart,
  state: SourceState,
  source: string,
): Promise<void> {
  const server = describeSource(state.identity);
  if (r.what !== 'checkpoint') {
    // the backfill's key: left as it is; the reader's first checkpoint records the source
    sources.log?.info(
      'the backfill snapshot position has no recorded source (older drugsync): starting there',
      {
        snapshot: formatBinlogPosition(r.pos),
        server,
      },
    );
    return;
  }
  const gtid = r.pos.gtid ?? (state.identity.flavor === 'mariadb' ? state.gtidAt || undefined : undefined);
  await sources.checkpoints.save({ ...r.pos, gtid, source });
  sources.log?.info('binlog reader checkpoint upgraded: the source server is now recorded with it', {
    checkpoint: formatBinlogPosition(r.pos),
    server,
    source,
  });
}
