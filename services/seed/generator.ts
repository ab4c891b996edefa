/**
 * A deterministic synthetic First Databank catalogue with the shape of production `fdb.rndc14`
 * (shared/data/rndc14.md): the real data is licensed and never leaves production.
 *
 * Structure, from the top:
 * - formulations (ingredient + strength + form) — one GCN_SEQNO each (~32K at full size);
 * - products: label names (LN60) of a formulation, generic ("LISINOPRIL 10 MG TABLET") or branded
 *   ("PRINIVIL 10 MG TABLET") — ~97K at full size, so about one row in five carries a label name no
 *   earlier row had;
 * - rows (NDCs): a product in one package size from one labeler (the manufacturer or a repackager).
 *
 * Values follow the documented distributions; zero dates are where the real table has them; ~2% of rows
 * fail the eligibility rule (null or too-short LN).
 *
 * Two passes: ./catalogue-plan.ts plans formulations, products and each row's identity from the words of
 * ./vocabulary.ts (pass 1, one random stream, ./random.ts); this file writes each row's 68 columns from its
 * own random stream (pass 2) and is what the rest of drugsync imports: `generateCatalogue`, and the changes
 * `drugsync simulate` (and tests) make to rows (`changes`). Tests draw single rows with test/support/factories.ts'
 * `makeRow`, from this generator's catalogue.
 */
import { ZERO_DATE } from '../core/rndc14.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { isEligible } from '../core/mapping.ts';
import { planCatalogue } from './catalogue-plan.ts';
import type { Product } from './catalogue-plan.ts';
import { int, pad, pick, prng, weighted } from './random.ts';
import type { Rand } from './random.ts';

export { catalogueShape, FULL_CATALOGUE_ROWS } from './catalogue-plan.ts';
export type { CatalogueShape } from './catalogue-plan.ts';
export { prng } from './random.ts';

// ------------------------------------------------------------------------------------------ rows (pass 2)

/** DATETIME(6) strings by day since 1985-01-01, built once (the generator is on the load's hot path). */
const DAYS: string[] = [];
function dateFrom(day: number): string {
  let s = DAYS[day];
  if (s === undefined) {
    const d = new Date(Date.UTC(1985, 0, 1) + day * 86_400_000);
    s = `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)} 00:00:00.000000`;
    DAYS[day] = s;
  }
  return s;
}

// prettier-ignore
const HCFA_FDA = [
  '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17',
  '18', '19', '20', '21', '22', '23',
];

export interface GenerateOptions {
  rows: number;
  seed?: number;
  /**
   * 'shuffled' (default): catalogue order, NDCs in no particular order. 'ndc': the same rows sorted by
   * NDC, which InnoDB loads ~1.4x faster (primary key appends). Values per NDC are the same either way.
   */
  order?: 'shuffled' | 'ndc';
}

export const DEFAULT_SEED = 42;

/**
 * The catalogue, row by row (deterministic for a seed): `generateCatalogue(n, seed)` or
 * `generateCatalogue({ rows, seed })`. Memory: the product table (~100K entries at full size) plus one
 * Int32Array of product indices and the set of NDCs used.
 */
export function generateCatalogue(rows: number, seed?: number): Generator<Rndc14Row>;
export function generateCatalogue(opts: GenerateOptions): Generator<Rndc14Row>;
export function generateCatalogue(a: number | GenerateOptions, seed?: number): Generator<Rndc14Row> {
  const opts = typeof a === 'number' ? { rows: a, seed } : a;
  if (!Number.isInteger(opts.rows) || opts.rows < 0) {
    throw new RangeError(`generateCatalogue: rows must be a whole number ≥ 0, got ${opts.rows}`);
  }
  return rowsOf({ rows: opts.rows, seed: opts.seed ?? DEFAULT_SEED, order: opts.order ?? 'shuffled' });
}

/**
 * Pass 2's random streams: every value of row i comes from its own stream (`reseed(i)`), so the same row
 * has the same values in either order.
 */
function rowStreams(seed: number): { ri: Rand; reseed: (i: number) => void } {
  let state = 0;
  const ri: Rand = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const seedMix = Math.imul(seed ^ 0x5bd1e995, 0x9e3779b1);
  const reseed = (i: number) => {
    state = (Math.imul((i + 1) ^ seedMix, 0x85ebca6b) ^ Math.imul(seedMix >>> 13, 0xc2b2ae35)) >>> 0;
  };
  return { ri, reseed };
}

/** What one row's values are drawn from, beside its own random stream. */
interface RowContext {
  p: Product;
  ndc: string;
  repack: string;
  pndc: string;
  repndc: string;
  dupdcDays: readonly number[];
}

function* rowsOf(opts: Required<GenerateOptions>): Generator<Rndc14Row> {
  const { products, assign, ids, dupdcDays, order } = planCatalogue(opts.rows, opts.seed, opts.order);
  const { ri, reseed } = rowStreams(opts.seed);
  for (let pos = 0; pos < opts.rows; pos++) {
    const i = order[pos] as number;
    reseed(i);
    const ctx: RowContext = {
      p: products[assign[i] as number] as Product,
      ndc: ids.ndcOf[i] as string,
      repack: ids.repackOf[i] === 1 ? '1' : '0',
      pndc: ids.pndcOf.get(i) ?? '',
      repndc: ids.repndcOf.get(i) ?? '',
      dupdcDays,
    };
    yield rowColumns(ri, ctx);
  }
}

/**
 * One row: every column drawn from `ri` in column order, left to right. One object literal on purpose: rows
 * built as two halves spread together took a slower object shape (the generator ran ~30 % slower).
 */
function rowColumns(ri: Rand, { p, ndc, repack, pndc, repndc, dupdcDays }: RowContext): Rndc14Row {
  let ln: string | null = p.ln60.slice(0, 30).trimEnd();
  const ineligible = ri();
  if (ineligible < 0.008) ln = null;
  else if (ineligible < 0.02) ln = pick(ri, ['AB', '  X ', 'KIT', '', 'N/A', ' IV ']);
  const active = ri() < 0.2443;
  const syringe = p.pd === 'SYRINGE';
  return {
    NDC: ndc,
    LBLRID: `A${ndc.slice(0, 5)}`,
    LN: ln,
    LN60: p.ln60,
    BN: p.bn,
    GCN_SEQNO: ri() < 0.004 ? null : p.gcn,
    INNOV: p.innov,
    // prettier-ignore
    GNI: weighted(ri, [['1', 54.7], ['2', 31.1], ['0', 14.2]]),
    // prettier-ignore
    GMI: weighted(ri, [['1', 39.5], ['4', 31.7], ['0', 10], ['2', 10], ['3', 8.8]]),
    // prettier-ignore
    GTI: weighted(ri, [['4', 46.6], ['3', 29.9], ['1', 12], ['2', 8], ['0', 3.5]]),
    DF: p.df,
    PS: pick(ri, p.ps),
    AD: ri() < 0.9 ? '' : pick(ri, ['ENSEAL', 'SUV', 'P/F', 'UD', 'S/F', 'DYE-FREE', 'LATEX-FREE']),
    PD: p.pd,
    DEA: p.dea,
    // prettier-ignore
    CL: weighted(ri, [['F', 66.3], ['O', 29.1], ['Q', 4.6]]),
    HOSP: ri() < 0.716 ? '0' : '1',
    UD: ri() < 0.945 ? '0' : '1',
    // prettier-ignore
    OBC: weighted(ri, [['ZB', 43.1], ['ZA', 27.7], ['AB', 19.9], ['AP', 4], ['ZC', 3], ['AA', 2.3]]),
    REPACK: repack,
    STPK: ri() < 0.842 ? '0' : '1',
    IPI: ri() < 0.993 ? '0' : '1',
    MINI: ri() < 0.845 ? '0' : '1',
    DADDNC: dateFrom((int(ri, 8_800) * 1.6) | 0),
    DUPDC: dateFrom(pick(ri, dupdcDays)),
    OBSDTEC: active ? ZERO_DATE : dateFrom(9_000 + int(ri, 5_000)),
    GPIDC: ri() < 0.7 ? ZERO_DATE : dateFrom(5_000 + int(ri, 9_000)),
    BBDC: ri() < 0.95 ? ZERO_DATE : dateFrom(6_000 + int(ri, 8_000)),
    HCFA_FDA: pick(ri, HCFA_FDA),
    // prettier-ignore
    HCFA_UNIT: weighted(ri, [[p.hcfaUnit === 'TAB' ? 'TAB' : 'CAP', 21.3], ['ML', 9.1], ['GM', 2.8], ['', 60], ['EA', 6.8]]),
    HCFA_PS: pick(ri, p.ps),
    // prettier-ignore
    HCFA_TYP: weighted(ri, [['', 65.1], ['1', 27.9], ['2', 7]]),
    // prettier-ignore
    HCFA_DC: weighted(ri, [['', 67], ['N', 26.7], ['I', 3.5], ['S', 2.9]]),
    NDL_GDGE: syringe ? pick(ri, ['25.000', '27.000', '29.000', '31.000']) : null,
    NDL_LNGTH: syringe ? pick(ri, ['0.500', '0.625', '1.000', '1.500']) : null,
    SYR_CPCTY: syringe ? pick(ri, ['0.300', '0.500', '1.000', '3.000']) : null,
    SHLF_PCK: pick(ri, [0, 1, 6, 12, 24]),
    SHIPPER: pick(ri, [0, 12, 24, 48, 144]),
    CSP: pick(ri, [0, 1, 10]),
    PNDC: pndc,
    REPNDC: repndc,
    HOME: ri() < 0.956 ? '0' : '1',
    PLBLR: ri() < 0.906 ? '0' : '1',
    INPCKI: ri() < 0.972 ? '0' : '1',
    OUTPCKI: ri() < 0.97 ? '0' : '1',
    LN25I: ri() < 0.606 ? '1' : '0',
    NDCGI1: ri() < 0.909 ? '1' : '2',
    UU: ri() < 0.993 ? '0' : '1',
    PPI: ri() < 0.99 ? '' : '1',
    TOP200: ri() < 0.02 ? String(1 + int(ri, 196)) : '',
    TOP50GEN: ri() < 0.01 ? String(1 + int(ri, 51)) : '',
    DESI: '',
    DESDTEC: ZERO_DATE,
    DESI2: '',
    DES2DTEC: ZERO_DATE,
    LN25: '',
    HCFA_DESC1: ZERO_DATE,
    HCFA_DESI1: '',
    GPI: '9',
    GSI: '9',
    NDCFI: pick(ri, ['1', '2', '3', '4', '5', '6']),
    OBC_EXP: ri() < 0.8 ? '' : pick(ri, ['AB', 'ZB', 'AP']),
    OBC3: ri() < 0.8 ? '' : pick(ri, ['AB1', 'AB2', 'ZB1', 'AP1']),
    PS_EQUIV: pick(ri, p.ps),
    MAINT: ri() < 0.661 ? '' : '1',
    HCFA_APPC: ri() < 0.6 ? ZERO_DATE : dateFrom(7_000 + int(ri, 7_000)),
    HCFA_MRKC: ri() < 0.6 ? ZERO_DATE : dateFrom(7_000 + int(ri, 7_000)),
    HCFA_TRMC: ri() < 0.9 ? ZERO_DATE : dateFrom(10_000 + int(ri, 4_000)),
  };
}

// ------------------------------------------------------------------------------------------ changes

/** Changes as First Databank publishes them, each returning a new row (the input is not modified). */
export const changes = {
  /** A new label name (LN and LN60): an unknown text, so it needs an embedding. `tag` makes it unique. */
  rename(row: Rndc14Row, tag: string | number): Rndc14Row {
    const [first, ...rest] = String(row.LN60 ?? row.LN ?? 'DRUG').split(' ');
    const ln60 = `${first} N${tag} ${rest.join(' ')}`.slice(0, 60).trimEnd();
    return { ...row, LN60: ln60, LN: ln60.slice(0, 30).trimEnd() };
  },
  /**
   * A price-list style change: package size, HCFA package size and type, date updated; no name or other
   * indexed field changes. Deterministic for a row unless `r` is given.
   */
  priceList(row: Rndc14Row, r: () => number = prng(Number(String(row.NDC ?? '').slice(-7)) || 1)): Rndc14Row {
    const ps = (Math.round(r() * 1000) + 1).toFixed(3);
    return {
      ...row,
      PS: ps,
      HCFA_PS: ps,
      DUPDC: '2026-11-20 00:00:00.000000',
      HCFA_TYP: r() < 0.5 ? '1' : '2',
    };
  },
  /** Makes an eligible row ineligible (LN too short) or an ineligible one eligible again. */
  flipEligibility(row: Rndc14Row): Rndc14Row {
    return isEligible(row)
      ? { ...row, LN: 'KIT' }
      : {
          ...row,
          LN: String(row.LN60 ?? 'ASPIRIN 81 MG TABLET')
            .slice(0, 30)
            .trimEnd(),
        };
  },
  /** A new NDC for the same product (the labeler reassigns the package code); always differs from the old. */
  newNdc(row: Rndc14Row, k: number): Rndc14Row {
    const ndc = String(row.NDC);
    const pkg = (Number(ndc.slice(9)) + 1 + (Math.abs(Math.trunc(k)) % 99)) % 100;
    return { ...row, NDC: `${ndc.slice(0, 9)}${String(pkg).padStart(2, '0')}` };
  },
};
