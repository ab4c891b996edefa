/**
 * The runtime the project runs on: Node 22, and the two fast paths that rely on Node and zongji internals
 * actually in use on it. The record compressor reuses one gzip engine through zlib's native handle and the
 * row decoder hooks zongji's `_fetchOneRow`; both fall back silently-correct (same bytes, same rows) when
 * what they rely on changes, so a Node upgrade could cost their speed without any test failing. These
 * tests fail instead: a fast path that fell back on this Node is a finding, not a detail.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createWorkerCompressor } from '../services/core/compressor.ts';
import { compressRecord, encodeChangeEvent } from '../services/core/events.ts';
import { decodeConfig } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { readerConfigShape } from '../services/binlog-reader/reader.ts';
import type { ReaderConfig } from '../services/binlog-reader/reader.ts';
import { rowDecoderStats } from '../services/binlog-reader/decoder.ts';
import type { RowsEvent } from '../services/binlog-reader/source.ts';
import { readSourceRange, suiteSource } from './support/binlog.ts';
import { EventFactory } from './support/events.ts';
import { changes, generateCatalogue, insertRows } from './support/factories.ts';
import { createSuiteDatabase, suiteEnv } from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const env = suiteEnv('runtime_paths', {
  DB_SERVER_ID: String(400_000 + Math.floor(Math.random() * 100_000)),
});
let config: ReaderConfig;
let admin: Connection;

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

/** The suite table's rows events in [from, to) as the reader's source decodes them with the fast decoder. */
async function readWithFastDecoder(from: BinlogPosition, to: BinlogPosition) {
  const rows: RowsEvent[] = [];
  const warnings: string[] = [];
  const source = suiteSource(config, { fastRows: true, warn: (m) => warnings.push(m) });
  await readSourceRange(source, from, to, (e) => rows.push(e));
  await source.stop();
  return { rows, warnings };
}

beforeAll(async () => {
  config = decodeConfig(readerConfigShape, env);
  admin = await createSuiteDatabase(env);
});

afterAll(async () => {
  await admin?.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
  await admin?.end();
});

describe('runtime: Node 22 and the fast paths on it', () => {
  it('runs the tests on Node 22 or newer', () => {
    const major = Number(process.versions.node.split('.')[0]);
    expect(major, `tests run on Node ${process.version} (${process.execPath})`).toBeGreaterThanOrEqual(22);
  });

  it('compresses records with the reused gzip engine (not the gzipSync fallback)', async () => {
    // Prepare: realistic change events as the reader encodes them
    const f = new EventFactory('binlog.000042');
    const records = [...generateCatalogue(200, 5)].map((r) => encodeChangeEvent(f.insert(r)));
    const lines: Record<string, unknown>[] = [];
    const log = createLogger(
      { service: 'test' },
      { level: 'debug', json: true, write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) },
    );
    const compressor = createWorkerCompressor(log);
    try {
      // Act
      const engine = await compressor.engineReady?.();
      const out = await compressor.compress(records);
      // Assess: the fast path is the one in use, and it makes gzipSync's bytes
      expect(engine).toBe('reused');
      expect(compressor.engine).toBe('reused');
      out.forEach((c, i) => expect(c.equals(compressRecord(records[i]!))).toBe(true));
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
      expect(lines.some((l) => String(l.msg).includes('one reused gzip engine'))).toBe(true);
    } finally {
      await compressor.close();
    }
  });

  it('decodes real binlog row events with the hooked row decoder (not zongji fallback)', async () => {
    // Prepare: inserts, updates and deletes of catalogue rows, two statements of each kind (the first rows
    // event of each kind is what hooks its class; the later ones are decoded by our decoder)
    const catalogue = [...generateCatalogue(120, 17)];
    const from = await masterStatus();
    await insertRows(admin, catalogue.slice(0, 60));
    await insertRows(admin, catalogue.slice(60));
    for (const r of catalogue.slice(0, 2).map((row, i) => changes.rename(row, `rt${i}`)))
      await admin.query('UPDATE rndc14 SET LN = ?, LN60 = ? WHERE NDC = ?', [r.LN, r.LN60, r.NDC]);
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [catalogue[100]!.NDC]);
    await admin.query('DELETE FROM rndc14 WHERE NDC = ?', [catalogue[101]!.NDC]);
    const to = await masterStatus();
    const before = { ...rowDecoderStats };

    // Act
    const { rows, warnings } = await readWithFastDecoder(from, to);

    // Assess: no hook failure reported, and rows of every kind decoded by our decoder
    expect(warnings).toEqual([]);
    const perOp: Record<string, number> = {};
    for (const e of rows) perOp[e.op] = (perOp[e.op] ?? 0) + e.rows.length;
    expect(perOp).toEqual({ insert: 120, update: 2, delete: 2 });
    const fast = rowDecoderStats.fastRows - before.fastRows;
    expect(rowDecoderStats.zongjiRows - before.zongjiRows).toBe(0);
    // the second statement of each kind: 60 inserted rows, 1 update, 1 delete
    expect(fast).toBeGreaterThanOrEqual(62);
  });
});
