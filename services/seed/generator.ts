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
 */
import { RNDC14_COLUMNS, ZERO_DATE } from '../core/rndc14.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { isEligible } from '../core/mapping.ts';
import { int, pick, prng, weighted } from './random.ts';
import type { Rand } from './random.ts';
import { BRAND_SYLLABLES, INGREDIENTS, REAL_BRANDS, ROUTES, ROUTE_TABLE } from './vocabulary.ts';
import type { Form, Route } from './vocabulary.ts';

export { prng } from './random.ts';

export const FULL_CATALOGUE_ROWS = 493_573;

// ------------------------------------------------------------------------------------------ structure

interface Product {
  ln60: string;
  bn: string;
  gcn: number;
  df: string;
  pd: string;
  hcfaUnit: string;
  dea: string;
  innov: string;
  ps: readonly string[];
  /** manufacturer labeler index */
  labeler: number;
  productCode: number;
}

export interface CatalogueShape {
  rows: number;
  formulations: number;
  products: number;
  labelers: number;
}

export function catalogueShape(rows: number): CatalogueShape {
  return {
    rows,
    formulations: Math.max(1, Math.round(rows * (32_257 / FULL_CATALOGUE_ROWS))),
    products: Math.max(1, Math.round(rows * (97_463 / FULL_CATALOGUE_ROWS))),
    labelers: Math.max(1, Math.round(rows * (4_590 / FULL_CATALOGUE_ROWS))),
  };
}

function brandName(k: number): string {
  // A deterministic, pronounceable, unique name per k (base-50 syllables).
  let s = '';
  let n = k + 50;
  while (n > 0) {
    s += BRAND_SYLLABLES[n % BRAND_SYLLABLES.length];
    n = Math.floor(n / BRAND_SYLLABLES.length);
  }
  return s;
}

function buildProducts(shape: CatalogueShape, r: Rand): Product[] {
  const products: Product[] = [];
  const seen = new Set<string>();
  const formulations: {
    base: string;
    ing: string;
    dea: string;
    strength: string;
    form: Form;
    df: string;
    ps: readonly string[];
  }[] = [];
  const fseen = new Set<string>();
  // Pick the dosage form code first (the documented mix), then an ingredient sold that way, then a route.
  const byDf = new Map<string, { ing: readonly [string, string]; routes: string }[]>();
  for (const ing of INGREDIENTS) {
    const routes = ROUTES[ing[0]] ?? 'o';
    for (const df of new Set([...routes].map((c) => (ROUTE_TABLE[c] as Route).df))) {
      byDf.set(df, [...(byDf.get(df) ?? []), { ing, routes }]);
    }
  }
  while (formulations.length < shape.formulations) {
    const df = weighted(r, [
      ['1', 70.1],
      ['2', 19.9],
      ['3', 10],
    ]);
    const pool = byDf.get(df) as { ing: readonly [string, string]; routes: string }[];
    // A repeated formulation is redrawn within the same code (so collisions cannot shift the mix); after
    // many misses in a row (a vocabulary used up, tiny catalogues aside) the repeat is accepted.
    for (let miss = 0; ; miss++) {
      const { ing: ingredient, routes } = pick(r, pool);
      const [base, dea] = ingredient;
      const candidates = [...routes].filter((c) => (ROUTE_TABLE[c] as Route).df === df);
      const route = ROUTE_TABLE[pick(r, candidates)] as Route;
      const ing = base + pick(r, route.salts);
      const form = pick(r, route.forms);
      const strength = pick(r, route.strengths);
      const key = `${ing}|${strength}|${form[0]}`;
      if (fseen.has(key) && miss < 1_000) continue;
      fseen.add(key);
      formulations.push({ base, ing, dea, strength, form, df, ps: route.ps });
      break;
    }
  }
  // Brand families: a brand covers one ingredient across strengths and forms.
  const brandOf = new Map<string, number[]>();
  const realUsed = new Map<string, number>();
  const brandNames: string[] = [];
  let brands = 0;
  const brandTarget = Math.round(shape.rows * (47_853 / FULL_CATALOGUE_ROWS));
  for (let j = 0; products.length < shape.products; j++) {
    const fi = j < formulations.length ? j : int(r, formulations.length);
    const f = formulations[fi] as (typeof formulations)[number];
    const generic = j < formulations.length || r() < 0.22;
    let bn = '';
    let ln60: string;
    if (generic) {
      ln60 = `${f.ing} ${f.strength} ${f.form[0]}`;
      // Branded generics and repackager labels often carry a brand name too.
      if (r() < 0.3) bn = f.ing.split(' ')[0] as string;
      if (j >= formulations.length)
        ln60 = `${ln60} ${pick(r, ['UD', 'BULK', 'PF', 'HOSPITAL PACK', 'UNIT DOSE', 'DISPENSER', 'KIT', 'REPACK'])}`;
    } else {
      const fam = brandOf.get(f.ing) ?? [];
      let b: number;
      if (fam.length === 0 || (brands < brandTarget && r() < 0.97)) {
        b = brands++;
        fam.push(b);
        brandOf.set(f.ing, fam);
        // Well-known ingredients get their real brand names first (PRINIVIL, ZEPBOUND, LANTUS...).
        const real = REAL_BRANDS[f.base];
        const used = realUsed.get(f.base) ?? 0;
        if (real && used < real.length) {
          brandNames[b] = real[used] as string;
          realUsed.set(f.base, used + 1);
        } else brandNames[b] = brandName(b).slice(0, 30);
      } else {
        b = pick(r, fam);
      }
      bn = brandNames[b] as string;
      ln60 = `${bn} ${f.strength} ${f.form[0]}`;
    }
    ln60 = ln60.slice(0, 60).trimEnd();
    if (seen.has(ln60)) continue;
    seen.add(ln60);
    const brandLabel = !generic;
    products.push({
      ln60,
      bn,
      gcn: 10_000 + fi * 3 + 1,
      df: f.df,
      pd: f.form[1],
      hcfaUnit: f.form[2],
      // The schedule belongs to the ingredient: every alprazolam label is C-IV, no lisinopril is controlled.
      dea: f.dea,
      innov: brandLabel && r() < 0.34 ? '1' : '0',
      ps: f.ps,
      labeler: int(r, shape.labelers),
      productCode: int(r, 10_000),
    });
  }
  return products;
}

// ------------------------------------------------------------------------------------------ rows

const pad = (n: number, w: number) => String(n).padStart(w, '0');

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

/** `k` distinct whole numbers in [from, from + span), in random order. */
function distinctInts(r: Rand, k: number, from: number, span: number): number[] {
  const out: number[] = [];
  const seen = new Set<number>();
  while (out.length < Math.min(k, span)) {
    const x = from + int(r, span);
    if (!seen.has(x)) {
      seen.add(x);
      out.push(x);
    }
  }
  return out;
}

/** Takes a random element out of `pool` (swap-remove), so each is handed out once. */
function takeOne(r: Rand, pool: string[]): string {
  const j = int(r, pool.length);
  const v = pool[j] as string;
  pool[j] = pool[pool.length - 1] as string;
  pool.pop();
  return v;
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

/** Distinct labeler ids, one per labeler of the catalogue's shape. */
function labelerIdsOf(r: Rand, n: number): number[] {
  const ids: number[] = [];
  const seen = new Set<number>();
  while (ids.length < n) {
    const id = 2 + int(r, 99_990);
    if (!seen.has(id)) {
      seen.add(id);
      ids.push(id);
    }
  }
  return ids;
}

/** The product of each row: every product at least once, the rest by a skewed popularity; then shuffled. */
function assignProducts(r: Rand, rows: number, products: number): Int32Array {
  const assign = new Int32Array(rows);
  for (let i = 0; i < rows; i++) {
    assign[i] = i < products ? i : Math.floor(products * r() ** 1.7);
  }
  for (let i = rows - 1; i > 0; i--) {
    const j = int(r, i + 1);
    const t = assign[i] as number;
    assign[i] = assign[j] as number;
    assign[j] = t;
  }
  return assign;
}

/** Pass 1's result: who makes each row, its unique NDC, its previous/replacement NDC links. */
interface RowIdentities {
  ndcOf: string[];
  ndcNum: Float64Array;
  repackOf: Uint8Array;
  pndcOf: Map<number, string>;
  repndcOf: Map<number, string>;
}

/**
 * Pass 1, in catalogue order: who makes each row (manufacturer or repackager), its unique NDC, and the
 * previous/replacement NDC links (to rows met earlier in that order).
 */
function assignIdentities(
  r: Rand,
  rows: number,
  products: readonly Product[],
  assign: Int32Array,
  labelerIds: readonly number[],
): RowIdentities {
  const ids: RowIdentities = {
    ndcOf: new Array<string>(rows),
    ndcNum: new Float64Array(rows),
    repackOf: new Uint8Array(rows),
    pndcOf: new Map(),
    repndcOf: new Map(),
  };
  const used = new Set<string>();
  const pndcPool: string[] = [];
  const repndcPool: string[] = [];
  const linkShare = 18_543 / FULL_CATALOGUE_ROWS;
  for (let i = 0; i < rows; i++) {
    const p = products[assign[i] as number] as Product;
    const repack = r() < 0.243;
    const labeler = repack
      ? (labelerIds[int(r, labelerIds.length)] as number)
      : (labelerIds[p.labeler] as number);
    let ndc: string;
    for (let attempt = 0; ; attempt++) {
      const product = attempt === 0 ? p.productCode : int(r, 10_000);
      ndc = `${pad(labeler, 5)}${pad(product, 4)}${pad(int(r, 100), 2)}`;
      if (!used.has(ndc)) break;
    }
    used.add(ndc);
    ids.ndcOf[i] = ndc;
    ids.ndcNum[i] = Number(ndc);
    ids.repackOf[i] = repack ? 1 : 0;
    if (pndcPool.length > 0 && r() < linkShare) ids.pndcOf.set(i, takeOne(r, pndcPool));
    if (repndcPool.length > 0 && r() < linkShare) ids.repndcOf.set(i, takeOne(r, repndcPool));
    const link = r();
    if (link < 0.1) pndcPool.push(ndc);
    else if (link < 0.2) repndcPool.push(ndc);
  }
  return ids;
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
  const r = prng(opts.seed);
  const shape = catalogueShape(opts.rows);
  const products = buildProducts(shape, r);
  const labelerIds = labelerIdsOf(r, shape.labelers);
  const assign = assignProducts(r, opts.rows, products.length);
  // DUPDC takes 2,506 distinct dates at full size; PNDC and REPNDC each name ~18.5K distinct earlier NDCs.
  const dupdcDays = distinctInts(
    r,
    Math.max(1, Math.round(opts.rows * (2_506 / FULL_CATALOGUE_ROWS))),
    8_000,
    6_000,
  );
  const ids = assignIdentities(r, opts.rows, products, assign, labelerIds);
  const order = Uint32Array.from({ length: opts.rows }, (_, i) => i);
  if (opts.order === 'ndc') order.sort((a, b) => (ids.ndcNum[a] as number) - (ids.ndcNum[b] as number));
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

/** Column names in table order (for LOAD DATA and INSERT). */
export const COLUMN_NAMES: readonly string[] = RNDC14_COLUMNS.map((c) => c.name);

// ------------------------------------------------------------------------------------------ factories

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
