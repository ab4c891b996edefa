/**
 * The logger's one vocabulary: every record's `level` is its own (debug | info | warn | error), and no line
 * says `undefined` or `NaN` whatever the caller passes.
 */
import { describe, expect, it } from 'vitest';
import {
  LOG_LEVELS,
  createLogger,
  formatRecord,
  normaliseFields,
  parseLogLevel,
} from '../services/core/log.ts';

function capture(level?: (typeof LOG_LEVELS)[number]) {
  const lines: string[] = [];
  const json = createLogger({ service: 'backfill' }, { level, json: true, write: (l) => lines.push(l) });
  const text = createLogger({ service: 'backfill' }, { level, json: false, write: (l) => lines.push(l) });
  return { lines, json, text };
}

describe('log records', () => {
  it('leave out undefined fields in JSON and text (a table-lock-free snapshot has no lock time)', () => {
    // Prepare
    const { lines, json, text } = capture();
    const fields = { part: '1of1', rows_read: 2000, method: 'binlog-snapshot', lock_held_ms: undefined };
    // Act
    json.info('snapshot spooled', fields);
    text.info('snapshot spooled', fields);
    // Assess
    const [j, t] = lines;
    expect(JSON.parse(j!)).toEqual({
      time: expect.any(String),
      level: 'info',
      msg: 'snapshot spooled',
      service: 'backfill',
      part: '1of1',
      rows_read: 2000,
      method: 'binlog-snapshot',
    });
    expect(t).toBe(
      'INFO  snapshot spooled  service=backfill part=1of1 rows_read=2000 method=binlog-snapshot',
    );
  });

  it('name a non-finite number instead of writing null or NaN', () => {
    // Prepare: a rate over zero seconds, a ratio of nothing
    const { lines, json, text } = capture();
    const fields = { rows: 0, rows_per_second: 0 / 0, ratio: 1 / 0, seconds: 0 };
    // Act
    json.warn('load finished', fields);
    text.warn('load finished', fields);
    // Assess
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'warn',
      rows: 0,
      seconds: 0,
      non_finite_fields: ['rows_per_second', 'ratio'],
    });
    expect(JSON.parse(lines[0]!)).not.toHaveProperty('rows_per_second');
    expect(lines[1]).toBe(
      'WARN  load finished  service=backfill rows=0 seconds=0 non_finite_fields=["rows_per_second","ratio"]',
    );
    expect(lines.join('\n')).not.toMatch(/\b(NaN|Infinity|null|undefined)\b/);
  });

  it('keep their own level, time and msg: a field of the same name is renamed', () => {
    // Prepare: a compression level passed as `level` replaced the record's level ("level":6)
    const { lines, json } = capture();
    // Act
    json.info('record compression: zstd frames of the aggregates on the worker thread', {
      level: 6,
      msg: 'x',
      time: 1,
    });
    // Assess
    expect(JSON.parse(lines[0]!)).toMatchObject({
      level: 'info',
      msg: 'record compression: zstd frames of the aggregates on the worker thread',
      field_level: 6,
      field_msg: 'x',
      field_time: 1,
    });
    expect(normaliseFields({ level: 'warn' })).toEqual({ field_level: 'warn' });
  });

  it('write only the levels of the vocabulary, at or above the logger level', () => {
    // Prepare
    const { lines, json } = capture('warn');
    // Act
    json.debug('d');
    json.info('i');
    json.warn('w');
    json.error('e');
    // Assess
    expect(lines.map((l) => (JSON.parse(l) as { level: string }).level)).toEqual(['warn', 'error']);
    expect(LOG_LEVELS).toEqual(['debug', 'info', 'warn', 'error']);
    expect(LOG_LEVELS.map(parseLogLevel)).toEqual([...LOG_LEVELS]);
    expect([6, 'INFO', 'verbose', '', undefined].map((v) => parseLogLevel(v as string))).toEqual(
      new Array(5).fill(undefined),
    );
    expect(formatRecord('error', 'failed', {}, false)).toBe('ERROR failed');
  });
});
