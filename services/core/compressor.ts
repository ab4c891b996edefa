/**
 * Batch gzip of stream records on a worker thread, so the binlog reader's one thread (zongji decoding, event
 * encoding, the SDK) does not also spend ~35–40 µs a record compressing. A batch travels as one buffer of
 * the records end to end plus their offsets, both ways (transferred back: no copy of the output).
 *
 * Output is byte for byte what `compressRecord` makes (same zlib options). If the worker fails, exits or
 * leaves a batch unanswered for `answerTimeoutMs`, it is ended, the batches it held are compressed
 * synchronously and every later batch too (logged once): compression never stops the stream.
 */
import { Worker } from 'node:worker_threads';
import { RECORD_GZIP_OPTIONS, compressRecord } from './events.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';

export interface RecordCompressor {
  /** The records gzip-compressed, in order. */
  compress(records: readonly Buffer[]): Promise<Buffer[]>;
  close(): Promise<void>;
}

// Plain JavaScript run with `eval`: the worker needs no TypeScript loader.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const zlib = require('node:zlib');
parentPort.on('message', ({ id, buf, offsets }) => {
  const input = Buffer.from(buf);
  const n = offsets.length - 1;
  const parts = new Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    parts[i] = zlib.gzipSync(input.subarray(offsets[i], offsets[i + 1]), workerData.options);
    total += parts[i].length;
  }
  const out = Buffer.allocUnsafeSlow(total);
  const outOffsets = new Uint32Array(n + 1);
  let p = 0;
  for (let i = 0; i < n; i++) {
    outOffsets[i] = p;
    parts[i].copy(out, p);
    p += parts[i].length;
  }
  outOffsets[n] = p;
  parentPort.postMessage({ id, buf: out.buffer, offsets: outOffsets }, [out.buffer, outOffsets.buffer]);
});
`;

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
}

export function createWorkerCompressor(log: Logger, opts: WorkerCompressorOptions = {}): RecordCompressor {
  const workerSource = opts.workerSource ?? WORKER_SOURCE;
  const answerTimeoutMs = opts.answerTimeoutMs ?? 10_000;
  let worker: Worker | null = new Worker(workerSource, {
    eval: true,
    workerData: { options: RECORD_GZIP_OPTIONS },
  });
  worker.unref();
  const pending = new Map<number, Pending>();
  let nextId = 0;
  let closing = false;

  const fallBack = (reason: string) => {
    if (!worker) return;
    const w = worker;
    worker = null;
    if (!closing) {
      log.warn('record compression worker stopped: compressing on the reader thread from now on', {
        reason,
        batches_in_flight: pending.size,
      });
      void w.terminate();
    }
    for (const p of pending.values()) {
      clearTimeout(p.timer);
      p.resolve(p.records.map(compressRecord));
    }
    pending.clear();
  };
  worker.on('message', (m: { id: number; buf: ArrayBuffer; offsets: Uint32Array }) => {
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
    compress(records) {
      if (!worker || records.length === 0) return Promise.resolve(records.map(compressRecord));
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
