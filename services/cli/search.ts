import type { Command } from 'commander';
import { DrugsyncError } from '../core/errors.ts';
import { searchDrugs } from '../core/search/search.ts';
import type { SearchHit } from '../core/search/search.ts';
import { SEARCH_MODES, queryWords } from '../core/search/query.ts';
import type { SearchFilters, SearchMode } from '../core/search/query.ts';
import { opsRuntime } from './runtime.ts';

/**
 * The mode `drugsync search` uses unless told: the one that wins on the relevance set with the configured
 * embedder (docs/search.md, docs/benchmarks.md "Search relevance"). With a semantic embedder (MiniLM; Titan
 * by the same reasoning, not measured here) hybrid beats both of its parts; with the lexical one its vectors
 * add only spelling, which full text already matches better, so text wins.
 */
export function defaultSearchMode(provider: string): SearchMode {
  return provider === 'local' ? 'text' : 'hybrid';
}
const DEFAULT_HELP = 'hybrid with a semantic embedder (minilm, titan), text with the lexical one (local)';

interface SearchOptions {
  k: string;
  mode?: string;
  generic?: boolean;
  brand?: boolean;
  dea?: string;
  gcn?: string;
  json?: boolean;
  /** false with --no-expand */
  expand?: boolean;
}

/** The options as a request, each one checked (CONFIG_INVALID naming the option). */
export function parseSearchOptions(
  opts: SearchOptions,
  provider: string,
): { k: number; mode: SearchMode; filters: SearchFilters; expand?: boolean } {
  const k = Number(opts.k);
  if (!Number.isInteger(k) || k < 1 || k > 1000)
    throw new DrugsyncError('CONFIG_INVALID', `--k must be 1..1000, got ${opts.k}`, {
      remedy: 'e.g. --k 10',
    });
  const mode = opts.mode ?? defaultSearchMode(provider);
  if (!(SEARCH_MODES as readonly string[]).includes(mode))
    throw new DrugsyncError('CONFIG_INVALID', `--mode must be ${SEARCH_MODES.join(' | ')}, got ${mode}`, {
      remedy: `e.g. --mode ${defaultSearchMode(provider)}`,
    });
  const filters: SearchFilters = { generic: !!opts.generic, brand: !!opts.brand };
  if (opts.dea) filters.dea = opts.dea.split(',').map((s) => s.trim());
  if (opts.gcn !== undefined) {
    if (!/^\d+$/.test(opts.gcn))
      throw new DrugsyncError('CONFIG_INVALID', `--gcn must be a number, got ${opts.gcn}`, {
        remedy: 'e.g. --gcn 12851',
      });
    filters.gcn = Number(opts.gcn);
  }
  return { k, mode: mode as SearchMode, filters, ...(opts.expand === false ? { expand: false } : {}) };
}

/**
 * `search --json`: one object, whatever was found: the query, mode and embedder, `results` (each hit's NDC,
 * score, hybrid ranks, `expanded_from` and fields), and `hint` ({ reason, next }) when `results` is empty.
 */
export function searchJson(
  text: string,
  mode: SearchMode,
  provider: string,
  hits: readonly SearchHit[],
  hint: EmptySearchHint | null,
): Record<string, unknown> {
  return {
    query: text,
    mode,
    embedder: provider,
    results: hits.map((h) => ({
      ndc: h.ndc,
      score: h.score,
      ...h.ranks,
      ...(h.expandedFrom ? { expanded_from: h.expandedFrom } : {}),
      ...h.fields,
    })),
    ...(hint ? { hint } : {}),
  };
}

function scoreText(mode: SearchMode, h: SearchHit): string {
  if (h.expandedFrom) return `same GCN_SEQNO ${h.fields.gcn_seqno ?? ''} as ${h.expandedFrom}`;
  if (mode === 'vector') return `similarity ${(1 - h.score).toFixed(4)}`;
  if (mode === 'text') return `bm25 ${h.score.toFixed(2)}`;
  const r = (x: number | undefined) => (x === undefined ? '-' : String(x));
  return `rrf ${h.score.toFixed(4)} (vector #${r(h.ranks?.vector)}, text #${r(h.ranks?.text)})`;
}

/** Why a search found nothing, and what to try next (printed on stderr, or `hint` in the JSON). */
export interface EmptySearchHint {
  reason: string;
  next: string[];
}

const SEMANTIC_NEXT =
  'a semantic embedder: `drugsync run --embedder minilm` loads the catalogue with MiniLM, then search with ' +
  'EMBEDDING_PROVIDER=minilm';

/** The filters a request carries, as their options (`--generic --dea 2,3`), '' for none. */
function filterOptions(f: SearchFilters): string {
  const parts: string[] = [];
  if (f.generic) parts.push('--generic');
  if (f.brand) parts.push('--brand');
  if (f.dea?.length) parts.push(`--dea ${f.dea.join(',')}`);
  if (f.gcn !== undefined) parts.push(`--gcn ${f.gcn}`);
  return parts.join(' ');
}

/**
 * Why a search of `text` in `mode` found nothing, by what can make each mode come back empty: full text
 * matches words (and the lexical embedder spellings, never meanings); KNN always returns the nearest
 * documents, so vector and hybrid are empty only when no document passes the filters (or none is loaded).
 */
export function emptySearchHint(
  text: string,
  mode: SearchMode,
  provider: string,
  filters: SearchFilters,
): EmptySearchHint {
  const filtered = filterOptions(filters);
  const next: string[] = [];
  if (filtered) next.push(`search without ${filtered}`);
  if (mode !== 'text') {
    next.push('`drugsync status`: is the index loaded? (`drugsync run` or `drugsync backfill` loads it)');
    return {
      reason: filtered
        ? `no document in the index passes ${filtered}`
        : 'the index holds no document (nearest-neighbour search returns any there are)',
      next,
    };
  }
  const words = queryWords(text);
  const reason =
    words.length === 0
      ? 'full text has no word to match: words of three letters or more (or numbers), not stop words'
      : `full text found no drug or brand name with ${words.map((w) => `"${w}"`).join(', ')}${filtered ? ` passing ${filtered}` : ''}`;
  if (provider === 'local') {
    next.push('a drug or brand name, as spelled on the label (e.g. lisinopril, zestril)');
    next.push('`--mode hybrid`: the nearest spellings as well');
    next.push(SEMANTIC_NEXT);
    return {
      reason: `${reason}; the lexical embedder (EMBEDDING_PROVIDER=local) matches spellings, not meanings`,
      next,
    };
  }
  next.push(`\`--mode hybrid\`: by meaning as well (${provider} embeddings)`);
  return { reason, next };
}

/** The CLI's line(s) for an empty search, on stderr: stdout keeps only hits (`| wc -l` counts them). */
export function formatEmptySearch(
  text: string,
  mode: SearchMode,
  provider: string,
  hint: EmptySearchHint,
): string {
  return [
    `no results for "${text}" (mode ${mode}, embedder ${provider}): ${hint.reason}`,
    ...hint.next.map((n, i) => `  ${i === 0 ? 'try' : ' or'} ${n}`),
  ].join('\n');
}

/** `drugsync search`: vector, full-text or hybrid search of the index, with the filters. */
export function registerSearchCommands(program: Command): void {
  program
    .command('search <text>')
    .description(
      'search the index: --mode vector (embed the text, KNN), text (full text on drug_name / brand_name)\n' +
        'or hybrid (both, reciprocal rank fusion), with filters; text and hybrid fill the top k with the\n' +
        'other labels of the GCN_SEQNO groups of the hits that carry every typed word (--no-expand: not)',
    )
    .option('--k <n>', 'results', '10')
    .option('--mode <mode>', `${SEARCH_MODES.join(' | ')} (default: ${DEFAULT_HELP})`)
    .option('--generic', 'generics only')
    .option('--brand', 'brands only')
    .option('--dea <list>', 'DEA schedules, e.g. 2,3')
    .option('--gcn <n>', 'one GCN_SEQNO')
    .option('--no-expand', 'no GCN-group expansion (text and hybrid expand by default)')
    .option('--json', 'print JSON')
    .action(async (text: string, opts: SearchOptions) => {
      const rt = await opsRuntime('search');
      try {
        const req = parseSearchOptions(opts, rt.config.EMBEDDING_PROVIDER);
        const hits = await searchDrugs(rt, { text, ...req, breadth: rt.config.VECTOR_SEARCH_BREADTH });
        const provider = rt.config.EMBEDDING_PROVIDER;
        const hint = hits.length ? null : emptySearchHint(text, req.mode, provider, req.filters);
        if (opts.json) {
          process.stdout.write(JSON.stringify(searchJson(text, req.mode, provider, hits, hint)) + '\n');
          return;
        }
        if (provider === 'local' && req.mode !== 'text')
          process.stderr.write('(local lexical embedder: its vectors match spelling, not meaning)\n');
        if (hint) process.stderr.write(formatEmptySearch(text, req.mode, provider, hint) + '\n');
        for (const h of hits) {
          process.stdout.write(
            `${h.ndc}  ${(h.fields.drug_name ?? '').padEnd(32)} ${(h.fields.brand_name ?? '').padEnd(20)} ${scoreText(req.mode, h)}\n`,
          );
        }
      } finally {
        await rt.close();
      }
    });
}
