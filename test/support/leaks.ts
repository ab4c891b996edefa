/**
 * What the "no secret in any log line" tests share: the JSON log lines of a process' output, and every form
 * in which a secret could show up in it (as is, JSON-escaped, \u-escaped), checked absent.
 */
import { expect } from 'vitest';

/** The JSON log lines of an output (the lines that start with `{`), parsed. */
export function jsonLines(output: string): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Every form in which a secret could show up in output: as is, JSON-escaped, \u-escaped. */
export function leakForms(secret: string): string[] {
  const escaped = JSON.stringify(secret).slice(1, -1);
  const ascii = escaped.replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  return [...new Set([secret, escaped, ascii])];
}

/** Fails naming the form when `output` shows any of `secrets` in any form. */
export function expectNoLeak(output: string, secrets: string[]): void {
  for (const secret of secrets) {
    for (const form of leakForms(secret)) expect(output.includes(form), `output shows ${form}`).toBe(false);
  }
}
