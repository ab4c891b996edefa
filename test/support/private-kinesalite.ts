/**
 * A kinesalite of a test's own (one it may kill and restart), on a port of its choosing with its data under
 * `dir`: the stack's command line and readiness (services/stack/kinesis.ts) launched and stopped with the
 * stack's blocks (services/stack/process.ts). Its log is `dir/kinesalite.log`.
 */
import path from 'node:path';
import { kinesaliteArgs, kinesaliteReadiness } from '../../services/stack/kinesis.ts';
import type { ServerProcess } from '../../services/stack/process.ts';
import { launchServer } from '../../services/stack/process.ts';

export function startPrivateKinesalite(port: number, dir: string): Promise<ServerProcess> {
  return launchServer({
    name: 'private-kinesalite',
    port,
    command: process.execPath,
    args: kinesaliteArgs(port, path.join(dir, 'data')),
    logFile: path.join(dir, 'kinesalite.log'),
    pidFile: path.join(dir, 'kinesalite.pid'),
    pidFileBy: 'launcher',
    identity: { marker: dir },
    ready: kinesaliteReadiness(port),
    detached: false,
  });
}
