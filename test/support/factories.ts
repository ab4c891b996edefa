/**
 * Realistic rndc14 rows and changes for tests, from the synthetic catalogue generator (services/seed):
 * - `generateCatalogue(n, seed)` (or `{ rows, seed }`): a deterministic catalogue of production shape;
 * - `makeRow(overrides, i, seed)`: one eligible row (the i-th of a small catalogue), overrides last;
 * - `changes.rename / priceList / flipEligibility / newNdc`: the changes First Databank publishes;
 * - `loadRows(conn, rows, { schema, table })`: LOAD DATA LOCAL INFILE into a table (fails on any warning);
 * - `insertRows(conn, rows, table)`: one multi-row INSERT of whole rows (the column list of core/rndc14.ts).
 */
import type { Connection } from 'mysql2/promise';
import { isEligible } from '../../services/core/mapping.ts';
import { rndc14InsertSql, rndc14Values } from '../../services/core/rndc14.ts';
import type { Rndc14Row } from '../../services/core/rndc14.ts';
import { changes, generateCatalogue } from '../../services/seed/generator.ts';

export {
  catalogueShape,
  changes,
  DEFAULT_SEED,
  FULL_CATALOGUE_ROWS,
  generateCatalogue,
  prng,
} from '../../services/seed/generator.ts';
export {
  adminConnection as seedAdminConnection,
  loadRows,
  recreateTable,
  tsvLine,
} from '../../services/seed/load-data.ts';

/**
 * One multi-row INSERT of whole rows (every column; an absent one NULL) into `table`: SQL text, by default the
 * connection's own rndc14 (a quoteTable(schema, table) names another).
 */
export async function insertRows(
  conn: Pick<Connection, 'query'>,
  rows: readonly Rndc14Row[],
  table = 'rndc14',
): Promise<void> {
  await conn.query(rndc14InsertSql(table), [rows.map(rndc14Values)]);
}

const SAMPLE_CACHE = new Map<number, Rndc14Row[]>();

/** The eligible rows of a small realistic catalogue (cached per seed) to draw single rows from. */
function sample(seed: number): Rndc14Row[] {
  let rows = SAMPLE_CACHE.get(seed);
  if (!rows) {
    rows = [...generateCatalogue(2_000, seed)].filter(isEligible);
    SAMPLE_CACHE.set(seed, rows);
  }
  return rows;
}

/**
 * One realistic, eligible row: the i-th (mod ~1,960) of a small catalogue for `seed`, with overrides
 * applied last (`makeRow({ LN: null })` is an ineligible row). Same arguments, same row.
 */
export function makeRow(overrides: Partial<Rndc14Row> = {}, i = 0, seed = 7): Rndc14Row {
  const rows = sample(seed);
  return { ...(rows[i % rows.length] as Rndc14Row), ...overrides } as Rndc14Row;
}

/** What `commitChangeMix` committed: the table's first rows it changed or deleted, and the rows it added. */
export interface ChangeMix {
  /** the first `renames + priceLists + deletes` rows in NDC order, as they were before the changes */
  rows: Rndc14Row[];
  added: Rndc14Row[];
  deleted: Rndc14Row[];
}

/**
 * Commits a realistic mix on `rndc14`, one statement a change: renames (`LN`/`LN60`, tagged `tag`), price-list
 * updates, new NDCs (`ndcBase` + 0, 1, …) and deletes, on the table's first rows in NDC order.
 */
export async function commitChangeMix(
  admin: Pick<Connection, 'query'>,
  mix: {
    tag: string;
    ndcBase: string;
    renames: number;
    priceLists: number;
    inserts: number;
    deletes: number;
  },
): Promise<ChangeMix> {
  const count = mix.renames + mix.priceLists + mix.deletes;
  const [found] = (await admin.query('SELECT * FROM rndc14 ORDER BY NDC LIMIT ?', [count])) as unknown as [
    Rndc14Row[],
  ];
  const rows = found.slice(0, count);
  const renamed = rows.slice(0, mix.renames).map((row, i) => changes.rename(row, `${mix.tag}${i}`));
  for (const r of renamed)
    await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [r.LN, r.LN60, r.NDC]);
  const repriced = rows.slice(mix.renames, mix.renames + mix.priceLists).map((row) => changes.priceList(row));
  for (const r of repriced)
    await admin.query('UPDATE rndc14 SET PS = ?, HCFA_PS = ? WHERE NDC = ?', [r.PS, r.HCFA_PS, r.NDC]);
  const added = Array.from({ length: mix.inserts }, (_, i) => makeRow({ NDC: `${mix.ndcBase}${i}` }, i));
  await insertRows(admin, added);
  const deleted = rows.slice(mix.renames + mix.priceLists);
  if (deleted.length) await admin.query('DELETE FROM rndc14 WHERE NDC IN (?)', [deleted.map((r) => r.NDC)]);
  return { rows, added, deleted };
}
