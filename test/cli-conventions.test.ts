/**
 * CLI conventions on the real stack, through the CLI as a user runs it: output to a closed pipe ends the
 * command quietly (`drugsync search x | head -1`, `drugsync status --watch | head -1`, and every command
 * whose reader is gone before it writes), and an empty search says why and what to try next, in text and in
 * `--json`. The seeded catalogue (3,000 rows) is loaded by the backfill as `drugsync run` would.
 */
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import type { Env } from '../services/core/config.ts';
import { CLI, preparePipeline, runCli } from './support/pipeline.ts';
import { suiteEnv } from './support/stack.ts';

interface Closed {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** what the reader took before it closed the pipe ('' when it closed at once) */
  read: string;
  stderr: string;
}

/**
 * Runs the CLI with stdout to a reader that closes the pipe after `lines` lines (0: at once, before the
 * command writes anything), as `| head -n` does; stderr is kept whole.
 */
function runIntoClosingPipe(env: Env, args: string[], lines: number): Promise<Closed> {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env, LOG_FORMAT: 'json' } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let read = '';
  let stderr = '';
  const out = child.stdout;
  if (lines === 0) out.destroy();
  else
    out.on('data', (d: Buffer) => {
      read += d.toString();
      const cut = read.split('\n');
      if (cut.length > lines) {
        read = cut.slice(0, lines).join('\n');
        out.destroy();
      }
    });
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000);
  return new Promise((resolve) =>
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, read, stderr });
    }),
  );
}

/** No trace of a write to the closed pipe in what the command printed on stderr. */
function expectQuietStderr(r: Closed): void {
  expect(r.stderr).not.toMatch(/EPIPE|ERR_STREAM_DESTROYED|Unhandled 'error'|^\s+at /m);
  for (const line of r.stderr.split('\n').filter((l) => l.startsWith('{'))) {
    expect((JSON.parse(line) as { level: string }).level).not.toBe('error');
  }
}

describe('drugsync CLI conventions', () => {
  const env = suiteEnv('cli_conventions');
  let admin: Connection;

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, 3_000, 27));
    const backfill = await runCli(env, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
  });
  afterAll(async () => {
    await admin.end();
  });

  it('`search … | head -1` and `status --watch | head -1` exit 0 without a trace once the reader is gone', async () => {
    // Prepare: more than a pipe holds (1,000 hits, ~90 KB), and a status redrawn every second until Ctrl-C
    const search = ['search', 'tablet', '--mode', 'vector', '--k', '1000'];
    // Act
    const [hits, hitsJson, watch] = await Promise.all([
      runIntoClosingPipe(env, search, 1),
      runIntoClosingPipe(env, [...search, '--json'], 1),
      runIntoClosingPipe(env, ['status', '--watch'], 1),
    ]);
    // Assess: each reader got its first line, each command ended by itself, quietly
    expect(hits.read).toMatch(/^\d{11} {2}\S/);
    expect(hitsJson.read.startsWith('{"query":"tablet"')).toBe(true);
    expect(watch.read).toMatch(/^PART\s+STATE/);
    for (const r of [hits, hitsJson, watch]) {
      expect({ code: r.code, signal: r.signal }, r.stderr.slice(-2000)).toEqual({ code: 0, signal: null });
      expectQuietStderr(r);
    }
  });

  it('every command whose stdout is closed before it writes exits quietly with its own exit code', async () => {
    // Prepare: commands of each kind (local, Redis, MySQL + Redis + Kinesis, help and version)
    const commands = [
      ['search', 'amoxicillin'],
      ['search', 'amoxicillin', '--json'],
      ['status'],
      ['status', '--json'],
      ['verify', '--json'],
      ['config'],
      ['events', 'schema'],
      ['--help'],
      ['--version'],
    ];
    // Act
    const results: Closed[] = [];
    for (const args of commands) results.push(await runIntoClosingPipe(env, args, 0));
    // Assess
    results.forEach((r, i) => {
      expect({ args: commands[i], code: r.code, signal: r.signal }, r.stderr.slice(-2000)).toEqual({
        args: commands[i],
        code: 0,
        signal: null,
      });
      expectQuietStderr(r);
    });
  });

  it('an empty search says so, why (the lexical embedder matches spellings, not meanings) and what to try', async () => {
    // Act: plain language with the default lexical embedder (default mode: text)
    const text = await runCli(env, ['search', 'medicine for high blood pressure']);
    const json = await runCli(env, ['search', 'medicine for high blood pressure', '--json']);
    const filtered = await runCli(env, ['search', 'amoxicillin', '--mode', 'vector', '--gcn', '1']);
    // Assess: stdout holds hits only (none), the reason and the next steps are on stderr
    expect(text.status).toBe(0);
    expect(text.stdout).toBe('');
    expect(text.stderr).toContain(
      'no results for "medicine for high blood pressure" (mode text, embedder local): full text found no drug or brand name',
    );
    expect(text.stderr).toContain(
      'the lexical embedder (EMBEDDING_PROVIDER=local) matches spellings, not meanings',
    );
    expect(text.stderr).toContain('`--mode hybrid`');
    expect(text.stderr).toContain('`drugsync run --embedder minilm`');
    // --json: one machine-readable object, the empty list and the hint as fields
    expect(json.status).toBe(0);
    expect(json.stdout.trim().split('\n')).toHaveLength(1);
    expect(json.json).toMatchObject({
      query: 'medicine for high blood pressure',
      mode: 'text',
      embedder: 'local',
      results: [],
      hint: {
        reason: expect.stringContaining('matches spellings, not meanings'),
        next: expect.arrayContaining([expect.stringContaining('--embedder minilm')]),
      },
    });
    // a filter nothing passes: vector search is empty only then, and the hint names the filter
    expect(filtered.status).toBe(0);
    expect(filtered.stdout).toBe('');
    expect(filtered.stderr).toContain('no document in the index passes --gcn 1');
    expect(filtered.stderr).toContain('try search without --gcn 1');
  });

  it('a search that finds hits prints them and no hint', async () => {
    // Act
    const r = await runCli(env, ['search', 'amoxicillin', '--json']);
    // Assess
    expect(r.status).toBe(0);
    const results = r.json.results as { ndc: string; drug_name: string }[];
    expect(results.length).toBeGreaterThan(0);
    expect(results.every((h) => h.drug_name.startsWith('AMOXICILLIN'))).toBe(true);
    expect(r.json).not.toHaveProperty('hint');
  });
});
