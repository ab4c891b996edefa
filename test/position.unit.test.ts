import { describe, expect, it } from 'vitest';
import {
  compareBinlogPositions,
  deserializePosition,
  parseBinlogPosition,
  serializePosition,
  snapshotSourcePosition,
  sourcePosition,
} from '../services/core/position.ts';
import { isDrugsyncError } from '../services/core/errors.ts';

describe('positions', () => {
  it('orders source positions across files, offsets and rows by plain string comparison', () => {
    const ordered = [
      sourcePosition('binlog.000009', 999_999_999, 5),
      sourcePosition('binlog.000010', 4, 0),
      sourcePosition('binlog.000010', 1234, 0),
      sourcePosition('binlog.000010', 1234, 1),
      sourcePosition('binlog.000010', 1234, 10),
      sourcePosition('binlog.1000000', 4, 0),
    ];
    expect([...ordered].reverse().sort()).toEqual(ordered);
  });

  it('puts a snapshot before every change committed after it', () => {
    const snap = snapshotSourcePosition({ file: 'mysql-bin.000003', pos: 5000 });
    expect(snap < sourcePosition('mysql-bin.000003', 5045, 0)).toBe(true);
    expect(snap > sourcePosition('mysql-bin.000003', 4800, 99)).toBe(true);
  });

  it('round-trips checkpoints and refuses malformed ones', () => {
    const p = { file: 'binlog.000002', pos: 328, gtid: '0-1-77' };
    expect(deserializePosition(serializePosition(p))).toEqual(p);
    expect(parseBinlogPosition('binlog.000002:328')).toEqual({ file: 'binlog.000002', pos: 328 });
    expect(compareBinlogPositions({ file: 'b.000002', pos: 9 }, { file: 'b.000010', pos: 1 })).toBeLessThan(
      0,
    );
    let err: unknown;
    try {
      deserializePosition('{"file":"binlog","pos":1}');
    } catch (e) {
      err = e;
    }
    expect(isDrugsyncError(err, 'CHECKPOINT_INVALID')).toBe(true);
  });
});
