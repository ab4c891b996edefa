import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { isDrugsyncError } from '../services/core/errors.ts';
import { mapRow } from '../services/core/mapping.ts';
import type { DrugFields } from '../services/core/mapping.ts';
import { filterClause, queryWords, textQuery, wordClause } from '../services/core/search/query.ts';
import { judgeAll, loadRelevanceSet, parseRelevanceSet, relevantNdcs } from '../bench/relevance/relevance.ts';
import type { RelevanceSet } from '../bench/relevance/relevance.ts';
import { parseSearchOptions } from '../services/cli/search.ts';
import { makeRow } from './support/factories.ts';

describe('text query', () => {
  it('matches each word exactly, as a prefix and, from five letters, with typos', () => {
    // Act
    const q = textQuery('Atorvastatin 40 tab');
    // Assess
    expect(q).toBe('@drug_name|brand_name:((atorvastatin|atorvastatin*|%%atorvastatin%%)|40|(tab|tab*))');
    expect(wordClause('zoloft')).toBe('(zoloft|zoloft*|%zoloft%)');
    expect(wordClause('325')).toBe('325');
  });

  it('splits like RediSearch, drops short words and stop words, and puts the filter first', () => {
    expect(queryWords('HYDROCODONE-ACETAMINOPHEN 5-325 mg for pain')).toEqual([
      'hydrocodone',
      'acetaminophen',
      '5',
      '325',
      'pain',
    ]);
    expect(textQuery('a of')).toBeNull();
    expect(textQuery('oxycodone', '@dea_schedule:{2}')).toBe(
      '(@dea_schedule:{2}) @drug_name|brand_name:((oxycodone|oxycodone*|%%oxycodone%%))',
    );
  });
});

describe('filters', () => {
  it('builds the clause every mode shares', () => {
    expect(filterClause({ generic: true, dea: ['2', '3'], gcn: 12851 })).toBe(
      '@is_generic:{true} @dea_schedule:{2|3} @gcn_seqno:[12851 12851]',
    );
    expect(filterClause({ brand: true })).toBe('@is_brand:{true}');
    expect(filterClause({})).toBe('');
  });

  it('refuses a DEA schedule outside 1-5 and bad CLI options with CONFIG_INVALID', () => {
    const codes: string[] = [];
    for (const f of [
      () => filterClause({ dea: ['7'] }),
      () => parseSearchOptions({ k: '0', mode: 'hybrid' }, 'local'),
      () => parseSearchOptions({ k: '10', mode: 'semantic' }, 'local'),
      () => parseSearchOptions({ k: '10', mode: 'text', gcn: '12a' }, 'local'),
    ]) {
      try {
        f();
      } catch (e) {
        if (isDrugsyncError(e)) codes.push(e.code);
      }
    }
    expect(codes).toEqual(['CONFIG_INVALID', 'CONFIG_INVALID', 'CONFIG_INVALID', 'CONFIG_INVALID']);
    expect(parseSearchOptions({ k: '5', mode: 'vector', dea: '2, 3', brand: true }, 'local')).toEqual({
      k: 5,
      mode: 'vector',
      filters: { generic: false, brand: true, dea: ['2', '3'] },
    });
    // no --mode: the winner on the relevance set for the embedder (docs/search.md)
    expect(parseSearchOptions({ k: '10' }, 'local').mode).toBe('text');
    expect(parseSearchOptions({ k: '10' }, 'minilm').mode).toBe('hybrid');
    expect(parseSearchOptions({ k: '10' }, 'titan').mode).toBe('hybrid');
    // --no-expand turns GCN-group expansion off; without it the mode's default applies (expand unset)
    expect(parseSearchOptions({ k: '10', expand: false }, 'minilm').expand).toBe(false);
    expect(parseSearchOptions({ k: '10', expand: true }, 'minilm')).not.toHaveProperty('expand');
  });
});

/** One label as the index holds it, from a realistic row. */
function label(i: number, LN: string, BN: string, GCN_SEQNO: number, DF = '1'): DrugFields {
  const ndc = `0007101${String(i).padStart(4, '0')}`;
  return mapRow(makeRow({ NDC: ndc, LN, LN60: LN, BN, GCN_SEQNO, DF }, i)) as DrugFields;
}

const docs = [
  label(1, 'ATORVASTATIN CALCIUM 40 MG TAB', '', 12851),
  label(2, 'LIPITOR 40 MG TABLET', 'LIPITOR', 12851),
  label(3, 'LOFTANCE 40 MG TABLET', 'LOFTANCE', 12851),
  label(4, 'ATORVASTATIN 80 MG CAPSULE', 'ATORVASTATIN', 12854),
  label(5, 'AMOXICILLIN 500 MG CAPSULE', '', 20001),
  label(6, 'AMOXICILLIN-CLAVULANATE 875-12', '', 20004),
  label(7, 'ENOXAPARIN 40 MG/0.4 ML SYRING', '', 30001, '2'),
  label(8, 'HEPARIN SODIUM 5,000 UNIT/ML V', '', 0, '2'),
  label(9, 'OZEMPIC 7.5-325 MG TABLET DR', 'OZEMPIC', 20001),
];
const classes = { anticoagulant: ['WARFARIN', 'ENOXAPARIN', 'HEPARIN'] };
const ndcOf = (i: number) => docs[i - 1]!.ndc;

describe('relevance rules', () => {
  it('makes a brand label relevant through its GCN group, never a longer ingredient name', () => {
    // Act
    const atorva = relevantNdcs({ ingredients: ['ATORVASTATIN'] }, docs, classes);
    const amox = relevantNdcs({ ingredients: ['AMOXICILLIN'] }, docs, classes);
    // Assess: LIPITOR and LOFTANCE share group 12851 with the generic label
    expect([...atorva].sort()).toEqual([ndcOf(1), ndcOf(2), ndcOf(3), ndcOf(4)].sort());
    // AMOXICILLIN is not AMOXICILLIN-CLAVULANATE; the OZEMPIC-named label of the amoxicillin group counts
    expect([...amox].sort()).toEqual([ndcOf(5), ndcOf(9)].sort());
  });

  it('applies classes, dosage forms, the name pattern and brands; GCN 0 is judged by its own name', () => {
    expect(
      [...relevantNdcs({ classes: ['anticoagulant'], dosageForms: ['2'] }, docs, classes)].sort(),
    ).toEqual([ndcOf(7), ndcOf(8)].sort());
    expect(
      [...relevantNdcs({ ingredients: ['ATORVASTATIN'], name: ' 40 MG TAB' }, docs, classes)].sort(),
    ).toEqual([ndcOf(1), ndcOf(2), ndcOf(3)].sort());
    expect([...relevantNdcs({ brands: ['OZEMPIC'] }, docs, classes)]).toEqual([ndcOf(9)]);
  });

  it('refuses a set that does not fit the catalogue, naming each query', () => {
    // Prepare
    const set: RelevanceSet = parseRelevanceSet({
      description: 'two queries',
      catalogue: { rows: 9, seed: 1 },
      k: 10,
      classes,
      queries: [
        { id: 'ok', kind: 'ingredient', query: 'atorvastatin', rule: { ingredients: ['ATORVASTATIN'] } },
        {
          id: 'absent',
          kind: 'brand',
          query: 'zocor',
          rule: { brands: ['ZOCOR'], ingredients: ['SIMVASTATIN'] },
        },
      ],
    });
    // Act
    let message = '';
    try {
      judgeAll(set, docs);
    } catch (e) {
      message = (e as Error).message;
    }
    // Assess
    expect(message).toContain('absent: no SIMVASTATIN label');
    expect(message).toContain('absent: no ZOCOR label');
    expect(judgeAll({ ...set, queries: set.queries.slice(0, 1) }, docs).get('ok')!.size).toBe(4);
  });

  it('rejects malformed sets and unknown classes', () => {
    expect(() => parseRelevanceSet({ queries: [] })).toThrow(/malformed/);
    expect(() =>
      parseRelevanceSet({
        description: '',
        catalogue: { rows: 1, seed: 1 },
        k: 10,
        classes: {},
        queries: [{ id: 'q', kind: 'plain', query: 'x', rule: { classes: ['statin'] } }],
      }),
    ).toThrow(/unknown class statin/);
  });

  it('the committed set has at least 60 queries of every kind', () => {
    const set = loadRelevanceSet(path.join(import.meta.dirname, '..', 'bench', 'relevance', 'queries.json'));
    expect(set.queries.length).toBeGreaterThanOrEqual(60);
    const kinds = new Set(set.queries.map((q) => q.kind));
    expect([...kinds].sort()).toEqual(['brand', 'ingredient', 'misspelling', 'plain', 'strength-form']);
  });
});
