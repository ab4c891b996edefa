/**
 * The only IAM statements allowed a wildcard in their Resource — each because AWS offers no narrower
 * resource for those actions. Machine-readable: `policyStatement` refuses any other wildcard at synth
 * time, and test/infra.unit.test.ts walks every synthesized policy document against this list.
 *
 * A statement matches an entry when every one of its actions is in `actions` and every wildcard resource
 * of it matches `resource` (a RegExp over the synthesized string). Wildcard *actions* are never allowed.
 */
export interface WildcardResourceAllowance {
  id: string;
  actions: readonly string[];
  resource: RegExp;
  why: string;
}

export const WILDCARD_RESOURCE_ALLOWLIST: readonly WildcardResourceAllowance[] = [
  {
    id: 'ecr-auth-token',
    actions: ['ecr:GetAuthorizationToken'],
    resource: /^\*$/,
    why: 'ecr:GetAuthorizationToken is account-wide: IAM offers no resource-level permission for it (the image pull itself is scoped to the repository ARN).',
  },
  {
    id: 'log-streams-of-own-group',
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    resource:
      /^(\$\{aws_cloudwatch_log_group\.[A-Za-z0-9_-]+\.arn\}|arn:aws[a-z-]*:logs:[^*]+:log-group:drugsync-[a-z]+-[^*:]+):log-stream:\*$/,
    why: 'Log streams are created at run time with names ECS chooses; the wildcard is only the stream name inside our own log group.',
  },
];

/** Wildcard actions are refused everywhere; this is the check both the builder and the test use. */
export function isWildcardAction(action: string): boolean {
  return action.includes('*') || action.includes('?');
}

export function isWildcardResource(resource: string): boolean {
  return resource.includes('*');
}

/** The allowance covering a statement's wildcard resources, or undefined when none does. */
export function allowanceFor(actions: readonly string[], wildcardResources: readonly string[]) {
  return WILDCARD_RESOURCE_ALLOWLIST.find(
    (a) => actions.every((x) => a.actions.includes(x)) && wildcardResources.every((r) => a.resource.test(r)),
  );
}
