/**
 * Compresses realistic change events with the record compressor and prints what happened as one JSON line:
 * the engine the worker reported, whether every output is `compressRecord`'s bytes, and the warnings logged.
 * Run as a child process (test/compressor.test.ts), to start the worker under another Node setup than the
 * test's own (a Node without type stripping, tsx by `--import`).
 */
import { createWorkerCompressor } from '../../services/core/compressor.ts';
import { compressRecord, encodeChangeEvent } from '../../services/core/events.ts';
import { createLogger } from '../../services/core/log.ts';
import { generateCatalogue } from '../../services/seed/generator.ts';
import { EventFactory } from './events.ts';

const warnings: string[] = [];
const log = createLogger(
  { service: 'compress-in-child' },
  {
    level: 'debug',
    json: true,
    write: (l) => {
      const line = JSON.parse(l) as { level: string; msg: string };
      if (line.level === 'warn') warnings.push(l);
    },
  },
);
const f = new EventFactory('binlog.000077');
const records = [...generateCatalogue({ rows: 400, seed: 29 })].map((r) => encodeChangeEvent(f.insert(r)));
const compressor = createWorkerCompressor(log);
try {
  const engine = await compressor.engineReady?.();
  const out = await compressor.compress(records);
  const sameBytes =
    out.length === records.length && out.every((c, i) => c.equals(compressRecord(records[i]!)));
  process.stdout.write(
    JSON.stringify({ engine, sameBytes, typescript: process.features.typescript ?? false, warnings }) + '\n',
  );
} finally {
  await compressor.close();
}
