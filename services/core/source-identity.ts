/**
 * Which server a binlog position belongs to. `binlog.000123:4567` only means something on the server that
 * wrote it: after a restore from a snapshot, a blue/green switchover or a new cluster behind the same DNS
 * name, the same coordinates name other transactions, or none. So every position the reader or the
 * backfill records carries the identity of its source, and a resume compares it with the server reached.
 *
 * - MySQL (Aurora MySQL 3): `@@server_uuid`, unique per server.
 * - MariaDB has no server UUID: `@@server_id` and `@@gtid_domain_id`, plus a fingerprint of the position
 *   itself: `BINLOG_GTID_POS(file, pos)`, the GTID position the server's own binlog holds at those
 *   coordinates. A checkpoint records the GTID of the transaction it ends with; on the server that wrote
 *   it, BINLOG_GTID_POS at the checkpoint names that very GTID. A server with the same server_id (a
 *   rebuilt cluster, a restore) whose binlog has other transactions there, or no event boundary, fails
 *   this check. (The first binlog's creation time was the other candidate; it changes with every
 *   PURGE BINARY LOGS, while the fingerprint is stable for as long as the position can be resumed at all.)
 *
 * In a checkpoint the identity is stored as a short key (`sourceKey`): `mysql:<server_uuid>` or
 * `mariadb:<server_id>:<gtid_domain_id>`, a plain string so that the reader's fenced checkpoint script
 * can compare it in Redis.
 *
 * When the identity differs, a GTID state can still prove that the new server continues the old one (a
 * replica promoted by a failover that kept GTIDs): `gtidContinuity` decides, the way a replica decides
 * whether it may connect by GTID (Debezium's rule for MySQL: the server's executed set contains the
 * offset's, and it purged nothing the offset lacks). The probe (`probeSource`) needs only the reader's
 * grants: global variables, SHOW BINARY LOGS and, on MariaDB, BINLOG_GTID_POS.
 */
import { DrugsyncError } from './errors.ts';
import type { MysqlPool } from './clients/mysql.ts';
import type { BinlogPosition } from './position.ts';
import { parseServerVersion } from './snapshot.ts';

export type SourceIdentity =
  { flavor: 'mysql'; serverUuid: string } | { flavor: 'mariadb'; serverId: number; domainId: number };

export type SqlQuery = Pick<MysqlPool, 'query'>;

/** What a resume needs to know about the server reached now. */
export interface SourceState {
  identity: SourceIdentity;
  /** `SELECT VERSION()` */
  version: string;
  /** the binlog files the server has, oldest first (SHOW BINARY LOGS) */
  binlogs: string[];
  /**
   * The server's GTIDs: MySQL `@@gtid_executed` ('' with GTIDs off); MariaDB `@@gtid_binlog_state` (the
   * last GTID of each domain and server id its binlog history holds).
   */
  gtidExecuted: string;
  /** MySQL `@@gtid_purged` (MariaDB: '') */
  gtidPurged: string;
  /** MySQL `@@gtid_mode` is ON (MariaDB: always true) */
  gtidMode: boolean;
  /** MariaDB: `BINLOG_GTID_POS` at the position asked about ('' at a binlog's start; null: no event ends there) */
  gtidAt: string | null;
}

// ---- identity ----------------------------------------------------------------------------------------

/** The key stored with a position: `mysql:<uuid>` or `mariadb:<server_id>:<domain>`. */
export function sourceKey(i: SourceIdentity): string {
  return i.flavor === 'mysql' ? `mysql:${i.serverUuid.toLowerCase()}` : `mariadb:${i.serverId}:${i.domainId}`;
}

/** Reads a stored key back; CHECKPOINT_INVALID when it is not one. */
export function parseSourceKey(key: string): SourceIdentity {
  const my = /^mysql:([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i.exec(key);
  if (my) return { flavor: 'mysql', serverUuid: (my[1] as string).toLowerCase() };
  const ma = /^mariadb:(\d+):(\d+)$/.exec(key);
  if (ma) return { flavor: 'mariadb', serverId: Number(ma[1]), domainId: Number(ma[2]) };
  throw new DrugsyncError('CHECKPOINT_INVALID', `not a source identity: "${key.slice(0, 80)}"`, {
    context: { source: key.slice(0, 80) },
    remedy: 'a source is stored as mysql:<server_uuid> or mariadb:<server_id>:<gtid_domain_id>',
  });
}

export function sameSource(a: SourceIdentity, b: SourceIdentity): boolean {
  return sourceKey(a) === sourceKey(b);
}

/** For messages: `MariaDB server_id 11 (gtid_domain_id 0)` / `MySQL server_uuid 3e11fa47-…`. */
export function describeSource(i: SourceIdentity): string {
  return i.flavor === 'mysql'
    ? `MySQL server_uuid ${i.serverUuid}`
    : `MariaDB server_id ${i.serverId} (gtid_domain_id ${i.domainId})`;
}

// ---- GTIDs -------------------------------------------------------------------------------------------

export interface MariadbGtid {
  domain: number;
  serverId: number;
  seq: bigint;
}

function gtidError(text: string, what: string): DrugsyncError {
  return new DrugsyncError('CHECKPOINT_INVALID', `not a ${what}: "${text.slice(0, 120)}"`, {
    context: { gtid: text.slice(0, 120) },
    remedy:
      what === 'MariaDB GTID list'
        ? 'MariaDB GTIDs are domain-server-sequence, comma-separated (e.g. 0-1-55,1-2-7)'
        : 'MySQL GTID sets are uuid:interval[:interval…], comma-separated (e.g. 3e11fa47-…:1-55)',
  });
}

/** `0-1-55,1-2-7` → entries ('' → none). A binlog state may hold several entries per domain. */
export function parseMariadbGtids(text: string): MariadbGtid[] {
  const t = text.replace(/\s+/g, '');
  if (!t) return [];
  return t.split(',').map((part) => {
    const m = /^(\d+)-(\d+)-(\d+)$/.exec(part);
    if (!m) throw gtidError(text, 'MariaDB GTID list');
    return { domain: Number(m[1]), serverId: Number(m[2]), seq: BigInt(m[3] as string) };
  });
}

export function formatMariadbGtids(list: readonly MariadbGtid[]): string {
  return list.map((g) => `${g.domain}-${g.serverId}-${g.seq}`).join(',');
}

/** A MySQL GTID set: source (uuid, or uuid:tag for tagged GTIDs) → inclusive intervals. */
export type MysqlGtidSet = Map<string, [bigint, bigint][]>;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `uuid:1-5:7,uuid2:1-3` (whitespace and newlines as MySQL prints them are ignored) → set. */
export function parseMysqlGtidSet(text: string): MysqlGtidSet {
  const set: MysqlGtidSet = new Map();
  const t = text.replace(/\s+/g, '');
  if (!t) return set;
  for (const part of t.split(',')) {
    const [uuid = '', ...rest] = part.split(':');
    if (!UUID.test(uuid) || rest.length === 0) throw gtidError(text, 'MySQL GTID set');
    let key = uuid.toLowerCase();
    for (const r of rest) {
      const m = /^(\d+)(?:-(\d+))?$/.exec(r);
      if (!m) {
        if (!/^[a-z_][a-z0-9_]{0,31}$/i.test(r)) throw gtidError(text, 'MySQL GTID set');
        key = `${uuid.toLowerCase()}:${r.toLowerCase()}`; // a tag: the intervals after it are tagged
        continue;
      }
      const a = BigInt(m[1] as string);
      const b = BigInt((m[2] ?? m[1]) as string);
      if (b < a) throw gtidError(text, 'MySQL GTID set');
      set.set(key, [...(set.get(key) ?? []), [a, b]]);
    }
  }
  return set;
}

export function formatMysqlGtidSet(set: MysqlGtidSet): string {
  return [...set]
    .map(([k, ivs]) => `${k}:${ivs.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(':')}`)
    .join(',');
}

/** Every transaction of `small` is in `big`. */
export function mysqlGtidSetContains(big: MysqlGtidSet, small: MysqlGtidSet): boolean {
  for (const [k, ivs] of small) {
    const have = big.get(k) ?? [];
    for (const [a, b] of ivs) if (!have.some(([x, y]) => x <= a && b <= y)) return false;
  }
  return true;
}

/**
 * A checkpoint's MySQL GTID as the set of transactions read: a reader checkpoint holds its last
 * transaction's GTID `uuid:N`, which (binlog order being commit order for a source) stands for `uuid:1-N`;
 * a snapshot holds the executed set itself.
 */
export function checkpointGtidSet(gtid: string): MysqlGtidSet {
  const single = /^([0-9a-f-]{36}(?::[a-z_][a-z0-9_]*)?):(\d+)$/i.exec(gtid.trim());
  if (single && UUID.test((single[1] as string).slice(0, 36))) {
    return new Map([[(single[1] as string).toLowerCase(), [[1n, BigInt(single[2] as string)]]]]);
  }
  return parseMysqlGtidSet(gtid);
}

/** The GTID a reader started with `--from-gtid` needs to resume after `gtid` (a recorded position's). */
export function resumeGtid(flavor: SourceIdentity['flavor'], gtid: string): string {
  return flavor === 'mariadb'
    ? formatMariadbGtids(parseMariadbGtids(gtid))
    : formatMysqlGtidSet(checkpointGtidSet(gtid));
}

// ---- continuity --------------------------------------------------------------------------------------

export type Continuity =
  /** the server's GTID state proves it holds every transaction the position stands for: resume at `gtid` */
  { proven: true; gtid: string } | { proven: false; reason: string };

/**
 * Whether `gtid` (recorded with a position on another server of flavor `flavor`) is a position the server
 * described by `s` can resume from, leaving nothing out:
 *
 * - MariaDB: for each domain of the position (D-S-N), the server's binlog state has transactions of server
 *   S in domain D up to at least N (it replicated what was read, in order), and its binlog has no domain
 *   the position does not name (a position for a missing domain is unknown: MariaDB would stream that
 *   domain from its oldest binlog, replaying what Redis already holds after newer changes).
 * - MySQL: gtid_mode ON; the server's gtid_executed contains the position's set; its gtid_purged is inside
 *   the position's set (it still has every transaction not yet read); and gtid_executed holds no source
 *   other than the position's and the server's own (a third source's transactions cannot be placed before
 *   or after the position).
 */
export function gtidContinuity(
  flavor: SourceIdentity['flavor'],
  gtid: string | undefined,
  state: SourceState,
): Continuity {
  if (!gtid)
    return { proven: false, reason: 'the recorded position has no GTID (GTIDs were off on its server)' };
  if (flavor !== state.identity.flavor) {
    return {
      proven: false,
      reason: `the recorded position is ${flavor}'s, the server is ${state.identity.flavor}`,
    };
  }
  return flavor === 'mariadb' ? mariadbContinuity(gtid, state) : mysqlContinuity(gtid, state);
}

function mariadbContinuity(gtid: string, source: SourceState): Continuity {
  const mine = parseMariadbGtids(gtid);
  const state = parseMariadbGtids(source.gtidExecuted);
  for (const g of mine) {
    const has = state.find((x) => x.domain === g.domain && x.serverId === g.serverId);
    if (!has || has.seq < g.seq) {
      return {
        proven: false,
        reason: `its binlog state (${source.gtidExecuted || 'empty'}) does not reach GTID ${formatMariadbGtids([g])}: it never had, or lost, transactions that were read`,
      };
    }
  }
  const domains = new Set(mine.map((g) => g.domain));
  const other = [...new Set(state.filter((x) => !domains.has(x.domain)).map((x) => x.domain))];
  if (other.length) {
    return {
      proven: false,
      reason: `its binlog also holds GTID domain(s) ${other.join(', ')}, for which the recorded GTID ${gtid} names no position`,
    };
  }
  return { proven: true, gtid: resumeGtid('mariadb', gtid) };
}

function mysqlContinuity(gtid: string, state: SourceState): Continuity {
  if (!state.gtidMode) return { proven: false, reason: 'gtid_mode is not ON on the server' };
  const mine = checkpointGtidSet(gtid);
  const executed = parseMysqlGtidSet(state.gtidExecuted);
  if (!mysqlGtidSetContains(executed, mine)) {
    return {
      proven: false,
      reason: `its gtid_executed (${state.gtidExecuted || 'empty'}) lacks transactions that were read (${formatMysqlGtidSet(mine)})`,
    };
  }
  if (!mysqlGtidSetContains(mine, parseMysqlGtidSet(state.gtidPurged))) {
    return {
      proven: false,
      reason: `it purged transactions that were not read yet (gtid_purged ${state.gtidPurged})`,
    };
  }
  const own = state.identity.flavor === 'mysql' ? state.identity.serverUuid : '';
  const known = new Set([...mine.keys()].map((k) => k.slice(0, 36)));
  const third = [...executed.keys()].filter((k) => !known.has(k.slice(0, 36)) && k.slice(0, 36) !== own);
  if (third.length) {
    return {
      proven: false,
      reason: `its gtid_executed holds transactions of other sources (${third.join(', ')}) that cannot be ordered against the recorded position`,
    };
  }
  return { proven: true, gtid: resumeGtid('mysql', gtid) };
}

// ---- probe -------------------------------------------------------------------------------------------

/**
 * Everything a resume decides on, read with the reader's grants: identity, binlog files, GTID state, and
 * (MariaDB, when `at` is given and its file is on the server) the GTID position at `at`.
 */
export async function probeSource(
  sql: SqlQuery,
  at: Pick<BinlogPosition, 'file' | 'pos'> | null,
): Promise<SourceState> {
  const version = String((await sql.query<{ v: string }>('SELECT VERSION() AS v'))[0]?.v ?? '');
  const flavor = parseServerVersion(version).flavor;
  const binlogs = (await sql.query<{ Log_name: string }>('SHOW BINARY LOGS')).map((r) => String(r.Log_name));
  if (flavor === 'mysql') {
    const [r] = await sql.query<Record<string, unknown>>(
      'SELECT @@server_uuid AS uuid, @@gtid_mode AS mode, @@gtid_executed AS executed, @@gtid_purged AS purged',
    );
    return {
      identity: { flavor, serverUuid: String(r?.uuid ?? '').toLowerCase() },
      version,
      binlogs,
      gtidExecuted: String(r?.executed ?? '').replace(/\s+/g, ''),
      gtidPurged: String(r?.purged ?? '').replace(/\s+/g, ''),
      gtidMode: String(r?.mode ?? '').toUpperCase() === 'ON',
      gtidAt: null,
    };
  }
  const withAt = at !== null && binlogs.includes(at.file);
  const [r] = await sql.query<Record<string, unknown>>(
    `SELECT @@server_id AS id, @@gtid_domain_id AS domain, @@gtid_binlog_state AS state${withAt ? ', BINLOG_GTID_POS(?, ?) AS at_pos' : ''}`,
    withAt ? [at.file, at.pos] : [],
  );
  return {
    identity: { flavor, serverId: Number(r?.id), domainId: Number(r?.domain) },
    version,
    binlogs,
    gtidExecuted: String(r?.state ?? ''),
    gtidPurged: '',
    gtidMode: true,
    gtidAt: withAt && r?.at_pos !== null && r?.at_pos !== undefined ? String(r.at_pos) : null,
  };
}

/**
 * `p` as recorded on the server reached through `sql` now: its identity, and on MariaDB the exact GTID
 * position at `p` (BINLOG_GTID_POS; a snapshot's `@@gtid_binlog_pos` may already include later commits).
 * The backfill records its snapshot position this way.
 */
export async function stampPosition(sql: SqlQuery, p: BinlogPosition): Promise<BinlogPosition> {
  const s = await probeSource(sql, p);
  const gtid = s.identity.flavor === 'mariadb' ? s.gtidAt || undefined : p.gtid;
  return { file: p.file, pos: p.pos, gtid, source: sourceKey(s.identity) };
}
