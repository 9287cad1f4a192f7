/**
 * Many accounts: the roles come from `quell iam-policy --format cloudformation` (run as a process),
 * deployed as a StackSet from a management account into two member accounts in moto; quell then reaches
 * both through those assumed roles. `disable-key` without `account=` finds the owning account (each
 * permitted account's read role searched in parallel); every other runbook demands `account=`.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CloudFormationClient,
  CreateStackInstancesCommand,
  CreateStackSetCommand,
  ListStackInstancesCommand,
} from '@aws-sdk/client-cloudformation';
import { GetRoleCommand, GetRolePolicyCommand, type IAMClient } from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPermissionsPolicy, rolePolicyOptionsOf } from '../../src/aws/build-iam-policies.ts';
import { loadConfigFile } from '../../src/config.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import {
  accountConfig,
  adminCredentials,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { startTestQuell, type TestQuell, waitForRunOf, waitForRunState } from '../support/test-quell.ts';

const run = promisify(execFile);

/** A CloudFormation client acting as an administrator of `accountId` in moto. */
async function adminCloudFormation(accountId: string): Promise<CloudFormationClient> {
  return new CloudFormationClient({ region: 'us-east-1', credentials: await adminCredentials(accountId) });
}

function decodePolicy(document: string | undefined): Record<string, unknown> {
  const raw = document ?? '{}';
  const text = raw.trimStart().startsWith('{') ? raw : decodeURIComponent(raw);
  // moto quirk: an inline policy created by CloudFormation comes back as a Python dict repr. Our
  // policies hold no quotes or booleans, so swapping the quote character makes it JSON again.
  return JSON.parse(text.startsWith("{'") ? text.replace(/'/g, '"') : text) as Record<string, unknown>;
}

describe('many accounts through assumed roles deployed as a StackSet', () => {
  const mgmtId = randomAccountId();
  const prodId = randomAccountId();
  const devId = randomAccountId();
  const botRole = `arn:aws:iam::${mgmtId}:role/quell-bot`;
  const dir = mkdtempSync(join(tmpdir(), 'quell-accounts-'));
  let prodIam: IAMClient;
  let devIam: IAMClient;
  let t: TestQuell;
  const keys: Record<string, string> = {};

  beforeAll(async () => {
    prodIam = await adminIam(prodId);
    devIam = await adminIam(devId);
    keys.prod = await createUserWithKey(prodIam, 'prod-deployer');
    keys.dev = await createUserWithKey(devIam, 'dev-deployer');
    t = await startTestQuell({
      accounts: [accountConfig('prod', prodId), accountConfig('dev', devId)],
      channels: {
        C0INCIDENT: { runbooks: ['*'], accounts: ['*'] },
        C0DEV: { runbooks: ['disable-key', 'key-age'], accounts: ['dev'] },
      },
    });
  });
  afterAll(async () => {
    await t?.close();
    prodIam?.destroy();
    devIam?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('prints a CloudFormation template that deploys both roles as a StackSet into every member account', async () => {
    const configFile = join(dir, 'quell.yaml');
    writeFileSync(
      configFile,
      `accounts:\n${[accountConfig('prod', prodId), accountConfig('dev', devId)]
        .map(
          (a) =>
            `  - alias: ${a.alias}\n    id: "${a.id}"\n    roles:\n      read: ${a.roles.read}\n      respond: ${a.roles.respond}\n`,
        )
        .join('')}`,
    );
    const printed = await run(
      process.execPath,
      ['bin/quell.js', 'iam-policy', '--format', 'cloudformation', '--principal', botRole],
      {
        env: { ...process.env, QUELL_CONFIG: configFile },
      },
    );
    const template = JSON.parse(printed.stdout) as { Resources: Record<string, { Type: string }> };
    expect(Object.values(template.Resources).map((r) => r.Type)).toEqual([
      'AWS::IAM::Role',
      'AWS::IAM::Role',
    ]);

    const cfn = await adminCloudFormation(mgmtId);
    await cfn.send(
      new CreateStackSetCommand({
        StackSetName: 'quell-roles',
        TemplateBody: printed.stdout,
        Capabilities: ['CAPABILITY_NAMED_IAM'],
        PermissionModel: 'SELF_MANAGED',
      }),
    );
    await cfn.send(
      new CreateStackInstancesCommand({
        StackSetName: 'quell-roles',
        Accounts: [prodId, devId],
        Regions: ['us-east-1'],
      }),
    );
    const instances = await cfn.send(new ListStackInstancesCommand({ StackSetName: 'quell-roles' }));
    expect(instances.Summaries?.map((s) => [s.Account, s.Status]).sort()).toEqual(
      [
        [prodId, 'CURRENT'],
        [devId, 'CURRENT'],
      ].sort(),
    );
    cfn.destroy();

    for (const [iam, tier] of [
      [prodIam, 'read'],
      [prodIam, 'respond'],
      [devIam, 'read'],
      [devIam, 'respond'],
    ] as const) {
      const role = await iam.send(new GetRoleCommand({ RoleName: `quell-${tier}` }));
      const trust = decodePolicy(role.Role?.AssumeRolePolicyDocument) as {
        Statement: {
          Principal: { AWS: string };
          Action: string[];
          Condition: Record<string, Record<string, unknown>>;
        }[];
      };
      expect(trust.Statement[0]?.Principal.AWS).toBe(botRole);
      expect(trust.Statement[0]?.Action).toEqual([
        'sts:AssumeRole',
        'sts:SetSourceIdentity',
        'sts:TagSession',
      ]);
      expect(trust.Statement[0]?.Condition.StringLike).toEqual({
        'sts:RoleSessionName': 'quell-*',
        // Only the source identities quell sets: Slack user ids and the scheduler (no operators configured).
        'sts:SourceIdentity': ['U*', 'W*', 'quell-scheduler'],
        // Requires every session tag to be present, not only limits which tags may be set.
        'aws:RequestTag/quell-run-id': 'r*',
        'aws:RequestTag/quell-runbook': '?*',
        'aws:RequestTag/quell-requester': '?*',
      });
      // No external id configured: the condition is left out rather than left empty.
      expect(trust.Statement[0]?.Condition.StringEquals).toBeUndefined();
      const policy = await iam.send(
        new GetRolePolicyCommand({ RoleName: `quell-${tier}`, PolicyName: `quell-${tier}` }),
      );
      // Kept to the configured regions, as `quell iam-policy` reads them from the file it was given.
      expect(decodePolicy(policy.PolicyDocument)).toEqual(
        buildPermissionsPolicy(RUNBOOKS, tier, rolePolicyOptionsOf(loadConfigFile(configFile))),
      );
    }
  });

  it('disable-key without account= finds the owning account and acts only there', async () => {
    await t.command(`disable-key ${keys.dev}`, 'U0RESP');
    const pending = await waitForRunOf(t.quell, 'U0RESP', ['awaiting_approval', 'plan_failed']);
    expect(pending).toMatchObject({ state: 'awaiting_approval', accountAlias: 'dev', accountId: devId });
    await t.click('quell_approve', pending.id, 'U0LEAD1');
    expect((await waitForRunState(t.quell, pending.id, ['succeeded', 'failed'])).state).toBe('succeeded');
    expect(await keyStatus(devIam, 'dev-deployer', keys.dev ?? '')).toBe('Inactive');
    expect(await keyStatus(prodIam, 'prod-deployer', keys.prod ?? '')).toBe('Active');

    const assumed = (await t.quell.store.listAudit({ runId: pending.id }))
      .filter((e) => e.type === 'aws.call' && (e.data as { operation?: string }).operation === 'AssumeRole')
      .map((e) => (e.data as { role: string }).role);
    // The search assumed both accounts' read roles; only the owner's respond role was assumed.
    expect(assumed).toEqual(
      expect.arrayContaining([
        `arn:aws:iam::${prodId}:role/quell-read`,
        `arn:aws:iam::${devId}:role/quell-read`,
      ]),
    );
    expect(assumed.filter((r) => r.endsWith('quell-respond'))).toEqual([
      `arn:aws:iam::${devId}:role/quell-respond`,
    ]);
  });

  it('searches only the accounts the channel allows, and says where it looked', async () => {
    await t.command(`disable-key ${keys.prod}`, 'U0RESP2', 'C0DEV');
    await t.settle();
    expect(await t.quell.store.listRuns({ requester: 'U0RESP2', limit: 5 })).toHaveLength(0);
    const told = t.slack.responses.find((r) => r.method === '/response/U0RESP2');
    expect(String(told?.body.text)).toContain('No configured account has access key');
    expect(String(told?.body.text)).toContain('(searched dev)');
    expect(await keyStatus(prodIam, 'prod-deployer', keys.prod ?? '')).toBe('Active');
  });

  it('every other runbook demands account= when several accounts are configured: 0 accepted', async () => {
    const samples: Record<string, string> = {
      trail: 'trail key=AKIAIOSFODNN7EXAMPLE',
      'isolate-vpc': 'isolate-vpc vpc-0abc1234def567890',
      'restore-vpc': 'restore-vpc vpc-0abc1234def567890',
      'isolate-instance': 'isolate-instance i-0abc1234def567890',
      'release-instance': 'release-instance i-0abc1234def567890',
      'rotate-secret': 'rotate-secret app/db-password',
      drift: 'drift payments-stack',
      'key-age': 'key-age',
    };
    const others = t.quell.engine.runbooks.filter((r) => !r.locateAccount).map((r) => r.id);
    expect(
      others.filter((id) => !samples[id]),
      'add a sample for every registered runbook',
    ).toEqual([]);
    let accepted = 0;
    for (const id of others) {
      const ack = await t.command(samples[id] ?? id, 'U0RESP3');
      expect(String(ack.json?.text)).toContain('several accounts are configured: add `account=` (prod, dev)');
    }
    await t.settle();
    accepted += (await t.quell.store.listRuns({ requester: 'U0RESP3', limit: 50 })).length;
    expect(others.length).toBeGreaterThan(0);
    expect(accepted).toBe(0);
  });

  it('key-age account=… reads only that account through its read role', async () => {
    await t.command('key-age account=prod max-age=1 max-unused=1', 'U0RESP4');
    const done = await waitForRunOf(t.quell, 'U0RESP4', ['succeeded', 'failed', 'plan_failed']);
    expect(done).toMatchObject({ state: 'succeeded', accountId: prodId });
    const report = (done.result as { execute: { data: { report: { findings: { userName: string }[] } } } })
      .execute.data.report;
    expect(report.findings.map((f) => f.userName)).toEqual([]); // created moments ago: younger than a day
    const roles = (await t.quell.store.listAudit({ runId: done.id }))
      .filter((e) => e.type === 'aws.call')
      .map((e) => (e.data as { role: string; account: string }).account);
    expect(new Set(roles)).toEqual(new Set([prodId]));
  });
});
