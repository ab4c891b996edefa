/**
 * Batch compression of stream records on a worker thread, so the binlog reader's one thread (zongji decoding,
 * event encoding, the SDK) does not also spend ~35–40 µs a record (gzip of one event) or ~30–60 µs an event
 * (zstd of a KPL aggregate, `zstdLevel`) compressing. A batch travels as one buffer of
 * the records end to end plus their offsets, both ways (transferred back: no copy of the output).
 *
 * Output is byte for byte what `compressRecord` makes (same zlib options), or with `zstdLevel` what
 * `frameAggregate(kpl, 'zstd')` makes (zstd at AGGREGATE_ZSTD_LEVEL). If the worker fails, exits or
 * leaves a batch unanswered for `answerTimeoutMs`, it is ended, the batches it held are compressed
 * synchronously and every later batch too (logged once): compression never stops the stream.
 */
import { Worker } from 'node:worker_threads';
import { RECORD_GZIP_OPTIONS, compressRecord } from './events.ts';
import { AGGREGATE_ZSTD_LEVEL, frameAggregate } from './stream-record.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';

export interface RecordCompressor {
  /** The records compressed (gzip, or zstd frames with `zstdLevel`), in order. */
  compress(records: readonly Buffer[]): Promise<Buffer[]>;
  /** How the worker compresses once started: 'reused' (one engine), 'gzipSync', or null (not known yet). */
  readonly engine?: string | null;
  /**
   * Which path compresses on this Node, once the worker has checked it: 'reused' (one gzip engine through
   * zlib's native handle, the fast path), 'gzipSync' (the engine did not check out) or 'inline' (no worker:
   * gzipSync on the calling thread).
   */
  engineReady?(): Promise<CompressionEngine>;
  close(): Promise<void>;
}

// Plain JavaScript run with `eval`: the worker needs no TypeScript loader.
//
// One gzip engine is reused for every record: reset() (public zlib API), then one synchronous deflate with
// Z_FINISH straight into the batch's output buffer, through the engine's native handle (`_handle.writeSync`
// and `_writeState`, the calls zlib.gzipSync itself makes). That skips creating an engine per record
// (~40 % of gzipSync on a 2.7 KB record) and a buffer per record. The bytes are gzipSync's: checked on
// sample records when the worker starts; if they differ, or the handle is not what it expects, or a call
// throws, the worker uses zlib.gzipSync from then on.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
const options = workerData.options;
const zstdLevel = workerData.zstdLevel;
const compressOne = zstdLevel == null
  ? (r) => zlib.gzipSync(r, options)
  : (r) => zlib.zstdCompressSync(r, { params: { [zlib.constants.ZSTD_c_compressionLevel]: zstdLevel } });
let engine = null;
function startEngine() {
  try {
    const g = zlib.createGzip(options);
    if (typeof g.reset !== 'function' || !g._handle || typeof g._handle.writeSync !== 'function' ||
        !(g._writeState instanceof Uint32Array)) return null;
    return g;
  } catch { return null; }
}
// deflate of one record into out[p...]: its length, or -1 when the engine cannot (the caller falls back)
function deflateInto(record, out, p) {
  engine.reset();
  const room = out.length - p;
  engine._handle.writeSync(zlib.constants.Z_FINISH, record, 0, record.length, out, p, room);
  const availOut = engine._writeState[0];
  const availIn = engine._writeState[1];
  if (availOut === 0 || availIn !== 0) return -1;
  return room - availOut;
}
engine = zstdLevel == null ? startEngine() : null;
if (engine) {
  try {
    for (const text of ['{}', JSON.stringify({ v: 1, name: 'LISINOPRIL 10 MG TABLET'.repeat(40), n: [1, 2, 3], u: 'é💊' })]) {
      const sample = Buffer.from(text);
      const out = Buffer.alloc(sample.length + 1024);
      const n = deflateInto(sample, out, 0);
      if (n < 0 || !out.subarray(0, n).equals(zlib.gzipSync(sample, options))) { engine = null; break; }
    }
  } catch { engine = null; }
}
parentPort.postMessage({ engine: zstdLevel != null ? 'zstd' : engine ? 'reused' : 'gzipSync' });
parentPort.on('message', ({ id, buf, offsets }) => {
  const input = Buffer.from(buf);
  const n = offsets.length - 1;
  // gzip output of a record is at most its length + 5 bytes per 16 KiB block + 18 of header and trailer
  let out = Buffer.allocUnsafeSlow(input.length + n * 64 + (input.length >> 10));
  const outOffsets = new Uint32Array(n + 1);
  let p = 0;
  for (let i = 0; i < n; i++) {
    const record = input.subarray(offsets[i], offsets[i + 1]);
    outOffsets[i] = p;
    let len = -1;
    if (engine) {
      try { len = deflateInto(record, out, p); } catch { engine = null; }
    }
    if (len < 0) {
      const z = compressOne(record);
      if (p + z.length > out.length) out = Buffer.concat([out.subarray(0, p), Buffer.alloc(z.length + input.length)]);
      z.copy(out, p);
      len = z.length;
    }
    p += len;
  }
  outOffsets[n] = p;
  const result = out.buffer.slice(out.byteOffset, out.byteOffset + p);
  parentPort.postMessage({ id, buf: result, offsets: outOffsets }, [result, outOffsets.buffer]);
});
`;

export type CompressionEngine = 'reused' | 'gzipSync' | 'zstd' | 'inline';

interface Pending {
  records: readonly Buffer[];
  resolve: (out: Buffer[]) => void;
  timer: NodeJS.Timeout;
}

export interface WorkerCompressorOptions {
  /** A batch the worker has not answered in this long (normally ~20 ms) ends the worker (default 10 s). */
  answerTimeoutMs?: number;
  /** Replaces the worker's code (tests: a worker that fails or hangs). */
  workerSource?: string;
  /** Compress each buffer (a KPL aggregate) into a zstd frame at AGGREGATE_ZSTD_LEVEL instead of gzip. */
  zstd?: boolean;
}

export function createWorkerCompressor(log: Logger, opts: WorkerCompressorOptions = {}): RecordCompressor {
  const workerSource = opts.workerSource ?? WORKER_SOURCE;
  const answerTimeoutMs = opts.answerTimeoutMs ?? 10_000;
  const inline = opts.zstd ? (r: Buffer) => frameAggregate(r, 'zstd') : compressRecord;
  let worker: Worker | null = new Worker(workerSource, {
    eval: true,
    workerData: { options: RECORD_GZIP_OPTIONS, zstdLevel: opts.zstd ? AGGREGATE_ZSTD_LEVEL : null },
  });
  worker.unref();
  const pending = new Map<number, Pending>();
  let nextId = 0;
  /** how the worker compresses: 'reused' (one engine) or 'gzipSync' (it could not check the engine) */
  let engine: string | null = null;
  let closing = false;
  let settleEngine: (e: CompressionEngine) => void = () => {};
  const engineKnown = new Promise<CompressionEngine>((resolve) => (settleEngine = resolve));

  const fallBack = (reason: string) => {
    if (!worker) return;
    const w = worker;
    worker = null;
    settleEngine('inline');
    if (!closing) {
      log.warn('record compression worker stopped: compressing on the reader thread from now on', {
        reason,
        batches_in_flight: pending.size,
      });
      void w.terminate();
    }
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.resolve(p.records.map(inline));
    }
    pending.clear();
  };
  worker.on('message', (m: { id: number; buf: ArrayBuffer; offsets: Uint32Array } | { engine: string }) => {
    if ('engine' in m) {
      engine = m.engine;
      settleEngine(engine === 'reused' || engine === 'zstd' ? engine : 'gzipSync');
      if (engine === 'zstd')
        log.info('record compression: zstd frames of the aggregates on the worker thread', {
          zstd_level: AGGREGATE_ZSTD_LEVEL,
        });
      else if (engine === 'reused')
        log.info(
          'record compression: one reused gzip engine on the worker thread (checked against gzipSync)',
          {
            node: process.version,
          },
        );
      else
        log.warn('record compression: the reused gzip engine did not check out, each record uses gzipSync', {
          effect: 'same bytes, ~35% more compression CPU',
        });
      return;
    }
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    clearTimeout(p.timer);
    const all = Buffer.from(m.buf);
    const out: Buffer[] = new Array(m.offsets.length - 1);
    for (let i = 0; i < out.length; i++) out[i] = all.subarray(m.offsets[i], m.offsets[i + 1]);
    p.resolve(out);
  });
  worker.on('error', (e) => fallBack(errorMessage(e)));
  worker.on('exit', (code) => fallBack(`exited with code ${code}`));

  return {
    get engine() {
      return engine;
    },
    engineReady: () => engineKnown,
    compress(records) {
      if (!worker || records.length === 0) return Promise.resolve(records.map(inline));
      const offsets = new Uint32Array(records.length + 1);
      let total = 0;
      records.forEach((r, i) => {
        offsets[i] = total;
        total += r.length;
      });
      offsets[records.length] = total;
      const buf = Buffer.allocUnsafeSlow(total);
      records.forEach((r, i) => r.copy(buf, offsets[i]));
      const id = nextId++;
      return new Promise<Buffer[]>((resolve) => {
        const timer = setTimeout(
          () => fallBack(`no answer for a batch of ${records.length} records in ${answerTimeoutMs} ms`),
          answerTimeoutMs,
        );
        timer.unref();
        pending.set(id, { records, resolve, timer });
        (worker as Worker).postMessage({ id, buf: buf.buffer, offsets }, [buf.buffer, offsets.buffer]);
      });
    },
    async close() {
      closing = true;
      const w = worker;
      fallBack('closed');
      await w?.terminate();
    },
  };
}
