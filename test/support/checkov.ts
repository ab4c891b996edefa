/**
 * checkov over the synthesized stacks (test/infra-checkov.test.ts, docs/deploy.md "Scanning"): the pinned
 * checkov from scripts/tools.sh, run offline, its JSON report read back, and the inline skips of infra/checkov.ts
 * applied to it. checkov 3.3 reads no skip from Terraform JSON (its terraform_json runner passes every check an
 * empty skip list) and the HCL export cannot carry comments, so the skips are read from the synthesized JSON's
 * `//` keys here, matched by resource name, and reported with their reasons.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { CHECKOV_SKIP_KEY } from '../../infra/checkov.ts';

const ROOT = path.resolve(import.meta.dirname, '..', '..');

export type Framework = 'terraform_json' | 'terraform';

export interface CheckRecord {
  check_id: string;
  check_name: string;
  resource: string;
  check_class: string;
  file_path: string;
  file_line_range: [number, number];
  check_result: { result: string };
}

export interface CheckovReport {
  check_type: string;
  results: { passed_checks: CheckRecord[]; failed_checks: CheckRecord[]; parsing_errors: string[] };
  summary: {
    passed: number;
    failed: number;
    skipped: number;
    parsing_errors: number;
    checkov_version: string;
  };
}

/** `scripts/tools.sh path checkov`: installs the pinned checkov when missing, returns its bin directory. */
export function installCheckov(): string {
  return execFileSync(path.join(ROOT, 'scripts', 'tools.sh'), ['path', 'checkov'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 600_000,
  }).trim();
}

/**
 * One offline scan: `--skip-download` (no policy metadata fetched), no update check, no platform key. The
 * target is a file (terraform_json) or a directory (terraform). checkov exits 1 when a check failed, 0 when
 * none did; it prints one report per framework that ran (an object), none (an empty list or a bare summary)
 * when nothing could be scanned.
 */
export function scan(bin: string, framework: Framework, target: string): CheckovReport {
  const where = framework === 'terraform_json' ? ['-f', target] : ['-d', target];
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    CKV_SKIP_PACKAGE_UPDATE_CHECK: 'true',
    LOG_LEVEL: 'ERROR',
  };
  delete env.BC_API_KEY;
  const r = spawnSync(
    path.join(bin, 'checkov'),
    ['--framework', framework, ...where, '--skip-download', '--compact', '-o', 'json'],
    { encoding: 'utf8', env, timeout: 300_000, maxBuffer: 64 * 1024 * 1024 },
  );
  if (r.status !== 0 && r.status !== 1) {
    throw new Error(
      `checkov ${framework} ${target} exited ${r.status} (${r.error?.message ?? ''}): ${r.stderr}`,
    );
  }
  const out = JSON.parse(r.stdout) as unknown;
  const reports = (Array.isArray(out) ? out : [out]) as Partial<CheckovReport>[];
  const report = reports.find((x) => x.check_type === framework);
  if (!report?.results || !report.summary) {
    throw new Error(
      `checkov ${framework} ${target} ran no ${framework} scan (exit ${r.status}): ${r.stdout}`,
    );
  }
  return report as CheckovReport;
}

/**
 * The entity a record is about, the same in both frameworks: a resource by its cdktf logical id (unique in
 * the stack; terraform_json says `resource.<id>`, terraform `<type>.<id>`), a provider as `provider.<name>`
 * (terraform_json `provider.aws`, terraform `aws.default`).
 */
export function entityOf(r: CheckRecord): string {
  const parts = r.resource.split('.');
  if (r.check_class.includes('.checks.provider.')) {
    return `provider.${parts[0] === 'provider' ? parts[1] : parts[0]}`;
  }
  return parts[parts.length - 1] as string;
}

export interface InlineSkip {
  resource: string;
  id: string;
  reason: string;
}

/** The skips written by infra/checkov.ts: `//.checkov.skip` of every resource of a synthesized stack. */
export function inlineSkips(stack: Record<string, unknown>): InlineSkip[] {
  const found: InlineSkip[] = [];
  const byType = (stack.resource ?? {}) as Record<string, Record<string, Record<string, unknown>>>;
  for (const byName of Object.values(byType)) {
    for (const [name, body] of Object.entries(byName)) {
      let node: unknown = body;
      for (const k of CHECKOV_SKIP_KEY) node = (node as Record<string, unknown> | undefined)?.[k];
      for (const s of (node ?? []) as { id: string; comment: string }[]) {
        found.push({ resource: name, id: s.id, reason: s.comment });
      }
    }
  }
  return found;
}

export interface Verdict {
  /** checks that ran: passed + failed (checkov itself skips none here) */
  ran: number;
  /** failures accepted by an inline skip, with its reason */
  accepted: string[];
  /** why the scan does not pass: a file not parsed, no check run, a failure with no inline skip */
  problems: string[];
}

const label = (r: CheckRecord) => `${r.check_id} ${r.resource} (${r.check_name})`;

/** The gate: the scan parsed everything, ran checks, and every failure is skipped inline. */
export function judge(report: CheckovReport, skips: InlineSkip[]): Verdict {
  const skipped = (r: CheckRecord) => skips.find((s) => s.resource === entityOf(r) && s.id === r.check_id);
  const failed = report.results.failed_checks;
  const ran = report.summary.passed + report.summary.failed;
  return {
    ran,
    accepted: failed.filter(skipped).map((r) => `${label(r)}: ${skipped(r)?.reason}`),
    problems: [
      ...report.results.parsing_errors.map((f) => `checkov could not parse ${f}`),
      ...(ran > 0 ? [] : ['no check ran']),
      ...failed.filter((r) => !skipped(r)).map((r) => `failed without an inline skip: ${label(r)}`),
    ],
  };
}
