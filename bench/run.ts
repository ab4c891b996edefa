/**
 * `npm run bench [-- NAME ...]`: runs the benchmarks in bench/*.bench.ts (all, or those named) and prints
 * one table of measured figures, each beside the raw rate of the part that bounds it, taken in the same run.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface BenchRow {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  /** The bounding part's raw rate measured in the same run, and our figure as a ratio of it. */
  baseline?: { metric: string; value: number; unit: string };
  target?: string;
  note?: string;
}

export interface Bench {
  name: string;
  description: string;
  run(): Promise<BenchRow[]>;
}

const dir = path.dirname(fileURLToPath(import.meta.url));

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const files = fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort();
  const benches: Bench[] = [];
  for (const f of files) {
    const mod = (await import(path.join(dir, f))) as { default: Bench };
    if (wanted.length === 0 || wanted.includes(mod.default.name)) benches.push(mod.default);
  }
  if (benches.length === 0) {
    process.stderr.write(`no benchmark matches ${wanted.join(', ')}; have: ${files.join(', ')}\n`);
    process.exitCode = 2;
    return;
  }
  const rows: BenchRow[] = [];
  for (const b of benches) {
    process.stderr.write(`== ${b.name}: ${b.description}\n`);
    rows.push(...(await b.run()));
  }
  const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString('en-US') : n.toFixed(2));
  const lines = [
    '| bench | metric | value | baseline (same run) | ratio | target |',
    '|---|---|---|---|---|---|',
    ...rows.map((r) => {
      const base = r.baseline ? `${r.baseline.metric}: ${fmt(r.baseline.value)} ${r.baseline.unit}` : '';
      const ratio =
        r.baseline && r.baseline.value > 0 ? `${((r.value / r.baseline.value) * 100).toFixed(0)}%` : '';
      return `| ${r.bench} | ${r.metric} | ${fmt(r.value)} ${r.unit} | ${base} | ${ratio} | ${r.target ?? ''} |`;
    }),
  ];
  process.stdout.write(lines.join('\n') + '\n');
}

await main();
