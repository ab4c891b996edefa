import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { isEligible, mapRow } from '../services/core/mapping.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { RNDC14_COLUMNS, RNDC14_COLUMN_NAMES, ZERO_DATE } from '../services/core/rndc14.ts';
import type { Rndc14Row } from '../services/core/rndc14.ts';
import {
  catalogueShape,
  changes,
  FULL_CATALOGUE_ROWS,
  generateCatalogue,
  loadRows,
  makeRow,
  tsvLine,
} from './support/factories.ts';
import { adminConnection, createSuiteDatabase, suiteEnv } from './support/stack.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

/** Production figures of shared/data/rndc14.md. */
const PROD = { ln60: 97_463, bn: 47_853, gcn: 32_257, labelers: 4_590, pndc: 18_543, active: 120_600 };

const share = (rows: Rndc14Row[], pred: (r: Rndc14Row) => boolean) => rows.filter(pred).length / rows.length;
const distinct = (rows: Rndc14Row[], col: string) =>
  new Set(rows.map((r) => r[col]).filter((v) => v !== null && v !== '')).size;

function cli(args: string[], env: Record<string, string | undefined>) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env, timeout: 120_000 });
}

describe('synthetic catalogue generator', () => {
  const N = 50_000;
  const rows = [...generateCatalogue(N, 42)];

  it('is deterministic for a seed, differs between seeds, and takes (n, seed) or { rows, seed }', () => {
    // Act
    const a = [...generateCatalogue(3_000, 9)];
    const b = [...generateCatalogue({ rows: 3_000, seed: 9 })];
    const other = [...generateCatalogue(3_000, 10)];
    // Assess
    expect(b).toEqual(a);
    expect(a).toHaveLength(3_000);
    expect(other.map((r) => r.NDC)).not.toEqual(a.map((r) => r.NDC));
    expect(makeRow({}, 5, 11)).toEqual(makeRow({}, 5, 11));
    for (const n of [0, 1, 7]) {
      const tiny = [...generateCatalogue(n, 1)];
      expect(tiny).toHaveLength(n);
      expect(new Set(tiny.map((r) => r.NDC)).size).toBe(n);
    }
  });

  it("yields the same rows in NDC order with order: 'ndc' (what the loader uses)", () => {
    // Act
    const sorted = [...generateCatalogue({ rows: 3_000, seed: 9, order: 'ndc' })];
    const shuffled = [...generateCatalogue(3_000, 9)];
    // Assess
    const ndcs = sorted.map((r) => String(r.NDC));
    expect(ndcs).toEqual([...ndcs].sort());
    expect(sorted).toEqual([...shuffled].sort((a, b) => (String(a.NDC) < String(b.NDC) ? -1 : 1)));
  });

  it('has production shape scaled: ~1 new label name in 5 rows, brands, GCN groups, unique 5-4-2 NDCs', () => {
    const scale = N / FULL_CATALOGUE_ROWS;
    expect(distinct(rows, 'LN60') / (PROD.ln60 * scale)).toBeCloseTo(1, 1);
    expect(distinct(rows, 'BN') / (PROD.bn * scale)).toBeGreaterThan(0.9);
    expect(distinct(rows, 'BN') / (PROD.bn * scale)).toBeLessThan(1.1);
    expect(distinct(rows, 'GCN_SEQNO') / (PROD.gcn * scale)).toBeGreaterThan(0.95);
    expect(distinct(rows, 'GCN_SEQNO') / (PROD.gcn * scale)).toBeLessThan(1.05);
    expect(distinct(rows, 'LBLRID')).toBe(catalogueShape(N).labelers);
    expect(new Set(rows.map((r) => r.NDC)).size).toBe(N);
    expect(rows.every((r) => /^\d{11}$/.test(String(r.NDC)))).toBe(true);
    // LBLRID is 'A' + the NDC's 5-digit labeler part
    expect(rows.every((r) => r.LBLRID === `A${String(r.NDC).slice(0, 5)}`)).toBe(true);
    // shuffled, not sorted
    const ndcs = rows.slice(0, 1_000).map((r) => String(r.NDC));
    expect(ndcs).not.toEqual([...ndcs].sort());
    // one label name in several package sizes / labelers
    const perName = new Map<unknown, number>();
    for (const r of rows) perName.set(r.LN60, (perName.get(r.LN60) ?? 0) + 1);
    expect(Math.max(...perName.values())).toBeGreaterThan(10);
  });

  it('follows the documented value distributions', () => {
    const cases: [string, string, number][] = [
      ['INNOV', '0', 0.865],
      ['GNI', '1', 0.547],
      ['GMI', '4', 0.317],
      ['GTI', '4', 0.466],
      ['DF', '1', 0.701],
      ['DF', '2', 0.199],
      ['DF', '3', 0.099],
      ['DEA', '0', 0.908],
      ['CL', 'F', 0.663],
      ['CL', 'O', 0.291],
      ['HOSP', '0', 0.716],
      ['UD', '1', 0.055],
      ['OBC', 'ZB', 0.431],
      ['OBC', 'AB', 0.199],
      ['REPACK', '1', 0.243],
      ['STPK', '1', 0.158],
      ['MINI', '1', 0.155],
      ['HCFA_UNIT', 'ML', 0.091],
      ['HCFA_UNIT', 'GM', 0.028],
      ['HCFA_TYP', '', 0.651],
      ['HCFA_DC', 'N', 0.267],
      ['HOME', '1', 0.044],
      ['PLBLR', '1', 0.094],
      ['LN25I', '1', 0.606],
      ['NDCGI1', '2', 0.091],
      ['PPI', '', 0.99],
      ['MAINT', '1', 0.339],
    ];
    // Product-level columns (one value per label name, rows per name skewed) vary more at 50K rows.
    const productLevel = new Set(['INNOV', 'DF', 'DEA']);
    for (const [col, value, expected] of cases) {
      const got = share(rows, (r) => r[col] === value);
      const tolerance = productLevel.has(col) ? 0.03 : 0.015;
      expect(Math.abs(got - expected), `${col}='${value}': ${got.toFixed(3)} vs ${expected}`).toBeLessThan(
        tolerance,
      );
    }
    for (const dea of ['2', '3', '4', '5']) expect(rows.some((r) => r.DEA === dea)).toBe(true);
    // active rows: OBSDTEC is the zero date (~120,600 of 493,573), the others a real past date
    expect(share(rows, (r) => r.OBSDTEC === ZERO_DATE)).toBeCloseTo(PROD.active / FULL_CATALOGUE_ROWS, 2);
    expect(
      rows.every((r) => r.OBSDTEC === ZERO_DATE || String(r.OBSDTEC) < '2026-01-01 00:00:00.000000'),
    ).toBe(true);
    // always-empty / always-zero-date / constant columns
    for (const r of rows) {
      expect([r.DESI, r.DESI2, r.LN25, r.HCFA_DESI1]).toEqual(['', '', '', '']);
      expect([r.DESDTEC, r.DES2DTEC, r.HCFA_DESC1]).toEqual([ZERO_DATE, ZERO_DATE, ZERO_DATE]);
      expect([r.GPI, r.GSI]).toEqual(['9', '9']);
    }
    expect(share(rows, (r) => r.BN === '')).toBeGreaterThan(0.2);
    expect(distinct(rows, 'HCFA_FDA')).toBe(23);
    expect(share(rows, (r) => r.GCN_SEQNO === null)).toBeGreaterThan(0);
    expect(share(rows, (r) => r.GCN_SEQNO === null)).toBeLessThan(0.01);
  });

  it('builds label names from real ingredients, strengths, forms and brands (ASCII, upper case)', () => {
    const names = rows.map((r) => String(r.LN60));
    expect(names.every((n) => /^[A-Z0-9 .,%/-]+$/.test(n))).toBe(true);
    expect(names.some((n) => /^LISINOPRIL[A-Z ]* \d/.test(n))).toBe(true);
    expect(names.some((n) => /^(ZEPBOUND|MOUNJARO|OZEMPIC|WEGOVY|LANTUS) [\d.]+ (MG|UNIT)/.test(n))).toBe(
      true,
    );
    expect(rows.some((r) => String(r.LN60).startsWith('OXYCODONE') && r.DEA === '2')).toBe(true);
    // the schedule belongs to the ingredient
    expect(rows.filter((r) => String(r.LN60).startsWith('ALPRAZOLAM')).every((r) => r.DEA === '4')).toBe(
      true,
    );
    expect(rows.filter((r) => String(r.LN60).startsWith('LISINOPRIL')).every((r) => r.DEA === '0')).toBe(
      true,
    );
    // injectables carry needle/syringe data; solids do not
    expect(rows.some((r) => r.PD === 'SYRINGE' && r.NDL_GDGE !== null)).toBe(true);
    expect(rows.filter((r) => r.DF === '1').every((r) => r.SYR_CPCTY === null)).toBe(true);
    // and the mapping understands them: generic name is the text before the first ' <digit>'
    const lisinopril = rows.find((r) => isEligible(r) && /^LISINOPRIL \d/.test(String(r.LN)));
    expect(mapRow(lisinopril as Rndc14Row)?.generic_name).toBe('lisinopril');
  });

  it('includes a few percent of rows that fail eligibility: null LN and trimmed LN of 3 bytes or less', () => {
    const ineligible = rows.filter((r) => !isEligible(r));
    expect(ineligible.length / N).toBeGreaterThan(0.01);
    expect(ineligible.length / N).toBeLessThan(0.04);
    expect(ineligible.some((r) => r.LN === null)).toBe(true);
    expect(ineligible.some((r) => r.LN !== null && String(r.LN) !== String(r.LN).trim())).toBe(true);
    // their LN60 is still a real name: only LN decides eligibility
    expect(ineligible.every((r) => String(r.LN60).length > 3)).toBe(true);
  });

  it('produces values that fit the column types and sizes', () => {
    const misfits: string[] = [];
    const names = RNDC14_COLUMN_NAMES;
    const checks = RNDC14_COLUMNS.map((c): ((v: unknown) => boolean) => {
      switch (c.kind) {
        case 'varchar':
          return (v) => typeof v === 'string' && Buffer.byteLength(v) <= (c.size as number);
        case 'datetime':
          return (v) => typeof v === 'string' && /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}$/.test(v);
        case 'decimal': {
          const [p, sc] = c.size as [number, number];
          const re = new RegExp(`^\\d{1,${p - sc}}\\.\\d{${sc}}$`);
          return (v) => typeof v === 'string' && re.test(v);
        }
        default:
          return (v) => Number.isInteger(v) && Math.abs(v as number) < 2 ** 23;
      }
    });
    for (const r of rows) {
      if (Object.keys(r).join() !== names.join()) misfits.push(`${r.NDC}: columns ${Object.keys(r).join()}`);
      RNDC14_COLUMNS.forEach((c, i) => {
        const v = r[c.name];
        if (v !== null && !(checks[i] as (v: unknown) => boolean)(v)) misfits.push(`${r.NDC} ${c.name}=${v}`);
      });
    }
    expect(misfits.slice(0, 10)).toEqual([]);
  });

  it('reaches the production figures at full size (493,573 rows)', () => {
    // Act: one streaming pass
    const sets = { ln60: new Set(), bn: new Set(), gcn: new Set(), lblr: new Set(), pndc: new Set() };
    let active = 0;
    let eligible = 0;
    let n = 0;
    for (const r of generateCatalogue(FULL_CATALOGUE_ROWS, 42)) {
      n++;
      sets.ln60.add(r.LN60);
      if (r.BN !== '') sets.bn.add(r.BN);
      if (r.GCN_SEQNO !== null) sets.gcn.add(r.GCN_SEQNO);
      sets.lblr.add(r.LBLRID);
      if (r.PNDC !== '') sets.pndc.add(r.PNDC);
      if (r.OBSDTEC === ZERO_DATE) active++;
      if (isEligible(r)) eligible++;
    }
    // Assess
    expect(n).toBe(FULL_CATALOGUE_ROWS);
    expect(Math.abs(sets.ln60.size / PROD.ln60 - 1)).toBeLessThan(0.05);
    expect(Math.abs(sets.bn.size / PROD.bn - 1)).toBeLessThan(0.05);
    expect(Math.abs(sets.gcn.size / PROD.gcn - 1)).toBeLessThan(0.05);
    expect(sets.lblr.size).toBe(PROD.labelers);
    expect(Math.abs(sets.pndc.size / PROD.pndc - 1)).toBeLessThan(0.05);
    expect(Math.abs(active / PROD.active - 1)).toBeLessThan(0.03);
    expect(eligible / n).toBeGreaterThan(0.96);
    expect(eligible / n).toBeLessThan(0.99);
  }, 60_000);

  it('derives realistic changes', () => {
    // Prepare
    const row = makeRow({}, 3);
    // Act + Assess: rename changes the names only
    const renamed = changes.rename(row, 1);
    expect(renamed.LN).not.toBe(row.LN);
    expect(renamed.LN60).not.toBe(row.LN60);
    expect(String(renamed.LN).length).toBeLessThanOrEqual(30);
    expect({ ...renamed, LN: row.LN, LN60: row.LN60 }).toEqual(row);
    // a price-list change touches no name and no indexed field
    const priced = changes.priceList(row);
    expect(priced).toEqual(changes.priceList(row));
    expect(priced.HCFA_PS).toBe(priced.PS);
    expect(priced.PS).toMatch(/^\d+\.\d{3}$/);
    expect(mapRow(priced)).toEqual(mapRow(row));
    // eligibility flips both ways
    const off = changes.flipEligibility(row);
    expect(isEligible(off)).toBe(false);
    expect(isEligible(changes.flipEligibility(off))).toBe(true);
    expect(isEligible(makeRow({ LN: null }))).toBe(false);
    // a new NDC for the same product: same labeler and product, another package
    for (const k of [0, 1, 99, 100]) {
      const moved = changes.newNdc(row, k);
      expect(moved.NDC).not.toBe(row.NDC);
      expect(String(moved.NDC).slice(0, 9)).toBe(String(row.NDC).slice(0, 9));
      expect(moved.NDC).toMatch(/^\d{11}$/);
    }
  });

  it('encodes TSV lines for LOAD DATA: \\N for NULL, escapes, 68 fields', () => {
    const row = makeRow({ AD: 'A\tB\\C\nD\rE', BN: null, PD: '\\N' });
    const line = tsvLine(row);
    expect(line.endsWith('\n')).toBe(true);
    const fields = line.slice(0, -1).split('\t');
    expect(fields).toHaveLength(68);
    expect(fields[RNDC14_COLUMNS.findIndex((c) => c.name === 'AD')]).toBe('A\\tB\\\\C\\nD\\rE');
    expect(fields[RNDC14_COLUMNS.findIndex((c) => c.name === 'BN')]).toBe('\\N');
    expect(fields[RNDC14_COLUMNS.findIndex((c) => c.name === 'PD')]).toBe('\\\\N');
  });
});

describe('drugsync seed (real MariaDB)', () => {
  const conns: Connection[] = [];
  afterAll(async () => {
    for (const c of conns) await c.end();
  });

  it('creates the table and loads the catalogue exactly: every row and value read back, zero dates intact', async () => {
    // Prepare
    const env = suiteEnv('seed');
    const expected = [...generateCatalogue(20_000, 5)];
    // Act
    const r = cli(['seed', '--rows', '20000', '--seed', '5', '--json'], { ...process.env, ...env });
    // Assess
    expect(r.status, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as Record<string, number>;
    expect(Object.keys(summary)).toEqual([
      'rows',
      'distinct_ln60',
      'distinct_bn',
      'eligible',
      'active',
      'seconds',
      'rows_per_second',
    ]);
    expect(summary.rows).toBe(20_000);
    expect(summary.eligible).toBe(expected.filter(isEligible).length);
    expect(summary.distinct_ln60).toBe(distinct(expected, 'LN60'));
    expect(summary.distinct_bn).toBe(distinct(expected, 'BN'));
    expect(summary.active).toBe(expected.filter((x) => x.OBSDTEC === ZERO_DATE).length);
    expect(summary.active).toBeGreaterThan(0);
    const conn = await adminConnection(env, env.DB_NAME);
    conns.push(conn);
    const [zero] = await conn.query(
      `SELECT COUNT(*) AS n FROM rndc14 WHERE OBSDTEC = '0000-00-00 00:00:00.000000'`,
    );
    expect(Number((zero as { n: number }[])[0]?.n)).toBe(summary.active);
    const [all] = await conn.query('SELECT * FROM rndc14 ORDER BY NDC');
    const byNdc = (a: Rndc14Row, b: Rndc14Row) => (String(a.NDC) < String(b.NDC) ? -1 : 1);
    expect(all as Rndc14Row[]).toEqual([...expected].sort(byNdc));
  }, 60_000);

  it('loads awkward text exactly (tabs, backslashes, newlines, literal \\N, non-ASCII) and keeps NULL apart from empty', async () => {
    // Prepare
    const env = suiteEnv('seed_load');
    const conn = await createSuiteDatabase(env);
    conns.push(conn);
    const base = [...generateCatalogue(50, 3)];
    const rows = base.map((r, i) =>
      i === 0
        ? { ...r, AD: 'A\tB\\C', LN60: 'LINE\nBREAK\r\\N', BN: '\\N', PD: null, LN: 'ÄSPIRIN 81 MG 😀' }
        : i === 1
          ? { ...r, AD: '', BN: null, OBSDTEC: ZERO_DATE, PS: '0.500', SHLF_PCK: null }
          : r,
    );
    // Act
    const loaded = await loadRows(conn, rows, {
      schema: env.DB_NAME as string,
      table: 'rndc14',
      chunkRows: 7,
    });
    // Assess
    expect(loaded).toBe(rows.length);
    const [back] = await conn.query('SELECT * FROM rndc14 WHERE NDC IN (?, ?)', [rows[0]?.NDC, rows[1]?.NDC]);
    const got = new Map((back as Rndc14Row[]).map((r) => [r.NDC, r]));
    expect(got.get(rows[0]?.NDC as string)).toEqual(rows[0]);
    expect(got.get(rows[1]?.NDC as string)).toEqual(rows[1]);
    const [count] = await conn.query('SELECT COUNT(*) AS n FROM rndc14');
    expect(Number((count as { n: number }[])[0]?.n)).toBe(rows.length);
  });

  it('fails the load instead of dropping rows silently (duplicate NDC, value too long)', async () => {
    // Prepare
    const env = suiteEnv('seed_load');
    const conn = await createSuiteDatabase(env);
    conns.push(conn);
    const rows = [...generateCatalogue(20, 4)];
    const dup = [...rows, { ...(rows[3] as Rndc14Row) }];
    const long = [{ ...(rows[0] as Rndc14Row), LN: 'X'.repeat(31) }];
    const opts = { schema: env.DB_NAME as string, table: 'rndc14' };
    // Act + Assess
    await expect(loadRows(conn, dup, opts)).rejects.toMatchObject({ code: 'SEED_FAILED' });
    await conn.query('TRUNCATE TABLE rndc14');
    await expect(loadRows(conn, long, opts)).rejects.toThrow(/LN/);
  });

  it('refuses bad input with exit code 2, naming every problem', () => {
    // Act
    const badRows = cli(['seed', '--rows', 'many'], { ...process.env, DRUGSYNC_NO_ENV_FILE: '1' });
    const badEnv = cli(['seed', '--rows', '10'], {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      DRUGSYNC_NO_ENV_FILE: '1',
      DB_PORT: 'abc',
    });
    // Assess
    expect(badRows.status).toBe(2);
    expect(badRows.stderr).toContain('--rows');
    expect(badEnv.status).toBe(2);
    expect(badEnv.stderr).toContain('DB_PORT');
    expect(badEnv.stderr).toContain('DB_ADMIN_USER');
  });
});
