/**
 * `drugsync status` against the running stack: a backfilled table, the binlog reader streaming changes to
 * Kinesis and no embedder yet, so change events wait on the stream. The table shows each part with its
 * state and lag; --json keeps every raw field; --watch redraws until Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { StatusReport } from '../services/cli/status.ts';
import { count } from '../services/cli/status-view.ts';
import { CLI, preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { eventually, suiteEnv } from './support/stack.ts';

const ROWS = 400;

describe('drugsync status on the running stack', () => {
  const env = suiteEnv('status_cli');
  let admin: Connection;
  let reader: Proc;
  let settled: StatusReport;

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, ROWS, 16));
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    reader = startProc(env, ['binlog-reader']);
    // 25 rows change while no embedder runs: their events wait on the stream
    await admin.query(`UPDATE rndc14 SET LN60 = CONCAT('STATUS ', LN60) ORDER BY NDC LIMIT 25`);
    settled = await eventually(
      async () => {
        const r = await runCli(env, ['status', '--json'], 60_000);
        expect(r.status, r.stderr.slice(-2000)).toBe(0);
        const s = r.json as unknown as StatusReport;
        const lag = s.kinesis.shards.reduce((a, x) => a + (x.lagRecords ?? 0), 0);
        const streaming = s.services['binlog-reader']?.state === 'streaming';
        return streaming && s.binlog.behindBytes === 0 && lag > 0 ? s : null;
      },
      60_000,
      'the reader caught up with the change events on the stream',
    );
  });
  afterAll(async () => {
    reader.child.kill('SIGTERM');
    await reader.exited;
    await admin.end();
  });

  it('--json keeps every raw field of each part, and what follows from them', () => {
    // Assess
    expect(settled.collectedAt).toBeGreaterThan(0);
    expect(settled.binlog.checkpoint?.file).toMatch(/\.\d{6}$/);
    expect(settled.binlog.checkpointFilePresent).toBe(true);
    expect(settled.kinesis.shards.map((x) => x.open)).toEqual([true, true]);
    expect(settled.services.backfill?.completed).toBe('true');
    expect(JSON.parse(settled.services.backfill?.last_summary ?? '{}')).toMatchObject({ completed: true });
    expect(settled.services['binlog-reader']).toMatchObject({ state: 'streaming' });
    expect(settled.services['binlog-reader']?.stall_seconds).toMatch(/^\d+\.\d$/);
    expect(settled.services.embedder).toBeUndefined();
    expect(settled.redis.documents).toBe(settled.redis.eligibleRows);
    // the hashes the real backfill and reader wrote read back whole through their schemas
    expect(settled.problems).toEqual([]);
    // the reader's heartbeats at the report: lag is the binlog's seconds behind; caught up, no stall to speak of
    const reader = settled.progress.reader;
    expect(reader).not.toBeNull();
    expect(settled.binlog.behindSeconds).toBe(reader?.lagSeconds);
    expect(reader?.stallSeconds).toBeLessThan(120);
    expect(settled.progress.embedder).toBeNull();
  });

  it('draws one row per part with state and lag, no colour off a terminal, warnings last', async () => {
    // Act
    const r = await runCli(env, ['status'], 60_000);
    // Assess
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    const row = (part: string) => lines.find((l) => l.startsWith(`${part} `)) ?? '';
    expect(lines[0]).toMatch(/^PART +STATE +LAG +RATE +CHECKPOINT +DETAILS$/);
    expect(row('binlog')).toMatch(/^binlog +ok /);
    expect(row('binlog-reader')).toMatch(/^binlog-reader +streaming +0 B · [\d.]+ s · stall [\d.]+ s /);
    expect(row('binlog-reader')).toContain(`${settled.binlog.checkpoint?.file}:`);
    expect(row('kinesis')).toMatch(/^kinesis +ok +[\d,]+ records .*2 shards \(2 open\)/);
    expect(row('embedder')).toMatch(/^embedder +no status /);
    expect(row('redis')).toContain(
      `${count(settled.redis.documents ?? -1)} documents / ${count(settled.redis.eligibleRows ?? -1)} eligible rows`,
    );
    expect(row('backfill')).toMatch(/^backfill +completed .*drugs\/s/);
    expect(r.stdout).not.toContain('\x1b[');
    expect(r.stdout).not.toContain('{');
    const firstWarning = lines.findIndex((l) => l.startsWith('WARNING'));
    expect(firstWarning).toBeGreaterThan(5);
    expect(lines.slice(firstWarning).every((l) => l.startsWith('WARNING  '))).toBe(true);
  });

  it('--watch draws frame after frame until Ctrl-C, then exits 0', async () => {
    // Prepare
    const child = spawn(process.execPath, [CLI, 'status', '--watch'], {
      env: { ...process.env, ...env, LOG_FORMAT: 'json' } as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // Act: wait for two frames, then interrupt
    await eventually(async () => (stdout.match(/^PART /gm)?.length ?? 0) >= 2, 60_000, 'two status frames');
    child.kill('SIGINT');
    // Assess
    expect(await exited).toBe(0);
    const frames = stdout.split(/^(?=PART )/m).filter((f) => f.trim());
    expect(frames.length).toBeGreaterThanOrEqual(2);
    for (const f of frames) expect(f).toMatch(/^binlog-reader +streaming /m);
  });
});
