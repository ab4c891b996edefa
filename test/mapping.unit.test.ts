import { describe, expect, it } from 'vitest';
import {
  contentHash,
  embeddingText,
  genericName,
  MAPPED_COLUMNS,
  isEligible,
  mapRow,
  sqlTrim,
  textHash,
} from '../services/core/mapping.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import { RNDC14_COLUMNS, RNDC14_COLUMN_NAMES, ZERO_DATE, createTableSql } from '../services/core/rndc14.ts';
import { generateCatalogue } from './support/factories.ts';

/** A realistic rndc14 row (lisinopril from Merck), overridable per test. */
function row(over: Partial<Rndc14Row> = {}): Rndc14Row {
  const base: Rndc14Row = {};
  for (const c of RNDC14_COLUMNS)
    base[c.name] = c.kind === 'datetime' ? ZERO_DATE : c.kind === 'varchar' ? '' : null;
  return {
    ...base,
    NDC: '00006001954',
    LBLRID: 'A00006',
    LN: 'PRINIVIL 10 MG TABLET',
    LN60: 'PRINIVIL 10 MG TABLET',
    BN: 'PRINIVIL',
    GCN_SEQNO: 395,
    INNOV: '1',
    DF: '1',
    PS: '100.000',
    DEA: '0',
    DADDNC: '1988-05-19 00:00:00.000000',
    ...over,
  };
}

describe('row → document mapping (shared/data/rndc14.md)', () => {
  it('maps a branded solid oral product', () => {
    // Prepare / Act
    const doc = mapRow(row());
    // Assess
    expect(doc).toEqual({
      ndc: '00006001954',
      drug_name: 'PRINIVIL 10 MG TABLET',
      brand_name: 'PRINIVIL',
      generic_name: 'prinivil',
      gcn_seqno: 395,
      dosage_form: '1',
      is_brand: 'true',
      is_generic: 'false',
      dea_schedule: '',
    });
  });

  it('maps an unbranded generic with null GCN and a schedule II DEA code', () => {
    const doc = mapRow(
      row({ LN: '  oxycodone hcl 5 mg tablet ', BN: null, GCN_SEQNO: null, INNOV: '0', DEA: '2' }),
    );
    expect(doc).toMatchObject({
      drug_name: 'OXYCODONE HCL 5 MG TABLET',
      brand_name: '',
      generic_name: 'oxycodone hcl',
      gcn_seqno: 0,
      is_brand: 'false',
      is_generic: 'true',
      dea_schedule: '2',
    });
  });

  it('keeps only DEA codes 1–5 and trims the dosage form', () => {
    expect(mapRow(row({ DEA: '0' }))?.dea_schedule).toBe('');
    expect(mapRow(row({ DEA: '5' }))?.dea_schedule).toBe('5');
    expect(mapRow(row({ DEA: null }))?.dea_schedule).toBe('');
    expect(mapRow(row({ DF: null }))?.dosage_form).toBe('');
    expect(mapRow(row({ DF: '3' }))?.dosage_form).toBe('3');
  });

  it('cuts the generic name at the first space followed by a digit', () => {
    expect(genericName('ZEPBOUND 5 MG/0.5 ML VIAL')).toBe('zepbound');
    expect(genericName('LISINOPRIL 10 MG TABLET')).toBe('lisinopril');
    expect(genericName('AMOXICILLIN-CLAV 875-125 MG TAB')).toBe('amoxicillin-clav');
    expect(genericName('5-FU 500 MG/10 ML VIAL')).toBe('5-fu');
    expect(genericName('VITAMIN D3')).toBe('vitamin d3');
    expect(mapRow(row({ LN: 'ZEPBOUND 5 MG/0.5 ML VIAL', BN: 'ZEPBOUND' }))?.generic_name).toBe('zepbound');
  });

  it('applies the eligibility rule: NDC and LN present, trimmed LN longer than 3 bytes', () => {
    expect(isEligible(row())).toBe(true);
    expect(isEligible(row({ LN: null }))).toBe(false);
    expect(isEligible(row({ NDC: null }))).toBe(false);
    expect(isEligible(row({ LN: 'ABC' }))).toBe(false);
    expect(isEligible(row({ LN: '  ABC  ' }))).toBe(false);
    expect(isEligible(row({ LN: 'ABCD' }))).toBe(true);
    // MySQL LENGTH() counts bytes: two 2-byte characters are 4 bytes.
    expect(isEligible(row({ LN: 'ÄÖ' }))).toBe(true);
    expect(mapRow(row({ LN: 'AB' }))).toBeNull();
  });

  it('trims like MySQL TRIM (spaces only)', () => {
    expect(sqlTrim('  A B  ')).toBe('A B');
    expect(sqlTrim('\tA ')).toBe('\tA');
  });

  it('hashes the embedding text per model and dimensions, and content over every mapped field', () => {
    const id = { model: 'amazon.titan-embed-text-v2:0', dimensions: 1024 };
    const a = mapRow(row())!;
    const b = mapRow(row({ PS: '500.000', DADDNC: '2001-01-01 00:00:00.000000' }))!;
    const c = mapRow(row({ DEA: '4' }))!;
    expect(embeddingText(a)).toBe('PRINIVIL 10 MG TABLET');
    expect(textHash('PRINIVIL 10 MG TABLET', id)).not.toBe(
      textHash('PRINIVIL 10 MG TABLET', { ...id, dimensions: 256 }),
    );
    // Fields outside the mapping do not change the document…
    expect(contentHash(b, id)).toBe(contentHash(a, id));
    // …a mapped field does, without touching the embedding text.
    expect(contentHash(c, id)).not.toBe(contentHash(a, id));
    expect(textHash(embeddingText(c), id)).toBe(textHash(embeddingText(a), id));
  });

  it('reads only MAPPED_COLUMNS: a row cut down to them maps and qualifies exactly as the full row', () => {
    // Prepare: realistic rows, eligible and not (short, blank or missing names)
    const rows = [...generateCatalogue({ rows: 3_000, seed: 17 })];
    const cut = (r: Rndc14Row): Rndc14Row =>
      Object.fromEntries(MAPPED_COLUMNS.map((c) => [c, r[c]])) as Rndc14Row;
    // Act / Assess
    expect(rows.some((r) => !isEligible(r))).toBe(true);
    for (const r of rows) {
      expect(isEligible(cut(r))).toBe(isEligible(r));
      expect(mapRow(cut(r))).toEqual(mapRow(r));
    }
    for (const c of MAPPED_COLUMNS) expect(RNDC14_COLUMN_NAMES).toContain(c);
  });

  it('declares all 68 columns with NDC as primary key', () => {
    expect(RNDC14_COLUMNS).toHaveLength(68);
    expect(new Set(RNDC14_COLUMN_NAMES).size).toBe(68);
    expect(createTableSql('fdb', 'rndc14')).toContain('PRIMARY KEY (`NDC`)');
  });
});
