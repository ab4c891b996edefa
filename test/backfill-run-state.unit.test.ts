/**
 * The backfill's run state (services/backfill/run-state.ts): the Redis hash of a part's run, written as
 * strings and parsed once into a typed run. A new run reads back as written; a killed run's counters, a run
 * stored before ranges and methods were recorded, an unfinished spool and a damaged hash read as what they
 * are. The hash's fields stay the ones docs/backfill.md lists (tests and operators read them by name).
 */
import { describe, expect, it } from 'vitest';
import { isDrugsyncError } from '../services/core/errors.ts';
import { serializePosition } from '../services/core/position.ts';
import { parsePart } from '../services/backfill/part.ts';
import { invalidRunError, newRun, parseRunHash, runHash } from '../services/backfill/run-state.ts';
import type { SpooledSnapshot } from '../services/backfill/run-state.ts';

/** A snapshot of part 2/3 as a table-lock read of the full catalogue leaves it. */
const spooledPart: SpooledSnapshot = {
  position: { file: 'mysql-bin-changelog.000024', pos: 483_568_664 },
  exact: false,
  method: 'table-lock',
  spool: '/data/backfill/prod_/2of3/1764500000000-a1b2c3.jsonl',
  spooled: 161_206,
  capped: false,
  seconds: 2.3456,
};

const DOCUMENTED_FIELDS = [
  'run',
  'snapshot',
  'exact',
  'method',
  'spool',
  'spool_complete',
  'spooled',
  'capped',
  'snapshot_seconds',
  'after',
  'up_to',
  'done',
  'successful',
  'failed',
  'embeddings',
  'hits',
  'deleted',
  'cleaned',
];

describe('backfill run state', () => {
  it('writes a new run as the documented string fields and reads it back as the same typed run', () => {
    // Prepare
    const part = parsePart('2/3');
    const run = newRun(spooledPart, part);
    // Act
    const hash = runHash(run);
    const read = parseRunHash(hash);
    // Assess
    expect(Object.keys(hash).sort()).toEqual([...DOCUMENTED_FIELDS].sort());
    expect(hash).toMatchObject({
      snapshot: serializePosition(spooledPart.position),
      exact: '0',
      method: 'table-lock',
      spool_complete: '1',
      spooled: '161206',
      capped: '0',
      snapshot_seconds: '2.35',
      after: part.after,
      up_to: part.upTo,
      done: '0',
      cleaned: '0',
    });
    expect(read).toEqual({ status: 'spooled', spool: spooledPart.spool, state: run });
    expect(run.snapshotSeconds).toBe(2.35);
    expect(run.range).toEqual({ after: part.after, upTo: part.upTo });
  });

  it("reads a killed run's counters and the last part's open range as numbers and undefined", () => {
    // Prepare: the last part (no upper bound), killed after 40,000 lines with 3 rows failed
    const last = parsePart('3/3');
    const hash = {
      ...runHash(newRun(spooledPart, last)),
      done: '40000',
      successful: '39997',
      failed: '3',
      embeddings: '6120',
      hits: '2874',
    };
    // Act
    const read = parseRunHash(hash);
    // Assess
    expect(read.status).toBe('spooled');
    if (read.status !== 'spooled') return;
    expect(read.state.counters).toEqual({
      done: 40_000,
      successful: 39_997,
      failed: 3,
      embeddings: 6120,
      hits: 2874,
      deleted: 0,
    });
    expect(read.state.range).toEqual({ after: last.after, upTo: undefined });
    expect(read.state.cleaned).toBe(false);
  });

  it('reads a run stored before ranges, methods and timings were recorded with their defaults', () => {
    // Prepare: the fields an early version wrote
    const hash = {
      run: '5d0c1f9e-8c1e-4d5f-9a57-0d7d8c3a2b11',
      snapshot: serializePosition({ file: 'binlog.000003', pos: 1_207_554 }),
      spool: '/work/.drugsync/backfill/default/1of1/1763000000000-0f0e0d.jsonl',
      spool_complete: '1',
      spooled: '483619',
      done: '120000',
    };
    // Act
    const read = parseRunHash(hash);
    // Assess
    expect(read.status).toBe('spooled');
    if (read.status !== 'spooled') return;
    expect(read.state).toMatchObject({
      method: 'binlog-snapshot',
      exact: true,
      capped: false,
      snapshotSeconds: 0,
      range: undefined,
      cleaned: false,
      counters: { done: 120_000, successful: 0, failed: 0, embeddings: 0, hits: 0, deleted: 0 },
    });
  });

  it('tells no run from a run that never finished spooling its snapshot', () => {
    // Act
    const none = parseRunHash({});
    const unspooled = parseRunHash({
      run: '5d0c1f9e-8c1e-4d5f-9a57-0d7d8c3a2b11',
      spool: spooledPart.spool,
      spool_complete: '0',
    });
    // Assess
    expect(none).toEqual({ status: 'none' });
    expect(unspooled).toEqual({ status: 'unspooled', spool: spooledPart.spool });
  });

  it('names every damaged field of a spooled run, and the error says how to start over', () => {
    // Prepare: a position written as text instead of JSON, a count that is not a number
    const hash = {
      ...runHash(newRun(spooledPart, parsePart('2/3'))),
      snapshot: 'mysql-bin-changelog.000024:483568664',
      spooled: 'many',
    };
    // Act
    const read = parseRunHash(hash);
    // Assess
    expect(read.status).toBe('invalid');
    if (read.status !== 'invalid') return;
    expect(read.spool).toBe(spooledPart.spool);
    expect(read.problems).toMatch(/^snapshot: .*not JSON.*; spooled: /);
    const error = invalidRunError('backfill:run:2of3', read.problems);
    expect(isDrugsyncError(error) && error.code).toBe('CHECKPOINT_INVALID');
    expect(error.message).toContain('backfill:run:2of3');
    expect(error.remedy).toContain('--restart');
  });
});
