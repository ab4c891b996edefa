/** Installing what a local server needs: finding a binary, running an installer step and failing with its output. */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { DrugsyncError } from '../core/errors.ts';

/** The first `bin` on PATH or in the system binary directories, or null. */
export function which(bin: string): string | null {
  for (const d of (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin', '/usr/local/bin'])) {
    const p = path.join(d, bin);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** Runs one install step to completion; TOOL_INSTALL_FAILED with the last lines of its output otherwise. */
export function runTool(cmd: string, args: string[], what: string): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (r.status !== 0) {
    throw new DrugsyncError('TOOL_INSTALL_FAILED', `${what} failed (exit ${r.status ?? r.signal})`, {
      context: { command: `${cmd} ${args.join(' ')}` },
      remedy: (r.stderr || r.stdout || '').trim().split('\n').slice(-5).join(' | '),
    });
  }
}
