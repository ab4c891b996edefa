/**
 * The SQL text of the source table, from its one owner each: identifiers quoted by services/core/sql.ts,
 * the column list, a row's values and the INSERT of whole rows by services/core/rndc14.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  RNDC14_COLUMNS,
  RNDC14_COLUMN_LIST,
  RNDC14_COLUMN_NAMES,
  createTableSql,
  rndc14InsertSql,
  rndc14Values,
} from '../services/core/rndc14.ts';
import { quoteIdent, quoteTable } from '../services/core/sql.ts';
import { makeRow } from './support/factories.ts';

describe('identifier quoting (core/sql.ts)', () => {
  it('wraps a name in backticks and doubles a backtick inside it', () => {
    expect(quoteIdent('rndc14')).toBe('`rndc14`');
    expect(quoteIdent('HCFA_DESC1')).toBe('`HCFA_DESC1`');
    expect(quoteIdent('odd`name')).toBe('`odd``name`');
    expect(quoteTable('fdb', 'rndc14')).toBe('`fdb`.`rndc14`');
    expect(quoteTable('fdb-prod', 'rndc14_staging')).toBe('`fdb-prod`.`rndc14_staging`');
  });
});

describe('the rndc14 column list (core/rndc14.ts)', () => {
  it('names all 68 columns in table order, quoted', () => {
    // Act
    const listed = RNDC14_COLUMN_LIST.split(',');
    // Assess
    expect(RNDC14_COLUMN_NAMES).toHaveLength(68);
    expect(listed).toEqual(RNDC14_COLUMNS.map((c) => `\`${c.name}\``));
    expect(listed.slice(0, 3)).toEqual(['`NDC`', '`LBLRID`', '`LN`']);
    expect(listed.at(-1)).toBe('`HCFA_TRMC`');
  });

  it("gives a row's values in that order, an absent column as NULL", () => {
    // Prepare
    const row = makeRow({ NDC: '00002063202', LN: 'LISINOPRIL 10 MG TABLET' }, 4);
    const { GPI: _absent, ...partial } = row;
    // Act
    const values = rndc14Values(partial);
    // Assess
    expect(values).toHaveLength(68);
    expect(values[0]).toBe('00002063202');
    expect(values[RNDC14_COLUMN_NAMES.indexOf('LN')]).toBe('LISINOPRIL 10 MG TABLET');
    expect(values[RNDC14_COLUMN_NAMES.indexOf('GPI')]).toBeNull();
    expect(rndc14Values(row)).toEqual(RNDC14_COLUMN_NAMES.map((c) => row[c]));
  });

  it('writes the INSERT of whole rows and the DDL with the same names', () => {
    expect(rndc14InsertSql('rndc14')).toBe(`INSERT INTO rndc14 (${RNDC14_COLUMN_LIST}) VALUES ?`);
    expect(rndc14InsertSql(quoteTable('fdb', 'rndc14'), { ignore: true })).toBe(
      `INSERT IGNORE INTO \`fdb\`.\`rndc14\` (${RNDC14_COLUMN_LIST}) VALUES ?`,
    );
    const ddl = createTableSql('fdb', 'rndc14');
    expect(ddl.startsWith('CREATE TABLE `fdb`.`rndc14` (\n  `NDC` varchar(11) NOT NULL,\n')).toBe(true);
    for (const name of RNDC14_COLUMN_NAMES) expect(ddl).toContain(`\n  \`${name}\` `);
  });
});
