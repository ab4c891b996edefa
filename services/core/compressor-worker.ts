/**
 * The record compressor's worker thread (started by compressor.ts; beside the bundle it is
 * dist/compressor-worker.mjs, built by scripts/build.ts). It answers first with the engine it will use, then
 * each batch with its records compressed, in order: gzip at the options it is given (`compressRecord`'s),
 * or, with `zstdLevel`, zstd frames at that level (`frameAggregate(kpl, 'zstd')`'s). Node built-ins only.
 *
 * One gzip engine is reused for every record: reset() (public zlib API), then one synchronous deflate with
 * Z_FINISH straight into the batch's output buffer, through the engine's native handle (`_handle.writeSync`
 * and `_writeState`, the calls zlib.gzipSync itself makes). That skips creating an engine per record (~40 %
 * of gzipSync on a 2.7 KB record) and a buffer per record. The bytes are gzipSync's: checked on sample
 * records when the worker starts; if they differ, or the handle is not what it expects, or a call throws,
 * the worker uses zlib.gzipSync from then on.
 */
import { parentPort, workerData } from 'node:worker_threads';
import zlib from 'node:zlib';

/** What the compressor hands the worker when it starts it. */
export interface CompressorWorkerData {
  /** gzip options (RECORD_GZIP_OPTIONS) */
  options: zlib.ZlibOptions;
  /** zstd level (AGGREGATE_ZSTD_LEVEL) instead of gzip, or null */
  zstdLevel: number | null;
}

/** How the worker compresses: one reused gzip engine, gzipSync per record, or zstd. */
export type WorkerEngine = 'reused' | 'gzipSync' | 'zstd';

/** A batch: the records end to end in `buf`, record i at offsets[i] up to offsets[i + 1]. Same shape back. */
export interface CompressorBatch {
  id: number;
  buf: ArrayBuffer;
  offsets: Uint32Array<ArrayBuffer>;
}

/** Every message the worker posts: its engine once, then one answer per batch. */
export type CompressorWorkerMessage = { engine: WorkerEngine } | CompressorBatch;

/** The parts of a zlib engine gzipSync drives by hand (internal, so checked before use). */
interface EngineInternals {
  reset(): void;
  _handle?: {
    writeSync(
      flush: number,
      input: Buffer,
      inOff: number,
      inLen: number,
      out: Buffer,
      outOff: number,
      outLen: number,
    ): void;
  };
  _writeState?: Uint32Array;
}

type Engine = Required<EngineInternals>;

function startEngine(options: zlib.ZlibOptions): Engine | null {
  try {
    const g = zlib.createGzip(options) as unknown as EngineInternals;
    if (typeof g.reset !== 'function' || typeof g._handle?.writeSync !== 'function') return null;
    if (!(g._writeState instanceof Uint32Array)) return null;
    return g as Engine;
  } catch {
    return null;
  }
}

/** Deflate of one record into out[p…]: its length, or -1 when the engine cannot (the caller falls back). */
function deflateInto(engine: Engine, record: Buffer, out: Buffer, p: number): number {
  engine.reset();
  const room = out.length - p;
  engine._handle.writeSync(zlib.constants.Z_FINISH, record, 0, record.length, out, p, room);
  const availOut = engine._writeState[0] as number;
  const availIn = engine._writeState[1];
  if (availOut === 0 || availIn !== 0) return -1;
  return room - availOut;
}

/** The engine, if it makes exactly gzipSync's bytes on sample records (else null: gzipSync it is). */
function checkedEngine(options: zlib.ZlibOptions): Engine | null {
  const engine = startEngine(options);
  if (!engine) return null;
  const samples = [
    '{}',
    JSON.stringify({ v: 1, name: 'LISINOPRIL 10 MG TABLET'.repeat(40), n: [1, 2, 3], u: 'é💊' }),
  ];
  try {
    for (const text of samples) {
      const sample = Buffer.from(text);
      const out = Buffer.alloc(sample.length + 1024);
      const n = deflateInto(engine, sample, out, 0);
      if (n < 0 || !out.subarray(0, n).equals(zlib.gzipSync(sample, options))) return null;
    }
    return engine;
  } catch {
    return null;
  }
}

/** Compresses one batch into one output buffer; an engine that fails is dropped for good. */
function compressBatch(
  batch: CompressorBatch,
  state: { engine: Engine | null },
  compressOne: (r: Buffer) => Buffer,
): CompressorBatch {
  const input = Buffer.from(batch.buf);
  const { offsets } = batch;
  const n = offsets.length - 1;
  // gzip output of a record is at most its length + 5 bytes per 16 KiB block + 18 of header and trailer
  let out = Buffer.allocUnsafeSlow(input.length + n * 64 + (input.length >> 10));
  const outOffsets = new Uint32Array(n + 1);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const record = input.subarray(offsets[i], offsets[i + 1]);
    outOffsets[i] = p;
    let len = -1;
    if (state.engine) {
      try {
        len = deflateInto(state.engine, record, out, p);
      } catch {
        state.engine = null;
      }
    }
    if (len < 0) {
      const z = compressOne(record);
      if (p + z.length > out.length)
        out = Buffer.concat([out.subarray(0, p), Buffer.alloc(z.length + input.length)]);
      z.copy(out, p);
      len = z.length;
    }
    p += len;
  }
  outOffsets[n] = p;
  const buf = out.buffer.slice(out.byteOffset, out.byteOffset + p) as ArrayBuffer;
  return { id: batch.id, buf, offsets: outOffsets };
}

function run(port: NonNullable<typeof parentPort>, data: CompressorWorkerData): void {
  const { options, zstdLevel } = data;
  const compressOne =
    zstdLevel === null
      ? (r: Buffer) => zlib.gzipSync(r, options)
      : (r: Buffer) =>
          zlib.zstdCompressSync(r, { params: { [zlib.constants.ZSTD_c_compressionLevel]: zstdLevel } });
  const state = { engine: zstdLevel === null ? checkedEngine(options) : null };
  const engine: WorkerEngine = zstdLevel !== null ? 'zstd' : state.engine ? 'reused' : 'gzipSync';
  port.postMessage({ engine } satisfies CompressorWorkerMessage);
  port.on('message', (batch: CompressorBatch) => {
    const answer = compressBatch(batch, state, compressOne);
    port.postMessage(answer satisfies CompressorWorkerMessage, [answer.buf, answer.offsets.buffer]);
  });
}

if (parentPort) run(parentPort, workerData as CompressorWorkerData);
