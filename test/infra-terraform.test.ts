/**
 * The one machine-dependent test (issue 6): where a terraform binary and a local mirror of the
 * hashicorp/aws provider exist, the synthesized stacks go through `terraform init` (from the mirror,
 * offline: -plugin-dir, no backend, no checkpoint calls) and `terraform validate`. Elsewhere it passes and
 * prints why it did not run.
 *
 * Mirror search: DRUGSYNC_TF_PLUGIN_DIR, TF_PLUGIN_CACHE_DIR, `filesystem_mirror`/`plugin_cache_dir` of
 * the CLI config (~/.terraformrc or TF_CLI_CONFIG_FILE), ~/.terraform.d/plugins,
 * ~/.local/share/terraform/plugins, /usr/local/share/terraform/plugins, /usr/share/terraform/plugins,
 * /opt/tf-plugins.
 */
import { describe, it, expect } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { App } from 'cdktf';
import { DrugsyncStack } from '../infra/stack.ts';
import { STAGES } from '../infra/config.ts';

const PROVIDER = path.join('registry.terraform.io', 'hashicorp', 'aws');
const platform = `${process.platform}_${process.arch === 'x64' ? 'amd64' : process.arch}`;

function findTerraform(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(path.delimiter), '/usr/local/bin', '/usr/bin'];
  return dirs.map((d) => path.join(d, 'terraform')).find((f) => fs.existsSync(f));
}

function cliConfigDirs(): string[] {
  const file = process.env.TF_CLI_CONFIG_FILE ?? path.join(os.homedir(), '.terraformrc');
  if (!fs.existsSync(file)) return [];
  const text = fs.readFileSync(file, 'utf8');
  return [...text.matchAll(/(?:path|plugin_cache_dir)\s*=\s*"([^"]+)"/g)].map((m) => m[1] as string);
}

interface Mirror {
  dir: string;
  versions: string[];
}

function findMirror(): Mirror | undefined {
  const candidates = [
    process.env.DRUGSYNC_TF_PLUGIN_DIR,
    process.env.TF_PLUGIN_CACHE_DIR,
    ...cliConfigDirs(),
    path.join(os.homedir(), '.terraform.d', 'plugins'),
    path.join(os.homedir(), '.local', 'share', 'terraform', 'plugins'),
    '/usr/local/share/terraform/plugins',
    '/usr/share/terraform/plugins',
    '/opt/tf-plugins',
  ].filter((d): d is string => Boolean(d));
  for (const dir of candidates) {
    const providerDir = path.join(dir, PROVIDER);
    if (!fs.existsSync(providerDir)) continue;
    const versions = fs
      .readdirSync(providerDir)
      .filter((v) => fs.existsSync(path.join(providerDir, v, platform)))
      .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
    if (versions.length > 0) return { dir, versions };
  }
  return undefined;
}

/** Realistic inputs of an existing environment (fake ids; nothing is contacted). */
const TFVARS = `
vpc_id                     = "vpc-0a1b2c3d4e5f60718"
private_subnet_ids         = ["subnet-05ea4d85ade4340db", "subnet-07c025dd82ff8355e"]
aurora_endpoint            = "fdb.cluster-c1x2y3z4.us-east-1.rds.amazonaws.com"
aurora_cluster_identifier  = "fdb"
aurora_secret_arn          = "arn:aws:secretsmanager:us-east-1:123456789012:secret:fdb-replication-AbCdEf"
aurora_security_group_id   = "sg-0e78f3a483550e499"
redis_endpoint             = "redis.internal.example"
redis_auth_secret_arn      = "arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-auth-GhIjKl"
redis_auth_secret_json_key = "password"
redis_security_group_id    = "sg-0f1e2d3c4b5a69788"
container_image            = "123456789012.dkr.ecr.us-east-1.amazonaws.com/drugsync:1.4.2"
`;

const ANSI = new RegExp(String.fromCharCode(27) + '\\[[0-9;]*m', 'g');

/** `terraform console` evaluates one expression offline (no provider call for variables and locals). */
function evaluate(bin: string, dir: string, expression: string, extra: string[] = []) {
  const r = spawnSync(bin, ['console', '-var-file=drugsync.tfvars', ...extra], {
    cwd: dir,
    input: expression + '\n',
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      CHECKPOINT_DISABLE: '1',
      TF_CLI_CONFIG_FILE: path.join(dir, '.terraformrc-empty'),
    },
  });
  return { status: r.status, out: r.stdout.trim(), err: r.stderr.replace(ANSI, '') };
}

function run(bin: string, args: string[], cwd: string) {
  const config = path.join(cwd, '.terraformrc-empty');
  fs.writeFileSync(config, '');
  return spawnSync(bin, args, {
    cwd,
    encoding: 'utf8',
    timeout: 120_000,
    env: {
      ...process.env,
      CHECKPOINT_DISABLE: '1', // no version check call home
      TF_IN_AUTOMATION: '1',
      TF_INPUT: '0',
      TF_CLI_CONFIG_FILE: config,
      TF_PLUGIN_CACHE_DIR: '',
    },
  });
}

describe('terraform validate (machine-dependent)', () => {
  it('initializes from the local provider mirror and validates every stage, or says why not', () => {
    const terraform = findTerraform();
    const mirror = findMirror();
    if (!terraform || !mirror) {
      const why = !terraform
        ? 'no terraform binary on PATH, /usr/local/bin or /usr/bin'
        : `no local mirror of hashicorp/aws for ${platform} (looked in DRUGSYNC_TF_PLUGIN_DIR, TF_PLUGIN_CACHE_DIR, the CLI config, ~/.terraform.d/plugins, ~/.local/share/terraform/plugins, /usr/local/share/terraform/plugins, /usr/share/terraform/plugins, /opt/tf-plugins)`;
      console.warn(
        `[infra-terraform] NOT RUN: ${why}. The offline synth tests in test/infra.test.ts still ran.`,
      );
      expect(why.length).toBeGreaterThan(0);
      return;
    }

    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'drugsync-tf-'));
    try {
      const app = new App({ outdir });
      for (const stage of STAGES) new DrugsyncStack(app, `drugsync-${stage}`, { stage });
      app.synth();

      for (const stage of STAGES) {
        const dir = path.join(outdir, 'stacks', `drugsync-${stage}`);
        const file = path.join(dir, 'cdk.tf.json');
        const tf = JSON.parse(fs.readFileSync(file, 'utf8'));
        const pinned = tf.terraform.required_providers.aws.version as string;
        const newest = mirror.versions[mirror.versions.length - 1] as string;
        if (!mirror.versions.includes(pinned)) {
          // The bindings pin the provider they were generated for; the mirror may hold another release.
          // Validate against what is mirrored and say so: the arguments we set exist in both majors.
          tf.terraform.required_providers.aws.version = newest;
          console.warn(
            `[infra-terraform] ${stage}: synth pins hashicorp/aws ${pinned}, the mirror ${mirror.dir} holds ${mirror.versions.join(', ')}: validating against ${newest}`,
          );
        }
        // this throw-away copy keeps its state nowhere (the local backend path points at the project root)
        delete tf.terraform.backend;
        fs.writeFileSync(file, JSON.stringify(tf, null, 2));
        const init = run(
          terraform,
          ['init', '-backend=false', '-input=false', `-plugin-dir=${mirror.dir}`],
          dir,
        );
        expect(init.status, `terraform init (${stage}):\n${init.stdout}\n${init.stderr}`).toBe(0);
        const validate = run(terraform, ['validate', '-json', '-no-color'], dir);
        const result = JSON.parse(validate.stdout) as {
          valid: boolean;
          error_count: number;
          diagnostics: { severity: string; summary: string; detail?: string }[];
        };
        const errors = result.diagnostics.filter((d) => d.severity === 'error');
        expect(errors, `terraform validate (${stage})`).toEqual([]);
        expect(result.valid).toBe(true);

        console.warn(
          `[infra-terraform] ${stage}: terraform validate OK (${result.diagnostics.length} warning(s)) with hashicorp/aws from ${mirror.dir}`,
        );
        if (stage !== 'dev') continue; // the expressions are the same in every stage: evaluate them once

        // the expressions behind the variables work as written (validations, the Redis valueFrom)
        fs.writeFileSync(path.join(dir, 'drugsync.tfvars'), TFVARS);
        const both = evaluate(terraform, dir, '"${var.stage} ${local.redis_password_value_from}"');
        expect(both.out).toBe(
          `"${stage} arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-auth-GhIjKl:password::"`,
        );
        expect(
          evaluate(terraform, dir, 'local.redis_password_value_from', ['-var', 'redis_auth_secret_json_key='])
            .out,
        ).toBe('"arn:aws:secretsmanager:us-east-1:123456789012:secret:redis-auth-GhIjKl"');
        const other = STAGES.find((s) => s !== stage) as string;
        const refused = evaluate(terraform, dir, 'var.stage', [
          '-var',
          `stage=${other}`,
          '-var',
          'container_image=docker.io/library/node:22',
          '-var',
          'embedding_dimensions=300',
          '-var',
          'log_retention_days=10',
        ]);
        expect(refused.err).toContain(`synthesized for stage "${stage}"`);
        expect(refused.err).toContain('container_image must be an ECR image URI');
        expect(refused.err).toContain('embedding_dimensions must be 256, 512 or 1024');
        expect(refused.err).toContain('log_retention_days must be a value CloudWatch Logs accepts');
        // the iterator-age alarm must stay well under the stream retention (a validation naming another
        // variable): half the retention is refused, a quarter of a longer retention is accepted
        const tooLate = evaluate(terraform, dir, 'var.iterator_age_alarm_ms', [
          '-var',
          'iterator_age_alarm_ms=86400000',
        ]);
        expect(tooLate.err).toContain(
          'iterator_age_alarm_ms must be at most 25 % of kinesis_retention_hours',
        );
        const fine = evaluate(terraform, dir, 'var.iterator_age_alarm_ms', [
          '-var',
          'iterator_age_alarm_ms=86400000',
          '-var',
          'kinesis_retention_hours=96',
        ]);
        expect(fine.out).toBe('86400000');
        console.warn(`[infra-terraform] ${stage}: variable validations and locals evaluate as expected`);
      }

      // the HCL export (`cdktf synth --hcl`) is a second exit to plain Terraform: it must validate too
      const hclOut = path.join(outdir, 'hcl');
      const before = process.env.SYNTH_HCL_OUTPUT;
      process.env.SYNTH_HCL_OUTPUT = 'true'; // what `cdktf synth --hcl` sets
      try {
        const hclApp = new App({ outdir: hclOut, hclOutput: true });
        new DrugsyncStack(hclApp, 'drugsync-dev', { stage: 'dev' });
        hclApp.synth();
      } finally {
        if (before === undefined) delete process.env.SYNTH_HCL_OUTPUT;
        else process.env.SYNTH_HCL_OUTPUT = before;
      }
      const hclDir = path.join(hclOut, 'stacks', 'drugsync-dev');
      const hclFile = path.join(hclDir, 'cdk.tf');
      const newest = mirror.versions[mirror.versions.length - 1] as string;
      const hcl = fs
        .readFileSync(hclFile, 'utf8')
        .replace(/backend "local" \{[^}]*\}/, '')
        .replace(
          /(aws = \{\s*version = )"[^"]+"/,
          mirror.versions.includes('6.25.0') ? '$1"6.25.0"' : `$1"${newest}"`,
        );
      fs.writeFileSync(hclFile, hcl);
      const hclInit = run(
        terraform,
        ['init', '-backend=false', '-input=false', `-plugin-dir=${mirror.dir}`],
        hclDir,
      );
      expect(hclInit.status, `terraform init (HCL):\n${hclInit.stdout}\n${hclInit.stderr}`).toBe(0);
      const hclValidate = JSON.parse(run(terraform, ['validate', '-json', '-no-color'], hclDir).stdout) as {
        valid: boolean;
        diagnostics: { severity: string; summary: string }[];
      };
      expect(hclValidate.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(hclValidate.valid).toBe(true);
      console.warn('[infra-terraform] dev: the HCL export (cdk.tf) validates too');
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });
});
