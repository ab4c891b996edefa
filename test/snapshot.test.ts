import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createMysqlPool } from '../services/core/clients/mysql.ts';
import type { MysqlPool } from '../services/core/clients/mysql.ts';
import { openSnapshot } from '../services/core/snapshot.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { generateCatalogue, loadRows, makeRow, changes } from './support/factories.ts';
import { createSuiteDatabase, suiteEnv } from './support/stack.ts';

describe('consistent snapshot (MariaDB)', () => {
  const env = suiteEnv('snapshot');
  let admin: Connection;
  let pool: MysqlPool;
  const catalogue = [...generateCatalogue({ rows: 12_000, seed: 11 })];

  beforeAll(async () => {
    admin = await createSuiteDatabase(env);
    await loadRows(admin, catalogue, { schema: env.DB_NAME as string, table: 'rndc14' });
    pool = createMysqlPool(
      { DB_HOST: env.DB_HOST as string, DB_PORT: Number(env.DB_PORT), DB_NAME: env.DB_NAME as string },
      { user: env.DB_USER as string, password: env.DB_PASSWORD as string },
    );
  });
  afterAll(async () => {
    await admin.end();
    await pool.end();
  });

  it('reads every row once in NDC order by keyset pages, blind to writes committed after it, with an exact position', async () => {
    // Prepare
    const snap = await openSnapshot(pool);
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
    const server = (status as { File: string; Position: number }[])[0]!;
    expect(compareBinlogPositions(snap.position, { file: server.File, pos: server.Position })).toBeLessThan(
      0,
    );
    // rows come back exactly as generated: decimals as strings, zero dates kept
    const byNdc = new Map(seen.map((r) => [r.NDC, r]));
    expect(byNdc.get(catalogue[42]!.NDC)).toEqual(catalogue[42]);
  });

  it('reads a key range (after, upTo] for parallel parts without overlap', async () => {
    const [current] = await admin.query('SELECT NDC FROM rndc14 ORDER BY NDC');
    const sorted = (current as { NDC: string }[]).map((r) => r.NDC);
    const cut = sorted[6_000] as string;
    const snap = await openSnapshot(pool);
    const a: string[] = [];
    const b: string[] = [];
    const range = { schema: env.DB_NAME as string, table: 'rndc14', pageSize: 700 };
    for await (const p of snap.rows({ ...range, upTo: cut })) a.push(...p.map((r) => r.NDC as string));
    for await (const p of snap.rows({ ...range, after: cut })) b.push(...p.map((r) => r.NDC as string));
    await snap.close();
    expect(a.at(-1)).toBe(cut);
    expect([...a, ...b]).toEqual(sorted);
  });
});
