/**
 * The plan of the synthetic catalogue, before any row is written (pass 1 of ./generator.ts, one random
 * stream in a fixed order, so a seed always gives the same plan):
 * - formulations (ingredient + salt + strength + form, one GCN_SEQNO each) and products (label names, generic
 *   or branded, brand families per ingredient) from ./vocabulary.ts, in the catalogue's proportions
 *   (`catalogueShape`);
 * - each row's product (every product at least once, the rest by skewed popularity, shuffled), its labeler
 *   (the manufacturer or a repackager), its unique NDC and its previous/replacement NDC links;
 * - the DUPDC dates rows draw from.
 */
import { int, pad, pick, prng, weighted } from './random.ts';
import type { Rand } from './random.ts';
import { BRAND_SYLLABLES, INGREDIENTS, REAL_BRANDS, ROUTES, ROUTE_TABLE } from './vocabulary.ts';
import type { Form, Route } from './vocabulary.ts';

export const FULL_CATALOGUE_ROWS = 493_573;

/** A product: one label name (LN60) and what every row (NDC) of it shares. */
export interface Product {
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
export interface RowIdentities {
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

/** Everything pass 2 writes rows from: products, each row's product and identity, the row order. */
export interface CataloguePlan {
  products: Product[];
  /** product index of each row, in catalogue order */
  assign: Int32Array;
  ids: RowIdentities;
  /** DUPDC's distinct dates (days since 1985-01-01) */
  dupdcDays: number[];
  /** the rows' catalogue indices in the order they are yielded */
  order: Uint32Array;
}

/** Pass 1: the catalogue's plan for `rows` rows and `seed`, its rows in catalogue or NDC order. */
export function planCatalogue(rows: number, seed: number, order: 'shuffled' | 'ndc'): CataloguePlan {
  const r = prng(seed);
  const shape = catalogueShape(rows);
  const products = buildProducts(shape, r);
  const labelerIds = labelerIdsOf(r, shape.labelers);
  const assign = assignProducts(r, rows, products.length);
  // DUPDC takes 2,506 distinct dates at full size; PNDC and REPNDC each name ~18.5K distinct earlier NDCs.
  const dupdcDays = distinctInts(
    r,
    Math.max(1, Math.round(rows * (2_506 / FULL_CATALOGUE_ROWS))),
    8_000,
    6_000,
  );
  const ids = assignIdentities(r, rows, products, assign, labelerIds);
  const rowOrder = Uint32Array.from({ length: rows }, (_, i) => i);
  if (order === 'ndc') rowOrder.sort((a, b) => (ids.ndcNum[a] as number) - (ids.ndcNum[b] as number));
  return { products, assign, ids, dupdcDays, order: rowOrder };
}
