/**
 * The CLI's own conventions that need no server: `--version` / `-V`, and what an empty search says (the
 * reason by mode, embedder and filters, and the next thing to try) in text and in `--json`.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { emptySearchHint, formatEmptySearch, searchJson } from '../services/cli/search.ts';
import type { SearchHit } from '../services/core/search/search.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

describe('drugsync --version', () => {
  it('prints the version of package.json, long and short, and exits 0', () => {
    // Prepare
    const { version } = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      version: string;
    };
    // Act
    const runs = ['--version', '-V'].map((flag) =>
      spawnSync(process.execPath, [CLI, flag], { encoding: 'utf8', timeout: 60_000 }),
    );
    // Assess
    for (const r of runs) {
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toBe(`${version}\n`);
      expect(r.stderr).toBe('');
    }
    expect(version).toMatch(/^\d+\.\d+\.\d+/);
  });
});

describe('empty search hint', () => {
  it('with the lexical embedder in text mode: spellings not meanings, then a name, hybrid or MiniLM', () => {
    // Act
    const hint = emptySearchHint('medicine for high blood pressure', 'text', 'local', {});
    // Assess
    expect(hint.reason).toBe(
      'full text found no drug or brand name with "medicine", "high", "blood", "pressure"; ' +
        'the lexical embedder (EMBEDDING_PROVIDER=local) matches spellings, not meanings',
    );
    expect(hint.next).toEqual([
      'a drug or brand name, as spelled on the label (e.g. lisinopril, zestril)',
      '`--mode hybrid`: the nearest spellings as well',
      'a semantic embedder: `drugsync run --embedder minilm` loads the catalogue with MiniLM, then search with EMBEDDING_PROVIDER=minilm',
    ]);
    expect(formatEmptySearch('medicine for high blood pressure', 'text', 'local', hint).split('\n')).toEqual([
      `no results for "medicine for high blood pressure" (mode text, embedder local): ${hint.reason}`,
      `  try ${hint.next[0]}`,
      `   or ${hint.next[1]}`,
      `   or ${hint.next[2]}`,
    ]);
  });

  it('with a semantic embedder in text mode, suggests hybrid; a query with no word to match says so', () => {
    // Act
    const semantic = emptySearchHint('zzzqqq', 'text', 'minilm', {});
    const noWord = emptySearchHint('a b', 'text', 'minilm', {});
    // Assess
    expect(semantic).toEqual({
      reason: 'full text found no drug or brand name with "zzzqqq"',
      next: ['`--mode hybrid`: by meaning as well (minilm embeddings)'],
    });
    expect(noWord.reason).toBe(
      'full text has no word to match: words of three letters or more (or numbers), not stop words',
    );
  });

  it('vector and hybrid are empty only when nothing passes the filters or nothing is loaded: says which', () => {
    // Act
    const filtered = emptySearchHint('lisinopril', 'hybrid', 'minilm', {
      brand: true,
      dea: ['2', '3'],
      gcn: 12851,
    });
    const unloaded = emptySearchHint('lisinopril', 'vector', 'local', {});
    // Assess
    expect(filtered).toEqual({
      reason: 'no document in the index passes --brand --dea 2,3 --gcn 12851',
      next: [
        'search without --brand --dea 2,3 --gcn 12851',
        '`drugsync status`: is the index loaded? (`drugsync run` or `drugsync backfill` loads it)',
      ],
    });
    expect(unloaded.reason).toBe(
      'the index holds no document (nearest-neighbour search returns any there are)',
    );
    expect(unloaded.next).toEqual([
      '`drugsync status`: is the index loaded? (`drugsync run` or `drugsync backfill` loads it)',
    ]);
  });

  it('--json is one object: the results list always, the hint only when it is empty', () => {
    // Prepare
    const hit: SearchHit = {
      ndc: '00071015523',
      score: 0.0325,
      ranks: { vector: 2, text: 1 },
      fields: { drug_name: 'LIPITOR 10 MG TABLET', brand_name: 'LIPITOR', gcn_seqno: '29967' },
    };
    const hint = emptySearchHint('x', 'text', 'local', {});
    // Act
    const found = searchJson('lipitor', 'hybrid', 'minilm', [hit], null);
    const empty = searchJson('x', 'text', 'local', [], hint);
    // Assess
    expect(found).toEqual({
      query: 'lipitor',
      mode: 'hybrid',
      embedder: 'minilm',
      results: [
        {
          ndc: '00071015523',
          score: 0.0325,
          vector: 2,
          text: 1,
          drug_name: 'LIPITOR 10 MG TABLET',
          brand_name: 'LIPITOR',
          gcn_seqno: '29967',
        },
      ],
    });
    expect(empty).toEqual({ query: 'x', mode: 'text', embedder: 'local', results: [], hint });
  });
});
