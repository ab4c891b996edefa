/**
 * Batch compression of stream records on a worker thread, so the binlog reader's one thread (zongji decoding,
 * event encoding, the SDK) does not also spend ~35–40 µs a record (gzip of one event) or ~30–60 µs an event
 * (zstd of a KPL aggregate, `zstdLevel`) compressing. A batch travels as one buffer of
 * the records end to end plus their offsets, both ways (transferred back: no copy of the output).
 *
 * Output is byte for byte what `compressRecord` makes (same zlib options), or with `zstdLevel` what
 * `frameAggregate(kpl, 'zstd')` makes (zstd at AGGREGATE_ZSTD_LEVEL). If the worker fails, exits or
 * leaves a batch unanswered for `answerTimeoutMs`, it is ended, the batches it held are compressed
 * synchronously and every later batch too (logged once): compression never stops the stream. The worker's
 * code is compressor-worker.ts (TypeScript, type-checked and linted like the rest), started from its file.
 */
import { Worker } from 'node:worker_threads';
import { RECORD_GZIP_OPTIONS, compressRecord } from './events.ts';
import { AGGREGATE_ZSTD_LEVEL, frameAggregate } from './stream-record.ts';
import { errorMessage } from './errors.ts';
import type { Logger } from './log.ts';
import type {
  CompressorBatch,
  CompressorWorkerData,
  CompressorWorkerMessage,
  WorkerEngine,
} from './compressor-worker.ts';

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

/**
 * The worker's module, beside this one: compressor-worker.ts in the source tree, compressor-worker.mjs beside
 * the bundle (dist/drugsync.mjs; scripts/build.ts builds the worker as a second entry point).
 */
export const COMPRESSOR_WORKER_URL = new URL(
  import.meta.url.endsWith('.ts') ? './compressor-worker.ts' : './compressor-worker.mjs',
  import.meta.url,
);

/**
 * How a worker module is started. JavaScript (the bundle's) as it is. TypeScript (the source tree's): by
 * Node itself where it strips types (`process.features.typescript`: Node 22.18 and later, the project's pinned
 * 22.20); on an older Node through tsx, registered inside the worker by a preload, since tsx's own `--import`
 * registers on the main thread only before Node 22.22.3 and bin/drugsync.mjs registers tsx by its API, which
 * workers do not inherit.
 */
export function workerExecArgv(url: URL): string[] | undefined {
  if (!url.pathname.endsWith('.ts') || process.features.typescript) return undefined;
  const register = `import { register } from ${JSON.stringify(import.meta.resolve('tsx/esm/api'))}; register();`;
  return [...process.execArgv, '--import', `data:text/javascript,${encodeURIComponent(register)}`];
}

export type CompressionEngine = 'reused' | 'gzipSync' | 'zstd' | 'inline';

interface Pending {
  records: readonly Buffer[];
  resolve: (out: Buffer[]) => void;
  timer: NodeJS.Timeout;
}

export interface WorkerCompressorOptions {
  /** A batch the worker has not answered in this long (normally ~20 ms) ends the worker (default 10 s). */
  answerTimeoutMs?: number;
  /** Replaces the worker's module (tests: a worker that fails or hangs). */
  workerUrl?: URL;
  /** Compress each buffer (a KPL aggregate) into a zstd frame at AGGREGATE_ZSTD_LEVEL instead of gzip. */
  zstd?: boolean;
}

/** Starts the worker; a worker that cannot even start is an error to fall back on, like one that dies. */
function startWorker(url: URL, zstd: boolean): Worker | Error {
  const workerData: CompressorWorkerData = {
    options: RECORD_GZIP_OPTIONS,
    zstdLevel: zstd ? AGGREGATE_ZSTD_LEVEL : null,
  };
  try {
    return new Worker(url, { workerData, execArgv: workerExecArgv(url) });
  } catch (e) {
    return e instanceof Error ? e : new Error(String(e));
  }
}

/** Logs the engine the worker reported, once. */
function logEngine(log: Logger, engine: WorkerEngine): void {
  if (engine === 'zstd')
    log.info('record compression: zstd frames of the aggregates on the worker thread', {
      zstd_level: AGGREGATE_ZSTD_LEVEL,
    });
  else if (engine === 'reused')
    log.info('record compression: one reused gzip engine on the worker thread (checked against gzipSync)', {
      node: process.version,
    });
  else
    log.warn('record compression: the reused gzip engine did not check out, each record uses gzipSync', {
      effect: 'same bytes, ~35% more compression CPU',
    });
}

/** One batch as the worker takes it: the records end to end, and their offsets. */
function packBatch(id: number, records: readonly Buffer[]): CompressorBatch {
  const offsets = new Uint32Array(records.length + 1);
  let total = 0;
  records.forEach((r, i) => {
    offsets[i] = total;
    total += r.length;
  });
  offsets[records.length] = total;
  const buf = Buffer.allocUnsafeSlow(total);
  records.forEach((r, i) => r.copy(buf, offsets[i]));
  return { id, buf: buf.buffer as ArrayBuffer, offsets };
}

/** The worker's answer, cut back into records (views of one buffer: no copy). */
function unpackBatch(answer: CompressorBatch): Buffer[] {
  const all = Buffer.from(answer.buf);
  const out: Buffer[] = new Array(answer.offsets.length - 1);
  for (let i = 0; i < out.length; i++) out[i] = all.subarray(answer.offsets[i], answer.offsets[i + 1]);
  return out;
}

class WorkerCompressor implements RecordCompressor {
  /** how the worker compresses: 'reused' (one engine), 'gzipSync' (it could not check the engine), 'zstd' */
  engine: string | null = null;
  private worker: Worker | null = null;
  private readonly pending = new Map<number, Pending>();
  private nextId = 0;
  private closing = false;
  private settleEngine: (e: CompressionEngine) => void = () => {};
  private readonly engineKnown = new Promise<CompressionEngine>((resolve) => (this.settleEngine = resolve));
  private readonly inline: (r: Buffer) => Buffer;
  private readonly answerTimeoutMs: number;

  constructor(
    private readonly log: Logger,
    opts: WorkerCompressorOptions,
  ) {
    this.answerTimeoutMs = opts.answerTimeoutMs ?? 10_000;
    this.inline = opts.zstd ? (r: Buffer) => frameAggregate(r, 'zstd') : compressRecord;
    const started = startWorker(opts.workerUrl ?? COMPRESSOR_WORKER_URL, opts.zstd ?? false);
    if (started instanceof Error) {
      this.worker = null;
      this.settleEngine('inline');
      log.warn('record compression worker did not start: compressing on the reader thread', {
        reason: errorMessage(started),
      });
      return;
    }
    const worker = started;
    this.worker = worker;
    worker.unref();
    worker.on('message', (m: CompressorWorkerMessage) => this.onMessage(m));
    worker.on('error', (e) => this.fallBack(errorMessage(e)));
    worker.on('exit', (code) => this.fallBack(`exited with code ${code}`));
  }

  engineReady(): Promise<CompressionEngine> {
    return this.engineKnown;
  }

  compress(records: readonly Buffer[]): Promise<Buffer[]> {
    const worker = this.worker;
    if (!worker || records.length === 0) return Promise.resolve(records.map(this.inline));
    const batch = packBatch(this.nextId++, records);
    return new Promise<Buffer[]>((resolve) => {
      const timer = setTimeout(
        () =>
          this.fallBack(`no answer for a batch of ${records.length} records in ${this.answerTimeoutMs} ms`),
        this.answerTimeoutMs,
      );
      timer.unref();
      this.pending.set(batch.id, { records, resolve, timer });
      worker.postMessage(batch, [batch.buf, batch.offsets.buffer]);
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    const w = this.worker;
    this.fallBack('closed');
    await w?.terminate();
  }

  private onMessage(m: CompressorWorkerMessage): void {
    if ('engine' in m) {
      this.engine = m.engine;
      this.settleEngine(m.engine);
      logEngine(this.log, m.engine);
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) return;
    this.pending.delete(m.id);
    clearTimeout(p.timer);
    p.resolve(unpackBatch(m));
  }

  /** Ends the worker: the batches it held and every later one are compressed on the calling thread. */
  private fallBack(reason: string): void {
    if (!this.worker) return;
    const w = this.worker;
    this.worker = null;
    this.settleEngine('inline');
    if (!this.closing) {
      this.log.warn('record compression worker stopped: compressing on the reader thread from now on', {
        reason,
        batches_in_flight: this.pending.size,
      });
      void w.terminate();
    }
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.resolve(p.records.map(this.inline));
    }
    this.pending.clear();
  }
}

export function createWorkerCompressor(log: Logger, opts: WorkerCompressorOptions = {}): RecordCompressor {
  return new WorkerCompressor(log, opts);
}
