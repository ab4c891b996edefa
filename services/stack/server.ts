/**
 * What a local server is to the stack: one module per server (mariadb.ts, redis.ts, kinesis.ts) exports a
 * `LocalServer`, and the orchestrator (stack.ts) runs `up` / `down` / `status` / `env` over the list of them
 * with no per-server branch. One more server is one more module and one more entry in that list.
 *
 * The orchestrator owns the lifecycle: a running server (its pid file, checked against /proc/<pid>/cmdline)
 * is only `configure`d again; a stopped one has its port checked, is `prepare`d (installed when missing),
 * launched and waited for (`ready`), then `configure`d; `down` stops it by its pid file. Files live where
 * settings.ts `serverFiles` puts them: data in `<state>/<name>`, `run/<name>.pid`, `logs/<name>.log`.
 */
import type { Logger } from '../core/log.ts';
import type { LaunchSpec, ProcessIdentity } from './process.ts';
import type { StackSecrets } from './secrets.ts';
import type { ServerFiles, StackSettings } from './settings.ts';

export interface StackContext {
  settings: StackSettings;
  log: Logger;
  /** the stack's passwords (generated and saved on first use) */
  secrets(): StackSecrets;
}

/** How the orchestrator launches a prepared server, and when it counts as started. */
export type Launch = Pick<LaunchSpec, 'command' | 'args' | 'pidFileBy' | 'ready'>;

/** What `status` shows of a running server that answers. */
export interface ServerHealth {
  healthy: boolean;
  version: string;
  detail: string;
}

export interface LocalServer {
  /** the service name in every command's output, and the name of its files */
  readonly name: string;
  /** the variable that moves its port (named in the error when the port is taken) */
  readonly portVariable: string;
  port(s: StackSettings): number;
  /** how /proc shows its process, so `status` and `down` never take another process for it */
  identity(s: StackSettings, files: ServerFiles): ProcessIdentity;
  /** installs what is missing and writes what it reads at start; how to launch it */
  prepare(ctx: StackContext, files: ServerFiles): Promise<Launch>;
  /** idempotent set-up once it answers (users, stream): after each start and on every `up` of a running one */
  configure(ctx: StackContext, files: ServerFiles): Promise<void>;
  /** version and health, asked of the running server (a throw is shown as "not answering") */
  health(ctx: StackContext, files: ServerFiles): Promise<ServerHealth>;
  /** the settings it contributes to the env file, in the file's order */
  env(s: StackSettings, secrets: StackSecrets): Record<string, string>;
}
