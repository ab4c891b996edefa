import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createMysqlPool } from '../services/core/clients/mysql.ts';
import type { MysqlPool } from '../services/core/clients/mysql.ts';
import { openSnapshot, parseServerVersion, planSnapshot } from '../services/core/snapshot.ts';
import type { SnapshotMethod } from '../services/core/snapshot.ts';
import { DrugsyncError } from '../services/core/errors.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { RNDC14_COLUMN_NAMES } from '../services/core/rndc14.ts';
import { MAPPED_COLUMNS, mapRow } from '../services/core/mapping.ts';
import { generateCatalogue, loadRows, makeRow, changes } from './support/factories.ts';
import { createSuiteDatabase, suiteEnv } from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

describe('snapshot method decision table (server version × SNAPSHOT_METHOD)', () => {
  const MARIADB = '10.11.6-MariaDB-0+deb12u1-log';
  const MYSQL80 = '8.0.36';
  const MYSQL84 = '8.4.2';
  const AURORA3 = '8.0.mysql_aurora.3.05.2';
  const rows: [string, SnapshotMethod, string | null][] = [
    // server, requested, → method used + status statement ('exact' for binlog-snapshot), null = CONFIG_INVALID
    [MARIADB, 'auto', 'binlog-snapshot exact'],
    [MARIADB, 'binlog-snapshot', 'binlog-snapshot exact'],
    [MARIADB, 'table-lock', 'table-lock SHOW MASTER STATUS'],
    [MYSQL80, 'auto', 'table-lock SHOW MASTER STATUS'],
    [MYSQL80, 'table-lock', 'table-lock SHOW MASTER STATUS'],
    [MYSQL80, 'binlog-snapshot', null],
    [MYSQL84, 'auto', 'table-lock SHOW BINARY LOG STATUS'],
    [MYSQL84, 'table-lock', 'table-lock SHOW BINARY LOG STATUS'],
    [MYSQL84, 'binlog-snapshot', null],
    [AURORA3, 'auto', 'table-lock SHOW MASTER STATUS'],
    [AURORA3, 'table-lock', 'table-lock SHOW MASTER STATUS'],
    [AURORA3, 'binlog-snapshot', null],
  ];

  it.each(rows)('%s with %s → %s', (version, requested, expected) => {
    // Prepare
    const server = parseServerVersion(version);
    // Act
    const decide = () => planSnapshot(server, requested);
    // Assess
    if (expected === null) {
      let err: unknown;
      try {
        decide();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(DrugsyncError);
      expect((err as DrugsyncError).code).toBe('CONFIG_INVALID');
      expect((err as DrugsyncError).message).toContain(version);
      expect((err as DrugsyncError).remedy).toMatch(/SNAPSHOT_METHOD=auto or table-lock/);
      return;
    }
    const plan = decide();
    expect(`${plan.method} ${plan.exact ? 'exact' : plan.statusStatement}`).toBe(expected);
    expect(plan.exact).toBe(plan.method === 'binlog-snapshot');
  });

  it('reads flavour, version and Aurora release from VERSION() strings', () => {
    expect(parseServerVersion(MARIADB)).toMatchObject({ flavor: 'mariadb', major: 10, minor: 11 });
    expect(parseServerVersion('5.5.5-10.11.6-MariaDB')).toMatchObject({ flavor: 'mariadb', major: 10 });
    expect(parseServerVersion(AURORA3)).toMatchObject({
      flavor: 'mysql',
      major: 8,
      minor: 0,
      aurora: '3.05.2',
    });
    expect(parseServerVersion(MYSQL84)).toMatchObject({ flavor: 'mysql', major: 8, minor: 4 });
    expect(() => parseServerVersion('')).toThrow(/cannot tell the server's version/);
  });
});

describe('consistent snapshot (MariaDB)', () => {
  const env = suiteEnv('snapshot');
  let admin: Connection;
  let pool: MysqlPool;
  const catalogue = [...generateCatalogue({ rows: 12_000, seed: 11 })];

  beforeAll(async () => {
    admin = await createSuiteDatabase(env);
    await loadRows(admin, catalogue, { schema: env.DB_NAME as string, table: 'rndc14' });
    pool = createMysqlPool(
      {
        DB_HOST: env.DB_HOST as string,
        DB_PORT: Number(env.DB_PORT),
        DB_NAME: env.DB_NAME as string,
        DB_TLS: false,
      },
      { user: env.DB_USER as string, password: env.DB_PASSWORD as string },
    );
  });
  afterAll(async () => {
    await admin.end();
    await pool.end();
  });

  it('reads every row once in NDC order by keyset pages, blind to writes committed after it, with an exact position', async () => {
    // Prepare
    const snap = await openSnapshot(pool, { schema: env.DB_NAME as string, table: 'rndc14' });
    const newRow = changes.newNdc(makeRow({}, 5, 11), 77);
    // Act: a write committed after the snapshot opened
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [newRow.NDC]);
    await admin.query('INSERT INTO rndc14 (NDC, LN) VALUES (?, ?)', [
      `99${String(newRow.NDC).slice(2)}`,
      'NEW DRUG 5 MG TABLET',
    ]);
    const [status] = await admin.query('SHOW MASTER STATUS');
    const seen: Rndc14Row[] = [];
    for await (const page of snap.rows({ schema: env.DB_NAME as string, table: 'rndc14', pageSize: 1_000 })) {
      expect(page.length).toBeLessThanOrEqual(1_000);
      seen.push(...page);
    }
    await snap.close();
    // Assess
    const expected = catalogue.map((r) => r.NDC as string).sort();
    expect(seen.map((r) => r.NDC)).toEqual(expected);
    expect(snap.flavor).toBe('mariadb');
    expect(snap.exact).toBe(true);
    expect(snap.method).toBe('binlog-snapshot');
    const server = (status as { File: string; Position: number }[])[0]!;
    expect(compareBinlogPositions(snap.position, { file: server.File, pos: server.Position })).toBeLessThan(
      0,
    );
    // the pages carry the mapping's columns only, and map exactly as the full rows do
    const byNdc = new Map(seen.map((r) => [r.NDC, r]));
    expect(Object.keys(byNdc.get(catalogue[42]!.NDC)!).sort()).toEqual([...MAPPED_COLUMNS].sort());
    for (const r of catalogue) expect(mapRow(byNdc.get(r.NDC)!)).toEqual(mapRow(r));
  });

  it('reads the columns asked for: every column comes back exactly as generated', async () => {
    // Prepare
    const snap = await openSnapshot(pool, { schema: env.DB_NAME as string, table: 'rndc14' });
    const columns = RNDC14_COLUMN_NAMES.filter((c) => c !== 'NDC');
    // Act
    const seen: Rndc14Row[] = [];
    for await (const page of snap.rows({ schema: env.DB_NAME as string, table: 'rndc14', columns }))
      seen.push(...page);
    await snap.close();
    // Assess: NDC is always selected; decimals as strings, zero dates kept
    const byNdc = new Map(seen.map((r) => [r.NDC, r]));
    expect(byNdc.get(catalogue[42]!.NDC)).toEqual(catalogue[42]);
    expect(byNdc.get(catalogue[4_321]!.NDC)).toEqual(catalogue[4_321]);
  });

  it('reads a key range (after, upTo] for parallel parts without overlap', async () => {
    const [current] = await admin.query('SELECT NDC FROM rndc14 ORDER BY NDC');
    const sorted = (current as { NDC: string }[]).map((r) => r.NDC);
    const cut = sorted[6_000] as string;
    const snap = await openSnapshot(pool, { schema: env.DB_NAME as string, table: 'rndc14' });
    const a: string[] = [];
    const b: string[] = [];
    const range = { schema: env.DB_NAME as string, table: 'rndc14', pageSize: 700 };
    for await (const p of snap.rows({ ...range, upTo: cut })) a.push(...p.map((r) => r.NDC as string));
    for await (const p of snap.rows({ ...range, after: cut })) b.push(...p.map((r) => r.NDC as string));
    await snap.close();
    expect(a.at(-1)).toBe(cut);
    expect([...a, ...b]).toEqual(sorted);
  });

  it('table-lock without the LOCK TABLES privilege fails naming the grant, and leaves no lock behind', async () => {
    // Prepare
    const db = env.DB_NAME as string;
    await admin.query(`REVOKE LOCK TABLES ON ${quoteIdent(db)}.* FROM ?@'%'`, [env.DB_USER]);
    // a new connection: database privileges are read when a session enters the database
    const unprivileged = createMysqlPool(
      { DB_HOST: env.DB_HOST as string, DB_PORT: Number(env.DB_PORT), DB_NAME: db, DB_TLS: false },
      { user: env.DB_USER as string, password: env.DB_PASSWORD as string },
    );
    let err: unknown;
    try {
      // Act
      await openSnapshot(unprivileged, { method: 'table-lock', schema: db, table: 'rndc14' });
    } catch (e) {
      err = e;
    } finally {
      await admin.query(`GRANT LOCK TABLES ON ${quoteIdent(db)}.* TO ?@'%'`, [env.DB_USER]);
      await unprivileged.end();
    }
    // Assess
    expect(err).toBeInstanceOf(DrugsyncError);
    expect((err as DrugsyncError).code).toBe('SNAPSHOT_FAILED');
    expect((err as DrugsyncError).remedy).toContain(`GRANT LOCK TABLES ON ${quoteIdent(db)}.*`);
    // the failed attempt left no lock: a writer commits at once
    await admin.query('SET SESSION lock_wait_timeout = 5');
    await admin.query('UPDATE rndc14 SET PS = PS WHERE NDC = ?', [catalogue[0]!.NDC]);
    const snap = await openSnapshot(pool, { method: 'table-lock', schema: db, table: 'rndc14' });
    await snap.close();
    expect(snap).toMatchObject({ method: 'table-lock', exact: false, flavor: 'mariadb' });
  });
});
