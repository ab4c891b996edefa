/**
 * What a full `drugsync run` prints, read as an operator's log pipeline reads it (JSON off a terminal): the
 * supervisor, the seed, the backfill, the binlog reader and the embedder (their lines joined to the
 * supervisor's), under a simulated writer; then `drugsync status` and a text-format backfill. Every stderr
 * line is a JSON record (or a known progress/status line), every `level` is one of the vocabulary, and no
 * value is `undefined`, `NaN` or a null where the same field of the same message is a number elsewhere.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { LOG_LEVELS } from '../services/core/log.ts';
import { METRICS, parseEmfLine } from '../services/core/metrics.ts';
import { runCli, spawnCli } from './support/pipeline.ts';
import {
  createSuiteDatabase,
  eventually,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from './support/stack.ts';

/** Lines of a run's stdout that are not JSON: the backfill's one-line summary. */
const KNOWN_STDOUT = [
  /^backfill COMPLETED: \d+ of \d+ drugs, 0 failed, .* snapshot binlog\.\d+:\d+ \(\S+\)$/,
];
/** A word no line should carry: a value printed without being known. */
const UNKNOWN_VALUE = /\b(undefined|NaN|-?Infinity)\b/;

type Json = Record<string, unknown>;

/** Every problem of one JSON log line: level, required keys, non-finite or undefined values. */
function recordProblems(line: string, rec: Json): string[] {
  const out: string[] = [];
  if (!(LOG_LEVELS as readonly unknown[]).includes(rec.level)) out.push(`level ${JSON.stringify(rec.level)}`);
  if (typeof rec.msg !== 'string' || !rec.msg) out.push('no msg');
  if (typeof rec.time !== 'string' || Number.isNaN(Date.parse(rec.time))) out.push('no time');
  if ('non_finite_fields' in rec) out.push(`non-finite ${JSON.stringify(rec.non_finite_fields)}`);
  if (UNKNOWN_VALUE.test(line)) out.push(`unknown value ${UNKNOWN_VALUE.exec(line)?.[0]}`);
  return out.map((p) => `${p}: ${line.slice(0, 300)}`);
}

/** Fields that are a number in one line and null in another line of the same message. */
function nullWhereNumber(records: Json[]): string[] {
  const kinds = new Map<string, Set<string>>();
  for (const rec of records)
    for (const [k, v] of Object.entries(rec)) {
      const key = `${String(rec.msg)} → ${k}`;
      const seen = kinds.get(key) ?? new Set<string>();
      seen.add(v === null ? 'null' : typeof v);
      kinds.set(key, seen);
    }
  return [...kinds].filter(([, s]) => s.has('null') && s.has('number')).map(([k]) => k);
}

const METRIC_NAMES: readonly string[] = Object.values(METRICS);

/** Every problem of one EMF metric line: a name we do not emit, a value that is not a finite number. */
function metricProblems(line: string): string[] {
  const emf = parseEmfLine(line);
  if (!emf) return [`not an EMF record: ${line.slice(0, 300)}`];
  const out: string[] = [];
  for (const [name, v] of Object.entries(emf.values)) {
    if (!METRIC_NAMES.includes(name)) out.push(`unknown metric ${name}`);
    const values = Array.isArray(v) ? v : [v];
    if (values.length === 0 || !values.every((x) => typeof x === 'number' && Number.isFinite(x)))
      out.push(`metric ${name} = ${JSON.stringify(v)}`);
  }
  if (UNKNOWN_VALUE.test(line)) out.push(`unknown value ${UNKNOWN_VALUE.exec(line)?.[0]}`);
  return out.map((p) => `${p}: ${line.slice(0, 300)}`);
}

/**
 * Splits stderr into JSON log records and the problems of every line. EMF metric lines (CloudWatch's
 * embedded metric format, `{"_aws":…}`: the services' metrics, written beside the logs) are their own kind,
 * checked as metrics; `metrics` counts them.
 */
function scanStderr(stderr: string): { records: Json[]; metrics: number; problems: string[] } {
  const records: Json[] = [];
  const problems: string[] = [];
  let metrics = 0;
  for (const line of stderr.split('\n').filter((l) => l.trim())) {
    if (line.startsWith('{"_aws":')) {
      metrics++;
      problems.push(...metricProblems(line));
      continue;
    }
    let rec: Json;
    try {
      rec = JSON.parse(line) as Json;
    } catch {
      problems.push(`not JSON: ${line.slice(0, 300)}`);
      continue;
    }
    records.push(rec);
    problems.push(...recordProblems(line, rec));
  }
  return {
    records,
    metrics,
    problems: [...problems, ...nullWhereNumber(records).map((k) => `null and number: ${k}`)],
  };
}

describe('drugsync run: every line it prints', () => {
  const env = suiteEnv('run_output', { LOG_LEVEL: 'debug', LOG_FORMAT: 'json' });
  let admin: Connection;

  beforeAll(async () => {
    // an empty table: `run` seeds it, backfills, then streams
    admin = await createSuiteDatabase(env);
    const redis = suiteRedis(env);
    await resetSuiteRedis(env, redis);
    await redis.quit();
    await resetSuiteStream(env, 2);
  });
  afterAll(async () => {
    await admin.end();
  });

  it('parses as JSON records of the level vocabulary, with no undefined, NaN or null for a number', async () => {
    // Prepare
    const run = spawnCli(env, ['run', '--rows', '2000', '--simulate-changes', '20']);

    // Act: a short life: seeded, backfilled, and simulated changes applied by the embedder; then SIGTERM
    try {
      await eventually(
        async () => /"msg":"stream status".*embedder [1-9][\d.]* rec\/s/.test(run.stderr()),
        180_000,
        'the embedder to apply simulated changes under `run`',
      );
    } finally {
      run.child.kill('SIGTERM');
    }
    const code = await run.exited;
    const [stdout, stderr] = [run.stdout(), run.stderr()];
    const status = await runCli(env, ['status']);
    const statusJson = await runCli(env, ['status', '--json']);
    const textBackfill = spawnCli(env, ['backfill', '--restart'], { LOG_FORMAT: 'text', LOG_LEVEL: 'info' });
    const textBackfillCode = await textBackfill.exited;

    // Assess: the run stopped cleanly, and every part of it spoke
    expect(code, stderr.slice(-3000)).toBe(0);
    const { records, metrics, problems } = scanStderr(stderr + statusJson.stderr);
    expect(problems).toEqual([]);
    expect(metrics).toBeGreaterThan(0); // the reader's and the embedder's metrics, checked as such
    expect([...new Set(records.map((r) => r.service))]).toEqual(
      expect.arrayContaining(['run', 'seed', 'backfill', 'binlog-reader', 'embedder']),
    );
    // the reader's compression line among them, at its own level (it once said "level":6)
    expect(records.filter((r) => String(r.msg).startsWith('record compression: zstd frames'))).toEqual([
      expect.objectContaining({ level: 'info', service: 'binlog-reader', zstd_level: expect.any(Number) }),
    ]);
    // stdout: the backfill's summary only
    const unknownStdout = stdout
      .split('\n')
      .filter((l) => l.trim() && !KNOWN_STDOUT.some((re) => re.test(l)));
    expect(unknownStdout).toEqual([]);
    // status, as a table and as JSON: no value printed without being known
    expect(status.status).toBe(0);
    expect(status.stdout).toMatch(/^PART\s+STATE/);
    expect(status.stdout).not.toMatch(UNKNOWN_VALUE);
    expect(statusJson.stdout).not.toMatch(UNKNOWN_VALUE);
    // the text format (LOG_FORMAT=text): a level of the vocabulary first, then no unknown value
    expect(textBackfillCode, textBackfill.stderr().slice(-2000)).toBe(0);
    const textLines = textBackfill
      .stderr()
      .split('\n')
      .filter((l) => l.trim());
    expect(textLines.length).toBeGreaterThan(0);
    expect(textLines.filter((l) => !/^(DEBUG|INFO|WARN|ERROR) /.test(l) || UNKNOWN_VALUE.test(l))).toEqual(
      [],
    );
  }, 300_000);
});
