/**
 * Least privilege (issue 9.8). moto does not enforce IAM, so each attack is tried against the documents
 * quell really sends: the session policy of every AssumeRole (recorded at moto by a loopback proxy) and
 * the role and trust policies `quell iam-policy` prints, evaluated with tests/support/iam-evaluator.ts.
 * An attempt is accepted when the role policy AND the run's session policy allow it (with no session
 * policy, as before, the role policy alone decides). Each attack counts its attempts and acceptances.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EC2Client } from '@aws-sdk/client-ec2';
import type { IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildPermissionsPolicy, type PolicyDocument } from '../../src/aws/build-iam-policies.ts';
import {
  buildSessionPolicy,
  DENY_EVERYTHING,
  MAX_SESSION_POLICY_CHARS,
} from '../../src/aws/build-session-policy.ts';
import { runCli } from '../../src/cli/run-cli.ts';
import type { Plan } from '../../src/runbooks/define-runbook.ts';
import { isolateGrants, restoreGrants } from '../../src/runbooks/isolate-vpc.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { rotateGrants } from '../../src/runbooks/rotate-secret.ts';
import { accountConfig, adminIam, createUserWithKey, randomAccountId } from '../support/aws-fixtures.ts';
import { type FaultProxy, type ProxiedRequest, startFaultProxy } from '../support/fault-proxy.ts';
import { type EvaluatedRequest, isAllowed, verdictOf } from '../support/iam-evaluator.ts';
import { adminEc2, createTestVpc } from '../support/network-fixtures.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };
const respondRole = buildPermissionsPolicy(RUNBOOKS, 'respond');

/** Tries every request under a session: how many were tried, and how many the policies would accept. */
function attempt(session: string | undefined, requests: EvaluatedRequest[]) {
  const accepted = requests.filter((r) => isAllowed(respondRole, session, r));
  return { attempts: requests.length, accepted: accepted.map((r) => `${r.action} ${r.resource}`) };
}

describe('a run cannot act outside its plan under its session policy', () => {
  const accountId = randomAccountId();
  const region = 'us-east-1';
  let iam: IAMClient;
  let ec2: EC2Client;
  let proxy: FaultProxy;
  let t: TestEngine;

  beforeAll(async () => {
    iam = await adminIam(accountId);
    ec2 = await adminEc2(accountId);
    proxy = await startFaultProxy(inject('motoUrl'));
    process.env.AWS_ENDPOINT_URL = proxy.url; // STS (and every client) goes through the recording proxy
    t = await startTestEngine({ accounts: [accountConfig('prod', accountId)] });
  });
  afterAll(async () => {
    await t?.close();
    await proxy?.close();
    process.env.AWS_ENDPOINT_URL = inject('motoUrl');
    iam?.destroy();
    ec2?.destroy();
  });

  const assumes = (runId: string): ProxiedRequest[] =>
    proxy.requests.filter((r) => r.action === 'AssumeRole' && r.params.RoleSessionName === `quell-${runId}`);
  /** The session policy the run's respond-role session was assumed with (undefined: none was sent). */
  const respondPolicy = (runId: string): string | undefined => {
    const calls = assumes(runId).filter((r) => r.params.RoleArn?.endsWith(':role/quell-respond'));
    expect(calls.length).toBeGreaterThan(0);
    const policies = new Set(calls.map((r) => r.params.Policy));
    expect(policies.size).toBe(1);
    return [...policies][0];
  };
  const user = (name: string) => `arn:aws:iam::${accountId}:user/${name}`;
  const ec2Arn = (kind: string, id: string) => `arn:aws:ec2:${region}:${accountId}:${kind}/${id}`;

  it("disable-key's session cannot change another user's key or policies (attack: pivot a disable-key session to another user)", async () => {
    const keyId = await createUserWithKey(iam, 'alice');
    await createUserWithKey(iam, 'bob');
    const run = await t.engine.start(
      t.engine.prepare('disable-key', { positional: [keyId], options: {} }, requester),
      requester,
    );
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    const done = await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
    expect(done.state).toBe('succeeded');
    const session = respondPolicy(run.id);
    // What the plan does is allowed...
    for (const action of [
      'iam:UpdateAccessKey',
      'iam:PutUserPolicy',
      'iam:ListAccessKeys',
      'iam:GetUserPolicy',
    ])
      expect(isAllowed(respondRole, session, { action, resource: user('alice') })).toBe(true);
    // ...and nothing else: another user's key and policies, or other actions on the same user.
    const hostile = attempt(session, [
      { action: 'iam:UpdateAccessKey', resource: user('bob') },
      { action: 'iam:PutUserPolicy', resource: user('bob') },
      { action: 'iam:DeleteUserPolicy', resource: user('bob') },
      { action: 'iam:UpdateAccessKey', resource: `arn:aws:iam::${accountId}:user/ops/bob` },
      { action: 'iam:DeleteUserPolicy', resource: user('alice') },
      { action: 'iam:UpdateAccessKey', resource: `arn:aws:iam::${randomAccountId()}:user/alice` },
      { action: 'iam:CreateAccessKey', resource: user('alice') },
      { action: 'ec2:DeleteNetworkAcl', resource: ec2Arn('network-acl', 'acl-0123456789abcdef0') },
      { action: 'secretsmanager:RotateSecret', resource: '*' },
    ]);
    expect(hostile).toEqual({ attempts: 9, accepted: [] });
    expect(session).toBeDefined();
    expect((session ?? '').length).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);

    // The undo's session: re-activate alice's key and delete the deny, nothing for bob.
    const undo = await t.engine.requestUndo(run.id, requester);
    if (!undo) throw new Error(`no undo: ${t.told.at(-1)?.text}`);
    const undone = await t.engine.decide(undo.id, 'U0LEAD1', 'approve', CHANNEL);
    expect(undone.state).toBe('succeeded');
    const undoSession = respondPolicy(undo.id);
    expect(
      isAllowed(respondRole, undoSession, { action: 'iam:UpdateAccessKey', resource: user('alice') }),
    ).toBe(true);
    expect(
      isAllowed(respondRole, undoSession, { action: 'iam:DeleteUserPolicy', resource: user('alice') }),
    ).toBe(true);
    expect(
      attempt(undoSession, [
        { action: 'iam:UpdateAccessKey', resource: user('bob') },
        { action: 'iam:DeleteUserPolicy', resource: user('bob') },
        { action: 'iam:PutUserPolicy', resource: user('alice') }, // the undo deletes; it never writes one
      ]),
    ).toEqual({ attempts: 3, accepted: [] });

    // Every session of both runs carried a policy; no session asked for `*` actions.
    for (const r of [...assumes(run.id), ...assumes(undo.id)]) {
      expect(r.params.Policy).toBeDefined();
      expect(r.params.Policy).not.toMatch(/"Action":"\*"|"[a-z0-9]+:\*"/);
    }
  });

  it("isolate-vpc's session cannot move or touch another VPC's subnets (attack: use an isolation session on another VPC)", async () => {
    const vpc = await createTestVpc(ec2, { subnets: 3, customAcls: 1 });
    const other = await createTestVpc(ec2, { subnets: 1, customAcls: 1 });
    const run = await t.engine.start(
      t.engine.prepare('isolate-vpc', { positional: [vpc.vpcId], options: {} }, requester),
      requester,
    );
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    await t.engine.decide(run.id, 'U0LEAD1', 'approve', CHANNEL);
    const done = await t.engine.decide(run.id, 'U0LEAD2', 'approve', CHANNEL);
    expect(done.state).toBe('succeeded');
    const session = respondPolicy(run.id);
    const target = { 'ec2:Vpc': ec2Arn('vpc', vpc.vpcId) };
    const elsewhere = { 'ec2:Vpc': ec2Arn('vpc', other.vpcId) };
    const quarantineTag = { 'aws:ResourceTag/quell-quarantine': vpc.vpcId };

    for (const subnetId of vpc.subnetIds)
      expect(
        isAllowed(respondRole, session, {
          action: 'ec2:ReplaceNetworkAclAssociation',
          resource: ec2Arn('subnet', subnetId),
          context: target,
        }),
      ).toBe(true);
    expect(
      isAllowed(respondRole, session, {
        action: 'ec2:CreateNetworkAcl',
        resource: ec2Arn('vpc', vpc.vpcId),
        context: { 'aws:RequestTag/quell-quarantine': vpc.vpcId },
      }),
    ).toBe(true);
    const hostile = attempt(session, [
      {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: ec2Arn('subnet', other.subnetIds[0] ?? ''),
        context: elsewhere,
      },
      {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: ec2Arn('network-acl', other.customAclIds[0] ?? ''),
        context: elsewhere,
      },
      {
        action: 'ec2:CreateNetworkAcl',
        resource: ec2Arn('vpc', other.vpcId),
        context: { 'aws:RequestTag/quell-quarantine': other.vpcId },
      },
      {
        action: 'ec2:CreateNetworkAclEntry',
        resource: ec2Arn('network-acl', other.customAclIds[0] ?? ''),
        context: { ...elsewhere, 'aws:ResourceTag/quell-quarantine': other.vpcId },
      },
      // An ACL of the same VPC that is not a quarantine: no entries on it.
      {
        action: 'ec2:CreateNetworkAclEntry',
        resource: ec2Arn('network-acl', vpc.customAclIds[0] ?? ''),
        context: target,
      },
      { action: 'ec2:DeleteNetworkAcl', resource: ec2Arn('network-acl', vpc.defaultAclId), context: target },
      {
        action: 'ec2:CreateTags',
        resource: ec2Arn('instance', vpc.instanceId),
        context: { 'ec2:CreateAction': 'RunInstances' },
      },
      { action: 'ec2:TerminateInstances', resource: ec2Arn('instance', vpc.instanceId), context: target },
    ]);
    expect(hostile).toEqual({ attempts: 8, accepted: [] });

    // The undo deletes only the quarantine ACL it planned, and moves subnets only within the VPC.
    const undo = await t.engine.requestUndo(run.id, requester);
    if (!undo) throw new Error(`no undo: ${t.told.at(-1)?.text}`);
    await t.engine.decide(undo.id, 'U0LEAD1', 'approve', CHANNEL);
    const restored = await t.engine.decide(undo.id, 'U0LEAD3', 'approve', CHANNEL);
    expect(restored.state).toBe('succeeded');
    const undoSession = respondPolicy(undo.id);
    const quarantineId = (done.result as { execute: { data: { quarantineAclId: string } } }).execute.data
      .quarantineAclId;
    expect(
      isAllowed(respondRole, undoSession, {
        action: 'ec2:DeleteNetworkAcl',
        resource: ec2Arn('network-acl', quarantineId),
        context: { ...target, ...quarantineTag },
      }),
    ).toBe(true);
    expect(
      attempt(undoSession, [
        {
          action: 'ec2:DeleteNetworkAcl',
          resource: ec2Arn('network-acl', other.customAclIds[0] ?? ''),
          context: { ...elsewhere, 'aws:ResourceTag/quell-quarantine': other.vpcId },
        },
        {
          action: 'ec2:DeleteNetworkAcl',
          resource: ec2Arn('network-acl', vpc.customAclIds[0] ?? ''),
          context: target,
        },
        {
          action: 'ec2:ReplaceNetworkAclAssociation',
          resource: ec2Arn('subnet', other.subnetIds[0] ?? ''),
          context: elsewhere,
        },
      ]),
    ).toEqual({ attempts: 3, accepted: [] });
  });

  it('the planning sessions get only the runbook’s declared read actions, never `*`', () => {
    const planning = proxy.requests.filter(
      (r) => r.action === 'AssumeRole' && r.params.RoleArn?.endsWith(':role/quell-read'),
    );
    expect(planning.length).toBeGreaterThan(0);
    for (const r of planning) {
      const policy = JSON.parse(r.params.Policy ?? '{}') as PolicyDocument;
      const actions = policy.Statement.flatMap((s) => [s.Action].flat()) as string[];
      expect(actions.length).toBeGreaterThan(0);
      expect(actions.every((a) => /^[a-z0-9]+:[A-Za-z]+$/.test(a))).toBe(true);
      expect(verdictOf(policy, { action: 'iam:UpdateAccessKey', resource: '*' })).toBe('none');
      expect(verdictOf(policy, { action: 'ec2:ReplaceNetworkAclAssociation', resource: '*' })).toBe('none');
    }
  });
});

describe('session policies of large plans and of rotate-secret', () => {
  const target = { partition: 'aws', accountId: '111122223333', region: 'eu-west-1' };
  const arn = (kind: string, id: string) => `arn:aws:ec2:eu-west-1:111122223333:${kind}/${id}`;
  const isolatePlan = (subnets: number) =>
    ({
      data: {
        vpcId: 'vpc-0aaaaaaaaaaaaaaa1',
        allow: null,
        reuseAclId: null,
        moves: Array.from({ length: subnets }, (_, i) => ({
          subnetId: `subnet-${i.toString(16).padStart(17, '0')}`,
          aclId: 'acl-0bbbbbbbbbbbbbbb1',
        })),
        alreadyQuarantined: [],
      },
    }) as unknown as Plan<never>;
  const inTarget = { 'ec2:Vpc': arn('vpc', 'vpc-0aaaaaaaaaaaaaaa1') };

  it('a 200-subnet isolation fits in 2048 characters and still stays in its VPC (attack: outgrow the session policy)', () => {
    const policy = buildSessionPolicy(isolateGrants(isolatePlan(200), target));
    expect(policy.length).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);
    const role = buildPermissionsPolicy(RUNBOOKS, 'respond');
    expect(
      isAllowed(role, policy, {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: arn('subnet', `subnet-${(199).toString(16).padStart(17, '0')}`),
        context: inTarget,
      }),
    ).toBe(true);
    expect(
      isAllowed(role, policy, {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: arn('subnet', 'subnet-0ccccccccccccccc1'),
        context: { 'ec2:Vpc': arn('vpc', 'vpc-0ddddddddddddddd1') },
      }),
    ).toBe(false);
  });

  it('a small isolation names its subnets: a subnet of the same VPC outside the plan is refused', () => {
    const policy = buildSessionPolicy(isolateGrants(isolatePlan(3), target));
    expect(policy).toContain(arn('subnet', `subnet-${(2).toString(16).padStart(17, '0')}`));
    expect(
      isAllowed(buildPermissionsPolicy(RUNBOOKS, 'respond'), policy, {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: arn('subnet', 'subnet-0eeeeeeeeeeeeeee1'),
        context: inTarget,
      }),
    ).toBe(false);
  });

  it('a restore of 500 subnets is refused before approval rather than sent without limits', () => {
    const plan = {
      data: {
        vpcId: 'vpc-0aaaaaaaaaaaaaaa1',
        moves: Array.from({ length: 500 }, (_, i) => ({
          subnetId: `subnet-${i.toString(16).padStart(17, '0')}`,
          fromAclId: 'acl-0bbbbbbbbbbbbbbb1',
          toAclId: `acl-${i.toString(16).padStart(17, '0')}`,
        })),
        deleteAclIds: Array.from({ length: 120 }, (_, i) => `acl-${i.toString(16).padStart(17, 'f')}`),
        settle: [],
      },
    } as unknown as Plan<never>;
    // The broad form (ACLs and subnets of the VPC, tagged quarantine ACLs) fits.
    const policy = buildSessionPolicy(restoreGrants(plan, target));
    expect(policy.length).toBeLessThanOrEqual(MAX_SESSION_POLICY_CHARS);
    // A grant without a broad form that cannot fit: refused (PlanRefusedError), never sent unlimited.
    const many = Array.from({ length: 400 }, (_, i) =>
      arn('network-acl', `acl-${i.toString(16).padStart(17, '0')}`),
    );
    expect(() => buildSessionPolicy([{ actions: ['ec2:DeleteNetworkAcl'], resources: many }])).toThrow(
      /too many resources/,
    );
  });

  it('a runbook that declares no action gets a session that may do nothing, not the whole role', () => {
    const policy = buildSessionPolicy([{ actions: [], resources: ['*'] }]);
    expect(policy).toBe(DENY_EVERYTHING);
    const role = buildPermissionsPolicy(RUNBOOKS, 'respond');
    expect(isAllowed(role, policy, { action: 'iam:UpdateAccessKey', resource: '*' })).toBe(false);
    expect(() => buildSessionPolicy([{ actions: ['ec2:*'], resources: ['*'] }])).toThrow(/wildcard/);
  });

  it("rotate-secret's session rotates only its secret and invokes only its Lambda (attack: rotate another secret)", () => {
    const secret = 'arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/db-AbCdEf';
    const lambda = 'arn:aws:lambda:eu-west-1:111122223333:function:rotate-prod-db';
    const plan = {
      material: { rotationLambdaArn: lambda },
      data: { arn: secret, name: 'prod/db', currentVersionId: 'v1' },
    } as unknown as Plan<never>;
    const policy = buildSessionPolicy(rotateGrants(plan));
    const role = buildPermissionsPolicy(RUNBOOKS, 'respond');
    expect(isAllowed(role, policy, { action: 'secretsmanager:RotateSecret', resource: secret })).toBe(true);
    expect(isAllowed(role, policy, { action: 'lambda:InvokeFunction', resource: lambda })).toBe(true);
    const tried = [
      { action: 'secretsmanager:RotateSecret', resource: secret.replace('prod/db', 'prod/payments') },
      { action: 'secretsmanager:DescribeSecret', resource: secret.replace('prod/db', 'prod/payments') },
      { action: 'secretsmanager:GetSecretValue', resource: secret },
      { action: 'lambda:InvokeFunction', resource: lambda.replace('rotate-prod-db', 'anything-else') },
    ];
    expect(tried.filter((r) => isAllowed(role, policy, r))).toEqual([]);
  });
});

describe('quell iam-policy narrows the roles and the trust policy', () => {
  let dir: string;
  let output: {
    readRole: { permissions: PolicyDocument; trust: PolicyDocument };
    respondRole: { permissions: PolicyDocument; trust: PolicyDocument };
  };
  const acct = '444455556666';
  const acl = `arn:aws:ec2:eu-west-1:${acct}:network-acl/acl-0123456789abcdef0`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quell-iam-'));
    const file = join(dir, 'quell.yaml');
    writeFileSync(
      file,
      [
        'aws:',
        '  region: us-east-1',
        'accounts:',
        '  - alias: prod',
        `    id: "${acct}"`,
        '    regions: [eu-west-1]',
        '    roles:',
        `      read: arn:aws:iam::${acct}:role/quell-read`,
        `      respond: arn:aws:iam::${acct}:role/quell-respond`,
        'approvals:',
        '  approvers: [U0LEAD1]',
        '  identities:',
        `    U0ONCALL: ["arn:aws:iam::${acct}:user/oncall-erin"]`,
        '',
      ].join('\n'),
    );
    const saved = process.env.QUELL_CONFIG;
    process.env.QUELL_CONFIG = file;
    let printed = '';
    try {
      expect(
        await runCli(['iam-policy', '--principal', 'arn:aws:iam::999999999999:role/quell-bot'], (text) => {
          printed += text;
        }),
      ).toBe(0);
    } finally {
      if (saved === undefined) delete process.env.QUELL_CONFIG;
      else process.env.QUELL_CONFIG = saved;
    }
    output = JSON.parse(printed);
  });
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('deletes and writes entries only on quarantine ACLs, tags only on create (attack: delete or open any network ACL with the respond role)', () => {
    const role = output.respondRole.permissions;
    const region = { 'aws:RequestedRegion': 'eu-west-1' };
    const ok = (r: EvaluatedRequest) => verdictOf(role, r) === 'allow';
    expect(
      ok({
        action: 'ec2:DeleteNetworkAcl',
        resource: acl,
        context: { ...region, 'aws:ResourceTag/quell-quarantine': 'vpc-0abc' },
      }),
    ).toBe(true);
    const tried: EvaluatedRequest[] = [
      { action: 'ec2:DeleteNetworkAcl', resource: acl, context: region },
      { action: 'ec2:CreateNetworkAclEntry', resource: acl, context: region },
      { action: 'ec2:CreateTags', resource: acl, context: region },
      {
        action: 'ec2:CreateTags',
        resource: `arn:aws:ec2:eu-west-1:${acct}:instance/i-0123456789abcdef0`,
        context: {
          ...region,
          'ec2:CreateAction': 'CreateNetworkAcl',
          'aws:RequestTag/quell-quarantine': 'vpc-0abc',
        },
      },
      { action: 'ec2:CreateNetworkAcl', resource: acl, context: region },
    ];
    expect({ attempts: tried.length, accepted: tried.filter(ok).length }).toEqual({
      attempts: 5,
      accepted: 0,
    });
  });

  it('tags, untags and deletes only what an instance isolation made, and passes roles only to EC2 (attack: use isolate-instance grants elsewhere)', () => {
    const role = output.respondRole.permissions;
    const region = { 'aws:RequestedRegion': 'eu-west-1' };
    const ok = (r: EvaluatedRequest) => verdictOf(role, r) === 'allow';
    const instance = `arn:aws:ec2:eu-west-1:${acct}:instance/i-0123456789abcdef0`;
    const group = `arn:aws:ec2:eu-west-1:${acct}:security-group/sg-0123456789abcdef0`;
    const profileRole = `arn:aws:iam::${acct}:role/app-instance-role`;
    // IAM's statements hold in IAM's endpoint region.
    const iamRegion = { 'aws:RequestedRegion': 'us-east-1' };
    // What an isolation and its release do is allowed…
    const legitimate: EvaluatedRequest[] = [
      {
        action: 'ec2:CreateTags',
        resource: instance,
        context: { ...region, 'aws:RequestTag/quell-isolated': 'rabcdefghijkl' },
      },
      {
        action: 'ec2:DeleteTags',
        resource: instance,
        context: { ...region, 'aws:ResourceTag/quell-isolated': 'rabcdefghijkl' },
      },
      {
        action: 'ec2:DeleteSecurityGroup',
        resource: group,
        context: { ...region, 'aws:ResourceTag/quell-quarantine': 'vpc-0abc' },
      },
      {
        action: 'iam:PassRole',
        resource: profileRole,
        context: { ...iamRegion, 'iam:PassedToService': 'ec2.amazonaws.com' },
      },
    ];
    expect(legitimate.filter(ok)).toHaveLength(legitimate.length);
    // …and nothing like it on anything else.
    const tried: EvaluatedRequest[] = [
      {
        action: 'ec2:CreateTags',
        resource: instance,
        context: { ...region, 'aws:RequestTag/Owner': 'mallory' },
      },
      { action: 'ec2:DeleteTags', resource: instance, context: region },
      { action: 'ec2:DeleteSecurityGroup', resource: group, context: region },
      { action: 'ec2:RevokeSecurityGroupEgress', resource: group, context: region },
      {
        action: 'iam:PassRole',
        resource: profileRole,
        context: { ...iamRegion, 'iam:PassedToService': 'lambda.amazonaws.com' },
      },
      { action: 'iam:PassRole', resource: profileRole, context: iamRegion },
    ];
    expect({ attempts: tried.length, accepted: tried.filter(ok).length }).toEqual({
      attempts: 6,
      accepted: 0,
    });
  });

  it('holds only in the configured regions (attack: use the respond role in a region quell does not manage)', () => {
    const role = output.respondRole.permissions;
    const tag = { 'aws:ResourceTag/quell-quarantine': 'vpc-0abc' };
    expect(
      verdictOf(role, {
        action: 'ec2:DeleteNetworkAcl',
        resource: acl,
        context: { ...tag, 'aws:RequestedRegion': 'eu-west-1' },
      }),
    ).toBe('allow');
    expect(
      verdictOf(role, {
        action: 'iam:UpdateAccessKey',
        resource: `arn:aws:iam::${acct}:user/alice`,
        context: { 'aws:RequestedRegion': 'us-east-1' },
      }),
    ).toBe('allow');
    const tried: EvaluatedRequest[] = [
      {
        action: 'ec2:DeleteNetworkAcl',
        resource: acl.replace('eu-west-1', 'ap-south-1'),
        context: { ...tag, 'aws:RequestedRegion': 'ap-south-1' },
      },
      {
        action: 'ec2:ReplaceNetworkAclAssociation',
        resource: '*',
        context: { 'aws:RequestedRegion': 'sa-east-1' },
      },
      {
        action: 'secretsmanager:RotateSecret',
        resource: '*',
        context: { 'aws:RequestedRegion': 'me-south-1' },
      },
      { action: 'cloudtrail:LookupEvents', resource: '*', context: { 'aws:RequestedRegion': 'ap-east-1' } },
    ];
    expect(tried.filter((r) => verdictOf(role, r) === 'allow')).toEqual([]);
    for (const s of output.readRole.permissions.Statement)
      expect(
        (s.Condition as Record<string, Record<string, unknown>>).StringEquals?.['aws:RequestedRegion'],
      ).toBeDefined();
  });

  it("accepts only quell's source identities with every session tag (attack: assume the respond role as anyone)", () => {
    const trust = output.respondRole.trust;
    const tags = (identity: string) => ({
      'sts:RoleSessionName': 'quell-r123',
      'sts:SourceIdentity': identity,
      'aws:RequestTag/quell-run-id': 'r123',
      'aws:RequestTag/quell-runbook': 'disable-key',
      'aws:RequestTag/quell-requester': identity,
      'aws:TagKeys': ['quell-run-id', 'quell-runbook', 'quell-requester'],
    });
    const assume = (context: Record<string, string | string[]>) =>
      verdictOf(trust, { action: 'sts:AssumeRole', resource: '*', context }) === 'allow';
    for (const identity of ['U0RESP', 'W0GRIDUSER', 'quell-scheduler', 'oncall-erin'])
      expect(assume(tags(identity))).toBe(true);
    const { 'aws:RequestTag/quell-runbook': _runbook, ...withoutRunbook } = tags('U0RESP');
    const { 'sts:SourceIdentity': _identity, ...withoutIdentity } = tags('U0RESP');
    const tried = [tags('mallory'), tags('admin'), tags('S0SECLEADS'), withoutRunbook, withoutIdentity];
    expect({ attempts: tried.length, accepted: tried.filter(assume).length }).toEqual({
      attempts: 5,
      accepted: 0,
    });
  });
});
