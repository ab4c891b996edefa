/**
 * Seed: `drugsync seed` at full size (493,573 rows) beside the two raw rates that bound it, taken in the
 * same run: MariaDB's own LOAD DATA LOCAL INFILE of the same catalogue pre-written to a file (the server
 * side, no generation), and the generator + TSV encoding alone (our CPU side, no server).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Bench, BenchRow } from './run.ts';
import { DEFAULT_SEED, FULL_CATALOGUE_ROWS, generateCatalogue } from '../services/seed/generator.ts';
import { adminConnection, recreateTable, tsvLine } from '../services/seed/load-data.ts';
import { runSeed, seedShape } from '../services/seed/cli.ts';
import { decodeConfig } from '../services/core/config.ts';
import { RNDC14_COLUMN_LIST } from '../services/core/rndc14.ts';
import { quoteIdent, quoteTable } from '../services/core/sql.ts';

const DB = 'fdb_bench_seed';
const N = FULL_CATALOGUE_ROWS;

async function rawLoadRate(file: string): Promise<number> {
  const cfg = decodeConfig(seedShape);
  const conn = await adminConnection(cfg);
  try {
    await recreateTable(conn, DB, 'rndc14_raw');
    await conn.query(`SET SESSION sql_mode = '', SESSION unique_checks = 0`);
    const t0 = performance.now();
    await conn.query({
      sql:
        `LOAD DATA LOCAL INFILE 'catalogue.tsv' INTO TABLE ${quoteTable(DB, 'rndc14_raw')} CHARACTER SET utf8mb4 ` +
        `FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (${RNDC14_COLUMN_LIST})`,
      infileStreamFactory: () => fs.createReadStream(file, { highWaterMark: 1 << 20 }),
    });
    const rate = N / ((performance.now() - t0) / 1000);
    await conn.query(`DROP TABLE ${quoteTable(DB, 'rndc14_raw')}`);
    return rate;
  } finally {
    await conn.end();
  }
}

const bench: Bench = {
  name: 'seed',
  description: `drugsync seed at full size (${N} rows) vs raw LOAD DATA of the same rows from a file, and vs generating them`,
  async run(): Promise<BenchRow[]> {
    // Generator + TSV alone, writing the file the raw load reads (same rows, same NDC order as the seed).
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-seed-bench-')), 'catalogue.tsv');
    const fd = fs.openSync(file, 'w');
    let genSeconds = 0;
    try {
      let buf = '';
      let t0 = performance.now();
      for (const row of generateCatalogue({ rows: N, seed: DEFAULT_SEED, order: 'ndc' })) {
        buf += tsvLine(row);
        if (buf.length >= 1 << 20) {
          genSeconds += (performance.now() - t0) / 1000;
          fs.writeSync(fd, buf);
          buf = '';
          t0 = performance.now();
        }
      }
      genSeconds += (performance.now() - t0) / 1000;
      fs.writeSync(fd, buf);
    } finally {
      fs.closeSync(fd);
    }
    const t1 = performance.now();
    let count = 0;
    for (const row of generateCatalogue({ rows: N, seed: DEFAULT_SEED, order: 'ndc' })) if (row.NDC) count++;
    const generatorRate = count / ((performance.now() - t1) / 1000);
    try {
      const raw = await rawLoadRate(file);
      const s = await runSeed({ rows: N, seed: DEFAULT_SEED, database: DB });
      return [
        {
          bench: 'seed',
          metric: 'drugsync seed, full catalogue (generate + LOAD DATA LOCAL INFILE stream)',
          value: s.rows_per_second,
          unit: 'rows/s',
          baseline: { metric: 'raw LOAD DATA of the same rows from a file', value: raw, unit: 'rows/s' },
          target: '≥ 50,000 rows/s',
          note: `${s.seconds} s, ${s.distinct_ln60} distinct LN60, ${s.eligible} eligible, ${s.active} active`,
        },
        {
          bench: 'seed',
          metric: 'generator alone (Rndc14Row objects, in process)',
          value: generatorRate,
          unit: 'rows/s',
          target: '≥ 200,000 rows/s',
          note: `generator + TSV encoding (the loader's CPU side): ${Math.round(N / genSeconds)} rows/s`,
        },
      ];
    } finally {
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
      const conn = await adminConnection(decodeConfig(seedShape));
      await conn.query(`DROP DATABASE IF EXISTS ${quoteIdent(DB)}`);
      await conn.end();
    }
  },
};
export default bench;
