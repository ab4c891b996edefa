/**
 * The `BinlogSource` (source.ts) over @vlasky/zongji: its connection settings, start, pause/resume, bounded
 * bursts, stop and failure. Each event goes to zongji-dispatch.ts, which calls the handler; a stream error is
 * classified by decode-failure.ts.
 *
 * zongji facts this relies on (see docs/binlog-reader.md):
 * - dateStrings: true keeps DATETIME(6) microseconds and zero dates; DECIMAL arrives as exact strings.
 * - With binlog_row_metadata=FULL every TableMap carries the column names, so ALTER TABLE never leaves
 *   stale column metadata behind.
 * - `includeSchema` filters row events only; query events (DDL, TRUNCATE) always arrive.
 * - A handler exception would silently stop zongji: every callback is wrapped and routed to onError.
 * - `stop()` emits spurious TypeErrors while the server is still sending: errors after a deliberate stop
 *   are ignored.
 * - zongji passes its connection options (TLS included) to mysql2 for both of its connections, the control
 *   connection and the binlog one.
 * - An exception while decoding an event reaches us as an 'error' (decode-failure.ts tells a decode failure
 *   from a connection one); event types it does not know (Aurora's 100) reach onHeartbeat.
 */
import ZongJi from '@vlasky/zongji';
import type { SslOptions } from 'mysql2';
import { decodeFailure } from './decode-failure.ts';
import { useFastRowDecoder } from './decoder.ts';
import type { BinlogHandler, BinlogSource, StartFrom } from './source.ts';
import { ZongjiDispatch } from './zongji-dispatch.ts';
import type { ZEvent } from './zongji-dispatch.ts';

export interface ZongjiSourceOptions {
  host: string;
  port: number;
  user: string;
  password: string;
  /** mysql2's TLS options for both zongji connections (mysqlTlsOptions); undefined: plain. */
  ssl?: SslOptions | undefined;
  serverId: number;
  schema: string;
  table: string;
  /** Ask the server for a heartbeat event every N seconds while idle (0: off). */
  heartbeatSeconds: number;
  /** Decode row images with ./decoder.ts where the table allows (false: zongji's own decoder throughout). */
  fastRows?: boolean;
  /** Told once when the fast decoder cannot hook into zongji (rows are then decoded by zongji). */
  warn?: (message: string) => void;
  /**
   * Longest run of binlog events handled without yielding to the event loop (default 10 ms). After a pause,
   * megabytes of binlog wait in the socket and Node reads them back to back: without a yield, responses
   * from Kinesis and the calls that follow wait behind ~130 ms of decoding.
   */
  burstMs?: number;
  /**
   * Builds the ZongJi instance from the settings the source gives it (default: `new ZongJi(settings)`). Tests
   * replay recorded binlog bytes through the source with it (test/support/zongji-replay.ts).
   */
  createZongji?: (settings: Record<string, unknown>) => object;
}

interface ZongjiLike {
  on(ev: string, fn: (...a: unknown[]) => void): void;
  start(opts: Record<string, unknown>): void;
  stop(): void;
  connection: { pause(): void; resume(): void; query(sql: string, cb: (err: unknown) => void): void } | null;
  useChecksum: boolean;
}

/**
 * Bounded bursts: past `burstMs` of handling since the event loop last turned, the connection is paused
 * (mysql2 holds the rest of its packets) and resumed on the next turn, after other I/O had its go.
 */
class BurstLimiter {
  /** times reading was paused for a turn of the event loop */
  yields = 0;
  private burstStart = 0;
  private yielding = false;

  constructor(
    private readonly burstMs: number,
    private readonly connection: () => ZongjiLike['connection'],
    /** paused on purpose: leave the connection alone */
    private readonly paused: () => boolean,
    private readonly stopped: () => boolean,
  ) {}

  /** Called for each event before it is handled. */
  note(): void {
    const now = performance.now();
    if (this.burstStart === 0) {
      this.burstStart = now;
      setImmediate(() => {
        this.burstStart = 0;
      });
      return;
    }
    const conn = this.connection();
    if (this.yielding || this.paused() || now - this.burstStart <= this.burstMs || !conn) return;
    this.yielding = true;
    this.yields += 1;
    conn.pause();
    setImmediate(() => {
      this.yielding = false;
      this.burstStart = 0;
      if (!this.paused() && !this.stopped()) this.connection()?.resume();
    });
  }
}

/** zongji behind the BinlogSource interface (see the module comment). */
class ZongjiSource implements BinlogSource {
  private z: ZongjiLike | null = null;
  private stopped = false;
  private isPaused = false;
  private failed = false;
  private readonly bursts: BurstLimiter;

  constructor(private readonly opts: ZongjiSourceOptions) {
    this.bursts = new BurstLimiter(
      opts.burstMs ?? 10,
      () => this.z?.connection ?? null,
      () => this.isPaused,
      () => this.stopped,
    );
  }

  start(from: StartFrom, h: BinlogHandler): void {
    if (this.z) throw new Error('a BinlogSource starts once');
    const zj = this.connect();
    const o = this.opts;
    const events = new ZongjiDispatch(
      zj,
      h,
      { schema: o.schema, table: o.table },
      'file' in from ? from : null,
      o.fastRows ? o.warn : undefined,
    );
    zj.on('error', (e) => this.fail(events, e));
    zj.on('ready', () => this.askForHeartbeats(zj, events));
    zj.on('binlog', (raw) => this.onBinlog(raw as ZEvent, events));
    const base = { serverId: o.serverId, includeSchema: { [o.schema]: [o.table] } };
    if ('gtid' in from) zj.start({ ...base, gtidSet: from.gtid });
    else zj.start({ ...base, filename: from.file, position: from.pos });
  }

  pause(): void {
    if (this.isPaused || this.stopped) return;
    this.isPaused = true;
    this.z?.connection?.pause();
  }

  resume(): void {
    if (!this.isPaused || this.stopped) return;
    this.isPaused = false;
    this.z?.connection?.resume();
  }

  get paused(): boolean {
    return this.isPaused;
  }

  get yields(): number {
    return this.bursts.yields;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    const zj = this.z;
    if (!zj) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      zj.on('stopped', () => {
        clearTimeout(t);
        resolve();
      });
      zj.stop();
    });
  }

  private connect(): ZongjiLike {
    const o = this.opts;
    const settings = {
      host: o.host,
      port: o.port,
      user: o.user,
      password: o.password,
      ...(o.ssl ? { ssl: o.ssl } : {}),
      dateStrings: true,
      supportBigNumbers: true,
      bigNumberStrings: false,
      charset: 'utf8mb4_general_ci',
    };
    const zj = (o.createZongji ? o.createZongji(settings) : new ZongJi(settings)) as unknown as ZongjiLike;
    this.z = zj;
    if (o.fastRows) useFastRowDecoder(zj, (message) => o.warn?.(message));
    return zj;
  }

  private fail(at: ZongjiDispatch, e: unknown): void {
    if (this.stopped || this.failed) return; // after a deliberate stop zongji emits spurious TypeErrors
    this.failed = true;
    at.handler.onError(decodeFailure(e, at.file, at.lastNext, at.lastTable) ?? e);
  }

  /**
   * Queued before the dump command (zongji enqueues it right after 'ready'): the server then sends a
   * heartbeat event every N seconds while it has nothing else to send.
   */
  private askForHeartbeats(zj: ZongjiLike, events: ZongjiDispatch): void {
    if (this.opts.heartbeatSeconds <= 0 || !zj.connection) return;
    const ns = BigInt(this.opts.heartbeatSeconds) * 1_000_000_000n;
    zj.connection.query(`SET @master_heartbeat_period = ${ns}`, (err) => {
      if (err) this.fail(events, err);
    });
  }

  private onBinlog(e: ZEvent, events: ZongjiDispatch): void {
    if (this.stopped || this.failed) return;
    this.bursts.note();
    try {
      events.dispatch(e);
    } catch (err) {
      this.fail(events, err);
    }
  }
}

export function createZongjiSource(o: ZongjiSourceOptions): BinlogSource {
  return new ZongjiSource(o);
}
