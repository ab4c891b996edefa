/**
 * kinesalite 3.3 (npm, run by this Node), data on disk, with the stack's stream created and ACTIVE. The
 * stack's server is `kinesalite` below; a test that needs a Kinesis it can kill (test/support/private-kinesalite.ts)
 * launches the same command line and readiness on its own port.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  CreateStreamCommand,
  DescribeStreamSummaryCommand,
  ListStreamsCommand,
} from '@aws-sdk/client-kinesis';
import type { KinesisClient } from '@aws-sdk/client-kinesis';
import { DrugsyncError, wrapError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { PROJECT_ROOT } from '../core/paths.ts';
import { createKinesis } from '../core/clients/kinesis.ts';
import type { Readiness } from './process.ts';
import { startFailed, waitUntil } from './process.ts';
import type { LocalServer } from './server.ts';
import type { StackSettings } from './settings.ts';
import { serverFiles } from './settings.ts';

function kinesaliteCli(): string {
  const cli = path.join(PROJECT_ROOT, 'node_modules', 'kinesalite', 'cli.js');
  if (!fs.existsSync(cli)) {
    throw new DrugsyncError('TOOL_INSTALL_FAILED', 'kinesalite is not installed', {
      remedy: 'run `npm ci` first',
    });
  }
  return cli;
}

/** The arguments to `node` that run kinesalite on `port` with its data in `dir`, streams changed at once. */
export function kinesaliteArgs(port: number, dir: string): string[] {
  return [
    kinesaliteCli(),
    '--port',
    String(port),
    '--path',
    dir,
    '--createStreamMs',
    '0',
    '--deleteStreamMs',
    '0',
    '--updateStreamMs',
    '0',
    '--shardLimit',
    '100',
  ];
}

async function withKinesis<T>(port: number, fn: (client: KinesisClient) => Promise<T>): Promise<T> {
  const client = createKinesis({ KINESIS_ENDPOINT: `http://127.0.0.1:${port}`, AWS_REGION: 'us-east-1' });
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** Started once ListStreams answers through the AWS SDK (≈0.4 s; up to 30 s). */
export function kinesaliteReadiness(port: number): Readiness {
  return {
    answer: 'answer',
    timeoutMs: 30_000,
    probe: () => withKinesis(port, async (c) => (await c.send(new ListStreamsCommand({})), true)),
  };
}

/** Creates the stack's stream when missing and waits until it is ACTIVE. */
export async function ensureStream(settings: StackSettings, log: Logger): Promise<void> {
  try {
    await withKinesis(settings.kinesisPort, async (client) => {
      const streams = await client.send(new ListStreamsCommand({}));
      if (!streams.StreamNames?.includes(settings.stream)) {
        log.info('creating Kinesis stream', { stream: settings.stream, shards: settings.kinesisShards });
        await client.send(
          new CreateStreamCommand({ StreamName: settings.stream, ShardCount: settings.kinesisShards }),
        );
      }
      const ok = await waitUntil(async () => {
        const d = await client.send(new DescribeStreamSummaryCommand({ StreamName: settings.stream }));
        return d.StreamDescriptionSummary?.StreamStatus === 'ACTIVE';
      }, 30_000);
      if (!ok) {
        const ref = {
          name: 'kinesis',
          port: settings.kinesisPort,
          logFile: serverFiles(settings, 'kinesis').logFile,
        };
        throw startFailed(ref, `stream ${settings.stream} not ACTIVE within 30 s`);
      }
    });
  } catch (e) {
    throw wrapError(e, 'STACK_START_FAILED', `cannot create Kinesis stream ${settings.stream}`, {
      context: {
        service: 'kinesis',
        port: settings.kinesisPort,
        log: serverFiles(settings, 'kinesis').logFile,
      },
    });
  }
}

function kinesaliteVersion(): string {
  const pkg = path.join(PROJECT_ROOT, 'node_modules', 'kinesalite', 'package.json');
  return (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { version: string }).version;
}

/** The local stack's kinesalite: port DRUGSYNC_KINESIS_PORT (14567), stream DRUGSYNC_KINESIS_STREAM. */
export const kinesalite = {
  name: 'kinesis',
  portVariable: 'DRUGSYNC_KINESIS_PORT',
  port: (s) => s.kinesisPort,
  identity: (_s, f) => ({ marker: f.dir }),

  prepare: async (ctx, f) => ({
    command: process.execPath,
    args: kinesaliteArgs(ctx.settings.kinesisPort, f.dir),
    pidFileBy: 'launcher',
    ready: kinesaliteReadiness(ctx.settings.kinesisPort),
  }),

  configure: (ctx) => ensureStream(ctx.settings, ctx.log),

  async health(ctx) {
    const s = ctx.settings;
    const d = await withKinesis(s.kinesisPort, (c) =>
      c.send(new DescribeStreamSummaryCommand({ StreamName: s.stream })),
    );
    const summary = d.StreamDescriptionSummary;
    return {
      healthy: summary?.StreamStatus === 'ACTIVE',
      version: `kinesalite ${kinesaliteVersion()}`,
      detail: `stream ${s.stream}: ${summary?.StreamStatus} with ${summary?.OpenShardCount} shard(s)`,
    };
  },

  env: (s) => ({
    KINESIS_ENDPOINT: `http://127.0.0.1:${s.kinesisPort}`,
    KINESIS_STREAM: s.stream,
    AWS_REGION: 'us-east-1',
  }),
} as const satisfies LocalServer;
