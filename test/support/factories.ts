/**
 * Realistic rndc14 rows and changes for tests, from the synthetic catalogue generator (services/seed):
 * - `generateCatalogue(n, seed)` (or `{ rows, seed }`): a deterministic catalogue of production shape;
 * - `makeRow(overrides, i, seed)`: one eligible row (the i-th of a small catalogue), overrides last;
 * - `changes.rename / priceList / flipEligibility / newNdc`: the changes First Databank publishes;
 * - `loadRows(conn, rows, { schema, table })`: LOAD DATA LOCAL INFILE into a table (fails on any warning).
 */
export {
  catalogueShape,
  changes,
  COLUMN_NAMES,
  DEFAULT_SEED,
  FULL_CATALOGUE_ROWS,
  generateCatalogue,
  makeRow,
  prng,
} from '../../services/seed/generator.ts';
export {
  adminConnection as seedAdminConnection,
  loadRows,
  recreateTable,
  tsvLine,
} from '../../services/seed/load-data.ts';
