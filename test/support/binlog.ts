/**
 * Reading a stretch of real binlog with a source, for tests that compare what the source decodes; and where
 * the server's binlog ends now (rows are written with factories.ts' insertRows).
 */
import type { Connection } from 'mysql2/promise';
import { createZongjiSource } from '../../services/binlog-reader/zongji-source.ts';
import type { ZongjiSourceOptions } from '../../services/binlog-reader/zongji-source.ts';
import type { BinlogSource, RowsEvent } from '../../services/binlog-reader/source.ts';
import type { ReaderConfig } from '../../services/binlog-reader/reader.ts';
import type { BinlogPosition } from '../../services/core/position.ts';

/** Where the server writes its binlog now (SHOW MASTER STATUS, on an admin connection). */
export async function masterStatus(admin: Connection): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

/**
 * Starts `source` at `from` and resolves once it has passed `to` (a commit or statement at or after it),
 * handing every rows event it decodes to `onRows`. The caller stops the source.
 */
export function readSourceRange(
  source: BinlogSource,
  from: BinlogPosition,
  to: BinlogPosition,
  onRows: (e: RowsEvent) => void,
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (file: string, pos: number) => {
      if (file > to.file || (file === to.file && pos >= to.pos)) resolve();
    };
    source.start(from, {
      onBegin: () => {},
      onCommit: (e) => done(e.file, e.next),
      onStatement: (e) => done(e.file, e.next),
      onRotate: () => {},
      onHeartbeat: () => {},
      onError: reject,
      onRows,
    });
  });
}

/** The reader's settings this factory takes (the suite's local, plain-text MariaDB). */
type SourceSettings = Pick<
  ReaderConfig,
  'DB_HOST' | 'DB_PORT' | 'DB_USER' | 'DB_PASSWORD' | 'DB_SERVER_ID' | 'DB_NAME' | 'DB_TABLE'
>;

/** A zongji source on the suite's table as the reader opens it, without heartbeats; `over` wins. */
export function suiteSource(config: SourceSettings, over: Partial<ZongjiSourceOptions> = {}): BinlogSource {
  return createZongjiSource({
    host: config.DB_HOST,
    port: config.DB_PORT,
    user: config.DB_USER as string,
    password: config.DB_PASSWORD as string,
    serverId: config.DB_SERVER_ID,
    schema: config.DB_NAME,
    table: config.DB_TABLE,
    heartbeatSeconds: 0,
    ...over,
  });
}
