/**
 * The local stack's settings (ports, shards, stream, state directory) and where it keeps each server's files:
 * data in `<state>/<server>`, the pid file in `<state>/run/<server>.pid`, the log in `<state>/logs/<server>.log`,
 * downloaded tools in `<state>/tools`.
 */
import path from 'node:path';
import { DrugsyncError } from '../core/errors.ts';
import { STATE_DIR } from '../core/paths.ts';

export interface StackSettings {
  stateDir: string;
  mysqlPort: number;
  redisPort: number;
  kinesisPort: number;
  kinesisShards: number;
  stream: string;
  database: string;
}

function envInt(name: string, def: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    throw new DrugsyncError(
      'CONFIG_INVALID',
      `${name} must be a port or count between 1 and 65535, got "${v}"`,
      {
        context: { variable: name },
      },
    );
  }
  return n;
}

export function stackSettings(): StackSettings {
  return {
    stateDir: STATE_DIR,
    mysqlPort: envInt('DRUGSYNC_MYSQL_PORT', 13306),
    redisPort: envInt('DRUGSYNC_REDIS_PORT', 16379),
    kinesisPort: envInt('DRUGSYNC_KINESIS_PORT', 14567),
    kinesisShards: envInt('DRUGSYNC_KINESIS_SHARDS', 2),
    stream: process.env.DRUGSYNC_KINESIS_STREAM || 'drugsync-changes',
    database: 'fdb',
  };
}

/** One server's files under the state directory. */
export interface ServerFiles {
  /** its data directory; its process' command line names it (how `down` knows the process is ours) */
  dir: string;
  pidFile: string;
  logFile: string;
}

export function serverFiles(settings: StackSettings, name: string): ServerFiles {
  return {
    dir: path.join(settings.stateDir, name),
    pidFile: path.join(settings.stateDir, 'run', `${name}.pid`),
    logFile: path.join(settings.stateDir, 'logs', `${name}.log`),
  };
}

/** Where installed tools live (Redis Stack's unpacked wheel, downloads). */
export function toolsDir(s: StackSettings): string {
  return path.join(s.stateDir, 'tools');
}
