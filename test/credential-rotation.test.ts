/**
 * Credential rotation on the real stack (MariaDB, Redis, kinesalite), with the secrets served by the fake
 * Secrets Manager (test/support/fake-secrets-manager.ts) through the real AWS SDK client.
 *
 * The services log in as a replication user of their own (MariaDB) and as an ACL user with drugsync's rule
 * (Redis), both passwords read from secrets. While a writer commits, both passwords are rotated twice — once
 * in the servers and the secrets at the same moment, once with the secrets lagging the servers until each
 * client has been refused and re-read the old secret (Secrets Manager's rotation between setSecret and
 * finishSecret) — and every connection of those users is
 * killed, so each client must log in again. The binlog reader and the embedder run as processes: they must
 * keep running (same process, never exited), re-read the secrets (log lines naming the ARNs), lose nothing
 * (`verify` clean) and never log either generation of password.
 *
 * Also the MySQL pool alone: connections lent out of the old pool finish on it, new work gets the new one.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { createMysqlPool, mysqlCredentials } from '../services/core/clients/mysql.ts';
import type { RedisClient } from '../services/core/clients/redis.ts';
import { secretsManagerSource } from '../services/core/clients/secrets.ts';
import type { Env } from '../services/core/config.ts';
import { createLogger } from '../services/core/log.ts';
import { redisAclPermissions } from '../services/core/redis/acl.ts';
import { startSimulator } from '../services/cli/simulate.ts';
import type { Simulator } from '../services/cli/simulate.ts';
import { startFakeSecretsManager } from './support/fake-secrets-manager.ts';
import { expectNoLeak, jsonLines } from './support/leaks.ts';
import type { FakeSecretsManager } from './support/fake-secrets-manager.ts';
import { CLI, preparePipeline, runCli } from './support/pipeline.ts';
import { eventually, suiteEnv, suiteRedis } from './support/stack.ts';
import { convergedVerifyRun } from './support/writer.ts';
import { quoteIdent } from '../services/core/sql.ts';

const run = Math.random().toString(36).slice(2, 8);
const DB_ARN = `arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-rotation-${run}`;
const REDIS_ARN = `arn:aws:secretsmanager:us-east-1:123456789012:secret:drugsync-redis-${run}`;
const USER = `rot_${run}`;
/** Three generations of each password, with a quote and a backslash; unique to this run. */
const mysqlPw = (g: number) => `My"Sql\\${run}-g${g}`;
const redisPw = (g: number) => `Re"dis\\${run}-g${g}`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A service as a child process with its whole stderr kept (the log lines are part of the assertions). */
interface Service {
  child: ChildProcess;
  pid: number;
  stderr: () => string;
  exitCode: () => number | null;
  exited: Promise<void>;
}

function startService(env: Env, args: string[]): Service {
  const child = spawn(process.execPath, [CLI, ...args], {
    env: { ...process.env, ...env, LOG_FORMAT: 'json', LOG_LEVEL: 'info' } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  let code: number | null = null;
  child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) =>
    child.once('exit', (c) => {
      code = c ?? -1;
      resolve();
    }),
  );
  return { child, pid: child.pid as number, stderr: () => err, exitCode: () => code, exited };
}

describe('credential rotation', () => {
  const env = suiteEnv('rotation');
  let admin: Connection;
  let redis: RedisClient;
  let fake: FakeSecretsManager;
  const services: Service[] = [];
  /** What the services are given: the secrets' ARNs, never a password. */
  let serviceEnv: Env;
  let sim: Simulator | null = null;

  /** Sets both passwords in the servers (MariaDB user, Redis ACL user) to generation `g`. */
  async function rotateServers(g: number): Promise<void> {
    await Promise.all([
      admin.query(`ALTER USER ?@'%' IDENTIFIED BY ?`, [USER, mysqlPw(g)]),
      redis.call('ACL', 'SETUSER', USER, 'resetpass', `>${redisPw(g)}`),
    ]);
  }

  function rotateSecrets(g: number, which: 'mysql' | 'redis' | 'both' = 'both'): void {
    if (which !== 'redis')
      fake.put(DB_ARN, JSON.stringify({ username: USER, password: mysqlPw(g), engine: 'mariadb' }));
    if (which !== 'mysql') fake.put(REDIS_ARN, JSON.stringify({ password: redisPw(g) }));
  }

  /** Ends every connection of the rotated user in both servers: each client must log in again. */
  async function killConnections(): Promise<number> {
    const [rows] = await admin.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE USER = ?`, [USER]);
    for (const r of rows as { ID: number }[])
      await admin.query(`KILL CONNECTION ${Number(r.ID)}`).catch(() => undefined);
    const redisKilled = Number(await redis.call('CLIENT', 'KILL', 'USER', USER));
    return (rows as unknown[]).length + redisKilled;
  }

  beforeAll(async () => {
    ({ admin } = await preparePipeline(env, 3_000, 31));
    redis = suiteRedis(env);
    fake = await startFakeSecretsManager();
    // The replication user of these services, with the stack user's grants.
    await admin.query(`DROP USER IF EXISTS ?@'%'`, [USER]);
    await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [USER, mysqlPw(1)]);
    await admin.query(`GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ?@'%'`, [USER]);
    await admin.query(`GRANT SELECT, LOCK TABLES ON ${quoteIdent(env.DB_NAME as string)}.* TO ?@'%'`, [USER]);
    // The Redis ACL user with drugsync's rule for the suite's prefixes.
    await redis.call(
      'ACL',
      'SETUSER',
      USER,
      'reset',
      'on',
      `>${redisPw(1)}`,
      ...redisAclPermissions({
        REDIS_INDEX: env.REDIS_INDEX as string,
        REDIS_DOC_PREFIX: env.REDIS_DOC_PREFIX as string,
        REDIS_STATE_PREFIX: env.REDIS_STATE_PREFIX as string,
      }),
    );
    rotateSecrets(1);
    serviceEnv = {
      ...env,
      DB_USER: '',
      DB_PASSWORD: '',
      DB_SECRET_ARN: DB_ARN,
      REDIS_PASSWORD: '',
      REDIS_USERNAME: USER,
      // the password field of a JSON secret, named as ECS' valueFrom names it
      REDIS_SECRET_ARN: `${REDIS_ARN}:password::`,
      SECRETS_MANAGER_ENDPOINT: fake.endpoint,
      CREDENTIALS_REFRESH_MIN_SECONDS: '1',
      READER_MAX_BACKOFF_SECONDS: '4',
    };
    const backfill = await runCli(serviceEnv, ['backfill', '--json']);
    expect(backfill.status, backfill.stderr.slice(-2000)).toBe(0);
    services.push(startService(serviceEnv, ['binlog-reader']), startService(serviceEnv, ['embedder']));
    // both logged in with the first passwords and at work before anything rotates
    await eventually(
      async () =>
        services[0]?.stderr().includes('"msg":"streaming"') &&
        services[1]?.stderr().includes('"msg":"reading shard"'),
      120_000,
      'the reader to stream and the embedder to read its shards',
    );
  });

  afterAll(async () => {
    await sim?.stop(); // already stopped unless the test failed midway
    for (const s of services) s.child.kill('SIGTERM');
    const killer = setTimeout(() => services.forEach((s) => s.child.kill('SIGKILL')), 15_000);
    await Promise.all(services.map((s) => s.exited));
    clearTimeout(killer);
    await admin?.query(`DROP USER IF EXISTS ?@'%'`, [USER]);
    await redis?.call('ACL', 'DELUSER', USER);
    await admin?.end();
    await redis?.quit();
    await fake?.close();
  });

  it('reader and embedder ride two rotations while a writer commits: nothing lost, no restart, no password logged', async () => {
    // Prepare
    const [reader, embedder] = services as [Service, Service];
    sim = await startSimulator(admin, {
      rate: 100,
      schema: env.DB_NAME as string,
      table: 'rndc14',
      seed: 2512,
      log: createLogger({ service: 'rotation-writer' }, { level: 'warn' }),
    });
    const count = (p: Service, text: string) => p.stderr().split(text).length - 1;
    const redisRotations = (p: Service) => count(p, 'the Redis secret holds new credentials');
    const mysqlRotations = (p: Service) => count(p, 'the MySQL secret holds new credentials');
    // a re-read that found the password the server just refused (the secret has not moved yet)
    const inVain = (p: Service, what: string) =>
      count(p, `the ${what} secret holds the credentials already in use: retrying later`);
    await sleep(3_000);

    // Act 1: servers and secrets at the same moment, then every connection of the user ends
    rotateSecrets(2);
    await rotateServers(2);
    const killed1 = await killConnections();
    await eventually(
      async () => mysqlRotations(reader) >= 1 && redisRotations(reader) >= 1 && redisRotations(embedder) >= 1,
      60_000,
      'both services to log in with the second passwords',
    );
    await sleep(3_000);
    // Act 2: the servers first; each secret follows once its clients were refused and re-read it in vain
    const before = [inVain(reader, 'Redis'), inVain(embedder, 'Redis'), inVain(reader, 'MySQL')];
    await rotateServers(3);
    const killed2 = await killConnections();
    await eventually(
      async () => inVain(reader, 'Redis') > before[0]! && inVain(embedder, 'Redis') > before[1]!,
      60_000,
      'both services to re-read the Redis secret in vain',
    );
    rotateSecrets(3, 'redis');
    await eventually(
      async () => inVain(reader, 'MySQL') > before[2]!,
      60_000,
      'the reader to re-read the MySQL secret in vain',
    );
    rotateSecrets(3, 'mysql');
    await eventually(
      async () => mysqlRotations(reader) >= 2 && redisRotations(reader) >= 2 && redisRotations(embedder) >= 2,
      60_000,
      'both services to log in with the third passwords',
    );
    await sleep(3_000);
    await sim.stop();
    const verdict = await convergedVerifyRun(serviceEnv, 180_000);

    // Assess: nothing lost
    expect(verdict.json).toMatchObject({ missing: 0, extra: 0, stale: 0, ok: true });
    expect(sim.stats.changes).toBeGreaterThan(500);
    expect(sim.stats.errors).toBe(0);
    expect(killed1).toBeGreaterThan(0);
    expect(killed2).toBeGreaterThan(0);
    // no restart: the processes started before the rotations are the ones running
    for (const s of services) {
      expect(s.exitCode(), s.stderr().slice(-2000)).toBeNull();
      expect(() => process.kill(s.pid, 0)).not.toThrow();
    }
    // the secrets were re-read, each re-read logged with its ARN
    const readerLines = jsonLines(reader.stderr());
    const embedderLines = jsonLines(embedder.stderr());
    const rereads = (lines: Record<string, unknown>[], what: string) =>
      lines.filter((l) => l.msg === `${what} refused the login: re-reading the secret`);
    expect(rereads(readerLines, 'MySQL').length).toBeGreaterThan(0);
    for (const l of rereads(readerLines, 'MySQL')) expect(l.secret_arn).toBe(DB_ARN);
    for (const lines of [readerLines, embedderLines]) {
      expect(rereads(lines, 'Redis').length).toBeGreaterThan(0);
      for (const l of rereads(lines, 'Redis')) expect(l.secret_arn).toBe(`${REDIS_ARN}:password::`);
    }
    expect(fake.reads(DB_ARN)).toBeGreaterThanOrEqual(4);
    expect(fake.reads(REDIS_ARN)).toBeGreaterThanOrEqual(4);
    // no secret in any log line of any process
    const output = [reader.stderr(), embedder.stderr(), verdict.stdout, verdict.stderr].join('\n');
    expectNoLeak(
      output,
      [1, 2, 3].flatMap((g) => [mysqlPw(g), redisPw(g)]),
    );
  }, 420_000);

  it('a MySQL pool moves to the new password; a connection lent before the rotation finishes on the old pool', async () => {
    // Prepare: a pool on the provider (this process' own), its one connection held across the rotation
    rotateSecrets(4);
    await rotateServers(4);
    const settings = {
      DB_HOST: env.DB_HOST as string,
      DB_PORT: Number(env.DB_PORT),
      DB_NAME: env.DB_NAME as string,
      DB_TLS: false,
      DB_SECRET_ARN: `${DB_ARN}-pool`,
      CREDENTIALS_REFRESH_MIN_SECONDS: 0,
    };
    fake.put(settings.DB_SECRET_ARN, JSON.stringify({ username: USER, password: mysqlPw(4) }));
    const creds = mysqlCredentials(settings, {
      source: secretsManagerSource({ region: 'us-east-1', endpoint: fake.endpoint }),
    });
    const pool = createMysqlPool(settings, creds);
    const held = await pool.getConnection();
    const [before] = await held.query('SELECT COUNT(*) AS n FROM rndc14');
    // Act: rotate; the next query needs a new connection (the only one is lent out)
    await rotateServers(5);
    fake.put(settings.DB_SECRET_ARN, JSON.stringify({ username: USER, password: mysqlPw(5) }));
    const after = await pool.query<{ n: number }>('SELECT COUNT(*) AS n FROM rndc14');
    const [onHeld] = await held.query('SELECT CURRENT_USER() AS u');
    held.release();
    await eventually(
      async () => {
        const [left] = await admin.query(`SELECT ID FROM information_schema.PROCESSLIST WHERE ID = ?`, [
          held.threadId,
        ]);
        return (left as unknown[]).length === 0;
      },
      10_000,
      'the old pool to close its last connection once it came back',
    );
    await pool.end();

    // Assess
    expect(Number(after[0]?.n)).toBe(Number((before as { n: number }[])[0]?.n));
    expect(creds.version).toBe(1);
    expect(creds.cached?.password).toBe(mysqlPw(5));
    expect((onHeld as { u: string }[])[0]?.u).toBe(`${USER}@%`);
  });
});
