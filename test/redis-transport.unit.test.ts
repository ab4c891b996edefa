/**
 * Redis transport without a server: TLS options from REDIS_TLS / REDIS_TLS_CA_FILE, the ACL user in the
 * client options, ACL refusals mapped to REDIS_ACL_DENIED, the settings' cross-field rules, and the ACL rule
 * (core/redis/acl.ts) as docs/deploy.md shows it. The same rule on a real TLS Redis: redis-tls-acl.test.ts.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { redisAclError, redisOptions, redisTlsOptions } from '../services/core/clients/redis.ts';
import { decodeConfig, isSecretSetting, redisShape } from '../services/core/config.ts';
import type { DrugsyncError } from '../services/core/errors.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { REDIS_ACL_COMMANDS, redisAclKeyPatterns, redisAclSetUser } from '../services/core/redis/acl.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';

const base = { REDIS_HOST: 'redis.internal', REDIS_PORT: 6380 };
const CA_PEM = `-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUfake\n-----END CERTIFICATE-----\n`;

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe('Redis TLS and login options', () => {
  it('TLS verifies the certificate with the private CA of REDIS_TLS_CA_FILE, or Node’s CAs', () => {
    // Prepare
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-redis-ca-'));
    const caFile = path.join(dir, 'ca.pem');
    fs.writeFileSync(caFile, CA_PEM);
    // Act
    const plain = redisTlsOptions({ REDIS_TLS: false });
    const publicCas = redisTlsOptions({ REDIS_TLS: true });
    const privateCa = redisTlsOptions({ REDIS_TLS: true, REDIS_TLS_CA_FILE: caFile });
    const opts = redisOptions({ ...base, REDIS_TLS: true, REDIS_TLS_CA_FILE: caFile });
    // Assess
    expect(plain).toBeUndefined();
    expect(publicCas).toEqual({ minVersion: 'TLSv1.2', rejectUnauthorized: true });
    expect(privateCa).toEqual({ minVersion: 'TLSv1.2', rejectUnauthorized: true, ca: CA_PEM });
    expect(opts.tls).toEqual(privateCa);
    fs.rmSync(dir, { recursive: true });
  });

  it('a CA file that is missing or holds no certificate is CONFIG_INVALID naming REDIS_TLS_CA_FILE', () => {
    // Prepare
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-redis-ca-'));
    const notPem = path.join(dir, 'key.txt');
    fs.writeFileSync(notPem, 'not a certificate');
    // Act
    const missing = thrown(() =>
      redisTlsOptions({ REDIS_TLS: true, REDIS_TLS_CA_FILE: path.join(dir, 'nope.pem') }),
    );
    const empty = thrown(() => redisTlsOptions({ REDIS_TLS: true, REDIS_TLS_CA_FILE: notPem }));
    // Assess
    for (const e of [missing, empty]) {
      expect(isDrugsyncError(e, 'CONFIG_INVALID')).toBe(true);
      expect((e as DrugsyncError).context.variable).toBe('REDIS_TLS_CA_FILE');
      expect((e as DrugsyncError).remedy).toMatch(/REDIS_TLS_CA_FILE at .*PEM bundle/);
    }
    expect((missing as DrugsyncError).message).toMatch(/^REDIS_TLS_CA_FILE: cannot read .*nope\.pem$/);
    expect((empty as DrugsyncError).message).toMatch(/holds no PEM certificate$/);
    fs.rmSync(dir, { recursive: true });
  });

  it('logs in as the ACL user REDIS_USERNAME, or as the default user without one (or named "default")', () => {
    // Act
    const acl = redisOptions({
      ...base,
      REDIS_TLS: false,
      REDIS_USERNAME: 'drugsync',
      REDIS_PASSWORD: 'pw-1234',
    });
    const legacy = redisOptions({ ...base, REDIS_TLS: false, REDIS_PASSWORD: 'pw-1234' });
    const named = redisOptions({
      ...base,
      REDIS_TLS: false,
      REDIS_USERNAME: 'default',
      REDIS_PASSWORD: 'pw-1234',
    });
    // Assess
    expect([acl.username, acl.password]).toEqual(['drugsync', 'pw-1234']);
    expect([legacy.username, legacy.password]).toEqual([undefined, 'pw-1234']);
    expect([named.username, named.password]).toEqual([undefined, 'pw-1234']);
  });

  it('the settings refuse a CA file without TLS and a secret reference that is not one, every problem at once', () => {
    // Prepare
    const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-auth-AbCdEf';
    const env = {
      REDIS_TLS: 'false',
      REDIS_TLS_CA_FILE: '/app/certs/redis-ca.pem',
      REDIS_SECRET_ARN: `${arn}:password:AWSPENDING:`,
    };
    // Act
    const e = thrown(() => decodeConfig(redisShape, env));
    const ok = decodeConfig(redisShape, {
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: '/app/certs/redis-ca.pem',
      REDIS_USERNAME: 'drugsync',
      REDIS_SECRET_ARN: `${arn}:password::`,
    });
    // the deploy always passes the CA setting: "system" (Node's CAs) is fine without TLS
    const system = decodeConfig(redisShape, { REDIS_TLS: 'false', REDIS_TLS_CA_FILE: 'system' });
    // Assess
    expect(isDrugsyncError(e, 'CONFIG_INVALID')).toBe(true);
    expect((e as DrugsyncError).context.variables).toEqual(['REDIS_TLS_CA_FILE', 'REDIS_SECRET_ARN']);
    expect((e as DrugsyncError).message).toContain('names a version stage or id');
    expect(ok).toMatchObject({
      REDIS_TLS: true,
      REDIS_USERNAME: 'drugsync',
      REDIS_SECRET_ARN: `${arn}:password::`,
    });
    expect(redisTlsOptions({ REDIS_TLS: true, REDIS_TLS_CA_FILE: system.REDIS_TLS_CA_FILE })).toEqual({
      minVersion: 'TLSv1.2',
      rejectUnauthorized: true,
    });
    expect(isSecretSetting('REDIS_SECRET_ARN')).toBe(false);
    expect([isSecretSetting('REDIS_PASSWORD'), isSecretSetting('DB_PASSWORD')]).toEqual([true, true]);
  });
});

describe('ACL refusals', () => {
  const nopermCommand = Object.assign(
    new Error("NOPERM User drugsync has no permissions to run the 'flushall' command"),
    { name: 'ReplyError' },
  );
  const nopermKey = new Error('NOPERM No permissions to access a key');
  const inScript = new Error(
    "ERR ACL failure in script: User drugsync has no permissions to run the 'config|set' command script: 0602318aae32acfcc8425701de027a440970423c, on @user_script:1.",
  );

  it('a refused command is REDIS_ACL_DENIED naming the user, the command and the rule to apply', () => {
    // Act
    const e = redisAclError(nopermCommand, 'drugsync', 'flushall', []) as DrugsyncError;
    // Assess
    expect(isDrugsyncError(e, 'REDIS_ACL_DENIED')).toBe(true);
    expect(e.message).toBe(
      `Redis ACL: user "drugsync" may not run FLUSHALL (User drugsync has no permissions to run the 'flushall' command)`,
    );
    expect(e.context).toEqual({ redis_user: 'drugsync', command: 'FLUSHALL' });
    expect(e.remedy).toContain('drugsync redis-acl');
    expect(e.remedy).toContain('docs/deploy.md "Redis ACL"');
    expect(e.cause).toBe(nopermCommand);
  });

  it('a refused key names the key (after EVAL’s script and key count), a refusal inside a script too', () => {
    // Act
    const set = redisAclError(nopermKey, 'drugsync', 'set', ['sessions:42', 'x']) as DrugsyncError;
    const evalKey = redisAclError(nopermKey, 'drugsync', 'evalsha', [
      'a1b2',
      '2',
      'other:1',
      'other:2',
    ]) as DrugsyncError;
    const script = redisAclError(inScript, '', 'evalsha', ['a1b2', '0']) as DrugsyncError;
    // Assess
    expect(set.message).toBe(
      'Redis ACL: user "drugsync" may not run SET on sessions:42 (No permissions to access a key)',
    );
    expect(set.context.key).toBe('sessions:42');
    expect(evalKey.context).toEqual({ redis_user: 'drugsync', command: 'EVALSHA', key: 'other:1' });
    expect(script.message).toBe(
      `Redis ACL: user "default" may not run EVALSHA (User drugsync has no permissions to run the 'config|set' command)`,
    );
  });

  it('other errors pass through unchanged', () => {
    // Prepare
    const others = [new Error('WRONGPASS invalid username-password pair'), new Error('ERR unknown command')];
    // Act
    const got = others.map((e) => redisAclError(e, 'drugsync', 'ping'));
    // Assess
    expect(got).toEqual(others);
    expect(got[0]).toBe(others[0]);
  });
});

describe('the ACL rule', () => {
  it('docs/deploy.md shows exactly the rule `drugsync redis-acl` prints for the default prefixes', () => {
    // Prepare
    const docs = fs.readFileSync(path.join(PROJECT_ROOT, 'docs', 'deploy.md'), 'utf8');
    const defaults = decodeConfig(redisShape, {});
    // Act
    const rule = redisAclSetUser('drugsync', defaults);
    // Assess
    expect(docs).toContain('\n' + rule + '\n');
    expect(rule).toMatch(
      /^ACL SETUSER drugsync reset on ><password> ~drug:\* ~drugsync:\* ~drugs_idx resetchannels -@all \+ping /,
    );
  });

  it('allows each command once, by name, and only keys under the configured prefixes (glob characters escaped)', () => {
    // Act
    const commands = Object.values(REDIS_ACL_COMMANDS).flat();
    const patterns = redisAclKeyPatterns({
      REDIS_INDEX: 'drugs_idx',
      REDIS_DOC_PREFIX: 'site[1]:drug:',
      REDIS_STATE_PREFIX: 'site*1:ds:',
    });
    // Assess
    expect(new Set(commands).size).toBe(commands.length);
    for (const c of commands) expect(c).toMatch(/^[a-z.]+(\|[a-z]+)?$/);
    expect(commands).not.toContain('flushall');
    expect(commands).not.toContain('keys');
    expect(patterns).toEqual(['~site\\[1\\]:drug:*', '~site\\*1:ds:*', '~drugs_idx']);
  });
});
