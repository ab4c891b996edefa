/**
 * A realistic writer for the local stack (`drugsync run --simulate-changes RATE`, tests, benchmarks): the
 * kinds of change First Databank publishes — mostly price-list style updates that do not touch names, some
 * renames, inserts of new packages, deletes, and occasional NDC changes — at a steady rate, in small
 * transactions, as the admin user.
 */
import type { Connection } from 'mysql2/promise';
import type { Logger } from '../core/log.ts';
import { rndc14InsertSql, rndc14Values } from '../core/rndc14.ts';
import type { Rndc14Row } from '../core/rndc14.ts';
import { quoteTable } from '../core/sql.ts';
import { changes, generateCatalogue, prng } from '../seed/generator.ts';

export interface SimulatorStats {
  changes: number;
  inserts: number;
  updates: number;
  renames: number;
  deletes: number;
  ndcChanges: number;
  errors: number;
}

export interface Simulator {
  stats: SimulatorStats;
  stop(): Promise<void>;
  done: Promise<void>;
}

export interface SimulatorOptions {
  /** changes per second */
  rate: number;
  schema: string;
  table: string;
  seed?: number;
  /** stop after this many changes (default: until stop()) */
  maxChanges?: number;
  log: Logger;
  /** Called after each change has committed (autocommit statement returned), with the NDC it touched. */
  onChange?: (c: {
    kind: 'insert' | 'delete' | 'ndc_change' | 'rename' | 'update';
    ndc: string;
    at: number;
  }) => void;
}

/** Runs until stop(); every tick commits a few changes so the rate holds at `rate` per second. */
export async function startSimulator(conn: Connection, opts: SimulatorOptions): Promise<Simulator> {
  const r = prng(opts.seed ?? Date.now() % 1e9);
  const stats: SimulatorStats = {
    changes: 0,
    inserts: 0,
    updates: 0,
    renames: 0,
    deletes: 0,
    ndcChanges: 0,
    errors: 0,
  };
  const t = quoteTable(opts.schema, opts.table);
  // A pool of fresh rows for inserts, from a different seed than any catalogue.
  const fresh = generateCatalogue({ rows: 50_000, seed: 900_000 + Math.floor(r() * 1000) });
  let stopping = false;
  const pickNdc = async (): Promise<Rndc14Row | undefined> => {
    // A random existing row: jump to a random NDC and take the next one (no ORDER BY RAND on 494K rows).
    const probe = String(Math.floor(r() * 1e11)).padStart(11, '0');
    const [rows] = await conn.query(`SELECT * FROM ${t} WHERE NDC >= ? ORDER BY NDC LIMIT 1`, [probe]);
    const row = (rows as Rndc14Row[])[0];
    if (row) return row;
    const [first] = await conn.query(`SELECT * FROM ${t} ORDER BY NDC LIMIT 1`);
    return (first as Rndc14Row[])[0];
  };
  const one = async () => {
    const x = r();
    if (x < 0.05) {
      const n = fresh.next();
      if (n.done) return;
      const row: Rndc14Row = { ...n.value, NDC: `9${String(n.value.NDC).slice(1)}` };
      await conn.query(rndc14InsertSql(t, { ignore: true }), [[rndc14Values(row)]]);
      opts.onChange?.({ kind: 'insert', ndc: String(row.NDC), at: Date.now() });
      stats.inserts++;
      return;
    }
    const row = await pickNdc();
    if (!row) return;
    if (x < 0.08) {
      await conn.query(`DELETE FROM ${t} WHERE NDC = ?`, [row.NDC]);
      opts.onChange?.({ kind: 'delete', ndc: String(row.NDC), at: Date.now() });
      stats.deletes++;
    } else if (x < 0.1) {
      const moved = changes.newNdc(row, 1 + Math.floor(r() * 98));
      await conn.query(`UPDATE IGNORE ${t} SET NDC = ? WHERE NDC = ?`, [moved.NDC, row.NDC]);
      opts.onChange?.({ kind: 'delete', ndc: String(row.NDC), at: Date.now() });
      opts.onChange?.({ kind: 'ndc_change', ndc: String(moved.NDC), at: Date.now() });
      stats.ndcChanges++;
    } else if (x < 0.25) {
      const renamed = changes.rename(row, Math.floor(r() * 1e6));
      await conn.query(`UPDATE ${t} SET LN = ?, LN60 = ? WHERE NDC = ?`, [renamed.LN, renamed.LN60, row.NDC]);
      opts.onChange?.({ kind: 'rename', ndc: String(row.NDC), at: Date.now() });
      stats.renames++;
    } else {
      const p = changes.priceList(row, r);
      await conn.query(`UPDATE ${t} SET PS = ?, HCFA_PS = ?, DUPDC = ?, HCFA_TYP = ? WHERE NDC = ?`, [
        p.PS,
        p.HCFA_PS,
        p.DUPDC,
        p.HCFA_TYP,
        row.NDC,
      ]);
      opts.onChange?.({ kind: 'update', ndc: String(row.NDC), at: Date.now() });
      stats.updates++;
    }
  };
  const done = (async () => {
    await conn.query("SET SESSION sql_mode = ''");
    const started = Date.now();
    const cap = opts.maxChanges ?? Infinity;
    while (!stopping && stats.changes < cap) {
      // catching up with the rate never goes past maxChanges
      const target = Math.min(cap, ((Date.now() - started) / 1000) * opts.rate);
      while (stats.changes < target && !stopping) {
        try {
          await one();
        } catch (e) {
          stats.errors++;
          opts.log.warn('simulated change failed', { error: e instanceof Error ? e.message : String(e) });
        }
        stats.changes++;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
  })();
  return {
    stats,
    done,
    async stop() {
      stopping = true;
      await done;
    },
  };
}
