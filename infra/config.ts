/**
 * Stages and naming. Every resource name is `drugsync-{stage}-{what}`, so two stages never collide in one
 * account; a stage is fixed when the stack is synthesized (one Terraform stack, and state, per stage).
 */
import { DrugsyncError } from '../services/core/errors.ts';

export const STAGES = ['dev', 'prod'] as const;
export type Stage = (typeof STAGES)[number];

/** Per-stage defaults of the Terraform variables that differ between stages (tfvars may still override). */
export interface StageDefaults {
  logRetentionDays: number;
  kinesisRetentionHours: number;
  readerLagAlarmSeconds: number;
  /** ReaderStallSeconds above this (2 of 3 minutes, missing data breaching) alarms */
  readerStallAlarmSeconds: number;
  /** EmbedderStallSeconds above this (likewise) alarms */
  embedderStallAlarmSeconds: number;
  /** the oldest dead letter older than this alarms (someone was told, nobody replayed it) */
  dlqAgeAlarmSeconds: number;
  iteratorAgeAlarmMs: number;
  verifyScheduleEnabled: boolean;
}

/**
 * The iterator-age alarm may be at most this fraction of the stream's retention (a variable validation):
 * it has to fire while most of the retention is left to fix the embedder before unread records expire.
 */
export const ITERATOR_AGE_MAX_RETENTION_FRACTION = 0.25;

/** The dead-letter age alarm may be at most this (half the queue's 14-day retention, infra/dlq.ts). */
export const DLQ_AGE_ALARM_MAX_SECONDS = 7 * 86_400;

export const STAGE_DEFAULTS: Record<Stage, StageDefaults> = {
  dev: {
    logRetentionDays: 14,
    kinesisRetentionHours: 48,
    readerLagAlarmSeconds: 300,
    readerStallAlarmSeconds: 300,
    embedderStallAlarmSeconds: 600,
    dlqAgeAlarmSeconds: 3 * 86_400,
    iteratorAgeAlarmMs: 300_000,
    verifyScheduleEnabled: false,
  },
  prod: {
    logRetentionDays: 90,
    kinesisRetentionHours: 48,
    readerLagAlarmSeconds: 60,
    readerStallAlarmSeconds: 120,
    embedderStallAlarmSeconds: 300,
    dlqAgeAlarmSeconds: 86_400,
    iteratorAgeAlarmMs: 60_000,
    verifyScheduleEnabled: true,
  },
};

export function isStage(s: string): s is Stage {
  return (STAGES as readonly string[]).includes(s);
}

/**
 * Stages to synthesize: `STAGE=dev` (or `STAGE=dev,prod`); unset → every stage, each its own stack
 * (`cdktf.out/stacks/drugsync-{stage}`). An unknown name is refused with the list of known ones.
 */
export function stagesFromEnv(env: Record<string, string | undefined> = process.env): Stage[] {
  const raw = env.STAGE?.trim();
  if (!raw) return [...STAGES];
  const asked = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = asked.filter((s) => !isStage(s));
  if (unknown.length > 0) {
    throw new DrugsyncError('CONFIG_INVALID', `STAGE names unknown stage(s): ${unknown.join(', ')}`, {
      context: { stage: raw, known: STAGES.join(',') },
      remedy: `set STAGE to one or more of ${STAGES.join(', ')} (comma-separated), or unset it for all`,
    });
  }
  return [...new Set(asked)] as Stage[];
}

/** Names of one stage: `drugsync-{stage}-{what}`. */
export class Naming {
  constructor(readonly stage: Stage) {}
  get prefix(): string {
    return `drugsync-${this.stage}`;
  }
  name(what: string): string {
    return `${this.prefix}-${what}`;
  }
  stackId(): string {
    return this.prefix;
  }
  tags(): Record<string, string> {
    return { project: 'drugsync', stage: this.stage, 'managed-by': 'cdktf' };
  }
}
