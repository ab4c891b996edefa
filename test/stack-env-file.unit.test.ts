/**
 * The stack's env file: what `stack up` / `stack env` write is what every command reads back
 * (services/core/config.ts readEnvFile), in the same order, mode 600; the passwords are generated once.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readEnvFile } from '../services/core/config.ts';
import { renderEnvFile } from '../services/stack/env-file.ts';
import { stackEnvironment, stackSettings, writeEnvFile } from '../services/stack/stack.ts';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function privateSettings() {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-envfile-'));
  dirs.push(stateDir);
  return { ...stackSettings(), stateDir, mysqlPort: 23306, redisPort: 26379, kinesisPort: 24567 };
}

describe('stack env file', () => {
  it('reads back as written, key for key and in order, and is readable by its owner only', () => {
    // Prepare
    const s = privateSettings();
    const file = path.join(s.stateDir, 'stack.env');
    // Act
    writeEnvFile(s, file);
    const back = readEnvFile(file);
    // Assess
    const env = stackEnvironment(s);
    expect(Object.entries(back)).toEqual(Object.entries(env));
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(file, 'utf8').split('\n')[0]).toMatch(/^# Written by `drugsync stack up`/);
  });

  it('names the local servers and keeps the passwords generated on first use', () => {
    // Prepare
    const s = privateSettings();
    // Act
    const first = stackEnvironment(s);
    const second = stackEnvironment(s);
    // Assess
    expect(first).toMatchObject({
      DB_HOST: '127.0.0.1',
      DB_PORT: '23306',
      DB_USER: 'drugsync_repl',
      DB_ADMIN_USER: 'drugsync_admin',
      DB_TLS: 'false',
      REDIS_PORT: '26379',
      KINESIS_ENDPOINT: 'http://127.0.0.1:24567',
    });
    for (const k of ['DB_PASSWORD', 'DB_ADMIN_PASSWORD', 'REDIS_PASSWORD'])
      expect(first[k]).toMatch(/^[\w-]{24}$/);
    expect(second).toEqual(first);
    expect(fs.statSync(path.join(s.stateDir, 'secrets.json')).mode & 0o777).toBe(0o600);
  });

  it('renders one KEY=value line per setting under its comment', () => {
    const text = renderEnvFile({ DB_HOST: '127.0.0.1', KINESIS_ENDPOINT: 'http://127.0.0.1:24567' });
    expect(text.split('\n').slice(1)).toEqual([
      'DB_HOST=127.0.0.1',
      'KINESIS_ENDPOINT=http://127.0.0.1:24567',
      '',
    ]);
  });
});
