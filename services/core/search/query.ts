/**
 * Query building for `drugsync search`: the filter clause every mode shares, and the full-text query over
 * the TEXT fields `drug_name` and `brand_name` of `drugs_idx` (services/core/redis/index-schema.ts).
 *
 * The text query is a union of the typed words, so a label matching more of them scores higher (BM25) and
 * one matching only some is still found. Each word of three letters or more also matches as a prefix
 * (`tab` → TABLET, `levothyroxin` → LEVOTHYROXINE) and, from five letters on, with one typo (Levenshtein
 * distance 1; two from eight letters: `atorvastain`, `lisinipril`). Numbers match exactly (RediSearch
 * splits `5-325` and `0.5` into their digits, so do we). Words of one or two letters are dropped unless
 * they are numbers, and so are a few English stop words (`for`, `with`, ...).
 */
import { DrugsyncError } from '../errors.ts';

export type SearchMode = 'vector' | 'text' | 'hybrid';
export const SEARCH_MODES: readonly SearchMode[] = ['vector', 'text', 'hybrid'];

export interface SearchFilters {
  generic?: boolean;
  brand?: boolean;
  /** DEA schedules '1'..'5' */
  dea?: readonly string[];
  gcn?: number;
}

/** The RediSearch filter clause ('' for none), e.g. `@is_generic:{true} @dea_schedule:{2|3}`. */
export function filterClause(f: SearchFilters): string {
  const parts: string[] = [];
  if (f.generic) parts.push('@is_generic:{true}');
  if (f.brand) parts.push('@is_brand:{true}');
  if (f.dea && f.dea.length) {
    if (!f.dea.every((s) => /^[1-5]$/.test(s)))
      throw new DrugsyncError('CONFIG_INVALID', `DEA schedules are 1-5, got ${f.dea.join(',')}`, {
        remedy: 'pass --dea as a comma-separated list of 1-5, e.g. --dea 2,3',
      });
    parts.push(`@dea_schedule:{${f.dea.join('|')}}`);
  }
  if (f.gcn !== undefined) {
    if (!Number.isInteger(f.gcn) || f.gcn < 0)
      throw new DrugsyncError('CONFIG_INVALID', `GCN_SEQNO must be a whole number, got ${f.gcn}`, {
        remedy: 'pass --gcn as one GCN_SEQNO, e.g. --gcn 12851',
      });
    parts.push(`@gcn_seqno:[${f.gcn} ${f.gcn}]`);
  }
  return parts.join(' ');
}

/** The words of a query as RediSearch tokenizes a TEXT field: lower case, split on anything not [a-z0-9]. */
export function queryWords(text: string): string[] {
  return text
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((w) => w.length >= 3 || (w.length > 0 && /^\d+$/.test(w)))
    .filter((w) => !STOP_WORDS.has(w));
}

/** English words RediSearch drops itself; dropped here too, so that `for*` does not expand to FORTAMET. */
const STOP_WORDS = new Set(['and', 'are', 'for', 'from', 'into', 'not', 'the', 'that', 'with', 'this']);

/** The typos a word of the query tolerates (Levenshtein distance): 2 from eight letters, 1 from five, else 0. */
export function typoDistance(w: string): number {
  if (/^\d+$/.test(w)) return 0;
  return w.length >= 8 ? 2 : w.length >= 5 ? 1 : 0;
}

/** One word's alternatives: exact, prefix, and fuzzy by length. */
export function wordClause(w: string): string {
  if (/^\d+$/.test(w)) return w;
  const alts = [w, `${w}*`];
  const d = typoDistance(w);
  if (d > 0) alts.push(`${'%'.repeat(d)}${w}${'%'.repeat(d)}`);
  return `(${alts.join('|')})`;
}

/**
 * The full-text query (DIALECT 2) for `text` under the filter clause, or null when the text has no
 * searchable word (then text search has nothing to match).
 */
export function textQuery(text: string, filter = ''): string | null {
  const words = [...new Set(queryWords(text))];
  if (words.length === 0) return null;
  const match = `@drug_name|brand_name:(${words.map(wordClause).join('|')})`;
  return filter.trim() ? `(${filter.trim()}) ${match}` : match;
}
