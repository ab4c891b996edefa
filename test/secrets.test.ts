/**
 * Secrets never leak: not in a log line (JSON or text), not in an error's message, describe() or toJSON(),
 * not in any byte a CLI command writes, whatever characters the secret holds (quotes, backslashes,
 * unicode) and whatever format it arrives in. The MySQL secret is served by a fake Secrets Manager on
 * 127.0.0.1 through the real AWS SDK client (SECRETS_MANAGER_ENDPOINT); MySQL and Redis are the real stack.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Connection } from 'mysql2/promise';
import { DrugsyncError, isDrugsyncError } from '../services/core/errors.ts';
import {
  describeErrorMasked,
  formatRecord,
  maskValue,
  redact,
  registerSecret,
} from '../services/core/log.ts';
import {
  parseDbSecret,
  readSecretString,
  resolveDbCredentials,
  secretsManagerSource,
} from '../services/core/clients/secrets.ts';
import type { SecretSource } from '../services/core/clients/secrets.ts';
import { startFakeSecretsManager } from './support/fake-secrets-manager.ts';
import { expectNoLeak, jsonLines } from './support/leaks.ts';
import type { FakeSecretsManager } from './support/fake-secrets-manager.ts';
import { createSuiteDatabase, suiteEnv } from './support/stack.ts';
import type { Env } from '../services/core/config.ts';
import { quoteIdent } from '../services/core/sql.ts';

const CLI = path.resolve(import.meta.dirname, '../bin/drugsync.mjs');
const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:rds!cluster-drugsync-AbCdEf';
const run = Math.random().toString(36).slice(2, 8);

/** Secrets of every awkward kind, each unique to this run so a match can only be a leak. */
const SECRETS = {
  quote: `Qu"ote${run}"pw`,
  backslash: `Back\\sl${run}\\ash`,
  both: `Bo"th\\${run}\\"x"`,
  unicode: `Ünï✓${run}密码🔑`,
};

// ---------------------------------------------------------------------------------------------------------
// The CLI as a child process (asynchronous: the fake server answers from this process).

interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(args: string[], env: Env): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: env as NodeJS.ProcessEnv });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 100_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe('secrets', () => {
  // -------------------------------------------------------------------------------------------------------
  describe('masking records (unit)', () => {
    it('masks secrets with quotes, backslashes and unicode in JSON lines: values, nested objects, arrays, errors, causes, contexts', () => {
      // Prepare
      for (const s of Object.values(SECRETS)) expect(registerSecret(s)).toBe(true);
      const all = Object.values(SECRETS);
      const cause = new Error(`socket said ${SECRETS.backslash}`);
      const error = new DrugsyncError('REDIS_UNAVAILABLE', `auth with ${SECRETS.quote} failed`, {
        context: { host: 'redis.internal', attempt: SECRETS.unicode },
        remedy: `not ${SECRETS.both}`,
        cause,
      });
      const fields = {
        service: 'embedder',
        note: `the password is ${SECRETS.both}`,
        nested: { deeper: [{ text: SECRETS.unicode }, [`x${SECRETS.quote}y`]] },
        error,
        plain: new TypeError(`bad ${SECRETS.quote}`, { cause: new Error(SECRETS.both) }),
        secret_arn: ARN,
      };
      // Act
      const line = formatRecord('error', `failed for ${SECRETS.quote}`, fields, true);
      // Assess
      expectNoLeak(line, all);
      const rec = JSON.parse(line) as Record<string, unknown>;
      expect(rec.msg).toBe('failed for ***');
      expect(rec.note).toBe('the password is ***');
      expect(rec.nested).toEqual({ deeper: [{ text: '***' }, ['x***y']] });
      expect(rec.error).toMatchObject({
        code: 'REDIS_UNAVAILABLE',
        message: 'auth with *** failed',
        context: { host: 'redis.internal', attempt: '***' },
        remedy: 'not ***',
        cause: 'socket said ***',
      });
      expect(rec.plain).toEqual({
        name: 'TypeError',
        message: 'bad ***',
        cause: { name: 'Error', message: '***' },
      });
      expect(rec.secret_arn).toBe(ARN);
    });

    it('masks text lines the same way, and fields named like secrets whatever their value', () => {
      // Prepare
      const all = Object.values(SECRETS);
      all.forEach((s) => registerSecret(s));
      // Act
      const line = formatRecord(
        'warn',
        'retrying',
        {
          detail: { why: SECRETS.both },
          list: [SECRETS.unicode],
          password: 'abc',
          apiKey: 'k',
          DB_SECRET_ARN: ARN,
        },
        false,
      );
      // Assess
      expectNoLeak(line, all);
      expect(line).toBe(
        `WARN  retrying  detail={"why":"***"} list=["***"] password=*** apiKey=*** DB_SECRET_ARN=${ARN}`,
      );
    });

    it('masks a secret that holds another one whole, survives cycles and very deep values', () => {
      // Prepare
      const inner = `inn${run}er`;
      const outer = `out-${inner}-er`;
      registerSecret(inner);
      registerSecret(outer);
      const cyclic: Record<string, unknown> = { name: outer };
      cyclic.self = cyclic;
      let deep: Record<string, unknown> = { leaf: inner };
      for (let i = 0; i < 20; i++) deep = { down: deep };
      // Act
      const masked = JSON.stringify(maskValue({ cyclic, deep }));
      // Assess
      expectNoLeak(masked, [inner, outer, `out-***-er`]);
      expect(masked).toContain('"self":"[circular]"');
      expect(masked).toContain('***');
    });

    it('does not register an empty, blank or shorter-than-4 value (it would mask everything)', () => {
      // Prepare
      const line = 'INFO  loaded  rows=1200 drug=ASPIRIN 81 MG';
      // Act
      const accepted = ['', '   ', 'a', 'ab1'].map((v) => registerSecret(v));
      // Assess
      expect(accepted).toEqual([false, false, false, false]);
      expect(redact(line)).toBe(line);
      expect(formatRecord('info', 'loaded', { rows: 1200, drug: 'ASPIRIN 81 MG' }, false)).toBe(line);
    });

    it('masks the CLI error paths: describe() and toJSON() of an error quoting a secret', () => {
      // Prepare
      registerSecret(SECRETS.both);
      const e = new DrugsyncError('MYSQL_QUERY_FAILED', `login with ${SECRETS.both} refused`, {
        context: { host: 'db' },
        cause: new Error(`server echoed ${SECRETS.both}`),
      });
      // Act
      const text = describeErrorMasked(e);
      const json = JSON.stringify(maskValue(e)); // as a JSON log line carries it
      // Assess
      expectNoLeak(text + json, [SECRETS.both]);
      expect(text).toBe('[MYSQL_QUERY_FAILED] login with *** refused {host=db} (cause: server echoed ***)');
      expect(JSON.parse(json)).toMatchObject({
        message: 'login with *** refused',
        cause: 'server echoed ***',
      });
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe('the MySQL secret (unit)', () => {
    const malformed = [
      { name: 'plain text', text: `pl"ain\\${run}✓`, problem: 'is not JSON' },
      { name: 'truncated JSON', text: `{"username":"u","password":"tr\\"unc${run}`, problem: 'is not JSON' },
      {
        name: 'a JSON string',
        text: JSON.stringify(`js"on${run}`),
        problem: 'is JSON but a string, not an object',
      },
      {
        name: 'no password',
        text: `{"username":"drugsync","pwd":"no${run}pass"}`,
        problem: 'has no "password"',
      },
      {
        name: 'a numeric password',
        text: `{"username":"drugsync","password":7${run.replace(/\D/g, '')}913}`,
        problem: 'has a "password" that is a number',
      },
    ];

    for (const m of malformed) {
      it(`a secret holding ${m.name} is SECRET_INVALID naming the ARN and the format, and nothing of the text`, () => {
        // Act
        let caught: unknown;
        try {
          parseDbSecret(ARN, m.text);
        } catch (e) {
          caught = e;
        }
        // Assess
        expect(isDrugsyncError(caught, 'SECRET_INVALID')).toBe(true);
        const e = caught as DrugsyncError;
        expect(e.message).toContain(ARN);
        expect(e.message).toContain(m.problem);
        expect(e.message).toContain('"username"');
        expect(e.cause).toBeUndefined();
        const shown = [e.message, e.describe(), JSON.stringify(e.toJSON()), String(e.stack)].join('\n');
        const parts = m.text.match(/[^{}":,\s]{4,}/g) ?? [];
        expectNoLeak(shown, [
          m.text,
          ...parts.filter((p) => p !== 'username' && p !== 'drugsync' && p !== 'password'),
        ]);
        expect(redact(m.text)).toBe('***');
      });
    }

    it('reads the secret through the AWS SDK from the endpoint SECRETS_MANAGER_ENDPOINT names', async () => {
      // Prepare
      const fake = await startFakeSecretsManager();
      fake.secrets.set(
        ARN,
        JSON.stringify({ username: 'drugsync', password: SECRETS.unicode, engine: 'mysql' }),
      );
      process.env.SECRETS_MANAGER_ENDPOINT = fake.endpoint;
      try {
        // Act
        const cred = await resolveDbCredentials({ DB_SECRET_ARN: ARN }, { region: 'us-east-1' });
        const missing = await resolveDbCredentials(
          { DB_SECRET_ARN: `${ARN}-gone` },
          { region: 'us-east-1' },
        ).catch((e: unknown) => e);
        // Assess
        expect(cred).toEqual({ user: 'drugsync', password: SECRETS.unicode });
        expect(redact(`pw=${SECRETS.unicode}`)).toBe('pw=***');
        expect(fake.requests).toContain(`secretsmanager.GetSecretValue ${ARN}`);
        expect(isDrugsyncError(missing, 'CONFIG_INVALID')).toBe(true);
        expect((missing as DrugsyncError).message).toContain('ResourceNotFoundException');
        expect((missing as DrugsyncError).context.secret_arn).toBe(`${ARN}-gone`);
      } finally {
        delete process.env.SECRETS_MANAGER_ENDPOINT;
        await fake.close();
      }
    });

    it('takes DB_USER when the secret has no username, and refuses a secret without one when DB_USER is unset', async () => {
      // Prepare
      const text = JSON.stringify({ password: SECRETS.quote });
      const source: SecretSource = { getSecretString: () => Promise.resolve(text) };
      // Act
      const withUser = await resolveDbCredentials(
        { DB_SECRET_ARN: ARN, DB_USER: 'drugsync_repl' },
        { source },
      );
      const without = await resolveDbCredentials({ DB_SECRET_ARN: ARN }, { source }).catch((e: unknown) => e);
      const empty = await readSecretString(
        { getSecretString: () => Promise.resolve('') },
        ARN,
        'the MySQL secret',
      ).catch((e: unknown) => e);
      // Assess
      expect(withUser).toEqual({ user: 'drugsync_repl', password: SECRETS.quote });
      expect(isDrugsyncError(without, 'SECRET_INVALID')).toBe(true);
      expect((without as DrugsyncError).message).toContain('has no "username" and DB_USER is not set');
      expect(isDrugsyncError(empty, 'SECRET_INVALID')).toBe(true);
      expectNoLeak(describeErrorMasked(without) + (without as DrugsyncError).describe(), [SECRETS.quote]);
    });

    it('the source registers a secret the moment it arrives, before anyone parses it', async () => {
      // Prepare
      const fake = await startFakeSecretsManager();
      const text = `raw\\"${run}"text`;
      fake.secrets.set(ARN, text);
      try {
        // Act
        const got = await secretsManagerSource({
          region: 'us-east-1',
          endpoint: fake.endpoint,
        }).getSecretString(ARN);
        // Assess
        expect(got).toBe(text);
        expect(redact(`[${text}]`)).toBe('[***]');
      } finally {
        await fake.close();
      }
    });
  });

  // -------------------------------------------------------------------------------------------------------
  describe('the CLI (child processes on the real stack)', () => {
    const base = suiteEnv('secrets');
    const user = `secrets_${run}`;
    let fake: FakeSecretsManager;
    let admin: Connection;

    beforeAll(async () => {
      fake = await startFakeSecretsManager();
      admin = await createSuiteDatabase(base);
      // A MySQL user whose real password holds quotes, backslashes and unicode.
      await admin.query(`CREATE USER ?@'%' IDENTIFIED BY ?`, [user, SECRETS.both + SECRETS.unicode]);
      await admin.query(`GRANT SELECT ON ${quoteIdent(base.DB_NAME as string)}.* TO ?@'%'`, [user]);
    });

    afterAll(async () => {
      await admin?.query(`DROP USER IF EXISTS ?@'%'`, [user]);
      await admin?.query(`DROP DATABASE IF EXISTS ${quoteIdent(base.DB_NAME as string)}`);
      await admin?.end();
      await fake?.close();
    });

    /** The environment of a child: the suite's settings, the DB credentials from the fake secret. */
    function childEnv(format: 'json' | 'text', over: Env = {}): Env {
      const env: Env = { ...process.env, ...base, LOG_FORMAT: format, LOG_LEVEL: 'debug' };
      delete env.DB_USER;
      delete env.DB_PASSWORD;
      return { ...env, SECRETS_MANAGER_ENDPOINT: fake.endpoint, DB_SECRET_ARN: ARN, ...over };
    }

    for (const format of ['json', 'text'] as const) {
      it(`config (${format}): prints every setting with secret values hidden and ARNs shown`, async () => {
        // Prepare
        const env = childEnv(format, { REDIS_PASSWORD: SECRETS.both, DB_PASSWORD: SECRETS.backslash });
        // Act
        const r = await runCli(['config'], env);
        // Assess
        expect(r.code).toBe(0);
        expectNoLeak(r.stdout + r.stderr, [SECRETS.both, SECRETS.backslash]);
        expect(r.stdout).toContain('REDIS_PASSWORD=***\n');
        expect(r.stdout).toContain('DB_PASSWORD=***\n');
        expect(r.stdout).toContain(`DB_SECRET_ARN=${ARN}\n`);
      });

      it(`verify (${format}): a secret that is not JSON fails with SECRET_INVALID naming the ARN, never the text`, async () => {
        // Prepare
        const text = `${SECRETS.quote} ${SECRETS.backslash} ${SECRETS.unicode}`;
        fake.secrets.set(ARN, text);
        // Act
        const r = await runCli(['verify', '--json'], childEnv(format));
        // Assess
        expect(r.code).toBe(1);
        expectNoLeak(r.stdout + r.stderr, [text, ...Object.values(SECRETS)]);
        expect(r.stderr).toContain('SECRET_INVALID');
        expect(r.stderr).toContain(ARN);
        expect(r.stderr).toContain('is not JSON');
        if (format === 'json') {
          const failed = jsonLines(r.stderr).find((l) => l.level === 'error');
          expect(failed?.error).toMatchObject({ code: 'SECRET_INVALID', context: { secret_arn: ARN } });
        } else {
          expect(r.stderr).toMatch(/^ERROR /m);
        }
      });

      it(`verify (${format}): a secret whose password MySQL refuses fails without showing the password`, async () => {
        // Prepare
        fake.secrets.set(
          ARN,
          JSON.stringify({ username: user, password: SECRETS.quote + SECRETS.backslash }),
        );
        // Act
        const r = await runCli(['verify', '--json'], childEnv(format));
        // Assess
        expect(r.code).toBe(1);
        expectNoLeak(r.stdout + r.stderr, [
          SECRETS.quote + SECRETS.backslash,
          SECRETS.quote,
          SECRETS.backslash,
        ]);
        expect(r.stderr).toMatch(/Access denied for user/);
      });

      it(`verify (${format}): a correct password with quotes, backslashes and unicode works and is never logged`, async () => {
        // Prepare
        fake.secrets.set(ARN, JSON.stringify({ username: user, password: SECRETS.both + SECRETS.unicode }));
        // Act
        const r = await runCli(['verify', '--json'], childEnv(format));
        // Assess
        expectNoLeak(r.stdout + r.stderr, [SECRETS.both + SECRETS.unicode, SECRETS.both, SECRETS.unicode]);
        const report = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '{}') as Record<string, unknown>;
        expect(report).toMatchObject({ source_rows: 0, redis_docs: 0, ok: true });
        expect(r.code).toBe(0);
      });
    }
  });
});
