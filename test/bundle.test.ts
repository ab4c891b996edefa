/**
 * The production bundle (scripts/build.ts → dist/drugsync.mjs) as the image runs it: built into a temporary
 * directory, with beside it exactly what the image installs (the Dockerfile's deps-stage `npm ci --omit=dev
 * --omit=optional …`, read from the Dockerfile, from the lock file), run by the Node of this test run against
 * the local stack. The bundle's dependency list (its imports from node_modules) is checked against that
 * install: every package it loads at start is there, onnxruntime-node and the tokenizer (MiniLM's optional
 * runtime) are only imported on demand and are absent, and asking for MiniLM there is a clear CONFIG_INVALID.
 * Every result must be the source tree's: the same documents and verify report after a backfill of the same
 * seeded database, the same change events on the stream from the binlog reader; SIGTERM to the bundled reader
 * ends with a checkpoint and exit 0.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import {
  buildCliBundle,
  bundleImports,
  imageProductionInstall,
  optionalDependencies,
  PROJECT_ROOT,
} from '../scripts/build.ts';
import type { CliBundle } from '../scripts/build.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import { MINILM_RUNTIME_INSTALL, MINILM_RUNTIME_PACKAGES } from '../services/core/embedding/minilm.ts';
import type { Env } from '../services/core/config.ts';
import { makeKeys } from '../services/core/keys.ts';
import type { BinlogPosition } from '../services/core/position.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import { readerConfigShape } from '../services/binlog-reader/reader.ts';
import { createStreamTail, lastEventEnd } from './support/stream-tail.ts';
import type { ReadBack } from './support/stream-tail.ts';
import { commitChangeMix, generateCatalogue, loadRows } from './support/factories.ts';
import {
  createSuiteDatabase,
  eventually,
  resetSuiteRedis,
  resetSuiteStream,
  suiteEnv,
  suiteRedis,
} from './support/stack.ts';
import { quoteIdent } from '../services/core/sql.ts';

const ROWS = 300;
const serverId = () => String(500_000 + Math.floor(Math.random() * 100_000));
/** One database; the source tree and the bundle each write their own Redis keys, index and stream. */
function side(name: string, extra: Env = {}): Env {
  return suiteEnv('bundle', {
    REDIS_INDEX: `bundle_${name}_idx`,
    REDIS_DOC_PREFIX: `t_bundle_${name}:drug:`,
    REDIS_STATE_PREFIX: `t_bundle_${name}:ds:`,
    KINESIS_STREAM: `t-bundle-${name}`,
    DB_SERVER_ID: serverId(),
    ...extra,
  });
}
const sides = {
  src: side('src'),
  bun: side('bun'),
  srcReader: side('src_rd', { LOG_LEVEL: 'info' }),
  bunReader: side('bun_rd', { LOG_LEVEL: 'info' }),
};

let dir: string;
let bundle: string;
let built: CliBundle;
let admin: Connection;
let redis: RedisClient;
const kinesis = createKinesis({ KINESIS_ENDPOINT: sides.src.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });

interface Run {
  child: ReturnType<typeof spawn>;
  exited: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
}

/** Starts the CLI: the source tree's dev entry (tsx), or the bundle from its own directory. */
function start(which: 'source' | 'bundle', env: Env, args: string[]): Run {
  const entry = which === 'source' ? path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs') : bundle;
  const child = spawn(process.execPath, [entry, ...args], {
    cwd: which === 'source' ? PROJECT_ROOT : dir,
    env: {
      ...process.env,
      ...env,
      LOG_FORMAT: 'json',
      ...(which === 'bundle' ? { DRUGSYNC_STATE_DIR: path.join(dir, 'state'), NODE_ENV: 'production' } : {}),
    } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-16_000)));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, exited, stdout: () => out, stderr: () => err };
}

async function runToEnd(which: 'source' | 'bundle', env: Env, args: string[]) {
  const r = start(which, env, args);
  const status = await r.exited;
  const last = r.stdout().trim().split('\n').at(-1) ?? '';
  return {
    status,
    stderr: r.stderr(),
    json: last.startsWith('{') ? (JSON.parse(last) as Record<string, unknown>) : {},
  };
}

/** The image's production install (the Dockerfile's deps stage), from the npm cache when it can. */
async function npmCiProduction(cwd: string): Promise<void> {
  const args = [...imageProductionInstall(), '--prefer-offline'];
  const child = spawn('npm', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  if (code !== 0) throw new Error(`npm ${args.join(' ')} failed in ${cwd} (exit ${code}): ${err}`);
}

/** The name of every package installed under `root`/node_modules, nested ones included. */
function installedPackages(root: string): string[] {
  const names: string[] = [];
  const visit = (modules: string) => {
    if (!fs.existsSync(modules)) return;
    for (const entry of fs.readdirSync(modules)) {
      const dirs = entry.startsWith('@')
        ? fs.readdirSync(path.join(modules, entry)).map((n) => path.join(modules, entry, n))
        : [path.join(modules, entry)];
      for (const d of dirs) {
        const manifest = path.join(d, 'package.json');
        if (!fs.existsSync(manifest)) continue;
        names.push((JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name: string }).name);
        visit(path.join(d, 'node_modules'));
      }
    }
  };
  visit(path.join(root, 'node_modules'));
  return names;
}

/** Every document under the side's prefix, by NDC, without its write time (`indexed_at`, checked apart). */
async function documents(env: Env): Promise<Map<string, unknown>> {
  const prefix = env.REDIS_DOC_PREFIX as string;
  const docs = new Map<string, unknown>();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const json = JSON.parse((await redis.call('JSON.GET', k)) as string) as Record<string, unknown>;
      const { indexed_at, ...doc } = json;
      expect(Number.isNaN(Date.parse(String(indexed_at))), `${k} indexed_at`).toBe(false);
      docs.set(k.slice(prefix.length), doc);
    }
  } while (cursor !== '0');
  return docs;
}

async function masterStatus(): Promise<BinlogPosition> {
  const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
    { File: string; Position: number }[],
  ];
  return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
}

async function drain(stream: string): Promise<ReadBack[]> {
  const tail = createStreamTail(kinesis, stream);
  const all: ReadBack[] = [];
  for (let batch = await tail.read(); batch.length > 0; batch = await tail.read()) all.push(...batch);
  return all;
}

const comparable = (records: ReadBack[]) =>
  records.map((r) => JSON.stringify({ key: r.partitionKey, event: r.event })).sort();

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-bundle-'));
  built = await buildCliBundle(path.join(dir, 'dist'));
  bundle = built.file;
  for (const f of ['package.json', 'package-lock.json'])
    fs.copyFileSync(path.join(PROJECT_ROOT, f), path.join(dir, f));
  await npmCiProduction(dir);
  admin = await createSuiteDatabase(sides.src);
  await loadRows(admin, generateCatalogue(ROWS, 23), {
    schema: sides.src.DB_NAME as string,
    table: 'rndc14',
  });
  redis = suiteRedis(sides.src);
  for (const env of Object.values(sides)) await resetSuiteRedis(env, redis);
  await Promise.all([resetSuiteStream(sides.srcReader, 2), resetSuiteStream(sides.bunReader, 2)]);
}, 600_000);

afterAll(async () => {
  if (admin) {
    for (const env of Object.values(sides)) await resetSuiteRedis(env, redis);
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(sides.src.DB_NAME as string)}`);
    await admin.end();
  }
  redis?.disconnect();
  kinesis.destroy();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('bundle: dist/drugsync.mjs with production dependencies only', () => {
  it('has only production dependencies beside it, and runs on Node 22', () => {
    for (const dev of ['tsx', 'esbuild', 'vitest', 'kinesalite', 'typescript'])
      expect(fs.existsSync(path.join(dir, 'node_modules', dev, 'package.json')), dev).toBe(false);
    expect(fs.existsSync(path.join(dir, 'dist', 'compressor-worker.mjs')), 'the compression worker').toBe(
      true,
    );
    for (const prod of ['@vlasky/zongji', 'ioredis', 'mysql2', '@aws-sdk/client-kinesis'])
      expect(fs.existsSync(path.join(dir, 'node_modules', prod, 'package.json')), prod).toBe(true);
    expect(Number(process.versions.node.split('.')[0])).toBeGreaterThanOrEqual(22);
  });

  it("the image's install holds every package the bundle loads at start, and no onnxruntime", () => {
    // Prepare: the bundle's dependency list (its imports from node_modules) and what the install put beside it
    const imports = bundleImports(built.metafile);
    const installed = installedPackages(dir);
    const onDemand = imports.filter((i) => i.kind === 'dynamic').map((i) => i.package);

    // Assess: the install is the Dockerfile's, without optional dependencies
    expect(imageProductionInstall()).toEqual(expect.arrayContaining(['ci', '--omit=dev', '--omit=optional']));
    // every package loaded at start is installed (the bundle runs: the tests below)
    for (const i of imports.filter((i) => i.kind === 'static'))
      expect(installed, `${i.package} (imported at start)`).toContain(i.package);
    // MiniLM's runtime is optional, imported only on demand, and left out
    expect(optionalDependencies()).toEqual([...MINILM_RUNTIME_PACKAGES].sort());
    expect(onDemand).toEqual(expect.arrayContaining([...MINILM_RUNTIME_PACKAGES]));
    for (const p of MINILM_RUNTIME_PACKAGES) expect(installed, p).not.toContain(p);
    expect(installed.filter((name) => /onnx/i.test(name))).toEqual([]);
    expect(installed.length).toBeGreaterThan(imports.length);
  });

  it('EMBEDDING_PROVIDER=minilm from the bundle is one CONFIG_INVALID naming the missing runtime and its install', async () => {
    // Act: the embedder service asking for MiniLM where only the image's dependencies are installed
    const r = await runToEnd('bundle', { ...sides.bun, EMBEDDING_PROVIDER: 'minilm' }, ['embedder']);

    // Assess: refused at start (exit 2), the error names the packages and the command that installs them
    expect(r.status, r.stderr).toBe(2);
    const logged = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { level: string; msg: string; error?: { code?: string } })
      .find((l) => l.level === 'error');
    expect(logged?.error?.code).toBe('CONFIG_INVALID');
    for (const p of MINILM_RUNTIME_PACKAGES) expect(logged?.msg).toContain(p);
    expect(r.stderr).toContain(MINILM_RUNTIME_INSTALL);
  }, 120_000);

  it('backfill and verify --json give the source tree results: same documents, same report', async () => {
    // Act: the same backfill from the source tree and from the bundle, each into its own keys
    const [src, bun] = [
      await runToEnd('source', sides.src, ['backfill', '--json']),
      await runToEnd('bundle', sides.bun, ['backfill', '--json']),
    ];
    expect(src.status, src.stderr).toBe(0);
    expect(bun.status, bun.stderr).toBe(0);
    const [srcDocs, bunDocs] = [await documents(sides.src), await documents(sides.bun)];
    const [srcVerify, bunVerify] = [
      await runToEnd('source', sides.src, ['verify', '--json']),
      await runToEnd('bundle', sides.bun, ['verify', '--json']),
    ];

    // Assess
    expect(srcDocs.size).toBeGreaterThan(ROWS * 0.8);
    expect([...bunDocs.keys()].sort()).toEqual([...srcDocs.keys()].sort());
    for (const [ndc, doc] of srcDocs) expect(bunDocs.get(ndc), ndc).toStrictEqual(doc);
    expect(bunVerify.status, bunVerify.stderr).toBe(0);
    const report = (j: Record<string, unknown>) => ({
      source_rows: j.source_rows,
      redis_docs: j.redis_docs,
      missing: j.missing,
      extra: j.extra,
      stale: j.stale,
      ok: j.ok,
    });
    expect(report(bunVerify.json)).toEqual(report(srcVerify.json));
    expect(bunVerify.json.ok).toBe(true);
    expect(bunVerify.json.redis_docs).toBe(srcDocs.size);
  }, 300_000);

  it('binlog-reader publishes the source tree reader events; SIGTERM checkpoints and exits 0', async () => {
    // Prepare: renames, price changes, new NDCs and deletes after a known position
    const from = await masterStatus();
    await commitChangeMix(admin, {
      tag: 'bundle',
      ndcBase: '999999000',
      renames: 4,
      priceLists: 4,
      inserts: 3,
      deletes: 2,
    });
    const fromArg = `${from.file}:${from.pos}`;

    // Act: the source tree's reader until idle; the bundled reader until it published as much, then SIGTERM
    const src = await runToEnd('source', sides.srcReader, [
      'binlog-reader',
      '--from',
      fromArg,
      '--once-idle',
      '3',
    ]);
    expect(src.status, src.stderr).toBe(0);
    const srcRecords = await drain(sides.srcReader.KINESIS_STREAM as string);
    const reader = start('bundle', sides.bunReader, ['binlog-reader', '--from', fromArg]);
    // its zstd frames are made on the worker thread started from dist/compressor-worker.mjs (the engine the
    // worker reports), not on the reader's thread
    await eventually(
      async () =>
        /"msg":"record compression: zstd frames of the aggregates on the worker thread"/.test(
          reader.stderr(),
        ),
      60_000,
      'the bundled reader reported its compression worker',
    );
    const bunRecords = await eventually(
      async () => {
        const r = await drain(sides.bunReader.KINESIS_STREAM as string);
        return r.length >= srcRecords.length ? r : null;
      },
      120_000,
      'the bundled reader published every change',
    );
    reader.child.kill('SIGTERM');
    const code = await reader.exited;

    // Assess: the same events (positions included); a clean stop with a checkpoint past the last change
    expect(srcRecords.length).toBeGreaterThanOrEqual(4 + 4 + 3 + 2);
    expect(comparable(bunRecords)).toEqual(comparable(srcRecords));
    expect(code, reader.stderr()).toBe(0);
    expect(reader.stderr()).toMatch(/"msg":"binlog reader stopped"/);
    expect(reader.stderr()).not.toMatch(/record compression worker (stopped|did not start)/);
    const config = decodeConfig(readerConfigShape, sides.bunReader);
    const cp = await createReaderCheckpointStore(redis, makeKeys(config)).load();
    expect(cp).not.toBeNull();
    expect(compareBinlogPositions(cp!, lastEventEnd(bunRecords))).toBeGreaterThanOrEqual(0);
  }, 300_000);
});
