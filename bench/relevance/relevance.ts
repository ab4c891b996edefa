/**
 * The relevance set (bench/relevance/queries.json): queries a prescriber or pharmacist types, each with
 * the RULE that picks its relevant labels from whatever catalogue is indexed, so no NDC list is written by
 * hand and the set survives a reseed. docs/search.md explains how it was built.
 *
 * A label's ingredient is read from its GCN_SEQNO group (the therapeutically equivalent formulation): the
 * group's generic labels are named after the ingredient (`ATORVASTATIN CALCIUM 40 MG TABLET`), its brand
 * labels after the brand (`LIPITOR 40 MG TABLET`), so a brand label is an atorvastatin label because a
 * generic label of its group says so. Ingredient X matches a generic name equal to x or starting with
 * `x ` (a salt: `atorvastatin calcium`), never `x-` (`amoxicillin` is not `amoxicillin-clavulanate`).
 *
 * A rule: (ingredient in `ingredients` ∪ the members of `classes`) OR (brand_name in `brands`), AND the
 * dosage form code in `dosageForms` when given, AND drug_name matching the regular expression `name`.
 */
import fs from 'node:fs';
import { z } from 'zod';
import { DrugsyncError } from '../../services/core/errors.ts';
import type { DrugFields } from '../../services/core/mapping.ts';

const upperList = z.array(
  z
    .string()
    .min(1)
    .regex(/^[A-Z0-9 ./-]+$/, 'upper case, as in label names'),
);

const ruleSchema = z
  .object({
    ingredients: upperList.optional(),
    classes: z.array(z.string().min(1)).optional(),
    brands: upperList.optional(),
    dosageForms: z.array(z.enum(['1', '2', '3'])).optional(),
    name: z.string().min(1).optional(),
  })
  .strict()
  .refine((r) => (r.ingredients?.length ?? 0) + (r.classes?.length ?? 0) + (r.brands?.length ?? 0) > 0, {
    message: 'a rule names at least one ingredient, class or brand',
  });

export const QUERY_KINDS = ['ingredient', 'misspelling', 'brand', 'strength-form', 'plain'] as const;
export type QueryKind = (typeof QUERY_KINDS)[number];

const setSchema = z
  .object({
    description: z.string(),
    catalogue: z.object({ rows: z.number().int().positive(), seed: z.number().int() }).strict(),
    k: z.number().int().positive(),
    classes: z.record(z.string(), upperList),
    queries: z
      .array(
        z
          .object({
            id: z.string().regex(/^[a-z0-9-]+$/),
            kind: z.enum(QUERY_KINDS),
            query: z.string().min(1),
            rule: ruleSchema,
          })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type RelevanceSet = z.infer<typeof setSchema>;
export type RelevanceRule = z.infer<typeof ruleSchema>;
export type RelevanceQuery = RelevanceSet['queries'][number];

export function parseRelevanceSet(json: unknown, source = 'relevance set'): RelevanceSet {
  const r = setSchema.safeParse(json);
  if (!r.success)
    throw new DrugsyncError('CONFIG_INVALID', `${source} is malformed: ${r.error.issues[0]?.message}`, {
      context: { source, issues: r.error.issues.slice(0, 5).map((i) => `${i.path.join('.')}: ${i.message}`) },
      remedy: 'fix the file against bench/relevance/relevance.ts (setSchema)',
    });
  const ids = new Set<string>();
  for (const q of r.data.queries) {
    if (ids.has(q.id)) throw new DrugsyncError('CONFIG_INVALID', `${source}: query id ${q.id} twice`);
    ids.add(q.id);
    for (const c of q.rule.classes ?? [])
      if (!(c in r.data.classes))
        throw new DrugsyncError('CONFIG_INVALID', `${source}: query ${q.id} names unknown class ${c}`, {
          remedy: `add ${c} to "classes" or fix the name`,
        });
  }
  return r.data;
}

export function loadRelevanceSet(file: string): RelevanceSet {
  return parseRelevanceSet(JSON.parse(fs.readFileSync(file, 'utf8')) as unknown, file);
}

/**
 * GCN_SEQNO → the generic names (lower case) of the group's labels. GCN 0 (a null GCN_SEQNO) is no group:
 * such a label is judged by its own name alone.
 */
export function groupNames(docs: readonly DrugFields[]): Map<number, Set<string>> {
  const groups = new Map<number, Set<string>>();
  for (const d of docs) {
    if (d.gcn_seqno === 0) continue;
    let s = groups.get(d.gcn_seqno);
    if (!s) groups.set(d.gcn_seqno, (s = new Set()));
    s.add(d.generic_name);
  }
  return groups;
}

function namesIngredient(genericName: string, ingredient: string): boolean {
  const x = ingredient.toLowerCase();
  return genericName === x || genericName.startsWith(`${x} `);
}

/** The ingredients a rule stands for: its own plus its classes' members. */
function ruleIngredients(rule: RelevanceRule, classes: RelevanceSet['classes']): string[] {
  return [...(rule.ingredients ?? []), ...(rule.classes ?? []).flatMap((c) => classes[c] ?? [])];
}

/** NDCs of the documents the rule picks. */
export function relevantNdcs(
  rule: RelevanceRule,
  docs: readonly DrugFields[],
  classes: RelevanceSet['classes'],
  groups: Map<number, Set<string>> = groupNames(docs),
): Set<string> {
  const ingredients = ruleIngredients(rule, classes);
  const brands = new Set(rule.brands ?? []);
  const name = rule.name ? new RegExp(rule.name) : null;
  const groupMatches = new Map<number, boolean>();
  const matches = (names: Iterable<string>) =>
    [...names].some((n) => ingredients.some((x) => namesIngredient(n, x)));
  const inIngredients = (d: DrugFields): boolean => {
    if (d.gcn_seqno === 0) return matches([d.generic_name]);
    let m = groupMatches.get(d.gcn_seqno);
    if (m === undefined) groupMatches.set(d.gcn_seqno, (m = matches(groups.get(d.gcn_seqno) ?? [])));
    return m;
  };
  const out = new Set<string>();
  for (const d of docs) {
    if (!(brands.has(d.brand_name) || inIngredients(d))) continue;
    if (rule.dosageForms && !(rule.dosageForms as readonly string[]).includes(d.dosage_form)) continue;
    if (name && !name.test(d.drug_name)) continue;
    out.add(d.ndc);
  }
  return out;
}

/**
 * Every query's relevant NDCs over the indexed documents. Throws when a query picks nothing, or names an
 * ingredient or brand the catalogue does not have: such a query would measure nothing. (A class may have
 * members the catalogue lacks: a class is pharmacology, not a list of what was seeded.)
 */
export function judgeAll(set: RelevanceSet, docs: readonly DrugFields[]): Map<string, Set<string>> {
  const groups = groupNames(docs);
  const allNames = new Set(docs.map((d) => d.generic_name));
  const brandsHere = new Set(docs.map((d) => d.brand_name));
  const problems: string[] = [];
  const out = new Map<string, Set<string>>();
  for (const q of set.queries) {
    for (const x of q.rule.ingredients ?? [])
      if (![...allNames].some((n) => namesIngredient(n, x))) problems.push(`${q.id}: no ${x} label`);
    for (const b of q.rule.brands ?? []) if (!brandsHere.has(b)) problems.push(`${q.id}: no ${b} label`);
    const rel = relevantNdcs(q.rule, docs, set.classes, groups);
    if (rel.size === 0) problems.push(`${q.id}: the rule picks no label`);
    out.set(q.id, rel);
  }
  if (problems.length)
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `the relevance set does not fit the catalogue: ${problems.slice(0, 8).join('; ')}`,
      {
        context: { problems },
        remedy: `index the catalogue the set was written for (rows ${set.catalogue.rows}, seed ${set.catalogue.seed}) or fix the rules`,
      },
    );
  return out;
}
