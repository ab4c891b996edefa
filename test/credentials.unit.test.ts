/**
 * The credentials provider every client shares (core/clients/credentials.ts): read once, re-read on a
 * refused login at most once per minimum interval (concurrent callers share one read), a changed secret
 * bumps the version, a failed re-read keeps the credentials in force; each re-read logs the secret's ARN
 * and never a value. Also the secrets' decoding (Redis) and which errors count as a refused login.
 */
import { describe, expect, it } from 'vitest';
import { secretCredentials, staticCredentials } from '../services/core/clients/credentials.ts';
import type { Credentials } from '../services/core/clients/credentials.ts';
import { isMysqlLoginRefused, mysqlCredentials } from '../services/core/clients/mysql.ts';
import { isRedisLoginRefused, redisCredentials } from '../services/core/clients/redis.ts';
import { parseRedisSecret } from '../services/core/clients/secrets.ts';
import { parseSecretReference } from '../services/core/clients/secret-reference.ts';
import type { SecretSource } from '../services/core/clients/secrets.ts';
import { DrugsyncError, isDrugsyncError } from '../services/core/errors.ts';
import { createLogger } from '../services/core/log.ts';

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-rotation-Q1w2E3';
const run = Math.random().toString(36).slice(2, 8);

/** A secret whose value the test sets, a clock the test moves, and the JSON log lines written. */
function harness(first: Credentials, minIntervalMs = 5_000) {
  let value = first;
  let clock = 1_000_000;
  let reads = 0;
  let failNext = false;
  const lines: string[] = [];
  const provider = secretCredentials({
    what: 'MySQL',
    secretArn: ARN,
    minIntervalMs,
    now: () => clock,
    log: createLogger({ service: 'test' }, { json: true, level: 'debug', write: (l) => lines.push(l) }),
    read: async () => {
      reads += 1;
      await new Promise((r) => setTimeout(r, 5));
      if (failNext) {
        failNext = false;
        throw new DrugsyncError('CONFIG_INVALID', `cannot read the MySQL secret ${ARN}: ThrottlingException`);
      }
      return value;
    },
  });
  return {
    provider,
    lines,
    reads: () => reads,
    rotate: (c: Credentials) => (value = c),
    advance: (ms: number) => (clock += ms),
    failNextRead: () => (failNext = true),
  };
}

const refused = Object.assign(
  new Error("Access denied for user 'drugsync_repl'@'10.0.3.7' (using password: YES)"),
  {
    errno: 1045,
    code: 'ER_ACCESS_DENIED_ERROR',
  },
);

describe('credentials provider', () => {
  it('reads the secret once for every caller until a login is refused', async () => {
    // Prepare
    const h = harness({ user: 'drugsync_repl', password: `Old-${run}-pw` });
    // Act
    const got = await Promise.all([h.provider.current(), h.provider.current(), h.provider.current()]);
    const again = await h.provider.current();
    // Assess
    expect(h.reads()).toBe(1);
    expect(new Set([...got, again].map((c) => c.password))).toEqual(new Set([`Old-${run}-pw`]));
    expect(h.provider.version).toBe(0);
  });

  it('after a refused login re-reads a rotated secret once for all callers and bumps the version', async () => {
    // Prepare
    const h = harness({ user: 'drugsync_repl', password: `Old-${run}-pw` });
    await h.provider.current();
    h.rotate({ user: 'drugsync_repl', password: `New-${run}-pw` });
    h.advance(6_000);
    // Act: the pool, the control connection and both binlog connections fail together
    const after = await Promise.all([1, 2, 3, 4].map(() => h.provider.refresh(refused)));
    // Assess
    expect(h.reads()).toBe(2);
    expect(after.map((c) => c.password)).toEqual(Array(4).fill(`New-${run}-pw`));
    expect(h.provider.cached?.password).toBe(`New-${run}-pw`);
    expect(h.provider.version).toBe(1);
  });

  it('re-reads at most once per minimum interval, so a secret not yet rotated is read again later', async () => {
    // Prepare: the server has the new password, the secret still the old one (rotation half done)
    const h = harness({ user: 'drugsync_repl', password: `Old-${run}-pw` }, 5_000);
    await h.provider.current();
    h.advance(5_000);
    // Act
    const first = await h.provider.refresh(refused);
    h.advance(1_000);
    const tooSoon = await h.provider.refresh(refused);
    h.rotate({ user: 'drugsync_repl', password: `New-${run}-pw` });
    h.advance(1_000);
    const stillTooSoon = await h.provider.refresh(refused);
    h.advance(3_000);
    const later = await h.provider.refresh(refused);
    // Assess
    expect([first, tooSoon, stillTooSoon, later].map((c) => c.password)).toEqual([
      `Old-${run}-pw`,
      `Old-${run}-pw`,
      `Old-${run}-pw`,
      `New-${run}-pw`,
    ]);
    expect(h.reads()).toBe(3);
    expect(h.provider.version).toBe(1);
  });

  it('keeps the credentials in force when the re-read fails, and reads again after the interval', async () => {
    // Prepare
    const h = harness({ user: 'drugsync_repl', password: `Old-${run}-pw` }, 2_000);
    await h.provider.current();
    h.rotate({ user: 'drugsync_repl', password: `New-${run}-pw` });
    h.advance(2_000);
    h.failNextRead();
    // Act
    const failed = await h.provider.refresh(refused);
    h.advance(2_000);
    const next = await h.provider.refresh(refused);
    // Assess
    expect(failed.password).toBe(`Old-${run}-pw`);
    expect(next.password).toBe(`New-${run}-pw`);
    expect(h.reads()).toBe(3);
  });

  it('logs each re-read naming the secret ARN and the refused login, never a password', async () => {
    // Prepare
    const h = harness({ user: 'drugsync_repl', password: `Old-${run}-pw` });
    await h.provider.current();
    h.rotate({ user: 'drugsync_repl', password: `New-${run}-pw` });
    h.advance(10_000);
    // Act
    await h.provider.refresh(refused);
    // Assess
    const records = h.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(records.map((r) => [r.level, r.msg])).toEqual([
      ['warn', 'MySQL refused the login: re-reading the secret'],
      ['info', 'the MySQL secret holds new credentials: reconnecting with them'],
    ]);
    for (const r of records) expect(r.secret_arn).toBe(ARN);
    expect(records[0]?.cause).toContain('Access denied');
    expect(records[1]).toMatchObject({ user: 'drugsync_repl', version: 1 });
    const all = h.lines.join('\n');
    expect(all).not.toContain(`Old-${run}-pw`);
    expect(all).not.toContain(`New-${run}-pw`);
  });

  it('plain settings have nothing to re-read: refresh returns them as they are', async () => {
    // Prepare
    const fixed = staticCredentials('Redis', { user: 'drugsync', password: `Plain-${run}` });
    // Act
    const after = await fixed.refresh(new Error('WRONGPASS invalid username-password pair'));
    // Assess
    expect(after).toEqual({ user: 'drugsync', password: `Plain-${run}` });
    expect([fixed.secretArn, fixed.version]).toEqual([undefined, 0]);
  });

  it('one provider per secret per process: every client of a secret shares it', async () => {
    // Prepare
    let reads = 0;
    const source: SecretSource = {
      getSecretString: () => {
        reads += 1;
        return Promise.resolve(JSON.stringify({ username: 'drugsync_repl', password: `Shared-${run}` }));
      },
    };
    const settings = {
      DB_HOST: 'db',
      DB_PORT: 3306,
      DB_NAME: 'fdb',
      DB_TLS: true,
      DB_SECRET_ARN: `${ARN}-shared-${run}`,
    };
    // Act
    const a = mysqlCredentials(settings, { source });
    const b = mysqlCredentials({ ...settings, DB_TLS_CA_FILE: '/app/certs/rds.pem' }, { source });
    const redisA = redisCredentials(
      { REDIS_HOST: 'r', REDIS_PORT: 6379, REDIS_TLS: true, REDIS_SECRET_ARN: `${ARN}-redis-${run}` },
      { source: { getSecretString: () => Promise.resolve(`RedisPw-${run}`) } },
    );
    await Promise.all([a.current(), b.current(), redisA.current()]);
    // Assess
    expect(a).toBe(b);
    expect(reads).toBe(1);
    expect(a.cached).toEqual({ user: 'drugsync_repl', password: `Shared-${run}` });
    expect(redisA.cached).toEqual({ user: '', password: `RedisPw-${run}` });
  });
});

describe('secrets and refused logins', () => {
  it('the Redis secret is the whole string, or the password under the key after the ARN', () => {
    // Prepare
    const pw = `R3d"is\\${run}✓`;
    // Act
    const whole = parseRedisSecret(ARN, pw);
    const keyed = parseRedisSecret(ARN, JSON.stringify({ username: 'drugsync', password: pw }), 'password');
    const notJson = (() => {
      try {
        return parseRedisSecret(ARN, pw, 'password');
      } catch (e) {
        return e;
      }
    })();
    const noKey = (() => {
      try {
        return parseRedisSecret(ARN, JSON.stringify({ auth: pw }), 'password');
      } catch (e) {
        return e;
      }
    })();
    // Assess
    expect([whole, keyed]).toEqual([pw, pw]);
    expect(isDrugsyncError(notJson, 'SECRET_INVALID')).toBe(true);
    expect((notJson as DrugsyncError).message).toBe(
      `the Redis secret ${ARN} is not JSON; expected JSON with a string "password" (the key after the ARN in REDIS_SECRET_ARN)`,
    );
    expect(isDrugsyncError(noKey, 'SECRET_INVALID')).toBe(true);
    expect((noKey as DrugsyncError).message).toContain('has no "password"');
    expect((noKey as DrugsyncError).describe()).not.toContain(run);
  });

  it('a secret is named as ECS names it: the ARN, or ARN:json-key::; a version stage or id is refused', () => {
    // Act
    const plain = parseSecretReference(ARN);
    const keyed = parseSecretReference(`${ARN}:password::`);
    const staged = parseSecretReference(`${ARN}:password:AWSPREVIOUS:`);
    const notArn = parseSecretReference('drugsync/redis');
    // Assess
    expect(plain).toEqual({ arn: ARN, jsonKey: undefined });
    expect(keyed).toEqual({ arn: ARN, jsonKey: 'password' });
    expect(staged).toMatch(/names a version stage or id/);
    expect(notArn).toMatch(/must be a Secrets Manager secret ARN/);
  });

  it('MySQL: the login errors of a rotated password count as refused, other failures do not', () => {
    // Prepare
    const cases: [string, unknown, boolean][] = [
      ['1045 access denied', refused, true],
      ['1698 no password', { errno: 1698, code: 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR' }, true],
      ['1862 password expired', { errno: 1862 }, true],
      ['3118 account locked', { code: 'ER_ACCOUNT_HAS_BEEN_LOCKED' }, true],
      ['1236 binlog purged', { errno: 1236, code: 'ER_MASTER_FATAL_ERROR_READING_BINLOG' }, false],
      [
        'connection refused',
        Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        false,
      ],
      ['1044 no access to the database', { errno: 1044, code: 'ER_DBACCESS_DENIED_ERROR' }, false],
    ];
    // Act
    const got = cases.map(([name, e]) => [name, isMysqlLoginRefused(e)]);
    // Assess
    expect(got).toEqual(cases.map(([name, , want]) => [name, want]));
  });

  it('Redis: WRONGPASS and NOAUTH count as refused, NOPERM and connection errors do not', () => {
    // Prepare
    const cases: [string, boolean][] = [
      ['WRONGPASS invalid username-password pair or user is disabled.', true],
      ['NOAUTH Authentication required.', true],
      ['ERR invalid password', true],
      ["NOPERM User drugsync has no permissions to run the 'flushall' command", false],
      ['connect ECONNREFUSED 127.0.0.1:6379', false],
    ];
    // Act
    const got = cases.map(([m]) => isRedisLoginRefused(new Error(m)));
    // Assess
    expect(got).toEqual(cases.map(([, want]) => want));
  });
});
