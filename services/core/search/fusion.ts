/**
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): each list votes 1 / (c + rank) for
 * every id it holds (rank from 1), the votes add up, and ids are ordered by their sum. It needs no score
 * calibration between the lists (a BM25 score and a cosine distance are not comparable), which is why
 * hybrid search uses it. `c` = 60 is the constant of the paper. Ties keep the order of first appearance
 * (earlier list, then earlier rank), so the result is deterministic.
 */
export const RRF_C = 60;

export interface Fused {
  id: string;
  score: number;
  /** rank (from 1) of the id in each input list, undefined where it is absent */
  ranks: (number | undefined)[];
}

export function reciprocalRankFusion(lists: readonly (readonly string[])[], c = RRF_C): Fused[] {
  if (!(c >= 0)) throw new RangeError(`the RRF constant must be ≥ 0, got ${c}`);
  const byId = new Map<string, Fused & { first: number }>();
  let order = 0;
  lists.forEach((list, li) => {
    const seen = new Set<string>();
    list.forEach((id, i) => {
      if (seen.has(id)) return; // a list votes once per id, at its best rank
      seen.add(id);
      let f = byId.get(id);
      if (!f) {
        f = { id, score: 0, ranks: lists.map(() => undefined), first: order++ };
        byId.set(id, f);
      }
      f.score += 1 / (c + i + 1);
      f.ranks[li] = i + 1;
    });
  });
  return [...byId.values()]
    .sort((a, b) => b.score - a.score || a.first - b.first)
    .map(({ id, score, ranks }) => ({ id, score, ranks }));
}
