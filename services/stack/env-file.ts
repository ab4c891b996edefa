/**
 * The stack's env file (`.drugsync/stack.env`): KEY=value lines under one comment, mode 600 (it holds the
 * passwords). Written here; read by services/core/config.ts `readEnvFile` (every command loads it by default).
 */
import fs from 'node:fs';
import path from 'node:path';

export function renderEnvFile(env: Record<string, string>): string {
  return (
    '# Written by `drugsync stack up`: settings for the local stack. Process environment overrides these.\n' +
    Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') +
    '\n'
  );
}

/** Writes `env` to `file` (mode 600), creating its directory; returns the file. */
export function saveEnvFile(file: string, env: Record<string, string>): string {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, renderEnvFile(env), { mode: 0o600 });
  return file;
}
