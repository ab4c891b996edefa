/**
 * The ways sites apply First Databank's daily publication to rndc14, as the admin user (tests, `npm run
 * bench -- loads`, trying the pipeline by hand):
 *
 * - `applyBurst`: the day's incremental changes — about 80% non-name fields (price-list style), 15% renames,
 *   5% inserts and deletes — committed in a few transactions within seconds;
 * - `truncateAndReload`: `TRUNCATE` then `LOAD DATA` of the catalogue;
 * - `deleteAndInsertAll`: `DELETE` of every row then `INSERT` of every row, in one transaction;
 * - `swapInStagingTable`: `LOAD`/copy into a staging table, change it, then
 *   `RENAME TABLE rndc14 TO rndc14_old, rndc14_new TO rndc14` (and drop the old one).
 */
import type { Connection } from 'mysql2/promise';
import { rndc14InsertSql, rndc14Values } from '../../services/core/rndc14.ts';
import type { Rndc14Row } from '../../services/core/rndc14.ts';
import { quoteTable } from '../../services/core/sql.ts';
import { changes, generateCatalogue, prng } from '../../services/seed/generator.ts';
import { loadRows } from '../../services/seed/load-data.ts';

export interface BurstPlan {
  /** non-name field changes (price list) */
  fieldChanges: number;
  renames: number;
  inserts: number;
  deletes: number;
}

export interface BurstResult extends BurstPlan {
  statements: number;
  /** rows the statements changed (an UPDATE to the values a row already has changes nothing) */
  rowsChanged: number;
  seconds: number;
}

/** 80 / 15 / 2.5 / 2.5 % of `total` changes. */
export function burstPlan(total: number): BurstPlan {
  const renames = Math.round(total * 0.15);
  const inserts = Math.round(total * 0.025);
  const deletes = Math.round(total * 0.025);
  return { fieldChanges: total - renames - inserts - deletes, renames, inserts, deletes };
}

/**
 * Applies a burst of changes to distinct random rows of the table, `perTx` statements per transaction.
 * Half the inserted rows are new packages of products already in the catalogue (their names are known),
 * half are new products (new names).
 */
export async function applyBurst(
  conn: Connection,
  o: { schema: string; table: string; plan: BurstPlan; seed: number; perTx?: number },
): Promise<BurstResult> {
  const t0 = Date.now();
  const t = quoteTable(o.schema, o.table);
  const r = prng(o.seed);
  const [ndcRows] = await conn.query(`SELECT NDC, LN, LN60 FROM ${t} ORDER BY NDC`);
  const existing = ndcRows as Pick<Rndc14Row, 'NDC' | 'LN' | 'LN60'>[];
  const need = o.plan.fieldChanges + o.plan.renames + o.plan.deletes;
  if (existing.length < need + o.plan.inserts) {
    throw new Error(`a burst of ${need} changes needs more rows than ${t} has (${existing.length})`);
  }
  // distinct random rows (partial Fisher-Yates)
  const idx = existing.map((_, i) => i);
  for (let i = 0; i < need; i++) {
    const j = i + Math.floor(r() * (idx.length - i));
    [idx[i], idx[j]] = [idx[j] as number, idx[i] as number];
  }
  const picked = idx.slice(0, need).map((i) => existing[i] as Rndc14Row);
  const taken = new Set(existing.map((x) => String(x.NDC)));
  const fresh = generateCatalogue({ rows: o.plan.inserts * 2 + 10, seed: o.seed + 700_000 });
  const statements: [string, unknown[]][] = [];
  let k = 0;
  for (let i = 0; i < o.plan.fieldChanges; i++) {
    const p = changes.priceList(picked[k++] as Rndc14Row, r);
    statements.push([
      `UPDATE ${t} SET PS = ?, HCFA_PS = ?, DUPDC = ?, HCFA_TYP = ? WHERE NDC = ?`,
      [p.PS, p.HCFA_PS, p.DUPDC, p.HCFA_TYP, p.NDC],
    ]);
  }
  for (let i = 0; i < o.plan.renames; i++) {
    const p = changes.rename(picked[k++] as Rndc14Row, `${o.seed}X${i}`);
    statements.push([`UPDATE ${t} SET LN = ?, LN60 = ? WHERE NDC = ?`, [p.LN, p.LN60, p.NDC]]);
  }
  for (let i = 0; i < o.plan.deletes; i++) {
    statements.push([`DELETE FROM ${t} WHERE NDC = ?`, [(picked[k++] as Rndc14Row).NDC]]);
  }
  for (let i = 0; i < o.plan.inserts;) {
    const n = fresh.next();
    if (n.done) throw new Error('ran out of fresh rows for inserts');
    let row: Rndc14Row = { ...n.value, NDC: `9${String(n.value.NDC).slice(1)}` };
    if (taken.has(String(row.NDC))) continue;
    taken.add(String(row.NDC));
    if (i % 2 === 0) {
      // a new package of a product already sold: its name is known
      const known = existing[Math.floor(r() * existing.length)] as Rndc14Row;
      row = { ...row, LN: known.LN ?? null, LN60: known.LN60 ?? null };
    } else row = changes.rename(row, `${o.seed}I${i}`);
    statements.push([rndc14InsertSql(t), [[rndc14Values(row)]]]);
    i++;
  }
  // interleave the kinds, as a day's file does
  for (let i = statements.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [statements[i], statements[j]] = [statements[j]!, statements[i]!];
  }
  const perTx = o.perTx ?? 500;
  await conn.query("SET SESSION sql_mode = ''");
  let rowsChanged = 0;
  for (let i = 0; i < statements.length; i += perTx) {
    await conn.beginTransaction();
    for (const [sql, args] of statements.slice(i, i + perTx)) {
      const [res] = await conn.query(sql, args);
      const h = res as { affectedRows: number; changedRows?: number };
      rowsChanged += sql.startsWith('UPDATE') ? (h.changedRows ?? h.affectedRows) : h.affectedRows;
    }
    await conn.commit();
  }
  return { ...o.plan, statements: statements.length, rowsChanged, seconds: (Date.now() - t0) / 1000 };
}

/** Reads the whole table (tests: up to ~100K rows). */
export async function readTable(conn: Connection, schema: string, table: string): Promise<Rndc14Row[]> {
  const [rows] = await conn.query(`SELECT * FROM ${quoteTable(schema, table)} ORDER BY NDC`);
  return rows as Rndc14Row[];
}

/** `TRUNCATE` then `LOAD DATA` of `rows` (one transaction per 50,000 rows). */
export async function truncateAndReload(
  conn: Connection,
  o: { schema: string; table: string; rows: Iterable<Rndc14Row> },
): Promise<number> {
  await conn.query(`TRUNCATE TABLE ${quoteTable(o.schema, o.table)}`);
  return loadRows(conn, o.rows, { schema: o.schema, table: o.table });
}

/** `DELETE FROM t` then `INSERT INTO t SELECT` of the same rows, in one transaction (via a copy). */
export async function deleteAndInsertAll(
  conn: Connection,
  o: { schema: string; table: string },
): Promise<number> {
  const t = quoteTable(o.schema, o.table);
  const copy = quoteTable(o.schema, `${o.table}_reload`);
  await conn.query(`DROP TABLE IF EXISTS ${copy}`);
  await conn.query(`CREATE TABLE ${copy} LIKE ${t}`);
  await conn.query(`INSERT INTO ${copy} SELECT * FROM ${t}`);
  await conn.beginTransaction();
  await conn.query(`DELETE FROM ${t}`);
  const [res] = await conn.query(`INSERT INTO ${t} SELECT * FROM ${copy}`);
  await conn.commit();
  await conn.query(`DROP TABLE ${copy}`);
  return (res as { affectedRows: number }).affectedRows;
}

/**
 * Builds `<table>_new` as a copy of the table changed by `burst` (no row events for `<table>`), then swaps it
 * in with one `RENAME TABLE` and drops the old table.
 */
export async function swapInStagingTable(
  conn: Connection,
  o: { schema: string; table: string; plan: BurstPlan; seed: number },
): Promise<BurstResult> {
  const t = quoteTable(o.schema, o.table);
  const stage = `${o.table}_new`;
  const old = quoteTable(o.schema, `${o.table}_old`);
  await conn.query(`DROP TABLE IF EXISTS ${quoteTable(o.schema, stage)}, ${old}`);
  await conn.query(`CREATE TABLE ${quoteTable(o.schema, stage)} LIKE ${t}`);
  await conn.query(`INSERT INTO ${quoteTable(o.schema, stage)} SELECT * FROM ${t}`);
  const res = await applyBurst(conn, {
    schema: o.schema,
    table: stage,
    plan: o.plan,
    seed: o.seed,
    perTx: 5000,
  });
  await conn.query(`RENAME TABLE ${t} TO ${old}, ${quoteTable(o.schema, stage)} TO ${t}`);
  await conn.query(`DROP TABLE ${old}`);
  return res;
}
