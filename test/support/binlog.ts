/**
 * Reading a stretch of real binlog with a source, for tests that compare what the source decodes.
 */
import type { BinlogSource, RowsEvent } from '../../services/binlog-reader/source.ts';
import type { BinlogPosition } from '../../services/core/position.ts';

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
