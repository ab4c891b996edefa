import type { Command } from 'commander';
import { z } from 'zod';
import { configFields, decodeConfig, generalShape, mysqlShape, resolveEnv } from '../core/config.ts';
import type { Env } from '../core/config.ts';
import { DrugsyncError } from '../core/errors.ts';
import { createLogger } from '../core/log.ts';
import { createProgress } from '../core/progress.ts';
import { quoteTable } from '../core/sql.ts';
import { DEFAULT_SEED, FULL_CATALOGUE_ROWS, generateCatalogue } from './generator.ts';
import { adminConnection, loadRows, recreateTable } from './load-data.ts';

/** Settings of `drugsync seed`: where MySQL is and the admin account that may create the table. */
export const seedShape = {
  DB_HOST: mysqlShape.DB_HOST,
  DB_PORT: mysqlShape.DB_PORT,
  DB_NAME: mysqlShape.DB_NAME,
  DB_TABLE: mysqlShape.DB_TABLE,
  DB_ADMIN_USER: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') {
        ctx.addIssue({
          code: 'custom',
          message: 'required: seeding creates the database and table, so it needs an admin account',
        });
        return z.NEVER;
      }
      return v;
    }),
  DB_ADMIN_PASSWORD: configFields.optStr(),
  LOG_LEVEL: generalShape.LOG_LEVEL,
};

export interface SeedSummary {
  rows: number;
  distinct_ln60: number;
  distinct_bn: number;
  eligible: number;
  active: number;
  seconds: number;
  rows_per_second: number;
}

/** Creates the table and loads a synthetic catalogue of `rows` rows; counts come back from SQL. */
export async function runSeed(
  opts: { rows: number; seed: number; database?: string | undefined; table?: string | undefined },
  env: Env = resolveEnv(),
): Promise<SeedSummary> {
  const cfg = decodeConfig(seedShape, env);
  const schema = opts.database ?? cfg.DB_NAME;
  const table = opts.table ?? cfg.DB_TABLE;
  const log = createLogger({ service: 'seed' }, { level: cfg.LOG_LEVEL });
  const conn = await adminConnection(cfg);
  let progress: ReturnType<typeof createProgress> | undefined;
  try {
    await recreateTable(conn, schema, table);
    progress = createProgress({ label: `seed ${schema}.${table}`, total: opts.rows, unit: 'rows', log });
    const bar = progress;
    const t0 = Date.now();
    const loaded = await loadRows(
      conn,
      generateCatalogue({ rows: opts.rows, seed: opts.seed, order: 'ndc' }),
      {
        schema,
        table,
        onProgress: (n) => bar.update(n),
      },
    );
    const seconds = (Date.now() - t0) / 1000;
    progress.stop();
    progress = undefined;
    const [rows] = await conn.query(
      `SELECT COUNT(*) AS n, COUNT(DISTINCT LN60) AS ln60, COUNT(DISTINCT NULLIF(BN, '')) AS bn,
              SUM(NDC IS NOT NULL AND LN IS NOT NULL AND LENGTH(TRIM(LN)) > 3) AS eligible,
              SUM(OBSDTEC = '0000-00-00 00:00:00') AS active
       FROM ${quoteTable(schema, table)}`,
    );
    const r = (rows as Record<string, string | number>[])[0] as Record<string, string | number>;
    if (Number(r.n) !== loaded) {
      throw new DrugsyncError('SEED_FAILED', `loaded ${loaded} rows but the table holds ${r.n}`, {
        context: { schema, table },
        remedy: 'check the server log for rejected rows (LOAD DATA warnings)',
      });
    }
    const summary: SeedSummary = {
      rows: Number(r.n),
      distinct_ln60: Number(r.ln60),
      distinct_bn: Number(r.bn),
      eligible: Number(r.eligible),
      active: Number(r.active),
      seconds: Math.round(seconds * 100) / 100,
      rows_per_second: Math.round(loaded / Math.max(seconds, 0.001)),
    };
    log.info('seed finished', { ...summary, schema, table });
    return summary;
  } finally {
    progress?.stop();
    await conn.end();
  }
}

const wholeNumber = (name: string, min: number) => (v: string) => {
  const n = Number(v.replace(/[_,]/g, ''));
  if (!/^\d[\d_,]*$/.test(v.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new DrugsyncError('CONFIG_INVALID', `${name}: must be a whole number ≥ ${min}, got "${v}"`, {
      context: { option: name },
      remedy: `e.g. ${name} 20000`,
    });
  }
  return n;
};

/** Commands of services/seed. */
export function registerSeedCommands(program: Command): void {
  program
    .command('seed')
    .description(
      'create DB_NAME.DB_TABLE (fdb.rndc14, 68 columns) as the admin user and fill it with a deterministic ' +
        'synthetic catalogue of production shape (LOAD DATA LOCAL INFILE); drops the table first',
    )
    .option('--rows <n>', 'rows to generate', wholeNumber('--rows', 0), FULL_CATALOGUE_ROWS)
    .option(
      '--seed <s>',
      'random seed (same seed and rows, same catalogue)',
      wholeNumber('--seed', 0),
      DEFAULT_SEED,
    )
    .option('--database <db>', 'database (default DB_NAME)')
    .option('--table <t>', 'table (default DB_TABLE)')
    .option('--json', 'print a JSON summary as the last stdout line')
    .addHelpText(
      'after',
      '\nSummary (--json): {"rows","distinct_ln60","distinct_bn","eligible","active","seconds","rows_per_second"};\n' +
        'counts are read back by SQL after the load, seconds is the load time.\n' +
        'Settings: DB_HOST, DB_PORT, DB_NAME, DB_TABLE, DB_ADMIN_USER, DB_ADMIN_PASSWORD (from .drugsync/stack.env).\n',
    )
    .action(async (o: { rows: number; seed: number; database?: string; table?: string; json?: boolean }) => {
      for (const [k, v] of [
        ['--database', o.database],
        ['--table', o.table],
      ] as const) {
        if (v !== undefined && !/^[A-Za-z0-9_]+$/.test(v)) {
          throw new DrugsyncError(
            'CONFIG_INVALID',
            `${k}: must be a plain SQL identifier [A-Za-z0-9_], got "${v}"`,
          );
        }
      }
      const s = await runSeed({ rows: o.rows, seed: o.seed, database: o.database, table: o.table });
      if (o.json) process.stdout.write(JSON.stringify(s) + '\n');
      else
        process.stdout.write(
          `seeded ${s.rows} rows (${s.distinct_ln60} distinct LN60, ${s.distinct_bn} brands, ${s.eligible} eligible, ` +
            `${s.active} active) in ${s.seconds} s — ${s.rows_per_second} rows/s\n`,
        );
    });
}
