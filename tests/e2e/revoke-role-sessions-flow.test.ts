/**
 * revoke-role-sessions end to end through Bolt's real HTTP receiver with signed requests, against moto
 * IAM (and moto's sso-admin for IAM Identity Center): the command → the approval card → an approver's
 * click → `AWSRevokeOlderSessions` on the role with the cutoff at execution plus the margin → undo
 * removing it (or restoring what was there). Refusals (quell's own roles, service-linked roles, hostile
 * input) make no AWS change. And disable-key's "Revoke sessions of <role>" button: offered only when the
 * key's CloudTrail shows AssumeRole, starting a run for the role read from the stored run.
 *
 * CloudTrail: moto does not implement LookupEvents, so quell's CloudTrail clients reach the local fake
 * (tests/support/fake-cloudtrail.ts, through AWS_ENDPOINT_URL_CLOUDTRAIL), as in the trail tests.
 */
import { CreateRoleCommand, type IAMClient, PutRolePolicyCommand } from '@aws-sdk/client-iam';
import {
  CreatePermissionSetCommand,
  GetInlinePolicyForPermissionSetCommand,
  ListInstancesCommand,
  PutInlinePolicyToPermissionSetCommand,
  SSOAdminClient,
} from '@aws-sdk/client-sso-admin';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REVOKE_POLICY_NAME,
  ROLE_REVOKE_MARGIN_MS,
  revokeRoleSessions,
} from '../../src/runbooks/revoke-role-sessions.ts';
import { ACTION, type Block } from '../../src/slack/build-run-card.ts';
import type { AuditRecord, RunRecord } from '../../src/store/store.ts';
import {
  accountConfig,
  adminCredentials,
  adminIam,
  createUserWithKey,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FakeCloudTrail, type FakeTrailEvent, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import type { SlackCall } from '../support/fake-slack.ts';
import { assertIamMatchesCalls } from '../support/iam-usage.ts';
import {
  INCIDENT,
  startTestQuell,
  type TestQuell,
  waitForRunOf,
  waitForRunState,
} from '../support/test-quell.ts';

const TRUST = JSON.stringify({
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' }],
});
const SSO_ROLE = 'AWSReservedSSO_IncidentAdmin_0123456789abcdef';

async function rolePolicy(iam: IAMClient, roleName: string): Promise<string | null> {
  const { ListRolePoliciesCommand, GetRolePolicyCommand } = await import('@aws-sdk/client-iam');
  const names = await iam.send(new ListRolePoliciesCommand({ RoleName: roleName }));
  if (!names.PolicyNames?.includes(REVOKE_POLICY_NAME)) return null;
  const out = await iam.send(
    new GetRolePolicyCommand({ RoleName: roleName, PolicyName: REVOKE_POLICY_NAME }),
  );
  const doc = out.PolicyDocument ?? '';
  return doc.startsWith('{') ? doc : decodeURIComponent(doc);
}

const cutoffIn = (doc: string | null | undefined): string | undefined => {
  const statements =
    (
      JSON.parse(doc ?? '{}') as {
        Statement?: {
          Sid?: string;
          Effect?: string;
          Condition?: { DateLessThan?: Record<string, string> };
        }[];
      }
    ).Statement ?? [];
  const deny = statements.find((s) => s.Sid === 'QuellRevokeOlderSessions');
  return deny?.Effect === 'Deny' ? deny.Condition?.DateLessThan?.['aws:TokenIssueTime'] : undefined;
};

describe('revoke-role-sessions from Slack to IAM and back', () => {
  let t: TestQuell;
  let iam: IAMClient;
  let sso: SSOAdminClient;
  let ct: FakeCloudTrail;
  let instanceArn: string;
  let permissionSetArn: string;
  const accountId = randomAccountId();
  const otherId = randomAccountId();

  beforeAll(async () => {
    ct = await startFakeCloudTrail();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = ct.url;
    iam = await adminIam(accountId);
    sso = new SSOAdminClient({ region: 'us-east-1', credentials: await adminCredentials(accountId) });
    instanceArn = (await sso.send(new ListInstancesCommand({}))).Instances?.[0]?.InstanceArn ?? '';
    permissionSetArn =
      (await sso.send(new CreatePermissionSetCommand({ InstanceArn: instanceArn, Name: 'IncidentAdmin' })))
        .PermissionSet?.PermissionSetArn ?? '';
    for (const [RoleName, Path] of [
      ['deploy', '/app/'],
      ['audited', '/'],
      ['AWSServiceRoleForSupport', '/aws-service-role/support.amazonaws.com/'],
      [SSO_ROLE, '/aws-reserved/sso.amazonaws.com/'],
    ] as const) {
      await iam.send(new CreateRoleCommand({ RoleName, Path, AssumeRolePolicyDocument: TRUST }));
    }
    t = await startTestQuell({
      accounts: [
        { ...accountConfig('prod', accountId), identityCenter: { instanceArn, region: 'us-east-1' } },
        accountConfig('dev', otherId),
      ],
    });
  });
  afterAll(async () => {
    await t?.close();
    await ct?.close();
    iam?.destroy();
    sso?.destroy();
  });

  const cardUpdates = (run: RunRecord): SlackCall[] =>
    t.slack.callsOf('chat.update').filter((c) => c.body.ts === run.messageTs);
  const buttonsOf = (call: SlackCall | undefined) =>
    ((call?.body.blocks ?? []) as Block[])
      .filter((b) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string; text: { text: string } }[]);
  const mutatingCalls = (entries: readonly AuditRecord[]) => entries.filter((e) => e.type === 'aws.intent');
  /** The AWS calls a run made after its approving click, in order (the session's AssumeRole aside). */
  const callsAfterApproval = (entries: readonly AuditRecord[]) => {
    const approved = entries.findIndex((e) => e.type === 'approval.decision');
    return entries
      .slice(approved)
      .filter((e) => e.type === 'aws.call')
      .map((e) => e.data as { service: string; operation: string })
      .filter((c) => c.service !== 'sts')
      .map((c) => `${c.service}:${c.operation}`);
  };

  it('needs an approval, writes the deny with the cutoff at execution plus the margin, and undoes it', async () => {
    await t.command(
      `revoke-role-sessions arn:aws:iam::${accountId}:role/app/deploy reason="role used from a leaked key"`,
      'U0RESP',
    );
    const run = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    expect(run.requiredApprovals).toBe(1);
    expect(run.accountId).toBe(accountId); // located from the ARN among the two accounts
    // The card is posted right after the run reaches awaiting_approval.
    const isCard = (c: SlackCall) =>
      c.method === 'chat.postMessage' &&
      c.body.channel === INCIDENT &&
      JSON.stringify(c.body.blocks).includes(run.id);
    await t.slack.waitFor((calls) => calls.some(isCard));
    const card = JSON.stringify(t.slack.calls.find(isCard)?.body.blocks);
    expect(card).toContain(`arn:aws:iam::${accountId}:role/app/deploy`);
    expect(card).toContain(`iam:PutRolePolicy RoleName=deploy PolicyName=${REVOKE_POLICY_NAME}`);
    expect(card).toContain('the time of execution&gt; + 5 minutes');
    expect(await rolePolicy(iam, 'deploy')).toBeNull(); // nothing before the approval

    // The requester cannot approve their own run.
    await t.click(ACTION.approve, run.id, 'U0RESP');
    await t.settle();
    expect((await t.quell.store.getRun(run.id))?.state).toBe('awaiting_approval');
    expect(await rolePolicy(iam, 'deploy')).toBeNull();

    await t.click(ACTION.approve, run.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, run.id, ['succeeded', 'failed', 'partial']);
    expect(done.state).toBe('succeeded');
    const finishedAt = Date.now();
    const cutoff = cutoffIn(await rolePolicy(iam, 'deploy'));
    expect(cutoff).toBeDefined();
    expect(Date.parse(cutoff ?? '')).toBeGreaterThanOrEqual(
      (done.approvedAt ?? Number.NaN) + ROLE_REVOKE_MARGIN_MS,
    );
    expect(Date.parse(cutoff ?? '')).toBeLessThanOrEqual(finishedAt + ROLE_REVOKE_MARGIN_MS);
    expect(JSON.parse((await rolePolicy(iam, 'deploy')) ?? '{}').Statement[0]).toMatchObject({
      Effect: 'Deny',
      Action: '*',
      Resource: '*',
    });
    const entries = await t.quell.store.listAudit({ runId: run.id });
    // AWS round trips after the approving click: the re-check (two calls in parallel), the change, the
    // read-back; the respond role's AssumeRole aside.
    const after = callsAfterApproval(entries);
    expect(after.slice(0, 2).sort()).toEqual(['iam:GetRole', 'iam:ListRolePolicies']);
    expect(after.slice(2)).toEqual(['iam:PutRolePolicy', 'iam:ListRolePolicies', 'iam:GetRolePolicy']);

    // Undo: approved by someone else, removes exactly the policy.
    await t.click(ACTION.undo, run.id, 'U0RESP');
    const undo = await (async () => {
      for (let i = 0; i < 200; i++) {
        const [candidate] = await t.quell.store.listRuns({ parentRunId: run.id, limit: 1 });
        if (candidate?.state === 'awaiting_approval') return candidate;
        await new Promise((r) => setTimeout(r, 25));
      }
      throw new Error('no undo run awaiting approval');
    })();
    expect(JSON.stringify(undo.plan)).toContain('iam:DeleteRolePolicy');
    await t.click(ACTION.approve, undo.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'failed', 'partial'])).state).toBe(
      'succeeded',
    );
    expect(await rolePolicy(iam, 'deploy')).toBeNull();
  });

  it('replaces an existing AWSRevokeOlderSessions and its undo restores it exactly', async () => {
    const console = JSON.stringify({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Deny',
          Action: ['*'],
          Resource: ['*'],
          Condition: { DateLessThan: { 'aws:TokenIssueTime': '2026-01-01T00:00:00.000Z' } },
        },
      ],
    });
    await iam.send(
      new PutRolePolicyCommand({
        RoleName: 'audited',
        PolicyName: REVOKE_POLICY_NAME,
        PolicyDocument: console,
      }),
    );
    await t.command('revoke-role-sessions audited account=prod', 'U0RESP2');
    const run = await waitForRunOf(t.quell, 'U0RESP2', ['awaiting_approval', 'plan_failed']);
    expect(JSON.stringify(run.plan)).toContain('already exists (cutoff 2026-01-01T00:00:00.000Z)');
    await t.click(ACTION.approve, run.id, 'U0LEAD1');
    expect((await waitForRunState(t.quell, run.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(cutoffIn(await rolePolicy(iam, 'audited'))).not.toBe('2026-01-01T00:00:00.000Z');
    // The document before the run is in the run's ledger.
    const ledger = await t.quell.store.listLedgerEntries({ runId: run.id });
    expect(ledger.map((e) => (e.value as { prior: string }).prior)).toEqual([console]);

    await t.click(ACTION.undo, run.id, 'U0RESP2');
    await t.settle();
    const [undo] = await t.quell.store.listRuns({ parentRunId: run.id, limit: 1 });
    if (!undo) throw new Error('no undo');
    await t.click(ACTION.approve, undo.id, 'U0LEAD3');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(JSON.parse((await rolePolicy(iam, 'audited')) ?? '{}')).toEqual(JSON.parse(console));
  });

  it("refuses quell's own roles and service-linked roles with a clear message and no AWS change", async () => {
    const before = (await t.quell.store.listAudit()).filter((e) => e.type === 'aws.intent').length;
    const attempts = [
      `revoke-role-sessions arn:aws:iam::${accountId}:role/quell-respond`,
      `revoke-role-sessions QUELL-READ account=prod`,
      `revoke-role-sessions AWSServiceRoleForSupport account=prod`,
    ];
    const states: string[] = [];
    for (const text of attempts) {
      await t.command(text, 'U0RESP3');
      states.push((await waitForRunOf(t.quell, 'U0RESP3', ['plan_failed', 'awaiting_approval'])).state);
    }
    // Service-linked by its ARN: refused in the acknowledgement, before any run or AWS call.
    const ack = await t.command(
      `revoke-role-sessions arn:aws:iam::${accountId}:role/aws-service-role/support.amazonaws.com/AWSServiceRoleForSupport`,
      'U0RESP3',
    );
    expect(String(ack.json?.text)).toContain('service-linked role');
    await t.settle();
    expect(states).toEqual(['plan_failed', 'plan_failed', 'plan_failed']);
    const runs = await t.quell.store.listRuns({ requester: 'U0RESP3', limit: 10 });
    expect(runs).toHaveLength(3);
    const errors = runs.map((r) => String((r.error as { message?: string } | null)?.message));
    expect(errors.filter((m) => m.includes("quell's own"))).toHaveLength(2);
    expect(errors.filter((m) => m.includes('service-linked role'))).toHaveLength(1);
    // Acceptances: none. No mutating call was attempted.
    expect((await t.quell.store.listAudit()).filter((e) => e.type === 'aws.intent').length).toBe(before);
    expect(await rolePolicy(iam, 'AWSServiceRoleForSupport')).toBeNull();
  });

  it('refuses hostile and malformed input with no run and no AWS call', async () => {
    const auditBefore = (await t.quell.store.listAudit()).filter((e) => e.type.startsWith('aws.')).length;
    const hostile = [
      `revoke-role-sessions arn:aws:iam::${accountId}:role/deploy;rm`,
      'revoke-role-sessions arn:aws:iam::12345:role/deploy',
      `revoke-role-sessions arn:evil:iam::${accountId}:role/deploy`,
      `revoke-role-sessions arn:aws:iam::${accountId}:user/alice`,
      `revoke-role-sessions arn:aws:iam::${accountId}:role/<!channel>`,
      `revoke-role-sessions arn:aws:iam::${accountId}:role//double/deploy`,
      `revoke-role-sessions ${'a'.repeat(65)} account=prod`,
      'revoke-role-sessions deploy', // a name without account=
      'revoke-role-sessions deploy account=nope',
      `revoke-role-sessions arn:aws:iam::${accountId}:role/deploy extra`,
      `revoke-role-sessions arn:aws:iam::${accountId}:role/deploy region=us-east-1`,
      'revoke-role-sessions',
    ];
    let accepted = 0;
    for (const text of hostile) {
      const ack = await t.command(text, 'U0HOSTILE');
      expect(ack.status).toBe(200);
      if (!/revoke-role-sessions arn:aws:iam::111111111111:role\/name/.test(String(ack.json?.text)))
        accepted++;
    }
    await t.settle();
    expect(accepted).toBe(0);
    expect(await t.quell.store.listRuns({ requester: 'U0HOSTILE', limit: 10 })).toEqual([]);
    expect((await t.quell.store.listAudit()).filter((e) => e.type.startsWith('aws.')).length).toBe(
      auditBefore,
    );
  });

  it('refuses a role in an account that is not configured, before any AWS call', async () => {
    const before = (await t.quell.store.listAudit()).filter((e) => e.type.startsWith('aws.')).length;
    await t.command(`revoke-role-sessions arn:aws:iam::${randomAccountId()}:role/deploy`, 'U0RESP6');
    await t.settle();
    const told = t.slack.responses
      .filter((r) => r.method.endsWith('/U0RESP6'))
      .map((r) => String(r.body.text));
    expect(told.some((m) => m.includes('not a configured account'))).toBe(true);
    expect((await t.quell.store.listAudit()).filter((e) => e.type.startsWith('aws.')).length).toBe(before);
  });

  it('revokes an IAM Identity Center role through its permission set, provisioned to the account, and undoes it', async () => {
    const existing = JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Sid: 'ReadOnlyBuckets', Effect: 'Allow', Action: 's3:GetObject', Resource: '*' }],
    });
    await sso.send(
      new PutInlinePolicyToPermissionSetCommand({
        InstanceArn: instanceArn,
        PermissionSetArn: permissionSetArn,
        InlinePolicy: existing,
      }),
    );
    await t.command(
      `revoke-role-sessions arn:aws:iam::${accountId}:role/aws-reserved/sso.amazonaws.com/${SSO_ROLE}`,
      'U0RESP7',
    );
    const run = await waitForRunOf(t.quell, 'U0RESP7', ['awaiting_approval', 'plan_failed']);
    expect(run.state).toBe('awaiting_approval');
    const plan = JSON.stringify(run.plan);
    expect(plan).toContain('managed by IAM Identity Center');
    expect(plan).toContain(`sso:ProvisionPermissionSet`);
    expect(plan).toContain(permissionSetArn);

    await t.click(ACTION.approve, run.id, 'U0LEAD1');
    expect((await waitForRunState(t.quell, run.id, ['succeeded', 'failed', 'partial'])).state).toBe(
      'succeeded',
    );
    const inline = (
      await sso.send(
        new GetInlinePolicyForPermissionSetCommand({
          InstanceArn: instanceArn,
          PermissionSetArn: permissionSetArn,
        }),
      )
    ).InlinePolicy;
    const statements = (JSON.parse(inline ?? '{}') as { Statement: { Sid?: string }[] }).Statement;
    expect(statements.map((s) => s.Sid)).toEqual(['ReadOnlyBuckets', 'QuellRevokeOlderSessions']);
    expect(cutoffIn(inline)).toBeDefined();
    // No role policy on the Identity Center role: Identity Center owns it.
    expect(await rolePolicy(iam, SSO_ROLE)).toBeNull();
    const entries = await t.quell.store.listAudit({ runId: run.id });
    expect(callsAfterApproval(entries)).toContain('sso:PutInlinePolicyToPermissionSet');
    expect(callsAfterApproval(entries)).toContain('sso:ProvisionPermissionSet');
    expect(mutatingCalls(entries).map((e) => (e.data as { operation: string }).operation)).toEqual([
      'PutInlinePolicyToPermissionSet',
      'ProvisionPermissionSet',
    ]);

    await t.click(ACTION.undo, run.id, 'U0RESP7');
    await t.settle();
    const [undo] = await t.quell.store.listRuns({ parentRunId: run.id, limit: 1 });
    if (!undo) throw new Error('no undo');
    await t.click(ACTION.approve, undo.id, 'U0LEAD2');
    expect((await waitForRunState(t.quell, undo.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    const restored = (
      await sso.send(
        new GetInlinePolicyForPermissionSetCommand({
          InstanceArn: instanceArn,
          PermissionSetArn: permissionSetArn,
        }),
      )
    ).InlinePolicy;
    expect(restored).toBe(existing);
  });

  it("disable-key offers 'Revoke sessions of <role>' for the roles its key assumed, from the stored run only", async () => {
    const keyId = await createUserWithKey(iam, 'mallory');
    const now = Date.now();
    const assumeEvent = (
      i: number,
      roleArn: string,
      extra: Record<string, unknown> = {},
    ): FakeTrailEvent => ({
      eventId: `assume-${i}`,
      eventTime: new Date(now - (i + 1) * 60_000),
      eventName: 'AssumeRole',
      eventSource: 'sts.amazonaws.com',
      username: 'mallory',
      accessKeyId: keyId,
      resources: [{ type: 'AWS::IAM::Role', name: roleArn }],
      record: { requestParameters: { roleArn, roleSessionName: 'x' }, ...extra },
    });
    const deploy = `arn:aws:iam::${accountId}:role/app/deploy`;
    ct.events.set('us-east-1', [
      assumeEvent(0, deploy),
      assumeEvent(1, deploy),
      // A refused AssumeRole issued no session: not offered.
      assumeEvent(2, `arn:aws:iam::${accountId}:role/audited`, { errorCode: 'AccessDenied' }),
      // Not an ARN: never offered, never echoed into a button.
      assumeEvent(3, '<!channel> arn:aws:iam::1:role/x'),
    ]);

    await t.command(`disable-key ${keyId}`, 'U0RESP8');
    const disable = await waitForRunOf(t.quell, 'U0RESP8', ['awaiting_approval']);
    await t.click(ACTION.approve, disable.id, 'U0LEAD1');
    const done = await waitForRunState(t.quell, disable.id, ['succeeded', 'failed']);
    expect(done.state).toBe('succeeded');
    await t.settle();
    const buttons = buttonsOf(cardUpdates(done).at(-1));
    const revoke = buttons.filter((b) => b.action_id.startsWith('quell_revoke_role_sessions_'));
    expect(revoke.map((b) => [b.action_id, b.text.text, b.value])).toEqual([
      ['quell_revoke_role_sessions_1', 'Revoke sessions of deploy', disable.id],
    ]);
    expect(JSON.stringify(cardUpdates(done).at(-1)?.body.blocks)).toContain(`${deploy} (×2`);

    // The click starts revoke-role-sessions for the role in the stored run, with the clicker as requester.
    await t.click('quell_revoke_role_sessions_1', disable.id, 'U0RESP9');
    const started = await waitForRunOf(t.quell, 'U0RESP9', ['awaiting_approval', 'plan_failed']);
    expect(started).toMatchObject({ runbook: 'revoke-role-sessions', state: 'awaiting_approval', accountId });
    expect((started.plan as { data: { roleArn: string } }).data.roleArn).toBe(deploy);

    // Forged clicks: a slot the run does not offer, a run of another runbook, an unknown id.
    const runsBefore = (await t.quell.store.listRuns({ limit: 200 })).length;
    await t.click('quell_revoke_role_sessions_2', disable.id, 'U0FORGE');
    await t.click('quell_revoke_role_sessions_1', started.id, 'U0FORGE');
    await t.click('quell_revoke_role_sessions_1', 'rforgedforged', 'U0FORGE');
    await t.settle();
    const told = t.slack.responses
      .filter((r) => r.method.endsWith('/U0FORGE'))
      .map((r) => String(r.body.text));
    expect(told).toHaveLength(3);
    expect(told.some((m) => m.includes('does not offer this button'))).toBe(true);
    expect(told.some((m) => m.includes('is not a succeeded `disable-key` run'))).toBe(true);
    expect((await t.quell.store.listRuns({ limit: 200 })).length).toBe(runsBefore);
  });

  it('says so on the card and offers nothing when CloudTrail cannot be read', async () => {
    const keyId = await createUserWithKey(iam, 'oscar');
    ct.failWith({
      status: 400,
      type: 'AccessDeniedException',
      message: 'not authorized to perform LookupEvents',
    });
    try {
      await t.command(`disable-key ${keyId}`, 'U0RESP10');
      const disable = await waitForRunOf(t.quell, 'U0RESP10', ['awaiting_approval']);
      await t.click(ACTION.approve, disable.id, 'U0LEAD1');
      const done = await waitForRunState(t.quell, disable.id, ['succeeded', 'failed']);
      expect(done.state).toBe('succeeded'); // the key is off whatever CloudTrail says
      await t.settle();
      const final = cardUpdates(done).at(-1);
      expect(JSON.stringify(final?.body.blocks)).toContain('CloudTrail could not be read');
      expect(buttonsOf(final).filter((b) => b.action_id.startsWith('quell_revoke_role_sessions_'))).toEqual(
        [],
      );
      const before = (await t.quell.store.listRuns({ limit: 200 })).length;
      await t.click('quell_revoke_role_sessions_1', disable.id, 'U0RESP10');
      await t.settle();
      expect((await t.quell.store.listRuns({ limit: 200 })).length).toBe(before);
    } finally {
      ct.failWith(undefined);
    }
  });

  it('declares exactly the IAM actions its runs called', async () => {
    const runs = (await t.quell.store.listRuns({ limit: 200 })).filter(
      (r) => r.runbook === 'revoke-role-sessions' && ['succeeded'].includes(r.state),
    );
    assertIamMatchesCalls(revokeRoleSessions, await t.quell.store.listAudit(), runs, {
      // moto's ProvisionPermissionSet answers SUCCEEDED at once: the status is never polled. The Identity
      // Center test's permission set had an inline policy before the run, so its undo restores it rather
      // than deleting it.
      implied: ['sso:DescribePermissionSetProvisioningStatus', 'sso:DeleteInlinePolicyFromPermissionSet'],
    });
  });
});
