import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeConfig, embeddingShape, mysqlShape, redisShape } from '../services/core/config.ts';
import { isDrugsyncError } from '../services/core/errors.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

describe('configuration', () => {
  it('decodes the seed system names with defaults', () => {
    const cfg = decodeConfig(
      { ...mysqlShape, ...redisShape },
      {
        DB_HOST: 'aurora.cluster-x.us-east-1.rds.amazonaws.com',
        DB_USER: 'repl',
        DB_PASSWORD: 'p4ss-w0rd',
        REDIS_PORT: '6380',
      },
    );
    expect(cfg).toMatchObject({ DB_PORT: 3306, DB_NAME: 'fdb', REDIS_PORT: 6380, REDIS_INDEX: 'drugs_idx' });
  });

  it('reports every problem at once, naming each variable', () => {
    let err: unknown;
    try {
      decodeConfig(
        { ...mysqlShape, ...redisShape, ...embeddingShape },
        {
          DB_PORT: 'abc',
          REDIS_PORT: '70000',
          EMBEDDING_PROVIDER: 'titan',
          EMBEDDING_DIMENSIONS: '300',
          DB_NAME: 'fdb;drop',
        },
      );
    } catch (e) {
      err = e;
    }
    expect(isDrugsyncError(err, 'CONFIG_INVALID')).toBe(true);
    const msg = (err as Error).message;
    expect(msg).toContain('DB_PORT: must be a whole number, got "abc"');
    expect(msg).toContain('REDIS_PORT: must be between 1 and 65535, got 70000');
    expect(msg).toContain('DB_NAME: must be a plain SQL identifier');
  });

  it('checks cross-field rules: credentials, Titan dimensions', () => {
    let err: unknown;
    try {
      decodeConfig(
        { ...mysqlShape, ...embeddingShape },
        { EMBEDDING_PROVIDER: 'titan', EMBEDDING_DIMENSIONS: '300' },
      );
    } catch (e) {
      err = e;
    }
    const msg = (err as Error).message;
    expect(msg).toContain('DB_USER/DB_PASSWORD: both are required unless DB_SECRET_ARN');
    expect(msg).toContain(
      'EMBEDDING_DIMENSIONS: Titan Text Embeddings v2 supports 256, 512 or 1024, got 300',
    );
  });

  it('makes the CLI exit 2 with one message naming every bad setting, secrets masked when valid', () => {
    // Act
    const bad = spawnSync(process.execPath, [CLI, 'config'], {
      encoding: 'utf8',
      env: { ...process.env, DRUGSYNC_NO_ENV_FILE: '1', DB_PORT: 'x', REDIS_TLS: 'maybe', BATCH_SIZE: '0' },
    });
    const good = spawnSync(process.execPath, [CLI, 'config'], {
      encoding: 'utf8',
      env: { ...process.env, DRUGSYNC_NO_ENV_FILE: '1', DB_USER: 'repl', DB_PASSWORD: 'hunter2-secret' },
    });
    // Assess
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('configuration has 4 problem(s)');
    for (const v of ['DB_PORT', 'REDIS_TLS', 'BATCH_SIZE', 'DB_USER/DB_PASSWORD'])
      expect(bad.stderr).toContain(v);
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('DB_PASSWORD=***');
    expect(good.stdout + good.stderr).not.toContain('hunter2-secret');
  });
});
