/**
 * The binlog reader's batch compressor: a real worker thread, realistic change events.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { COMPRESSOR_WORKER_URL, createWorkerCompressor } from '../services/core/compressor.ts';
import { compressRecord, decodeChangeEvent, encodeChangeEvent } from '../services/core/events.ts';
import { encodeAggregate } from '../services/core/kpl.ts';
import { createLogger } from '../services/core/log.ts';
import { AGGREGATE_ZSTD_LEVEL, decodeStreamRecord, frameAggregate } from '../services/core/stream-record.ts';
import { generateCatalogue } from '../services/seed/generator.ts';
import { EventFactory } from './support/events.ts';

/** Workers that fail on their first batch, or never answer (TypeScript modules, started like the real one). */
const FAILING_WORKER = new URL('./support/failing-compressor-worker.ts', import.meta.url);
const SILENT_WORKER = new URL('./support/silent-compressor-worker.ts', import.meta.url);

function catalogueEvents(n: number) {
  const f = new EventFactory('binlog.000031');
  const rows = [...generateCatalogue({ rows: n, seed: 11 })];
  return rows.map((r, i) =>
    i % 3 === 0
      ? f.insert(r)
      : i % 3 === 1
        ? f.update(r, { ...r, PS: '250.000', LN: 'ELIQUIS 5 MG TABLET' })
        : f.delete(r),
  );
}

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger(
    { service: 'test' },
    { level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) },
  );
  return { log, lines };
}

describe('record compressor (worker thread)', () => {
  it('makes exactly the bytes compressRecord makes, in order, for batches of every size', async () => {
    // Prepare: inserts, updates with both images and deletes of catalogue rows, as the reader encodes them
    const events = catalogueEvents(1_200);
    const records = events.map(encodeChangeEvent);
    const { log, lines } = capturingLogger();
    const compressor = createWorkerCompressor(log);
    try {
      // Act: batches as the publisher sends them (500 a call), a single record and an empty batch, at once
      const batches = [
        records.slice(0, 500),
        records.slice(500, 1000),
        records.slice(1000),
        [records[7]!],
        // incompressible bytes beside a record: deflate's worst case must fit the batch's output buffer
        [randomBytes(300_000), records[3]!, randomBytes(17)],
        [],
      ];
      const outs = await Promise.all(batches.map((b) => compressor.compress(b)));
      // Assess
      outs.forEach((out, k) => {
        const batch = batches[k]!;
        expect(out).toHaveLength(batch.length);
        out.forEach((c, i) => expect(c.equals(compressRecord(batch[i]!))).toBe(true));
      });
      const decoded = outs
        .slice(0, 3)
        .flat()
        .map((c) => decodeChangeEvent(c));
      expect(decoded).toEqual(events);
      expect(outs[0]![0]!.length).toBeLessThan(records[0]!.length / 2);
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(0);
      // one reused gzip engine, its bytes checked against gzipSync when the worker started
      expect(compressor.engine).toBe('reused');
      expect(await compressor.engineReady?.()).toBe('reused');
      expect(lines.filter((l) => String(l.msg).includes('one reused gzip engine'))).toHaveLength(1);
    } finally {
      await compressor.close();
    }
  });

  it('with zstd: frames aggregates exactly as frameAggregate does, readable by decodeStreamRecord', async () => {
    // Prepare: KPL aggregates of catalogue events, as the aggregating sink packs them (two of 400, one of 1)
    const events = catalogueEvents(801);
    const subs = events.map((e) => ({ partitionKey: e.ndc ?? '', data: encodeChangeEvent(e) }));
    const kpls = [subs.slice(0, 400), subs.slice(400, 800), subs.slice(800)].map((s) => encodeAggregate(s));
    const { log, lines } = capturingLogger();
    const compressor = createWorkerCompressor(log, { zstd: true });
    try {
      // Act
      const framed = await compressor.compress(kpls);
      // Assess: the same bytes as on the calling thread, every event back in order, the engine said once
      framed.forEach((f, i) => expect(f.equals(frameAggregate(kpls[i]!, 'zstd'))).toBe(true));
      const back = framed.flatMap((f) =>
        decodeStreamRecord(f, 'unused').map((u) => decodeChangeEvent(u.json)),
      );
      expect(back).toEqual(events);
      expect(framed[0]!.length).toBeLessThan(kpls[0]!.length / 5);
      expect(await compressor.engineReady?.()).toBe('zstd');
      const announced = lines.filter((l) => String(l.msg).includes('zstd frames'));
      expect(announced).toHaveLength(1);
      // the compression level is a field of its own, never the record's level
      expect(announced[0]).toMatchObject({ level: 'info', zstd_level: AGGREGATE_ZSTD_LEVEL });
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(0);
    } finally {
      await compressor.close();
    }
  });

  it('with zstd: a dead worker falls back to zstd on the calling thread, not to gzip', async () => {
    // Prepare: a worker that fails on its first batch
    const subs = catalogueEvents(300).map((e) => ({ partitionKey: e.ndc ?? '', data: encodeChangeEvent(e) }));
    const kpl = encodeAggregate(subs);
    const { log, lines } = capturingLogger();
    const compressor = createWorkerCompressor(log, { zstd: true, workerUrl: FAILING_WORKER });
    try {
      // Act
      const [framed] = await compressor.compress([kpl]);
      // Assess
      expect(framed!.equals(frameAggregate(kpl, 'zstd'))).toBe(true);
      expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);
    } finally {
      await compressor.close();
    }
  });

  it('keeps compressing when its worker dies: the batch in flight and every later one, with one warning', async () => {
    // Prepare: a worker that fails on its first batch
    const events = catalogueEvents(600);
    const records = events.map(encodeChangeEvent);
    const { log, lines } = capturingLogger();
    const compressor = createWorkerCompressor(log, { workerUrl: FAILING_WORKER });
    try {
      // Act
      const first = await compressor.compress(records.slice(0, 500));
      const later = await compressor.compress(records.slice(500));
      // Assess: nothing lost, same bytes, the failure said once with its reason
      expect([...first, ...later].map((c) => decodeChangeEvent(c))).toEqual(events);
      first.forEach((c, i) => expect(c.equals(compressRecord(records[i]!))).toBe(true));
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(String(warnings[0]!.msg)).toMatch(/compression worker stopped/);
      expect(JSON.stringify(warnings[0])).toMatch(/zlib worker out of memory/);
      // the path in use is reported: gzipSync on the calling thread
      expect(await compressor.engineReady?.()).toBe('inline');
    } finally {
      await compressor.close();
    }
  });

  it('gives up on a worker that never answers: the batch is compressed on the calling thread', async () => {
    // Prepare: a worker that takes batches and never answers
    const records = catalogueEvents(300).map(encodeChangeEvent);
    const { log, lines } = capturingLogger();
    const compressor = createWorkerCompressor(log, { workerUrl: SILENT_WORKER, answerTimeoutMs: 200 });
    try {
      // Act
      const out = await compressor.compress(records);
      // Assess
      out.forEach((c, i) => expect(c.equals(compressRecord(records[i]!))).toBe(true));
      const warnings = lines.filter((l) => l.level === 'warn');
      expect(warnings).toHaveLength(1);
      expect(JSON.stringify(warnings[0])).toMatch(/no answer for a batch of 300 records in 200 ms/);
    } finally {
      await compressor.close();
    }
  });

  it('starts its worker from compressor-worker.ts, also on a Node without type stripping (through tsx)', () => {
    // Prepare: the worker is a TypeScript module of its own beside the compressor (no code string, no eval)
    expect(fileURLToPath(COMPRESSOR_WORKER_URL)).toBe(
      fileURLToPath(new URL('../services/core/compressor-worker.ts', import.meta.url)),
    );
    const child = fileURLToPath(new URL('./support/compress-in-child.ts', import.meta.url));
    const runs = [
      ['--import', 'tsx'], // as `npm run bench` and `npx tsx` start it: Node strips the worker's types itself
      ['--no-experimental-strip-types', '--import', 'tsx'], // a Node 22 before 22.18: tsx in the worker
    ];
    for (const flags of runs) {
      // Act
      const r = spawnSync(process.execPath, [...flags, child], { encoding: 'utf8', timeout: 60_000 });
      // Assess: the worker ran (its engine, not the inline fallback) and made compressRecord's bytes
      expect(r.status, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
      expect(out, flags.join(' ')).toEqual({
        engine: 'reused',
        sameBytes: true,
        typescript: flags.includes('--no-experimental-strip-types') ? false : 'strip',
        warnings: [],
      });
    }
  });
});
