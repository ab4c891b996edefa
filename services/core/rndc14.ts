/**
 * The source table `fdb.rndc14` (First Databank NDC master): 68 columns in table order, as in
 * shared/data/rndc14.md. Used for the DDL, the synthetic catalogue, the snapshot reader and to check that
 * binlog row images carry the columns we map. The one owner of the column list: the DDL, every INSERT of
 * whole rows (the change simulator, tests, benches) and every LOAD DATA take it from here.
 */
import { quoteIdent, quoteTable } from './sql.ts';

export type ColumnKind = 'varchar' | 'int' | 'mediumint' | 'decimal' | 'datetime';

export interface ColumnDef {
  name: string;
  kind: ColumnKind;
  /** varchar length, or [precision, scale] for decimal. */
  size?: number | [number, number];
}

const v = (name: string, size: number): ColumnDef => ({ name, kind: 'varchar', size });
const d = (name: string, p: number, s: number): ColumnDef => ({ name, kind: 'decimal', size: [p, s] });
const dt = (name: string): ColumnDef => ({ name, kind: 'datetime' });
const i = (name: string): ColumnDef => ({ name, kind: 'int' });

export const RNDC14_COLUMNS: readonly ColumnDef[] = [
  v('NDC', 11),
  v('LBLRID', 6),
  v('LN', 30),
  v('LN60', 60),
  v('BN', 30),
  { name: 'GCN_SEQNO', kind: 'mediumint' },
  v('INNOV', 1),
  v('GNI', 1),
  v('GMI', 1),
  v('GTI', 1),
  v('DF', 1),
  d('PS', 11, 3),
  v('AD', 20),
  v('PD', 10),
  v('DEA', 1),
  v('CL', 1),
  v('HOSP', 1),
  v('UD', 1),
  v('OBC', 2),
  v('REPACK', 1),
  v('STPK', 1),
  v('IPI', 1),
  v('MINI', 1),
  dt('DADDNC'),
  dt('DUPDC'),
  dt('OBSDTEC'),
  dt('GPIDC'),
  dt('BBDC'),
  v('HCFA_FDA', 2),
  v('HCFA_UNIT', 3),
  d('HCFA_PS', 11, 3),
  v('HCFA_TYP', 1),
  v('HCFA_DC', 1),
  d('NDL_GDGE', 5, 3),
  d('NDL_LNGTH', 5, 3),
  d('SYR_CPCTY', 5, 3),
  i('SHLF_PCK'),
  i('SHIPPER'),
  i('CSP'),
  v('PNDC', 11),
  v('REPNDC', 11),
  v('HOME', 1),
  v('PLBLR', 1),
  v('INPCKI', 1),
  v('OUTPCKI', 1),
  v('LN25I', 1),
  v('NDCGI1', 1),
  v('UU', 1),
  v('PPI', 1),
  v('TOP200', 3),
  v('TOP50GEN', 2),
  v('DESI', 1),
  dt('DESDTEC'),
  v('DESI2', 1),
  dt('DES2DTEC'),
  v('LN25', 25),
  dt('HCFA_DESC1'),
  v('HCFA_DESI1', 1),
  v('GPI', 1),
  v('GSI', 1),
  v('NDCFI', 1),
  v('OBC_EXP', 2),
  v('OBC3', 3),
  d('PS_EQUIV', 11, 3),
  v('MAINT', 1),
  dt('HCFA_APPC'),
  dt('HCFA_MRKC'),
  dt('HCFA_TRMC'),
];

/** The column names, in table order. */
export const RNDC14_COLUMN_NAMES: readonly string[] = RNDC14_COLUMNS.map((c) => c.name);

/** Every column, quoted, in table order: the column list of an INSERT or a LOAD DATA of whole rows. */
export const RNDC14_COLUMN_LIST: string = RNDC14_COLUMN_NAMES.map(quoteIdent).join(',');

export const ZERO_DATE = '0000-00-00 00:00:00.000000';

/**
 * A row as drugsync carries it everywhere (snapshot reader, binlog events, tests): column name → value.
 * VARCHAR, DECIMAL (exact string, e.g. "100.000") and DATETIME(6) ("YYYY-MM-DD hh:mm:ss.ffffff", zero dates
 * kept) are strings; INT and MEDIUMINT are numbers; NULL is null.
 */
export type RowValue = string | number | null;
export type Rndc14Row = Record<string, RowValue>;

export function columnSql(c: ColumnDef): string {
  return `${quoteIdent(c.name)} ${columnType(c)}`;
}

function columnType(c: ColumnDef): string {
  switch (c.kind) {
    case 'varchar':
      return `varchar(${c.size as number})`;
    case 'int':
      return 'int';
    case 'mediumint':
      return 'mediumint';
    case 'decimal': {
      const [p, s] = c.size as [number, number];
      return `decimal(${p},${s})`;
    }
    case 'datetime':
      return 'datetime(6)';
  }
}

/** CREATE TABLE for rndc14 (or a staging copy under another name). NDC is the primary key. */
export function createTableSql(schema: string, table: string): string {
  const cols = RNDC14_COLUMNS.map(
    (c) => `  ${columnSql(c)}${c.name === 'NDC' ? ' NOT NULL' : ' DEFAULT NULL'}`,
  );
  return (
    `CREATE TABLE ${quoteTable(schema, table)} (\n${cols.join(',\n')},\n  PRIMARY KEY (\`NDC\`)\n)` +
    ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`
  );
}

/** A row's values in table order (an absent column is NULL): one row of `rndc14InsertSql`'s parameter. */
export function rndc14Values(row: Rndc14Row): RowValue[] {
  return RNDC14_COLUMN_NAMES.map((c) => row[c] ?? null);
}

/**
 * `INSERT [IGNORE] INTO <table> (<every column>) VALUES ?`, whose one parameter is the rows' values
 * (`[rows.map(rndc14Values)]`: mysql2 writes the nested arrays as a row list). `table` is SQL text:
 * `quoteTable(schema, table)`, or a bare name on the connection's database. `ignore`: a row whose NDC
 * exists is skipped.
 */
export function rndc14InsertSql(table: string, opts: { ignore?: boolean } = {}): string {
  return `INSERT ${opts.ignore ? 'IGNORE ' : ''}INTO ${table} (${RNDC14_COLUMN_LIST}) VALUES ?`;
}
