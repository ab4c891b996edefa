/**
 * GCN-group expansion: a pharmacist substitutes within a GCN_SEQNO group (one formulation: ingredient,
 * strength, form), so a label that is what the user typed stands for its whole group. After a search, the
 * hits that match every typed word (the "anchors": `lipitor` → the LIPITOR labels) keep their order, and the
 * slots left in the top k are filled with the other labels of the anchors' groups (LIPITOR 40 MG TABLET →
 * ATORVASTATIN 40 MG TABLET), each placed after the anchor it came from. Hits that are not anchors follow,
 * in their order, in whatever slots remain. Nothing changes when no hit is an anchor (no label carries
 * every word: `cholesterol pill`) or when the anchors alone fill k.
 *
 * A word matches a label as the text query does (query.ts): a word of the label's drug_name or brand_name
 * equal to it, starting with it, or within its typo distance (1 from five letters, 2 from eight; numbers
 * exactly). This is the pure part; search.ts reads the groups' labels.
 */
import { queryWords, typoDistance } from './query.ts';

/** The part of a search hit expansion reads and writes. */
export interface GroupHit {
  ndc: string;
  score: number;
  fields: Record<string, string>;
  /** set on a label added by expansion: the NDC of the anchor whose group it belongs to */
  expandedFrom?: string;
}

/** Levenshtein distance of a and b, or limit + 1 as soon as it exceeds limit. */
export function editDistance(a: string, b: string, limit: number): number {
  if (Math.abs(a.length - b.length) > limit) return limit + 1;
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    let best = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      const d = Math.min((prev[j] as number) + 1, (cur[j - 1] as number) + 1, (prev[j - 1] as number) + cost);
      cur.push(d);
      best = Math.min(best, d);
    }
    if (best > limit) return limit + 1;
    prev = cur;
  }
  return prev[b.length] as number;
}

/** Whether one query word matches one word of a label: exact, prefix, or within the word's typo distance. */
export function wordMatches(queryWord: string, labelWord: string): boolean {
  if (labelWord === queryWord) return true;
  if (/^\d+$/.test(queryWord)) return false;
  if (labelWord.startsWith(queryWord)) return true;
  const d = typoDistance(queryWord);
  return d > 0 && editDistance(queryWord, labelWord, d) <= d;
}

/** Whether a label's drug_name or brand_name carries every searchable word of the query (false for none). */
export function matchesAllWords(text: string, fields: Record<string, string>): boolean {
  const words = [...new Set(queryWords(text))];
  if (words.length === 0) return false;
  const label = `${fields.drug_name ?? ''} ${fields.brand_name ?? ''}`
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter(Boolean);
  return words.every((w) => label.some((l) => wordMatches(w, l)));
}

/** A hit's GCN_SEQNO group, or undefined for a label without one (GCN 0 or missing: no group to expand). */
export function groupOf(hit: GroupHit): number | undefined {
  const g = Number(hit.fields.gcn_seqno);
  return Number.isInteger(g) && g > 0 ? g : undefined;
}

export interface ExpansionPlan<H extends GroupHit> {
  anchors: H[];
  /** the anchors' groups in the order of their first anchor */
  groups: number[];
  /** how many slots of the top k are left for the groups' other labels */
  slots: number;
}

/** The anchors among the top k hits and their groups, or null when expansion has nothing to do. */
export function planExpansion<H extends GroupHit>(
  text: string,
  hits: readonly H[],
  k: number,
): ExpansionPlan<H> | null {
  const anchors = hits.slice(0, k).filter((h) => matchesAllWords(text, h.fields));
  const slots = k - anchors.length;
  const groups = [...new Set(anchors.map(groupOf).filter((g): g is number => g !== undefined))];
  if (slots <= 0 || groups.length === 0) return null;
  return { anchors, groups, slots };
}

/**
 * The expanded top k: each anchor in order, followed by the labels of its group not listed yet (in the
 * order `members` gives them) while slots remain, then the other hits in their order. `members` maps a
 * group to its labels; a group absent from it adds nothing. A label added takes its anchor's score.
 */
export function expandByGroup<H extends GroupHit>(
  hits: readonly H[],
  plan: ExpansionPlan<H>,
  members: ReadonlyMap<number, readonly H[]>,
  k: number,
): H[] {
  const listed = new Set(plan.anchors.map((h) => h.ndc));
  let slots = plan.slots;
  const out: H[] = [];
  for (const anchor of plan.anchors) {
    out.push(anchor);
    const g = groupOf(anchor);
    for (const m of g === undefined ? [] : (members.get(g) ?? [])) {
      if (slots === 0) break;
      if (listed.has(m.ndc)) continue;
      listed.add(m.ndc);
      out.push({ ...m, score: anchor.score, expandedFrom: anchor.ndc });
      slots--;
    }
  }
  for (const h of hits) {
    if (out.length >= k) break;
    if (!listed.has(h.ndc)) {
      listed.add(h.ndc);
      out.push(h);
    }
  }
  return out.slice(0, k);
}
