/**
 * The local stack is real: MariaDB with the binlog settings drugsync needs, Redis with RedisJSON and
 * RediSearch, kinesalite reached through the AWS SDK. And `stack up` fails loudly on a taken port.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetRecordsCommand, GetShardIteratorCommand, PutRecordsCommand } from '@aws-sdk/client-kinesis';
import mysql from 'mysql2/promise';
import { createKinesis } from '../services/core/clients/kinesis.ts';
import { listAllShards } from '../services/core/kinesis-shards.ts';
import { PROJECT_ROOT } from '../services/core/paths.ts';
import { freePorts } from '../services/stack/process.ts';
import { adminConnection, resetSuiteStream, stackEnv, suiteEnv, suiteRedis } from './support/stack.ts';

const CLI = path.join(PROJECT_ROOT, 'bin', 'drugsync.mjs');

function drugsync(args: string[], env: Record<string, string | undefined> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    env: { ...process.env, LOG_FORMAT: 'json', ...env },
    timeout: 120_000,
  });
}

describe('local stack', () => {
  it('runs MariaDB with the binlog settings CDC needs, read back from the server', async () => {
    // Prepare
    const env = stackEnv();
    const conn = await adminConnection(env);
    // Act
    const [rows] = await conn.query(
      `SELECT @@log_bin AS log_bin, @@binlog_format AS format, @@binlog_row_image AS image,
              @@binlog_row_metadata AS metadata, @@server_id AS server_id, @@character_set_server AS charset,
              @@GLOBAL.sql_mode AS sql_mode`,
    );
    await conn.end();
    // Assess
    expect((rows as Record<string, unknown>[])[0]).toMatchObject({
      log_bin: 1,
      format: 'ROW',
      image: 'FULL',
      metadata: 'FULL',
      charset: 'utf8mb4',
      sql_mode: '',
    });
  });

  it('gives the replication user replication grants and SELECT, LOCK TABLES on fdb only', async () => {
    const env = stackEnv();
    const repl = await mysql.createConnection({
      host: env.DB_HOST,
      port: Number(env.DB_PORT),
      user: env.DB_USER,
      password: env.DB_PASSWORD,
    });
    const [grants] = await repl.query('SHOW GRANTS');
    const text = (grants as Record<string, string>[]).map((g) => Object.values(g)[0]).join('\n');
    const [status] = await repl.query('SHOW MASTER STATUS');
    let denied: unknown;
    try {
      await repl.query('CREATE DATABASE should_not_exist');
    } catch (e) {
      denied = e;
    }
    await repl.end();
    expect(text).toMatch(/REPLICATION SLAVE/);
    expect(text).toMatch(/BINLOG MONITOR|REPLICATION CLIENT/);
    expect(text).toMatch(/GRANT SELECT, LOCK TABLES ON `fdb`\.\*/);
    expect(text).not.toMatch(/ALL PRIVILEGES/);
    expect((status as Record<string, unknown>[])[0]?.File).toMatch(/^binlog\.\d+$/);
    expect((denied as { code?: string })?.code).toBe('ER_DBACCESS_DENIED_ERROR');
  });

  it('runs Redis with RedisJSON and RediSearch, a password and AOF', async () => {
    const env = stackEnv();
    const redis = suiteRedis(env);
    const modules = (await redis.call('MODULE', 'LIST')) as unknown[][];
    const names = modules.map((m) => String(m[1]));
    const aof = await redis.config('GET', 'appendonly');
    const pass = await redis.config('GET', 'requirepass');
    await redis.quit();
    expect(names).toEqual(expect.arrayContaining(['ReJSON', 'search']));
    expect(aof).toEqual(['appendonly', 'yes']);
    expect(pass[1]).toBe(env.REDIS_PASSWORD);
    expect(env.REDIS_PASSWORD?.length).toBeGreaterThan(15);
  });

  it('round-trips records through kinesalite with the AWS SDK (PutRecords, GetRecords)', async () => {
    // Prepare
    const env = suiteEnv('stack_kinesis');
    await resetSuiteStream(env, 2);
    const kinesis = createKinesis({ KINESIS_ENDPOINT: env.KINESIS_ENDPOINT, AWS_REGION: 'us-east-1' });
    const StreamName = env.KINESIS_STREAM as string;
    const ndcs = ['00002063202', '00006001954', '00093505601', '68180051301', '00378018001'];
    // Act
    const put = await kinesis.send(
      new PutRecordsCommand({
        StreamName,
        Records: ndcs.map((ndc) => ({ PartitionKey: ndc, Data: Buffer.from(JSON.stringify({ ndc })) })),
      }),
    );
    const shards = await listAllShards(kinesis, StreamName);
    const got: string[] = [];
    for (const shard of shards) {
      const it = await kinesis.send(
        new GetShardIteratorCommand({
          StreamName,
          ShardId: shard.ShardId,
          ShardIteratorType: 'TRIM_HORIZON',
        }),
      );
      const recs = await kinesis.send(new GetRecordsCommand({ ShardIterator: it.ShardIterator }));
      for (const r of recs.Records ?? [])
        got.push((JSON.parse(Buffer.from(r.Data!).toString()) as { ndc: string }).ndc);
    }
    kinesis.destroy();
    // Assess
    expect(put.FailedRecordCount).toBe(0);
    expect(shards).toHaveLength(2);
    expect(got.sort()).toEqual([...ndcs].sort());
  });

  it('is idempotent: a second `stack up` reports every service already running', () => {
    const r = drugsync(['stack', 'up']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/mariadb\s+already running on port \d+/);
    expect(r.stdout).toMatch(/redis\s+already running on port \d+/);
    expect(r.stdout).toMatch(/kinesis\s+already running on port \d+/);
  });

  it('reports three healthy services in `stack status --json`', () => {
    const r = drugsync(['stack', 'status', '--json']);
    expect(r.status).toBe(0);
    const all = JSON.parse(r.stdout) as { service: string; healthy: boolean; version: string }[];
    expect(all.map((s) => [s.service, s.healthy])).toEqual([
      ['mariadb', true],
      ['redis', true],
      ['kinesis', true],
    ]);
    expect(all.map((s) => s.version).join(' ')).toMatch(/MariaDB 10\.11.*Redis 7\.4.*kinesalite/);
  });
});

describe('stack up on a taken port', () => {
  let blocker: net.Server;
  let port = 0;
  let stateDir = '';

  beforeAll(async () => {
    blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()));
    port = (blocker.address() as net.AddressInfo).port;
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-stack-'));
  });
  afterAll(async () => {
    await new Promise((r) => blocker.close(r));
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('fails naming the service, the port and the log file, and starts nothing', () => {
    // Prepare: a separate state dir, MariaDB asked for the port our blocker holds.
    const env = { DRUGSYNC_STATE_DIR: stateDir, DRUGSYNC_MYSQL_PORT: String(port) };
    // Act
    const r = drugsync(['stack', 'up'], env);
    // Assess
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`mariadb cannot start: port ${port} is already taken`);
    expect(r.stderr).toContain('STACK_PORT_IN_USE');
    expect(r.stderr).toContain(path.join(stateDir, 'logs', 'mariadb.log'));
    expect(fs.existsSync(path.join(stateDir, 'run', 'mariadb.pid'))).toBe(false);
  });
});

describe('a second, private stack (own state dir and ports)', () => {
  let stateDir = '';
  let ports: Record<string, string> = {};

  beforeAll(async () => {
    // Ports the kernel hands out: other stacks (CI, other worktrees) run beside this one.
    const [mysqlPort, redisPort, kinesisPort] = await freePorts(3);
    ports = {
      DRUGSYNC_MYSQL_PORT: String(mysqlPort),
      DRUGSYNC_REDIS_PORT: String(redisPort),
      DRUGSYNC_KINESIS_PORT: String(kinesisPort),
    };
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-private-'));
    // Share the downloaded Redis Stack instead of fetching it again.
    fs.symlinkSync(path.join(PROJECT_ROOT, '.drugsync', 'tools'), path.join(stateDir, 'tools'));
  });
  afterAll(() => {
    drugsync(['stack', 'down'], { DRUGSYNC_STATE_DIR: stateDir, ...ports });
    fs.rmSync(stateDir, { recursive: true, force: true });
  });

  it('keeps Redis data across a restart (AOF) and `down` stops exactly its own processes', async () => {
    // Prepare
    const env = { DRUGSYNC_STATE_DIR: stateDir, ...ports };
    const up = drugsync(['stack', 'up'], env);
    expect(up.status, up.stderr).toBe(0);
    const pids = ['mariadb', 'redis', 'kinesis'].map((s) =>
      Number(fs.readFileSync(path.join(stateDir, 'run', `${s}.pid`), 'utf8')),
    );
    const privateEnv = Object.fromEntries(
      fs
        .readFileSync(path.join(stateDir, 'stack.env'), 'utf8')
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const r1 = suiteRedis(privateEnv);
    await r1.call('JSON.SET', 'drug:00002063202', '$', JSON.stringify({ ndc: '00002063202' }));
    await r1.quit();

    // Act
    const down = drugsync(['stack', 'down'], env);
    // A killed daemon whose parent (init in a container) has not reaped it yet is a zombie: it runs nothing.
    const alive = pids.filter((pid) => {
      const stat = `/proc/${pid}/stat`;
      return fs.existsSync(stat) && !/^\d+ \(.*\) Z/.test(fs.readFileSync(stat, 'utf8'));
    });
    const sharedStatus = drugsync(['stack', 'status', '--json']);
    const up2 = drugsync(['stack', 'up'], env);
    const r2 = suiteRedis(privateEnv);
    const kept = await r2.call('JSON.GET', 'drug:00002063202', '$.ndc');
    await r2.quit();

    // Assess
    expect(down.status).toBe(0);
    expect(down.stdout).toMatch(/mariadb\s+stopped/);
    expect(alive).toEqual([]);
    expect((JSON.parse(sharedStatus.stdout) as { healthy: boolean }[]).every((s) => s.healthy)).toBe(true);
    expect(up2.status, up2.stderr).toBe(0);
    expect(kept).toBe('["00002063202"]');
  });
});
