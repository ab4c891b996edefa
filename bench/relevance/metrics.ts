/**
 * Ranking metrics over one query's ranked result list and its set of relevant ids (binary relevance), as
 * the search bench reports them. All take the cut-off `k` (10 in the bench) and look at the first k
 * results only; an id listed twice counts once (its first position).
 *
 * - recall@k: relevant ids in the top k ÷ min(k, |relevant|), so a query with 40 relevant labels can still
 *   reach 1 when all ten results are relevant (the classic |R|-denominator would cap it at 0.25).
 * - MRR@k: 1 ÷ the rank of the first relevant result in the top k, 0 when none.
 * - nDCG@k: DCG = Σ rel_i / log2(i + 1) over ranks i = 1..k, divided by the ideal DCG (min(k, |relevant|)
 *   relevant results first).
 */

function topK(ranked: readonly string[], k: number): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const id of ranked) {
    if (out.length >= k) break;
    if (seen.has(id)) continue;
    seen.add(id);
    out.push(id);
  }
  return out;
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a whole number ≥ 1, got ${k}`);
}

export function recallAtK(ranked: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  checkK(k);
  if (relevant.size === 0) return 0;
  const hits = topK(ranked, k).filter((id) => relevant.has(id)).length;
  return hits / Math.min(k, relevant.size);
}

export function mrrAtK(ranked: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  checkK(k);
  const i = topK(ranked, k).findIndex((id) => relevant.has(id));
  return i < 0 ? 0 : 1 / (i + 1);
}

export function ndcgAtK(ranked: readonly string[], relevant: ReadonlySet<string>, k: number): number {
  checkK(k);
  if (relevant.size === 0) return 0;
  let dcg = 0;
  topK(ranked, k).forEach((id, i) => {
    if (relevant.has(id)) dcg += 1 / Math.log2(i + 2);
  });
  let ideal = 0;
  for (let i = 0; i < Math.min(k, relevant.size); i++) ideal += 1 / Math.log2(i + 2);
  return dcg / ideal;
}

export interface RankingScores {
  recall: number;
  mrr: number;
  ndcg: number;
}

/** The three metrics of one query. */
export function scoreRanking(
  ranked: readonly string[],
  relevant: ReadonlySet<string>,
  k: number,
): RankingScores {
  return {
    recall: recallAtK(ranked, relevant, k),
    mrr: mrrAtK(ranked, relevant, k),
    ndcg: ndcgAtK(ranked, relevant, k),
  };
}

/** Mean of each metric over queries (0s for none). */
export function meanScores(all: readonly RankingScores[]): RankingScores {
  const n = all.length || 1;
  const sum = (f: (s: RankingScores) => number) => all.reduce((a, s) => a + f(s), 0) / n;
  return { recall: sum((s) => s.recall), mrr: sum((s) => s.mrr), ndcg: sum((s) => s.ndcg) };
}
