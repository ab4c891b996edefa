/**
 * The spool: a part's eligible rows, mapped, as JSON lines in a local file
 * (`BACKFILL_SPOOL_DIR/<state prefix>/<part>/<time>-<rand>.jsonl`), written once by the snapshot read and
 * read back in windows by the load and the cleanup. One directory per environment (the Redis state prefix,
 * made safe for a path), beside the parts' failure reports: runs of other environments are never touched.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import type { Keys } from '../core/keys.ts';
import type { DrugFields } from '../core/mapping.ts';

/** This environment's directory under BACKFILL_SPOOL_DIR (spool directories and failure reports). */
export function environmentDir(spoolDir: string, keys: Keys): string {
  return path.join(spoolDir, keys.statePrefix.replace(/[^A-Za-z0-9_.-]+/g, '_') || 'default');
}

/** A new, empty spool file for the part; the part's earlier spool files are removed. */
export function newSpoolFile(spoolDir: string, keys: Keys, label: string, dryRun: boolean): string {
  const dir = path.join(environmentDir(spoolDir, keys), dryRun ? `${label}-dry-run` : label);
  fs.mkdirSync(dir, { recursive: true });
  for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true, recursive: true });
  return path.join(dir, `${Date.now()}-${crypto.randomBytes(3).toString('hex')}.jsonl`);
}

/** Appends mapped rows to a spool file, waiting for the disk when its buffer is full. */
export interface SpoolWriter {
  /** one line per row */
  write(rows: readonly DrugFields[]): Promise<void>;
  close(): Promise<void>;
}

export function spoolWriter(file: string): SpoolWriter {
  const out = fs.createWriteStream(file);
  return {
    async write(rows) {
      let lines = '';
      for (const fields of rows) lines += JSON.stringify(fields) + '\n';
      if (!out.write(lines)) await new Promise<void>((resolve) => out.once('drain', () => resolve()));
    },
    close: () =>
      new Promise<void>((resolve, reject) => out.end((e?: Error | null) => (e ? reject(e) : resolve()))),
  };
}

/** The spool's rows after the first `skip`, `size` at a time. */
export async function* spoolWindows(file: string, skip: number, size: number): AsyncGenerator<DrugFields[]> {
  const lines = readline.createInterface({ input: fs.createReadStream(file), crlfDelay: Infinity });
  let seen = 0;
  let window: DrugFields[] = [];
  for await (const line of lines) {
    if (!line) continue;
    if (seen++ < skip) continue;
    window.push(JSON.parse(line) as DrugFields);
    if (window.length >= size) {
      yield window;
      window = [];
    }
  }
  if (window.length) yield window;
}
