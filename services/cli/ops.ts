import type { Command } from 'commander';
import { DrugsyncError } from '../core/errors.ts';
import { knnSearch } from '../core/redis/index.ts';
import { opsRuntime } from './runtime.ts';
import { collectStatus, formatStatus } from './status.ts';
import { formatReport, repair, verifyOnce } from '../core/reconcile.ts';

/** verify, status, search: the commands an operator runs against a live pipeline. */
export function registerOpsCommands(program: Command): void {
  program
    .command('verify')
    .description(
      'compare MySQL and Redis completely (eligible rows vs documents, by NDC and content hash);\n' +
        'exit 0 only when they match. --repair re-syncs exactly the differing NDCs, then verifies again',
    )
    .option('--repair', 're-sync the missing, stale and extra NDCs (position-checked), then verify again')
    .option('--json', 'print {"source_rows","redis_docs","missing","extra","stale","ok"} as the last line')
    .action(async (o: { repair?: boolean; json?: boolean }) => {
      const rt = await opsRuntime('verify');
      try {
        const deps = {
          ...rt,
          schema: rt.config.DB_NAME,
          table: rt.config.DB_TABLE,
          snapshotMethod: rt.config.SNAPSHOT_METHOD,
        };
        const first = await verifyOnce(deps, { repair: !!o.repair });
        let report = first.report;
        if (o.repair && !report.ok) {
          process.stderr.write(formatReport(report) + '\n');
          const fixed = await repair(deps, first.diff);
          rt.log.info('repair finished', { ...fixed });
          report = (await verifyOnce(deps, { repair: false })).report;
        }
        if (!o.json || process.stderr.isTTY) process.stderr.write(formatReport(report) + '\n');
        if (o.json) {
          const { source_rows, redis_docs, missing, extra, stale, ok } = report;
          process.stdout.write(
            JSON.stringify({
              source_rows,
              redis_docs,
              missing,
              extra,
              stale,
              ok,
              in_flight: report.in_flight,
              examples: report.examples,
              snapshot_position: report.snapshot_position,
              snapshot_method: report.snapshot_method,
            }) + '\n',
          );
        }
        process.exitCode = report.ok ? 0 : 1;
      } finally {
        await rt.close();
      }
    });

  program
    .command('status')
    .description(
      'binlog checkpoint and lag, retention left, Kinesis lag per shard, documents vs eligible rows,\n' +
        "embedding cache, dead letters, each service's last error",
    )
    .option('--json', 'print JSON')
    .action(async (o: { json?: boolean }) => {
      const rt = await opsRuntime('status');
      try {
        const report = await collectStatus({
          ...rt,
          stream: rt.config.KINESIS_STREAM,
          table: { schema: rt.config.DB_NAME, table: rt.config.DB_TABLE },
          embedding: { model: rt.embeddings.model, dimensions: rt.embeddings.dimensions },
          retentionWarnSeconds: rt.config.RETENTION_WARN_SECONDS,
          eligibleCount: async () =>
            Number(
              (
                await rt.mysql.query<{ n: number }>(
                  `SELECT COUNT(*) AS n FROM \`${rt.config.DB_NAME}\`.\`${rt.config.DB_TABLE}\` WHERE NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3`,
                )
              )[0]?.n ?? 0,
            ),
        });
        process.stdout.write((o.json ? JSON.stringify(report) : formatStatus(report)) + '\n');
      } finally {
        await rt.close();
      }
    });

  program
    .command('search <text>')
    .description(
      'embed the text with the configured embedder and run a KNN query (with filters) on the index',
    )
    .option('--k <n>', 'results', '10')
    .option('--generic', 'generics only')
    .option('--brand', 'brands only')
    .option('--dea <list>', 'DEA schedules, e.g. 2,3')
    .option('--gcn <n>', 'one GCN_SEQNO')
    .option('--json', 'print JSON')
    .action(
      async (
        text: string,
        o: { k: string; generic?: boolean; brand?: boolean; dea?: string; gcn?: string; json?: boolean },
      ) => {
        const k = Number(o.k);
        if (!Number.isInteger(k) || k < 1 || k > 1000)
          throw new DrugsyncError('CONFIG_INVALID', `--k must be 1..1000, got ${o.k}`);
        const filters: string[] = [];
        if (o.generic) filters.push('@is_generic:{true}');
        if (o.brand) filters.push('@is_brand:{true}');
        if (o.dea) {
          const list = o.dea.split(',').map((s) => s.trim());
          if (!list.every((s) => /^[1-5]$/.test(s)))
            throw new DrugsyncError('CONFIG_INVALID', `--dea takes schedules 1-5, got ${o.dea}`);
          filters.push(`@dea_schedule:{${list.join('|')}}`);
        }
        if (o.gcn) {
          if (!/^\d+$/.test(o.gcn))
            throw new DrugsyncError('CONFIG_INVALID', `--gcn must be a number, got ${o.gcn}`);
          filters.push(`@gcn_seqno:[${o.gcn} ${o.gcn}]`);
        }
        const rt = await opsRuntime('search');
        try {
          const emb = await rt.embeddings.embedTexts([text.toUpperCase()]);
          const v = emb.vectors.get(text.toUpperCase());
          if (!v)
            throw (
              emb.failures.get(text.toUpperCase()) ??
              new DrugsyncError('EMBEDDING_FAILED', 'no vector for the query')
            );
          const hits = await knnSearch(rt.redis, rt.keys, v, {
            k,
            filter: filters.join(' '),
            efRuntime: Math.max(100, k),
          });
          if (o.json)
            process.stdout.write(
              JSON.stringify(hits.map((h) => ({ ndc: h.ndc, score: h.score, ...h.fields }))) + '\n',
            );
          else {
            if (rt.config.EMBEDDING_PROVIDER === 'local')
              process.stderr.write('(local lexical embedder: matches spelling, not meaning)\n');
            for (const h of hits) {
              process.stdout.write(
                `${h.ndc}  ${(h.fields.drug_name ?? '').padEnd(32)} ${(h.fields.brand_name ?? '').padEnd(20)} ${(1 - h.score).toFixed(4)}\n`,
              );
            }
          }
        } finally {
          await rt.close();
        }
      },
    );
}
