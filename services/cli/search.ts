import type { Command } from 'commander';
import { DrugsyncError } from '../core/errors.ts';
import { searchDrugs } from '../core/search/search.ts';
import type { SearchHit } from '../core/search/search.ts';
import { SEARCH_MODES } from '../core/search/query.ts';
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
  o: SearchOptions,
  provider: string,
): { k: number; mode: SearchMode; filters: SearchFilters; expand?: boolean } {
  const k = Number(o.k);
  if (!Number.isInteger(k) || k < 1 || k > 1000)
    throw new DrugsyncError('CONFIG_INVALID', `--k must be 1..1000, got ${o.k}`, { remedy: 'e.g. --k 10' });
  const mode = o.mode ?? defaultSearchMode(provider);
  if (!(SEARCH_MODES as readonly string[]).includes(mode))
    throw new DrugsyncError('CONFIG_INVALID', `--mode must be ${SEARCH_MODES.join(' | ')}, got ${mode}`, {
      remedy: `e.g. --mode ${defaultSearchMode(provider)}`,
    });
  const filters: SearchFilters = { generic: !!o.generic, brand: !!o.brand };
  if (o.dea) filters.dea = o.dea.split(',').map((s) => s.trim());
  if (o.gcn !== undefined) {
    if (!/^\d+$/.test(o.gcn))
      throw new DrugsyncError('CONFIG_INVALID', `--gcn must be a number, got ${o.gcn}`, {
        remedy: 'e.g. --gcn 12851',
      });
    filters.gcn = Number(o.gcn);
  }
  return { k, mode: mode as SearchMode, filters, ...(o.expand === false ? { expand: false } : {}) };
}

function scoreText(mode: SearchMode, h: SearchHit): string {
  if (h.expandedFrom) return `same GCN_SEQNO ${h.fields.gcn_seqno ?? ''} as ${h.expandedFrom}`;
  if (mode === 'vector') return `similarity ${(1 - h.score).toFixed(4)}`;
  if (mode === 'text') return `bm25 ${h.score.toFixed(2)}`;
  const r = (x: number | undefined) => (x === undefined ? '-' : String(x));
  return `rrf ${h.score.toFixed(4)} (vector #${r(h.ranks?.vector)}, text #${r(h.ranks?.text)})`;
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
    .action(async (text: string, o: SearchOptions) => {
      const rt = await opsRuntime('search');
      try {
        const req = parseSearchOptions(o, rt.config.EMBEDDING_PROVIDER);
        const hits = await searchDrugs(rt, { text, ...req, breadth: rt.config.VECTOR_SEARCH_BREADTH });
        if (o.json) {
          process.stdout.write(
            JSON.stringify(
              hits.map((h) => ({
                ndc: h.ndc,
                score: h.score,
                ...h.ranks,
                ...(h.expandedFrom ? { expanded_from: h.expandedFrom } : {}),
                ...h.fields,
              })),
            ) + '\n',
          );
          return;
        }
        if (rt.config.EMBEDDING_PROVIDER === 'local' && req.mode !== 'text')
          process.stderr.write('(local lexical embedder: its vectors match spelling, not meaning)\n');
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
