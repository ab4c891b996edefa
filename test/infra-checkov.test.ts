/**
 * The security scan of what we hand to Terraform (issue 25, docs/deploy.md "Scanning"): checkov, pinned and
 * installed by scripts/tools.sh, offline, over every stage in both forms we ship:
 *
 * - the synthesized JSON (`npm run synth` → cdk.tf.json), `--framework terraform_json`;
 * - the HCL export (`cdktf synth --hcl` → cdk.tf), `--framework terraform`, which also resolves variable
 *   defaults and runs the IAM and task-definition checks the JSON scan does not.
 *
 * A scan passes only when it parsed the stack and ran checks (a file checkov cannot parse is a parsing
 * error, 0 checks and exit 0: a gate that looked only at failures would pass it) and every failure carries
 * an inline skip with its reason (infra/checkov.ts). A skip whose check no longer fails is refused too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { STAGES } from '../infra/config.ts';
import type { Stage } from '../infra/config.ts';
import { entityOf, inlineSkips, installCheckov, judge, scan } from './support/checkov.ts';
import type { CheckovReport, CheckRecord, InlineSkip } from './support/checkov.ts';
import { stackDir, synthStacks } from './support/synth.ts';

const CHECKOV_VERSION = /^CHECKOV_VERSION=(\S+)$/m.exec(
  fs.readFileSync(path.resolve('scripts', 'tools.sh'), 'utf8'),
)?.[1];

interface Scanned {
  json: CheckovReport;
  hcl: CheckovReport;
  skips: InlineSkip[];
}

let bin = '';
let work = '';
const scanned: Partial<Record<Stage, Scanned>> = {};

function of(stage: Stage): Scanned {
  const s = scanned[stage];
  if (!s) throw new Error(`stage ${stage} was not scanned in beforeAll`);
  return s;
}

const keyed = (records: CheckRecord[]) => new Set(records.map((r) => `${r.check_id} ${entityOf(r)}`));

beforeAll(() => {
  // Prepare: the pinned checkov, and both forms of every stage
  bin = installCheckov();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-checkov-'));
  synthStacks(path.join(work, 'json'), STAGES, { hcl: false });
  synthStacks(path.join(work, 'hcl'), STAGES, { hcl: true });
  // Act: four scans
  for (const stage of STAGES) {
    const file = path.join(stackDir(path.join(work, 'json'), stage), 'cdk.tf.json');
    scanned[stage] = {
      json: scan(bin, 'terraform_json', file),
      hcl: scan(bin, 'terraform', stackDir(path.join(work, 'hcl'), stage)),
      skips: inlineSkips(JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>),
    };
  }
}, 900_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.each(STAGES)('checkov on the %s stack', (stage) => {
  it.each(['json', 'hcl'] as const)(
    'the %s form: parsed, checks ran, every failure is an inline skip with its reason',
    (form) => {
      const report = of(stage)[form];
      const verdict = judge(report, of(stage).skips);
      expect(report.summary.checkov_version).toBe(CHECKOV_VERSION);
      expect(verdict.problems, 'see docs/deploy.md "Scanning": fix the resource or skip it inline').toEqual(
        [],
      );
      expect(verdict.ran).toBeGreaterThan(0);
      const ids = verdict.accepted.map((a) => a.split(' ')[0]);
      const counted = [...new Set(ids)].map((id) => `${id} ×${ids.filter((x) => x === id).length}`);
      console.log(
        `[checkov ${stage} ${form}] ${verdict.ran} checks: ${report.summary.passed} passed, ${ids.length} failed with an inline skip (${counted.join(', ')})`,
      );
    },
  );

  it('the HCL scan runs every check of the JSON scan on the same resource, with the same result', () => {
    // the JSON scan sees `${var.x}` where the HCL scan sees the variable's default: a JSON pass on a
    // variable is confirmed on its default here (and the HCL scan adds the IAM and task checks)
    const { json, hcl } = of(stage);
    const hclPassed = keyed(hcl.results.passed_checks);
    const hclFailed = keyed(hcl.results.failed_checks);
    expect([...keyed(json.results.passed_checks)].filter((k) => !hclPassed.has(k))).toEqual([]);
    expect([...keyed(json.results.failed_checks)].filter((k) => !hclFailed.has(k))).toEqual([]);
    expect(hcl.summary.passed + hcl.summary.failed).toBeGreaterThan(
      json.summary.passed + json.summary.failed,
    );
  });

  it('every inline skip names a check that fails on its resource, and says why', () => {
    const { json, hcl, skips } = of(stage);
    const failing = new Set([...keyed(json.results.failed_checks), ...keyed(hcl.results.failed_checks)]);
    expect(skips.length).toBeGreaterThan(0);
    expect(
      skips.filter((s) => !failing.has(`${s.id} ${s.resource}`)).map((s) => `${s.id} ${s.resource}`),
    ).toEqual([]);
    for (const s of skips) expect(s.reason.length, `${s.id} ${s.resource}`).toBeGreaterThanOrEqual(20);
  });
});

describe('the gate itself', () => {
  it('fails a finding whose inline skip is taken away', () => {
    // Prepare: the dev stack without the skips of its SNS topic
    const file = path.join(stackDir(path.join(work, 'json'), 'dev'), 'cdk.tf.json');
    const stack = JSON.parse(fs.readFileSync(file, 'utf8')) as {
      resource: Record<string, Record<string, { '//': Record<string, unknown> }>>;
    };
    const topics = Object.values(stack.resource.aws_sns_topic ?? {});
    expect(topics).toHaveLength(1);
    for (const t of topics) delete t['//'].checkov;
    const dir = path.join(work, 'no-topic-skip');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'cdk.tf.json'), JSON.stringify(stack, null, 2));
    // Act
    const report = scan(bin, 'terraform_json', path.join(dir, 'cdk.tf.json'));
    const verdict = judge(report, inlineSkips(stack));
    // Assess: the topic's finding is back, the others stay accepted
    expect(verdict.problems).toEqual([
      expect.stringMatching(/^failed without an inline skip: CKV_AWS_26 resource\.observability_alarms_/),
    ]);
    expect(verdict.accepted.length).toBe(judge(of('dev').json, of('dev').skips).accepted.length - 1);
  });

  it('refuses a scan that parsed nothing: the former jsonencode() export gave 0 checks and exit 0', () => {
    // Prepare: the shape cdktf wrote before (an object inside an interpolation, then a quoted string)
    const dir = path.join(work, 'jsonencode');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(
      path.join(dir, 'cdk.tf'),
      'resource "aws_sns_topic" "alarms" {\n' +
        '  name   = "drugsync-dev-alarms"\n' +
        '  policy = "${jsonencode({"Statement" = [{"Principal" = {"Service" = "cloudwatch.amazonaws.com"}, "Action" = "sns:Publish"}]})}"\n' +
        '}\n',
    );
    // Act
    const report = scan(bin, 'terraform', dir);
    const verdict = judge(report, []);
    // Assess: no failure at all (what a gate on failures alone would pass), and the gate refuses it
    expect(report.summary.failed).toBe(0);
    expect(verdict.ran).toBe(0);
    expect(verdict.problems).toEqual([`checkov could not parse ${path.join(dir, 'cdk.tf')}`, 'no check ran']);
  });
});
