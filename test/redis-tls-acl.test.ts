/**
 * Redis over TLS with a private CA, as a least-privilege ACL user: a Redis Stack server of the test's own,
 * TLS only (a CA and server certificate made with openssl), whose drugsync user gets exactly the rule
 * `drugsync redis-acl` prints. The whole pipeline (backfill, binlog reader, embedder) and the operator
 * commands (verify, status, search, dlq list) run against it with REDIS_TLS_CA_FILE and REDIS_USERNAME:
 * they pass, and the server's ACL LOG shows no refusal of drugsync's user. A command or key outside the rule
 * is refused with REDIS_ACL_DENIED naming the user, the command and the rule; a CA that did not sign the
 * server's certificate is CONFIG_INVALID naming REDIS_TLS_CA_FILE.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createRedis, waitForRedis } from '../services/core/clients/redis.ts';
import type { RedisClient, RedisSettings } from '../services/core/clients/redis.ts';
import type { Env } from '../services/core/config.ts';
import type { DrugsyncError } from '../services/core/errors.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import { makeCertificates } from './support/certificates.ts';
import type { Certificates } from './support/certificates.ts';
import { preparePipeline, runCli, startProc } from './support/pipeline.ts';
import type { Proc } from './support/pipeline.ts';
import { startRedisServer } from './support/redis-server.ts';
import type { RedisServer } from './support/redis-server.ts';
import { suiteEnv, suiteKeys } from './support/stack.ts';
import { convergedVerifyRun } from './support/writer.ts';

const USER = 'drugsync_app';
const adminPassword = crypto.randomBytes(18).toString('base64url');
const userPassword = crypto.randomBytes(18).toString('base64url');

/** ACL LOG entries (flat arrays of field, value) as objects. */
function aclLog(raw: unknown): Record<string, unknown>[] {
  return (raw as unknown[][]).map((entry) => {
    const o: Record<string, unknown> = {};
    for (let i = 0; i + 1 < entry.length; i += 2) o[String(entry[i])] = entry[i + 1];
    return o;
  });
}

describe('Redis over TLS with a private CA, as drugsync’s least-privilege ACL user', () => {
  const env = suiteEnv('redis_acl');
  let dir: string;
  let pki: Certificates;
  let server: RedisServer;
  let admin: RedisClient;
  let mysql: Connection;
  /** the services' settings: this Redis over TLS, the ACL user */
  let tlsEnv: Env;
  const procs: Proc[] = [];

  /** Client settings for this server: TLS with `ca`, logged in as `user`. */
  const settings = (ca: string | undefined, user?: string, password?: string): RedisSettings => ({
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: server.port,
    REDIS_TLS: true,
    REDIS_TLS_CA_FILE: ca,
    REDIS_USERNAME: user,
    REDIS_PASSWORD: password,
  });

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-redis-tls-'));
    pki = makeCertificates(path.join(dir, 'pki'));
    server = await startRedisServer({ tls: pki, password: adminPassword });
    admin = createRedis(settings(pki.ca, undefined, adminPassword));
    await waitForRedis(admin, 30_000);
    ({ admin: mysql } = await preparePipeline(env, 2_000, 44));
    tlsEnv = {
      ...env,
      REDIS_PORT: String(server.port),
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: pki.ca,
      REDIS_USERNAME: USER,
      REDIS_PASSWORD: userPassword,
    };
    // The rule exactly as the CLI prints it for these prefixes, the password put in its place.
    const printed = await runCli(tlsEnv, ['redis-acl']);
    expect(printed.status, printed.stderr).toBe(0);
    const [acl, setuser, user, ...rule] = printed.stdout.trim().split(' ');
    expect([acl, setuser, user]).toEqual(['ACL', 'SETUSER', USER]);
    await admin.call(
      'ACL',
      'SETUSER',
      USER,
      ...rule.map((t) => (t === '><password>' ? `>${userPassword}` : t)),
    );
    await admin.call('ACL', 'LOG', 'RESET');
  });

  afterAll(async () => {
    for (const p of procs) p.child.kill('SIGTERM');
    await Promise.all(procs.map((p) => p.exited));
    admin?.disconnect();
    await mysql?.end();
    await server?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the pipeline and the operator commands pass under the rule; the ACL LOG shows no refusal', async () => {
    // Prepare
    const backfill = await runCli(tlsEnv, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    procs.push(startProc(tlsEnv, ['binlog-reader']), startProc(tlsEnv, ['embedder']));
    const sim = await startSimulator(mysql, {
      rate: 100,
      maxChanges: 600,
      schema: env.DB_NAME as string,
      table: 'rndc14',
      seed: 4242,
      log: createLogger({ service: 'acl-writer' }, { level: 'warn' }),
    });

    // Act
    await sim.done;
    const verdict = await convergedVerifyRun(tlsEnv, 180_000);
    const status = await runCli(tlsEnv, ['status', '--json']);
    const search = await runCli(tlsEnv, ['search', 'tablet', '--json']);
    const dlq = await runCli(tlsEnv, ['dlq', 'list', '--json']);

    // Assess
    expect(backfill.json.completed).toBe(true);
    expect(verdict.json).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(sim.stats.changes).toBeGreaterThanOrEqual(600);
    expect(sim.stats.errors).toBe(0);
    for (const r of [status, search, dlq]) expect(r.status, r.stderr.slice(-2000)).toBe(0);
    for (const p of procs) expect(p.child.exitCode, p.stderrTail()).toBeNull();
    const refused = aclLog(await admin.call('ACL', 'LOG')).filter((e) => e.username === USER);
    expect(refused).toEqual([]);
    // every one of those clients was this user over TLS (the server has no plain port)
    const clients = String(await admin.call('CLIENT', 'LIST'));
    expect(clients).toMatch(new RegExp(`user=${USER} `));
  }, 420_000);

  it('a command or key outside the rule is refused with REDIS_ACL_DENIED naming the user, the command and the rule', async () => {
    // Prepare
    const app = createRedis(settings(pki.ca, USER, userPassword));
    await waitForRedis(app, 10_000);
    try {
      // Act
      const flush = await app.call('FLUSHALL').catch((e: unknown) => e);
      const config = await app.call('CONFIG', 'SET', 'maxmemory', '1mb').catch((e: unknown) => e);
      const otherKey = await app.set('sessions:42', 'x').catch((e: unknown) => e);
      // a key under the state prefix is allowed (no such NDC: nil); KEYS is not
      const allowed = suiteKeys(env).meta('99999999999');
      const inPipeline = await app.pipeline().get(allowed).call('KEYS', '*').exec();

      // Assess
      for (const e of [flush, config, otherKey]) {
        expect(isDrugsyncError(e, 'REDIS_ACL_DENIED')).toBe(true);
        expect((e as DrugsyncError).context.redis_user).toBe(USER);
        expect((e as DrugsyncError).remedy).toContain('drugsync redis-acl');
      }
      expect((flush as DrugsyncError).message).toBe(
        `Redis ACL: user "${USER}" may not run FLUSHALL (User ${USER} has no permissions to run the 'flushall' command)`,
      );
      expect((config as DrugsyncError).context.command).toBe('CONFIG');
      expect((config as DrugsyncError).message).toContain("'config|set'");
      expect((otherKey as DrugsyncError).message).toBe(
        `Redis ACL: user "${USER}" may not run SET on sessions:42 (No permissions to access a key)`,
      );
      expect(inPipeline?.[0]).toEqual([null, null]);
      expect(isDrugsyncError(inPipeline?.[1]?.[0], 'REDIS_ACL_DENIED')).toBe(true);
      expect(await admin.get('sessions:42')).toBeNull();
      const refused = aclLog(await admin.call('ACL', 'LOG')).filter((e) => e.username === USER);
      expect(refused.map((e) => e.object).sort()).toEqual(['config|set', 'flushall', 'keys', 'sessions:42']);
    } finally {
      app.disconnect();
    }
  });

  it('a CA that did not sign the server’s certificate, or none (Node’s CAs), is CONFIG_INVALID naming REDIS_TLS_CA_FILE', async () => {
    // Prepare
    const wrong = createRedis(settings(pki.otherCa, USER, userPassword), { maxRetriesPerRequest: 1 });
    const publicCas = createRedis(settings(undefined, USER, userPassword), { maxRetriesPerRequest: 1 });
    try {
      // Act
      const e1 = await waitForRedis(wrong, 20_000).catch((e: unknown) => e);
      const e2 = await waitForRedis(publicCas, 20_000).catch((e: unknown) => e);

      // Assess
      for (const e of [e1, e2]) {
        expect(isDrugsyncError(e, 'CONFIG_INVALID')).toBe(true);
        expect((e as DrugsyncError).message).toMatch(/^TLS to Redis at 127\.0\.0\.1:\d+ failed: /);
        expect((e as DrugsyncError).remedy).toContain('REDIS_TLS_CA_FILE');
      }
      // OpenSSL's verdict on a chain it cannot complete (which one depends on what the server sends)
      for (const e of [e1, e2])
        expect((e as DrugsyncError).context.error_code).toMatch(
          /^(SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)$/,
        );
    } finally {
      wrong.disconnect();
      publicCas.disconnect();
    }
  });
});
