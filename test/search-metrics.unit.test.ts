import { describe, expect, it } from 'vitest';
import { reciprocalRankFusion } from '../services/core/search/fusion.ts';
import { meanScores, mrrAtK, ndcgAtK, recallAtK, scoreRanking } from '../bench/relevance/metrics.ts';

// NDCs as a search returns them: several packages of one label name, then other labels.
const A = '00071015523'; // ATORVASTATIN 40 MG TABLET, 90 tablets
const B = '00071015540'; // ATORVASTATIN 40 MG TABLET, 500 tablets
const C = '00378395277'; // ATENOLOL 50 MG TABLET
const D = '60505257809'; // LIPITOR 40 MG TABLET
const X = '00093505698'; // ATORVASTATIN 80 MG TABLET (relevant, not returned)

describe('recall@k (relevant in the top k ÷ min(k, |relevant|))', () => {
  it('counts the relevant results of the first k only', () => {
    // Prepare
    const ranked = [C, A, D, B];
    const relevant = new Set([A, B, X]);
    // Act + Assess: top 3 = C, A, D → 1 relevant of min(3, 3)
    expect(recallAtK(ranked, relevant, 3)).toBeCloseTo(1 / 3, 10);
    // top 4 adds B → 2 of 3
    expect(recallAtK(ranked, relevant, 4)).toBeCloseTo(2 / 3, 10);
  });

  it('reaches 1 when every result is relevant, even with more relevant labels than k', () => {
    const relevant = new Set([A, B, D, X]);
    expect(recallAtK([A, B], relevant, 2)).toBe(1);
  });

  it('counts an NDC returned twice once, and is 0 without relevant labels', () => {
    expect(recallAtK([A, A, C], new Set([A, C]), 2)).toBe(1); // top 2 distinct: A, C
    expect(recallAtK([A], new Set(), 10)).toBe(0);
    expect(() => recallAtK([A], new Set([A]), 0)).toThrow(RangeError);
  });
});

describe('MRR@k (1 ÷ rank of the first relevant result)', () => {
  it('is 1/2 when the first relevant result is second, 0 when none is in the top k', () => {
    const relevant = new Set([A, B]);
    expect(mrrAtK([C, A, B], relevant, 10)).toBe(0.5);
    expect(mrrAtK([A], relevant, 10)).toBe(1);
    expect(mrrAtK([C, D, A], relevant, 2)).toBe(0);
  });
});

describe('nDCG@k (binary relevance, log2 discount)', () => {
  it('matches the hand-computed value', () => {
    // Prepare: relevant at rank 2 only; 3 relevant labels exist.
    const ranked = [C, A, D];
    const relevant = new Set([A, B, X]);
    // DCG = 1/log2(3) = 0.63093; IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.13093
    const want = 0.6309297535714575 / 2.1309297535714578;
    // Act + Assess
    expect(ndcgAtK(ranked, relevant, 3)).toBeCloseTo(want, 12);
    expect(ndcgAtK(ranked, relevant, 3)).toBeCloseTo(0.29608, 5);
  });

  it('is 1 for an ideal ranking and uses min(k, |relevant|) ideal hits', () => {
    expect(ndcgAtK([A, B, C], new Set([A, B]), 3)).toBe(1);
    // one relevant label, found first: ideal
    expect(ndcgAtK([D, C], new Set([D]), 10)).toBe(1);
    // found second: 1/log2(3)
    expect(ndcgAtK([C, D], new Set([D]), 10)).toBeCloseTo(1 / Math.log2(3), 12);
  });
});

describe('scoreRanking, meanScores', () => {
  it('averages each metric over queries', () => {
    const a = scoreRanking([A, C], new Set([A]), 10); // 1, 1, 1
    const b = scoreRanking([C, D], new Set([X]), 10); // 0, 0, 0
    expect(meanScores([a, b])).toEqual({ recall: 0.5, mrr: 0.5, ndcg: 0.5 });
    expect(meanScores([])).toEqual({ recall: 0, mrr: 0, ndcg: 0 });
  });
});

describe('reciprocal rank fusion', () => {
  it('adds 1 / (60 + rank) per list and orders by the sum', () => {
    // Prepare: vector list A, B, C; text list B, D.
    const fused = reciprocalRankFusion([
      [A, B, C],
      [B, D],
    ]);
    // Act + Assess: B = 1/62 + 1/61, A = 1/61, D = 1/62, C = 1/63
    expect(fused.map((f) => f.id)).toEqual([B, A, D, C]);
    expect(fused[0]!.score).toBeCloseTo(1 / 62 + 1 / 61, 15);
    expect(fused[0]!.score).toBeCloseTo(0.032522, 6);
    expect(fused[3]!.score).toBeCloseTo(1 / 63, 15);
    expect(fused.find((f) => f.id === D)!.ranks).toEqual([undefined, 2]);
    expect(fused.find((f) => f.id === B)!.ranks).toEqual([2, 1]);
  });

  it('breaks ties by first appearance and counts an id once per list', () => {
    expect(reciprocalRankFusion([[A], [C]]).map((f) => f.id)).toEqual([A, C]);
    // with c = 0: A = 1 + 1/2, C = 1/2 + 1 → tie, A first
    const tie = reciprocalRankFusion(
      [
        [A, C],
        [C, A],
      ],
      0,
    );
    expect(tie.map((f) => [f.id, f.score])).toEqual([
      [A, 1.5],
      [C, 1.5],
    ]);
    // a duplicate in one list votes at its best rank only
    expect(reciprocalRankFusion([[A, A]])[0]!.score).toBeCloseTo(1 / 61, 15);
    expect(reciprocalRankFusion([[], []])).toEqual([]);
    expect(() => reciprocalRankFusion([[A]], -1)).toThrow(RangeError);
  });
});
