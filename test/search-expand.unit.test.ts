import { describe, expect, it } from 'vitest';
import { mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import {
  editDistance,
  expandByGroup,
  matchesAllWords,
  planExpansion,
  wordMatches,
} from '../services/core/search/expand.ts';
import type { GroupHit } from '../services/core/search/expand.ts';
import { makeRow } from './support/factories.ts';

/** A search hit as Redis returns it (RETURN_FIELDS as strings) for a label of the seeded shape. */
function hit(i: number, LN: string, BN: string, GCN_SEQNO: number | null, score = 0): GroupHit {
  const ndc = `0007101${String(i).padStart(4, '0')}`;
  const f = mapRow(makeRow({ NDC: ndc, LN, LN60: LN, BN, GCN_SEQNO }, i)) as DrugFields;
  return {
    ndc: f.ndc,
    score,
    fields: {
      ndc: f.ndc,
      drug_name: f.drug_name,
      brand_name: f.brand_name,
      generic_name: f.generic_name,
      gcn_seqno: String(f.gcn_seqno),
    },
  };
}

const ndcs = (hits: GroupHit[]) => hits.map((h) => h.ndc);

describe('word matching (as the text query matches)', () => {
  it('computes the edit distance, stopping past the limit', () => {
    expect(editDistance('setraline', 'sertraline', 2)).toBe(1);
    expect(editDistance('lisinipril', 'lisinopril', 2)).toBe(1);
    expect(editDistance('albuterall', 'albuterol', 2)).toBe(2);
    expect(editDistance('abc', 'xyz', 1)).toBe(2);
    expect(editDistance('lipid', 'lipitor', 1)).toBe(2);
  });

  it('matches a word exactly, as a prefix, within its typo distance, and numbers only exactly', () => {
    expect(wordMatches('lipitor', 'lipitor')).toBe(true);
    expect(wordMatches('tab', 'tablet')).toBe(true);
    expect(wordMatches('atorvastatn', 'atorvastatin')).toBe(true); // 11 letters: two typos
    expect(wordMatches('zestrl', 'zestril')).toBe(true); // 6 letters: one typo
    expect(wordMatches('lipid', 'lipitor')).toBe(false); // two edits, five letters allow one
    expect(wordMatches('pen', 'pin')).toBe(false); // three letters: no typo
    expect(wordMatches('40', '400')).toBe(false);
    expect(wordMatches('40', '40')).toBe(true);
  });

  it('needs every searchable word of the query in drug_name or brand_name', () => {
    // Prepare
    const lipitor = hit(1, 'LIPITOR 40 MG TABLET ER', 'LIPITOR', 12851);
    // Act + Assess
    expect(matchesAllWords('Lipitor 40 tab', lipitor.fields)).toBe(true);
    expect(matchesAllWords('lipitor 20 tab', lipitor.fields)).toBe(false);
    expect(matchesAllWords('atorvastatin 40 tab', lipitor.fields)).toBe(false);
    expect(matchesAllWords('of', lipitor.fields)).toBe(false); // no searchable word
  });
});

describe('GCN-group expansion', () => {
  // Prepare: the brand query `lipitor`; two LIPITOR labels in two groups, two hits that are not LIPITOR
  const lipitor40 = hit(1, 'LIPITOR 40 MG TABLET ER', 'LIPITOR', 12851, 0.9);
  const zoloft = hit(2, 'ZOLOFT 50 MG TABLET', 'ZOLOFT', 20010, 0.8);
  const lipitor10 = hit(3, 'LIPITOR 10 MG TABLET', 'LIPITOR', 12852, 0.7);
  const noGroup = hit(4, 'LIPOFEN 150 MG CAPSULE', 'LIPOFEN', null, 0.6);
  const hits = [lipitor40, zoloft, lipitor10, noGroup];
  const atorva40 = hit(11, 'ATORVASTATIN 40 MG TABLET ER', '', 12851);
  const loftance40 = hit(12, 'LOFTANCE 40 MG TABLET ER', 'LOFTANCE', 12851);
  const atorva10 = hit(13, 'ATORVASTATIN 10 MG TABLET', '', 12852);
  const loftance10 = hit(14, 'LOFTANCE 10 MG TABLET', 'LOFTANCE', 12852);
  const members = new Map([
    [12851, [atorva40, lipitor40, loftance40]],
    [12852, [atorva10, lipitor10, loftance10]],
  ]);

  it('plans from the hits matching every word: their groups in order and the free slots', () => {
    // Act
    const plan = planExpansion('lipitor', hits, 6);
    // Assess
    expect(plan && ndcs(plan.anchors)).toEqual([lipitor40.ndc, lipitor10.ndc]);
    expect(plan?.groups).toEqual([12851, 12852]);
    expect(plan?.slots).toBe(4);
  });

  it('has nothing to do without an anchor, when anchors fill k, or when anchors have no group', () => {
    expect(planExpansion('cholesterol pill', hits, 6)).toBeNull();
    expect(planExpansion('lipitor', hits, 1)).toBeNull(); // the first hit is an anchor and fills k = 1
    expect(planExpansion('lipofen', hits, 6)).toBeNull(); // GCN 0: no group
  });

  it('puts each group after its anchor and drops the non-anchors from the slots it fills', () => {
    // Act
    const plan = planExpansion('lipitor', hits, 6)!;
    const out = expandByGroup(hits, plan, members, 6);
    // Assess
    expect(ndcs(out)).toEqual([
      lipitor40.ndc,
      atorva40.ndc,
      loftance40.ndc,
      lipitor10.ndc,
      atorva10.ndc,
      loftance10.ndc,
    ]);
    expect(out[1]).toMatchObject({ score: 0.9, expandedFrom: lipitor40.ndc });
    expect(out[4]).toMatchObject({ score: 0.7, expandedFrom: lipitor10.ndc });
    expect(out[0]!.expandedFrom).toBeUndefined();
  });

  it('fills only the free slots, the first anchor first', () => {
    // Act: k = 5 leaves 3 slots
    const out = expandByGroup(hits, planExpansion('lipitor', hits, 5)!, members, 5);
    // Assess
    expect(ndcs(out)).toEqual([lipitor40.ndc, atorva40.ndc, loftance40.ndc, lipitor10.ndc, atorva10.ndc]);
  });

  it('keeps the other hits in order where the groups hold too few labels', () => {
    // Prepare: the first group has only its anchor, the second was not read
    const few = new Map([[12851, [lipitor40]]]);
    // Act
    const out = expandByGroup(hits, planExpansion('lipitor', hits, 6)!, few, 6);
    // Assess
    expect(ndcs(out)).toEqual([lipitor40.ndc, lipitor10.ndc, zoloft.ndc, noGroup.ndc]);
  });
});
