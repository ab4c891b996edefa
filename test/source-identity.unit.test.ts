/**
 * Source identity without a server: the probe's parsing of MySQL 8 and MariaDB replies, the identity and GTID
 * comparisons, and the resume decision (services/binlog-reader/source-check.ts) through resolveStart, the
 * code the reader runs. The MySQL path (@@server_uuid, GTID sets) is only reachable here: no MySQL server runs
 * on our machines, so a scripted SQL answers exactly what MySQL 8.0 answers to the probe's statements. The
 * MariaDB path is also run on real servers in test/source-identity.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { createMemoryPositionStore } from './support/memory-position-store.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import type { DrugsyncError } from '../services/core/errors.ts';
import { makeKeys } from '../services/core/keys.ts';
import { createLogger } from '../services/core/log.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import {
  checkpointGtidSet,
  formatMysqlGtidSet,
  gtidContinuity,
  mysqlGtidSetContains,
  parseMariadbGtids,
  parseMysqlGtidSet,
  parseSourceKey,
  probeSource,
  sourceKey,
  stampPosition,
} from '../services/core/source-identity.ts';
import type { SourceState, SqlQuery } from '../services/core/source-identity.ts';
import { ordersAfter, planResume } from '../services/binlog-reader/source-check.ts';
import { resolveStart } from '../services/binlog-reader/start-position.ts';

// A real MySQL 8.0.28 server's UUID (the GTIDs of shared/data/mysql8-binlogs/mysql-enum-string-set.000001)
// and a second server: its replica, promoted by a failover.
const UUID_A = '93e95066-a2f4-11ec-9b69-9657f0ae95e2';
const UUID_B = 'b1c3d5e7-0f2e-11ef-8a41-0242ac120003';
const UUID_C = '4f1d2c3b-5a69-11ee-9e33-c80aa9429562';

const keys = makeKeys({
  REDIS_INDEX: 'drugs_idx',
  REDIS_DOC_PREFIX: 'drug:',
  REDIS_STATE_PREFIX: 'drugsync:',
});

interface MysqlServer {
  uuid: string;
  binlogs: string[];
  executed: string;
  purged?: string;
  mode?: string;
  version?: string;
}

/** Answers the probe's statements the way MySQL 8.0 does (SHOW BINARY LOGS rows, upper-case UUID, newlines). */
function mysql8(s: MysqlServer): SqlQuery & { statements: string[] } {
  const statements: string[] = [];
  return {
    statements,
    async query<T>(sql: string): Promise<T[]> {
      statements.push(sql);
      if (sql.startsWith('SELECT VERSION()')) return [{ v: s.version ?? '8.0.36' }] as T[];
      if (sql === 'SHOW BINARY LOGS')
        return s.binlogs.map((f) => ({ Log_name: f, File_size: 1_073_741_941, Encrypted: 'No' })) as T[];
      if (sql.includes('@@server_uuid'))
        return [
          { uuid: s.uuid.toUpperCase(), mode: s.mode ?? 'ON', executed: s.executed, purged: s.purged ?? '' },
        ] as T[];
      throw new Error(`MySQL 8.0 would not be asked: ${sql}`);
    },
  };
}

interface MariadbServer {
  serverId: number;
  domainId: number;
  binlogs: string[];
  state: string;
  /** BINLOG_GTID_POS answers, by `file:pos` (missing: NULL) */
  gtidAt?: Record<string, string>;
}

function mariadb(s: MariadbServer): SqlQuery {
  return {
    async query<T>(sql: string, params: unknown[] = []): Promise<T[]> {
      if (sql.startsWith('SELECT VERSION()')) return [{ v: '10.11.19-MariaDB-0+deb12u1-log' }] as T[];
      if (sql === 'SHOW BINARY LOGS') return s.binlogs.map((f) => ({ Log_name: f, File_size: 4096 })) as T[];
      if (sql.includes('@@gtid_domain_id'))
        return [
          {
            id: s.serverId,
            domain: s.domainId,
            state: s.state,
            ...(sql.includes('BINLOG_GTID_POS')
              ? { at_pos: s.gtidAt?.[`${params[0]}:${params[1]}`] ?? null }
              : {}),
          },
        ] as T[];
      throw new Error(`MariaDB would not be asked: ${sql}`);
    },
  };
}

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { service: 'test' },
    { level: 'info', json: true, write: (l) => lines.push(JSON.parse(l)) },
  );
  return { log, lines };
}

async function start(
  sql: SqlQuery,
  checkpoint: BinlogPosition | null,
  snapshot: BinlogPosition | null = null,
) {
  const store = createMemoryPositionStore(checkpoint);
  const { log, lines } = capture();
  const run = () =>
    resolveStart({
      checkpoints: store,
      snapshots: { load: async () => snapshot },
      options: {},
      keys,
      probe: (at) => probeSource(sql, at),
      log,
    });
  return { store, lines, run };
}

async function refusal(p: Promise<unknown>): Promise<DrugsyncError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(isDrugsyncError(e, 'BINLOG_SOURCE_CHANGED'), String(e)).toBe(true);
  return e as DrugsyncError;
}

describe('source identity: keys and GTID parsing', () => {
  it('stores MySQL and MariaDB identities as short keys and reads them back; anything else is CHECKPOINT_INVALID', () => {
    expect(sourceKey({ flavor: 'mysql', serverUuid: UUID_A.toUpperCase() })).toBe(`mysql:${UUID_A}`);
    expect(parseSourceKey(`mysql:${UUID_A}`)).toEqual({ flavor: 'mysql', serverUuid: UUID_A });
    expect(parseSourceKey('mariadb:11:0')).toEqual({ flavor: 'mariadb', serverId: 11, domainId: 0 });
    expect(() => parseSourceKey('postgres:1')).toThrow(/not a source identity/);
  });

  it('parses MySQL GTID sets as the server prints them (newlines, several intervals, tags) and compares them', () => {
    const executed = parseMysqlGtidSet(`${UUID_A}:1-55:57-60,\n${UUID_B}:1-3,\n${UUID_C}:etl:1-4`);
    expect(formatMysqlGtidSet(executed)).toBe(`${UUID_A}:1-55:57-60,${UUID_B}:1-3,${UUID_C}:etl:1-4`);
    expect(mysqlGtidSetContains(executed, parseMysqlGtidSet(`${UUID_A}:2-50`))).toBe(true);
    expect(mysqlGtidSetContains(executed, parseMysqlGtidSet(`${UUID_A}:50-57`))).toBe(false);
    expect(mysqlGtidSetContains(executed, parseMysqlGtidSet(`${UUID_C}:1-4`))).toBe(false); // untagged ≠ tagged
    // a reader checkpoint's last GTID stands for everything of its source up to it; a snapshot's set is itself
    expect(formatMysqlGtidSet(checkpointGtidSet(`${UUID_A}:55`))).toBe(`${UUID_A}:1-55`);
    expect(formatMysqlGtidSet(checkpointGtidSet(`${UUID_A}:1-55,${UUID_B}:1-3`))).toBe(
      `${UUID_A}:1-55,${UUID_B}:1-3`,
    );
    expect(() => parseMysqlGtidSet('binlog.000012:1234')).toThrow(/not a MySQL GTID set/);
  });

  it('parses MariaDB GTID lists (positions and binlog states)', () => {
    expect(parseMariadbGtids('0-11-55,1-12-7')).toEqual([
      { domain: 0, serverId: 11, seq: 55n },
      { domain: 1, serverId: 12, seq: 7n },
    ]);
    expect(parseMariadbGtids('')).toEqual([]);
    expect(() => parseMariadbGtids(`${UUID_A}:5`)).toThrow(/not a MariaDB GTID list/);
  });
});

describe('source identity: the MySQL 8 probe', () => {
  it('reads server_uuid, the GTID state and the binlog files with the reader grants, and stamps a snapshot position', async () => {
    // Prepare
    const sql = mysql8({
      uuid: UUID_A,
      binlogs: ['binlog.000011', 'binlog.000012'],
      executed: `${UUID_A}:1-55,\n${UUID_B}:1-3`,
    });
    const snap = { file: 'binlog.000012', pos: 1_557, gtid: `${UUID_A}:1-55` };
    // Act
    const s = await probeSource(sql, snap);
    const stamped = await stampPosition(sql, snap);
    // Assess
    expect(s).toEqual({
      identity: { flavor: 'mysql', serverUuid: UUID_A },
      version: '8.0.36',
      binlogs: ['binlog.000011', 'binlog.000012'],
      gtidExecuted: `${UUID_A}:1-55,${UUID_B}:1-3`,
      gtidPurged: '',
      gtidMode: true,
      gtidAt: null,
    });
    expect(stamped).toEqual({ ...snap, source: `mysql:${UUID_A}` });
    // no statement beyond SELECT, SHOW BINARY LOGS (REPLICATION CLIENT) and global variables
    expect(sql.statements.every((q) => /^(SELECT (VERSION|@@)|SHOW BINARY LOGS)/.test(q))).toBe(true);
  });
});

describe('source identity: resuming on MySQL 8 (the reader start, forced through resolveStart)', () => {
  const cp = { file: 'binlog.000012', pos: 4_721, gtid: `${UUID_A}:55`, source: `mysql:${UUID_A}` };

  it('same server_uuid: resumes at the file position, nothing logged', async () => {
    const t = await start(
      mysql8({ uuid: UUID_A, binlogs: ['binlog.000012', 'binlog.000013'], executed: `${UUID_A}:1-60` }),
      cp,
    );
    const s = await t.run();
    expect(s).toMatchObject({ from: { file: 'binlog.000012', pos: 4_721 }, source: `mysql:${UUID_A}` });
    expect(t.lines).toEqual([]);
    expect(t.store.saves).toEqual([]);
  });

  it('another server without the GTIDs read (a new cluster behind the same name): BINLOG_SOURCE_CHANGED naming both', async () => {
    const t = await start(
      mysql8({ uuid: UUID_C, binlogs: ['binlog.000001', 'binlog.000002'], executed: `${UUID_C}:1-900` }),
      cp,
    );
    const e = await refusal(t.run());
    expect(e.message).toContain(`MySQL server_uuid ${UUID_A}`);
    expect(e.message).toContain(`MySQL server_uuid ${UUID_C}`);
    expect(e.message).toContain('binlog.000012:4721');
    expect(e.message).toMatch(/lacks transactions that were read/);
    expect(e.context).toMatchObject({
      recorded: `binlog.000012:4721 (gtid ${UUID_A}:55)`,
      key: keys.readerCheckpoint,
    });
    // the new server's binlog.000001.. sorts before the checkpoint's file: only a full reload is safe
    expect(e.remedy).toMatch(/reload from scratch.*drug:\*.*drugsync:meta:\*.*backfill --restart/);
  });

  it('a promoted replica whose GTID set contains every transaction read: resumes by GTID, logged', async () => {
    // B replicated A (same GTIDs, its own binlog numbering far past A's) and took writes after the failover
    const t = await start(
      mysql8({
        uuid: UUID_B,
        binlogs: ['binlog.000140', 'binlog.000141'],
        executed: `${UUID_A}:1-58,\n${UUID_B}:1-12`,
      }),
      cp,
    );
    const s = await t.run();
    expect(s).toMatchObject({ from: { gtid: `${UUID_A}:1-55` }, pos: null, source: `mysql:${UUID_B}` });
    expect(t.lines).toHaveLength(1);
    expect(t.lines[0]).toMatchObject({
      level: 'warn',
      gtid: `${UUID_A}:1-55`,
      server: `MySQL server_uuid ${UUID_B}`,
    });
  });

  it('a promoted replica refuses when it lagged (lacks a transaction read), purged unread ones, has a third source, GTIDs off, or numbers its binlog below', async () => {
    const cases: [Partial<MysqlServer>, RegExp][] = [
      [{ executed: `${UUID_A}:1-54,${UUID_B}:1-12` }, /lacks transactions that were read/],
      [
        { executed: `${UUID_A}:1-58,${UUID_B}:1-12`, purged: `${UUID_A}:1-58` },
        /purged transactions that were not read/,
      ],
      [{ executed: `${UUID_A}:1-58,${UUID_B}:1-12,${UUID_C}:1-2` }, /other sources/],
      [{ executed: `${UUID_A}:1-58`, mode: 'OFF_PERMISSIVE' }, /gtid_mode is not ON/],
      [{ executed: `${UUID_A}:1-58`, binlogs: ['binlog.000013'] }, /does not start after binlog\.000012/],
    ];
    for (const [over, why] of cases) {
      const server = { uuid: UUID_B, binlogs: ['binlog.000140'], executed: '', ...over };
      const e = await refusal((await start(mysql8(server), cp)).run());
      expect(e.message, JSON.stringify(over)).toMatch(why);
    }
  });

  it('a checkpoint without GTID (gtid_mode OFF, Aurora default) cannot prove continuity', async () => {
    const t = await start(mysql8({ uuid: UUID_B, binlogs: ['binlog.000140'], executed: '', mode: 'OFF' }), {
      ...cp,
      gtid: undefined,
    });
    expect((await refusal(t.run())).message).toMatch(/has no GTID/);
  });
});

describe('source identity: resuming on MariaDB (decision only; real servers in source-identity.test.ts)', () => {
  const server = {
    serverId: 11,
    domainId: 0,
    binlogs: ['binlog.000002', 'binlog.000003'],
    state: '0-11-57',
    gtidAt: { 'binlog.000003:2086': '0-11-55' },
  };
  const cp = { file: 'binlog.000003', pos: 2_086, gtid: '0-11-55', source: 'mariadb:11:0' };

  it('same server_id and domain, and BINLOG_GTID_POS at the checkpoint names its GTID: resumes at the file position', async () => {
    expect(await (await start(mariadb(server), cp)).run()).toMatchObject({
      from: { file: 'binlog.000003', pos: 2_086 },
    });
  });

  it('same server_id but other transactions at the position, no event boundary there, or a binlog that ends before it: refused', async () => {
    const other = { ...server, gtidAt: { 'binlog.000003:2086': '0-11-31' } };
    expect((await refusal((await start(mariadb(other), cp)).run())).message).toMatch(
      /is at GTID 0-11-31.*other transactions/,
    );
    const none = { ...server, gtidAt: {} };
    expect((await refusal((await start(mariadb(none), cp)).run())).message).toMatch(
      /no event of its binlog ends at binlog\.000003:2086/,
    );
    const behind = { ...server, binlogs: ['binlog.000001', 'binlog.000002'] };
    expect((await refusal((await start(mariadb(behind), cp)).run())).message).toMatch(
      /ends at binlog\.000002, before binlog\.000003/,
    );
  });

  it('a checkpoint whose file was purged is left to the purge check (BINLOG_PURGED), not called a server change', async () => {
    const purged = { ...server, binlogs: ['binlog.000005'] };
    expect(await (await start(mariadb(purged), cp)).run()).toMatchObject({ from: { file: 'binlog.000003' } });
  });

  it('a replica that replicated the checkpoint GTID, with a binlog numbered past it: resumes by GTID; one that lagged or has another domain: refused', async () => {
    const replica = { serverId: 12, domainId: 0, binlogs: ['binlog.000100'], state: '0-11-57,0-12-60' };
    expect(await (await start(mariadb(replica), cp)).run()).toMatchObject({
      from: { gtid: '0-11-55' },
      source: 'mariadb:12:0',
    });
    const lagging = { ...replica, state: '0-11-54' };
    expect((await refusal((await start(mariadb(lagging), cp)).run())).message).toMatch(
      /does not reach GTID 0-11-55/,
    );
    const domains = { ...replica, state: '0-11-57,1-12-3' };
    expect((await refusal((await start(mariadb(domains), cp)).run())).message).toMatch(/GTID domain\(s\) 1/);
  });
});

describe('source identity: checkpoints written before sources were recorded', () => {
  const legacy = { file: 'binlog.000003', pos: 2_086, gtid: '0-11-55' };
  const server = {
    serverId: 11,
    domainId: 0,
    binlogs: ['binlog.000003'],
    state: '0-11-57',
    gtidAt: { 'binlog.000003:2086': '0-11-55' },
  };

  it('is upgraded on the first resume (the server recorded with it), logged once', async () => {
    // Prepare
    const t = await start(mariadb(server), legacy);
    // Act: two resumes
    await t.run();
    await t.run();
    // Assess
    expect(t.store.saves).toEqual([{ ...legacy, source: 'mariadb:11:0' }]);
    expect(t.lines.filter((l) => /checkpoint upgraded/.test(String(l.msg)))).toHaveLength(1);
  });

  it('is still refused on MariaDB when its GTID is not what the server has at its position', async () => {
    const t = await start(mariadb({ ...server, gtidAt: { 'binlog.000003:2086': '0-1-9' } }), legacy);
    const e = await refusal(t.run());
    expect(e.message).toMatch(/did not record/);
    expect(t.store.saves).toEqual([]);
  });

  it('on MySQL, is upgraded with the server_uuid', async () => {
    const t = await start(mysql8({ uuid: UUID_A, binlogs: ['binlog.000012'], executed: `${UUID_A}:1-60` }), {
      file: 'binlog.000012',
      pos: 4_721,
      gtid: `${UUID_A}:55`,
    });
    await t.run();
    expect(t.store.saves.at(-1)?.source).toBe(`mysql:${UUID_A}`);
  });

  it('a legacy backfill snapshot position starts as it is (its GTID was read after the snapshot), logged', async () => {
    const t = await start(mariadb({ ...server, gtidAt: {} }), null, {
      file: 'binlog.000003',
      pos: 2_086,
      gtid: '0-11-57',
    });
    expect(await t.run()).toMatchObject({
      from: { file: 'binlog.000003', pos: 2_086 },
      source: 'mariadb:11:0',
    });
    expect(t.lines.map((l) => l.msg)).toEqual([
      expect.stringMatching(/snapshot position has no recorded source/),
    ]);
  });
});

describe('source identity: ordering and continuity corner cases', () => {
  const state = (over: Partial<SourceState>): SourceState => ({
    identity: { flavor: 'mariadb', serverId: 12, domainId: 0 },
    version: '10.11.19-MariaDB',
    binlogs: ['binlog.000100'],
    gtidExecuted: '',
    gtidPurged: '',
    gtidMode: true,
    gtidAt: null,
    ...over,
  });

  it('a server orders after a position only from two files past it (the old server may have published a file further)', () => {
    expect(ordersAfter({ file: 'binlog.000098', pos: 9 }, state({}))).toBe(true);
    expect(ordersAfter({ file: 'binlog.000099', pos: 9 }, state({}))).toBe(false);
    expect(ordersAfter({ file: 'binlog.000001', pos: 9 }, state({ binlogs: [] }))).toBe(false);
  });

  it('no continuity across flavours, nor from a position without GTID', () => {
    expect(gtidContinuity('mysql', `${UUID_A}:5`, state({}))).toMatchObject({
      proven: false,
      reason: expect.stringMatching(/mysql's/),
    });
    expect(gtidContinuity('mariadb', undefined, state({}))).toMatchObject({ proven: false });
  });

  it('a backfill snapshot recorded on another server is refused the same way', () => {
    const snap = { file: 'binlog.000003', pos: 4, gtid: '0-1-10', source: 'mariadb:1:0' };
    expect(() =>
      planResume({ what: 'backfill snapshot', pos: snap }, state({ gtidExecuted: '0-12-4' }), keys),
    ).toThrow(/backfill snapshot binlog\.000003:4 .* was recorded on MariaDB server_id 1/);
  });
});
