import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The project root (two levels above services/core). */
export const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where the local stack keeps its data, tools, pid files and logs (git-ignored). */
export const STATE_DIR = process.env.DRUGSYNC_STATE_DIR
  ? path.resolve(process.env.DRUGSYNC_STATE_DIR)
  : path.join(PROJECT_ROOT, '.drugsync');

/** The KEY=value file `drugsync stack env` writes and every command loads by default. */
export const DEFAULT_ENV_FILE = path.join(STATE_DIR, 'stack.env');
