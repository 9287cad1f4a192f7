/**
 * rotate-secret: ask Secrets Manager to rotate a secret now (`RotateSecret` with `RotateImmediately` and a
 * client request token derived from the run id), then follow the version stages until the new version is
 * `AWSCURRENT`, or report the rotation as stuck with every version and its stages. It only ever reads the
 * secret's metadata: it never calls GetSecretValue, so no secret material reaches quell at all.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { DescribeSecretResponse, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { z } from 'zod';
import { AwsRegionSchema } from '../config-fields.ts';
import { AwsResourceNotFoundError, InputInvalidError, PlanRefusedError } from '../errors.ts';
import type { Json } from '../store/store.ts';
import {
  AccountOptionSchema,
  defineRunbook,
  ForceOptionSchema,
  type LocateContext,
  type Outcome,
  type Plan,
  ReasonOptionSchema,
  RegionOptionSchema,
  type RunContext,
  type SessionGrant,
} from './define-runbook.ts';

/** The Secrets Manager SDK, loaded by the first run that calls it rather than when quell starts (docs/benchmarks.md, memory). */
const loadSecretsManager = () => import('@aws-sdk/client-secrets-manager');

const SECRET_NAME = /^[A-Za-z0-9/_+=.@-]{1,512}$/;
const SECRET_ARN =
  /^arn:aws(?:-[a-z]+)*:secretsmanager:([a-z0-9-]+):(\d{12}):secret:([A-Za-z0-9/_+=.@-]{1,512})$/;

/** A secret's name (letters, digits and / _ + = . @ -, up to 512) or its full ARN. */
export const SecretIdSchema = z
  .string()
  .max(2048, 'a secret name or ARN is at most 2048 characters')
  .refine((text) => SECRET_NAME.test(text) || SECRET_ARN.test(text), {
    message:
      'give the secret name (letters, digits and / _ + = . @ -) or its full ARN, like arn:aws:secretsmanager:eu-west-1:111111111111:secret:prod/db-AbCdEf',
  });

const RotateSecretInputSchema = z
  .object({
    positional: z.tuple([SecretIdSchema], { error: 'give exactly one secret name or ARN' }),
    options: z
      .object({
        account: AccountOptionSchema,
        region: RegionOptionSchema,
        reason: ReasonOptionSchema,
        force: ForceOptionSchema,
      })
      .strict(),
  })
  .transform(({ positional: [secretId], options }, ctx) => {
    const arn = SECRET_ARN.exec(secretId);
    const arnRegion = arn?.[1];
    if (arnRegion !== undefined && !AwsRegionSchema.safeParse(arnRegion).success) {
      ctx.addIssue({
        code: 'custom',
        path: ['positional', 0],
        message: `the ARN's region \`${arnRegion}\` is not an AWS region`,
      });
      return z.NEVER;
    }
    if (arnRegion !== undefined && options.region !== undefined && options.region !== arnRegion) {
      ctx.addIssue({
        code: 'custom',
        path: ['options', 'region'],
        message: `the ARN is in ${arnRegion}, not ${options.region}; leave out \`region=\``,
      });
      return z.NEVER;
    }
    return {
      secretId,
      /** The account id in the ARN, when an ARN was given. */
      arnAccountId: arn?.[2] ?? null,
      account: options.account,
      // An ARN names its region; it is used unless region= says otherwise (refused above).
      region: options.region ?? arnRegion,
      reason: options.reason,
      force: options.force ?? false,
    };
  });

type RotateSecretInput = z.infer<typeof RotateSecretInputSchema>;

/** What execute needs, fixed at plan time. */
type RotateData = {
  arn: string;
  name: string;
  /** The version that is AWSCURRENT at plan time. */
  currentVersionId: string | null;
};

type RotateResult = {
  versionId: string;
  finished: boolean;
  polls: number;
  waitedMs: number;
  versions: Record<string, string[]>;
};

/** How long and how often to follow a rotation. */
export interface FollowOptions {
  timeoutMs: number;
  firstPollMs: number;
  maxPollMs: number;
}

const DEFAULT_FOLLOW: FollowOptions = { timeoutMs: 120_000, firstPollMs: 1_000, maxPollMs: 10_000 };

/**
 * The ClientRequestToken of a run's rotation: a UUID (version 8, RFC 9562: custom) computed from the run
 * id, 36 characters (Secrets Manager takes 32–64). Every attempt of one run sends the same token, so a
 * retried request can never start a second rotation; the token becomes the new version's id.
 */
export function rotationToken(runId: string): string {
  const hex = createHash('sha256')
    .update(`quell-rotate-secret:${runId}`)
    .digest('hex')
    .slice(0, 32)
    .split('');
  hex[12] = '8';
  hex[16] = ((Number.parseInt(hex[16] ?? '0', 16) & 0x3) | 0x8).toString(16);
  const h = hex.join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function stagesOf(secret: DescribeSecretResponse): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [id, stages] of Object.entries(secret.VersionIdsToStages ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    if (stages.length > 0) out[id] = [...stages].sort();
  }
  return out;
}

function versionWith(stages: Record<string, string[]>, stage: string): string | null {
  return Object.entries(stages).find(([, s]) => s.includes(stage))?.[0] ?? null;
}

/** Versions with AWSPENDING that are not AWSCURRENT: a rotation that has not finished. */
function pendingVersions(stages: Record<string, string[]>): string[] {
  return Object.entries(stages)
    .filter(([, s]) => s.includes('AWSPENDING') && !s.includes('AWSCURRENT'))
    .map(([id]) => id);
}

function describeStages(stages: Record<string, string[]>): string {
  const lines = Object.entries(stages).map(([id, s]) => `${id}: ${s.join(', ')}`);
  return lines.length > 0 ? lines.join('\n') : 'no staged versions';
}

function describeSchedule(secret: DescribeSecretResponse): string {
  const rules = secret.RotationRules;
  if (!rules) return 'none';
  const every =
    rules.ScheduleExpression ??
    (rules.AutomaticallyAfterDays ? `every ${rules.AutomaticallyAfterDays} days` : 'none');
  return rules.Duration ? `${every} (window ${rules.Duration})` : every;
}

async function describeSecret(sm: SecretsManagerClient, secretId: string, ctx: RunContext) {
  const { DescribeSecretCommand } = await loadSecretsManager();
  try {
    return await sm.send(new DescribeSecretCommand({ SecretId: secretId }), { abortSignal: ctx.signal });
  } catch (error) {
    if (error instanceof AwsResourceNotFoundError) {
      throw new AwsResourceNotFoundError(
        `No secret \`${secretId}\` in account \`${ctx.account.alias}\` (${ctx.account.id}), ${ctx.region}. Check the name, or give \`region=\` or the full ARN.`,
        { cause: error },
      );
    }
    throw error;
  }
}

/** The facts the approval rests on: which secret, how it rotates, and where its stages are. */
function rotateMaterial(secret: DescribeSecretResponse): Json {
  return {
    arn: secret.ARN ?? null,
    rotationLambdaArn: secret.RotationLambdaARN ?? null,
    owningService: secret.OwningService ?? null,
    deleted: secret.DeletedDate !== undefined,
    versions: stagesOf(secret),
  };
}

async function planRotate(ctx: RunContext, input: RotateSecretInput): Promise<Plan<RotateData>> {
  const { SecretsManagerClient } = await loadSecretsManager();
  if (input.arnAccountId !== null && input.arnAccountId !== ctx.account.id) {
    throw new PlanRefusedError(
      `The ARN is in account ${input.arnAccountId}, but \`${ctx.account.alias}\` is ${ctx.account.id}. Leave out \`account=\`, or give the right one.`,
    );
  }
  const sm = ctx.aws.client(SecretsManagerClient);
  const secret = await describeSecret(sm, input.secretId, ctx);
  const arn = secret.ARN ?? input.secretId;
  const name = secret.Name ?? input.secretId;
  const stages = stagesOf(secret);
  if (secret.DeletedDate) {
    throw new PlanRefusedError(
      `\`${name}\` is scheduled for deletion (${secret.DeletedDate.toISOString()}): it cannot be rotated. Restore it first (RestoreSecret) if it is still in use.`,
    );
  }
  const lambda = secret.RotationLambdaARN;
  const managed = secret.OwningService;
  const pending = pendingVersions(stages);
  const current = versionWith(stages, 'AWSCURRENT');
  const notes: string[] = [];
  if (pending.length > 0) {
    if (!input.force) {
      throw new PlanRefusedError(
        `A rotation of \`${name}\` is already in progress: version ${pending.join(', ')} has AWSPENDING while AWSCURRENT is on ${current ?? 'no version'}. Wait for it to finish, or find out why it is stuck in the rotation Lambda's logs; \`force=true\` asks for another rotation anyway, which Secrets Manager usually refuses until the pending one ends.`,
      );
    }
    notes.push(
      `A rotation was already in progress (${pending.join(', ')} is AWSPENDING); forced with \`force=true\`.`,
    );
  }
  if (!lambda && !managed) {
    if (!input.force) {
      throw new PlanRefusedError(
        `\`${name}\` has no rotation configured: no rotation Lambda, and no service manages it. Without one, Secrets Manager has nothing to run and the "new" version would hold no working credential. Configure rotation first, or repeat the command with \`force=true\` to ask Secrets Manager anyway.`,
      );
    }
    notes.push(
      'No rotation Lambda is configured; forced with `force=true`. Secrets Manager may refuse the request.',
    );
  }
  if ((lambda || managed) && secret.RotationEnabled === false) {
    notes.push('Automatic rotation is off; RotateSecret turns it back on with the stored schedule.');
  }
  notes.push(
    'Every client that reads the secret gets the new value once it is AWSCURRENT; the old version stays as AWSPREVIOUS. quell never reads the secret value.',
  );
  const token = rotationToken(ctx.runId);
  return {
    summary: `Rotate ${name} now and follow it until the new version is AWSCURRENT`,
    facts: [
      ['Account', `${ctx.account.alias} (${ctx.account.id})`],
      ['Region', ctx.region],
      ['Secret', arn],
      [
        'Rotation',
        lambda
          ? `${secret.RotationEnabled ? 'enabled' : 'disabled'}, Lambda ${lambda}`
          : managed
            ? `managed by ${managed}`
            : 'not configured',
      ],
      ['Schedule', describeSchedule(secret)],
      ['Last rotated', secret.LastRotatedDate?.toISOString() ?? 'never'],
      ['Next rotation', secret.NextRotationDate?.toISOString() ?? 'not scheduled'],
      ['Version stages', describeStages(stages)],
    ],
    calls: [
      {
        action: 'secretsmanager:RotateSecret',
        params: { SecretId: arn, RotateImmediately: 'true', ClientRequestToken: token },
      },
    ],
    notes,
    material: rotateMaterial(secret),
    data: { arn, name, currentVersionId: current },
  };
}

/**
 * Polls DescribeSecret with exponential backoff until `versionId` holds AWSCURRENT or the time is up.
 * Only the metadata is read: never the value.
 */
export async function followRotation(
  sm: SecretsManagerClient,
  arn: string,
  versionId: string,
  options: FollowOptions & { signal?: AbortSignal | undefined },
): Promise<{ finished: boolean; polls: number; waitedMs: number; stages: Record<string, string[]> }> {
  const { DescribeSecretCommand } = await loadSecretsManager();
  const started = Date.now();
  let delay = options.firstPollMs;
  let polls = 0;
  for (;;) {
    const secret = await sm.send(new DescribeSecretCommand({ SecretId: arn }), {
      abortSignal: options.signal,
    });
    polls++;
    const stages = stagesOf(secret);
    if (stages[versionId]?.includes('AWSCURRENT'))
      return { finished: true, polls, waitedMs: Date.now() - started, stages };
    const left = options.timeoutMs - (Date.now() - started);
    if (left <= 0) return { finished: false, polls, waitedMs: Date.now() - started, stages };
    await sleep(Math.min(delay, left), undefined, { signal: options.signal });
    delay = Math.min(delay * 2, options.maxPollMs);
  }
}

/** Every version with its stages and dates, for the report of a stuck rotation. */
async function listVersions(sm: SecretsManagerClient, arn: string): Promise<string[]> {
  const { paginateListSecretVersionIds } = await loadSecretsManager();
  const lines: string[] = [];
  for await (const page of paginateListSecretVersionIds({ client: sm }, { SecretId: arn })) {
    for (const v of page.Versions ?? []) {
      lines.push(
        `${v.VersionId}: ${(v.VersionStages ?? []).join(', ') || 'no stage'} (created ${v.CreatedDate?.toISOString() ?? 'unknown'})`,
      );
    }
  }
  return lines;
}

function createExecute(follow: FollowOptions) {
  return async (ctx: RunContext, plan: Plan<RotateData>): Promise<Outcome<RotateResult>> => {
    const { SecretsManagerClient, RotateSecretCommand } = await loadSecretsManager();
    const { arn, name, currentVersionId } = plan.data;
    const sm = ctx.aws.client(SecretsManagerClient);
    const token = rotationToken(ctx.runId);
    const out = await sm.send(
      new RotateSecretCommand({ SecretId: arn, ClientRequestToken: token, RotateImmediately: true }),
      { abortSignal: ctx.signal },
    );
    const versionId = out.VersionId ?? token;
    void ctx.progress(`Rotation of ${name} started: new version ${versionId}. Following its stages…`);
    const followed = await followRotation(sm, arn, versionId, { ...follow, signal: ctx.signal });
    const data: RotateResult = {
      versionId,
      finished: followed.finished,
      polls: followed.polls,
      waitedMs: followed.waitedMs,
      versions: followed.stages,
    };
    if (followed.finished) {
      return {
        ok: true,
        summary: `Rotated ${name}: version ${versionId} is AWSCURRENT${currentVersionId ? `, ${currentVersionId} is now AWSPREVIOUS` : ''} (${Math.round(followed.waitedMs / 1000)} s, ${followed.polls} check(s)).`,
        facts: [
          ['New version', `${versionId} (AWSCURRENT)`],
          ['Version stages', describeStages(followed.stages)],
        ],
        data,
      };
    }
    const versions = await listVersions(sm, arn);
    const current = versionWith(followed.stages, 'AWSCURRENT');
    return {
      ok: false,
      summary: `Rotation of ${name} did not finish within ${Math.round(follow.timeoutMs / 1000)} s: version ${versionId} is ${followed.stages[versionId]?.join(', ') || 'not staged'}, AWSCURRENT is still on ${current ?? 'no version'}. The rotation Lambda's logs say why; quell did not cancel anything, and Secrets Manager keeps retrying. Versions: ${versions.join('; ')}.`,
      facts: [
        ['New version', `${versionId} (${followed.stages[versionId]?.join(', ') || 'not staged'})`],
        ['Versions', versions.join('\n')],
      ],
      data,
    };
  };
}

async function verifyRotate(
  ctx: RunContext,
  plan: Plan<RotateData>,
  result: Outcome<RotateResult>,
): Promise<Outcome> {
  const { SecretsManagerClient, DescribeSecretCommand } = await loadSecretsManager();
  const sm = ctx.aws.client(SecretsManagerClient);
  const secret = await sm.send(new DescribeSecretCommand({ SecretId: plan.data.arn }), {
    abortSignal: ctx.signal,
  });
  const stages = stagesOf(secret);
  const isCurrent = stages[result.data.versionId]?.includes('AWSCURRENT') === true;
  const pending = pendingVersions(stages);
  const ok = isCurrent && pending.length === 0;
  return {
    ok,
    summary: ok
      ? `Verified: ${result.data.versionId} is AWSCURRENT and no rotation is pending.`
      : `Verification: ${isCurrent ? '' : `${result.data.versionId} is not AWSCURRENT`}${pending.length ? ` AWSPENDING on ${pending.join(', ')}` : ''}.`,
    facts: [['Version stages now', describeStages(stages)]],
    data: { versions: stages },
  };
}

/** With several accounts, an ARN names its account; a bare name needs `account=`. */
async function locateSecretAccount(ctx: LocateContext, input: RotateSecretInput) {
  const byArn = input.arnAccountId ? ctx.accounts.find((a) => a.id === input.arnAccountId) : undefined;
  if (byArn) return byArn;
  throw new InputInvalidError(
    [
      input.arnAccountId
        ? `the ARN is in account ${input.arnAccountId}, which is not configured for this channel`
        : `several accounts are configured: add \`account=\` (${ctx.accounts.map((a) => a.alias).join(', ')}), or give the secret's full ARN`,
    ],
    'rotate-secret <name-or-arn> [account=prod] [region=…] [reason="…"] [force=true]',
  );
}

/**
 * What a rotate-secret run's session may do: read and rotate the plan's secret (by its full ARN), and
 * invoke only that secret's rotation Lambda (RotateSecret invokes it as the caller), nothing else.
 */
export function rotateGrants(plan: Plan<RotateData>): SessionGrant[] {
  const grants: SessionGrant[] = [
    {
      actions: [
        'secretsmanager:DescribeSecret',
        'secretsmanager:RotateSecret',
        'secretsmanager:ListSecretVersionIds',
      ],
      resources: [plan.data.arn],
    },
  ];
  const lambda = (plan.material as { rotationLambdaArn?: unknown } | null)?.rotationLambdaArn;
  if (typeof lambda === 'string' && lambda.startsWith('arn:'))
    grants.push({ actions: ['lambda:InvokeFunction'], resources: [lambda] });
  return grants;
}

/** Builds the runbook; tests shorten how long a rotation is followed. */
export function createRotateSecret(follow: Partial<FollowOptions> = {}) {
  const options = { ...DEFAULT_FOLLOW, ...follow };
  return defineRunbook({
    id: 'rotate-secret',
    title: 'Rotate a Secrets Manager secret',
    risk: 'mutating',
    description:
      'rotate a secret now with its rotation Lambda and follow it until the new version is AWSCURRENT',
    usage: 'rotate-secret <name-or-arn> [account=prod] [region=…] [reason="…"] [force=true]',
    input: RotateSecretInputSchema,
    access: 'respond',
    iam: {
      plan: ['secretsmanager:DescribeSecret'],
      // RotateSecret invokes the rotation Lambda as the caller: AWS requires lambda:InvokeFunction on it.
      execute: [
        'secretsmanager:DescribeSecret',
        'secretsmanager:RotateSecret',
        'secretsmanager:ListSecretVersionIds',
        'lambda:InvokeFunction',
      ],
    },
    locateAccount: locateSecretAccount,
    plan: planRotate,
    async recheck(ctx, plan) {
      const { SecretsManagerClient } = await loadSecretsManager();
      return rotateMaterial(await describeSecret(ctx.aws.client(SecretsManagerClient), plan.data.arn, ctx));
    },
    execute: createExecute(options),
    verify: verifyRotate,
    sessionGrants: rotateGrants,
    // Irreversible on purpose. Moving AWSCURRENT back to the old version (UpdateSecretVersionStage) would
    // not undo anything: by then the rotation Lambda has already changed the credential in the database or
    // service (its setSecret step), so the old value no longer works there and every client reading it
    // would break. The only sound way back to a working secret is another rotation — a new run.
    undo: 'irreversible',
  });
}

/** The runbook. */
export const rotateSecret = createRotateSecret();
