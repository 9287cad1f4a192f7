/**
 * isolate-vpc attacked from inside the account, against moto: network ACLs that carry quell's quarantine
 * tag (`quell-quarantine=<vpc>`) but whose rules let traffic through. A tag is a label anyone with
 * ec2:CreateTags can write; quell must judge an ACL by its rules. Each test counts the subnets the
 * attacker tried to pass off as isolated, and how many quell accepted as isolated while traffic could flow
 * (a subnet left on the attacker's ACL by a run that reports success).
 */
import {
  CreateNetworkAclCommand,
  CreateNetworkAclEntryCommand,
  type EC2Client,
  type NetworkAcl,
  ReplaceNetworkAclAssociationCommand,
} from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import { isolateVpc, TAG } from '../../src/runbooks/isolate-vpc.ts';
import { restoreVpc } from '../../src/runbooks/restore-vpc.ts';
import { buildRunCard } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import {
  adminEc2,
  associationOf,
  createTestVpc,
  currentAcls,
  type TestVpc,
  vpcAcls,
} from '../support/network-fixtures.ts';
import { CHANNEL, startTestEngine, type TestEngine } from '../support/test-engine.ts';

const requester = { user: 'U0RESP', channel: CHANNEL, source: 'slack' as const };

/** The rules quell writes for a quarantine without a forensic network, as "direction number action cidr". */
const DENY_ALL = [
  'in 32765 deny 0.0.0.0/0',
  'in 32766 deny ::/0',
  'out 32765 deny 0.0.0.0/0',
  'out 32766 deny ::/0',
];

/** An ACL's rules as moto has them, without AWS's own catch-all (rule 32767). */
function rulesOf(acl: NetworkAcl | undefined): string[] {
  return (acl?.Entries ?? [])
    .filter((e) => e.RuleNumber !== 32767)
    .map(
      (e) => `${e.Egress ? 'out' : 'in'} ${e.RuleNumber} ${e.RuleAction} ${e.CidrBlock ?? e.Ipv6CidrBlock}`,
    )
    .sort();
}

async function addRule(
  ec2: EC2Client,
  aclId: string,
  ruleNumber: number,
  action: 'allow' | 'deny',
  cidr: string,
) {
  for (const egress of [false, true]) {
    await ec2.send(
      new CreateNetworkAclEntryCommand({
        NetworkAclId: aclId,
        RuleNumber: ruleNumber,
        Protocol: '-1',
        RuleAction: action,
        Egress: egress,
        ...(cidr.includes(':') ? { Ipv6CidrBlock: cidr } : { CidrBlock: cidr }),
      }),
    );
  }
}

/**
 * The attacker's ACL: tagged exactly as quell tags a quarantine, with quell's deny-all rules at the bottom,
 * and `allow all` at rule 1 in both directions, IPv4 and IPv6, which AWS evaluates first.
 */
async function createTaggedAcl(ec2: EC2Client, vpcId: string, openRules: boolean): Promise<string> {
  const out = await ec2.send(
    new CreateNetworkAclCommand({
      VpcId: vpcId,
      TagSpecifications: [
        {
          ResourceType: 'network-acl',
          Tags: [
            { Key: 'Name', Value: 'quell-quarantine-rattacker0000' },
            { Key: TAG.quarantine, Value: vpcId },
            { Key: TAG.runId, Value: 'rattacker0000' },
            { Key: TAG.allow, Value: 'none' },
          ],
        },
      ],
    }),
  );
  const aclId = out.NetworkAcl?.NetworkAclId;
  if (!aclId) throw new Error('moto gave no ACL');
  await addRule(ec2, aclId, 32765, 'deny', '0.0.0.0/0');
  await addRule(ec2, aclId, 32766, 'deny', '::/0');
  if (openRules) await openAcl(ec2, aclId);
  return aclId;
}

/** Adds `allow all` at rule 1, both directions, IPv4 and IPv6. */
async function openAcl(ec2: EC2Client, aclId: string): Promise<void> {
  await addRule(ec2, aclId, 1, 'allow', '0.0.0.0/0');
  await addRule(ec2, aclId, 2, 'allow', '::/0');
}

async function moveOnto(ec2: EC2Client, vpc: TestVpc, subnetIds: string[], aclId: string): Promise<void> {
  for (const subnetId of subnetIds) {
    await ec2.send(
      new ReplaceNetworkAclAssociationCommand({
        AssociationId: await associationOf(ec2, vpc.vpcId, subnetId),
        NetworkAclId: aclId,
      }),
    );
  }
}

describe('isolate-vpc judges a quarantine ACL by its rules, not its tag (issue 9, item 1)', () => {
  const accountId = randomAccountId();
  let ec2: EC2Client;
  let t: TestEngine;
  /** Run between the real execute and the real verify, in the engine's own call (set per test). */
  let duringRun: (() => Promise<void>) | undefined;
  /** Run between the real recheck and execute (set per test). */
  let afterRecheck: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    ec2 = await adminEc2(accountId);
    // The real runbook, with a hook where an attacker acts while the run is in flight.
    const attacked = {
      ...isolateVpc,
      recheck: async (ctx, plan) => {
        const material = await isolateVpc.recheck?.(ctx, plan);
        await afterRecheck?.();
        return material ?? null;
      },
      execute: async (ctx, plan) => {
        const result = await isolateVpc.execute(ctx, plan);
        await duringRun?.();
        return result;
      },
    } satisfies typeof isolateVpc;
    t = await startTestEngine({
      accounts: [accountConfig('prod', accountId)],
      runbooks: [attacked as AnyRunbook, restoreVpc as AnyRunbook],
    });
  });
  afterAll(async () => {
    await t?.close();
    ec2?.destroy();
  });

  async function isolate(vpcId: string, options: Record<string, string> = {}): Promise<RunRecord> {
    const run = await t.engine.start(
      t.engine.prepare('isolate-vpc', { positional: [vpcId], options }, requester),
      requester,
    );
    if (!run) throw new Error(`not planned: ${t.told.at(-1)?.text}`);
    expect(run.state).toBe('awaiting_approval');
    return run;
  }
  async function approve(runId: string): Promise<RunRecord> {
    await t.engine.decide(runId, 'U0LEAD1', 'approve', CHANNEL);
    return t.engine.decide(runId, 'U0LEAD2', 'approve', CHANNEL);
  }
  function cardText(runId: string): string {
    const view = t.shown.filter((v) => v.run.id === runId).at(-1);
    if (!view) throw new Error('no card');
    return JSON.stringify(buildRunCard(view).blocks);
  }
  /** Subnets a succeeded run leaves on an ACL whose rules are not exactly deny-all: accepted as isolated. */
  async function acceptedAsIsolated(run: RunRecord, vpc: TestVpc): Promise<number> {
    if (run.state !== 'succeeded') return 0;
    const acls = await vpcAcls(ec2, vpc.vpcId);
    const now = await currentAcls(ec2, vpc.vpcId);
    return vpc.subnetIds.filter((s) => {
      const rules = rulesOf(acls.find((a) => a.NetworkAclId === now.get(s)));
      return JSON.stringify(rules) !== JSON.stringify(DENY_ALL);
    }).length;
  }

  it('an allow-all ACL tagged quell-quarantine=<vpc> passes as a quarantine: 2 subnets tried, 0 accepted', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 4, customAcls: 1 });
    const fake = await createTaggedAcl(ec2, vpc.vpcId, true);
    const tried = vpc.subnetIds.slice(0, 2);
    await moveOnto(ec2, vpc, tried, fake);

    const run = await isolate(vpc.vpcId);
    // The card names the attacker's subnets NOT isolated, says why, and plans to move them like the others.
    const card = cardText(run.id);
    expect(card).toContain('NOT isolated');
    for (const s of tried) expect(card).toMatch(new RegExp(`NOT isolated: [^"]*${s}[^"]* are on ${fake}`));
    expect(card).toContain('rule 1 ingress allow 0.0.0.0/0');
    expect(card.match(/ec2:ReplaceNetworkAclAssociation/g)).toHaveLength(4);

    const done = await approve(run.id);
    expect(done.state).toBe('succeeded');
    // Read back from moto: every subnet on an ACL with exactly the deny-all rules; the attacker's ACL holds none.
    const now = await currentAcls(ec2, vpc.vpcId);
    const acls = await vpcAcls(ec2, vpc.vpcId);
    for (const s of vpc.subnetIds) {
      expect(now.get(s)).not.toBe(fake);
      expect(rulesOf(acls.find((a) => a.NetworkAclId === now.get(s)))).toEqual(DENY_ALL);
    }
    expect(await acceptedAsIsolated(done, vpc)).toBe(0);

    // Undo puts them back where they were, the attacker's ACL included, and keeps that ACL for them.
    const undo = await t.engine.requestUndo(run.id, requester);
    if (!undo) throw new Error(`no undo: ${t.told.at(-1)?.text}`);
    await t.engine.decide(undo.id, 'U0LEAD1', 'approve', CHANNEL);
    expect((await t.engine.decide(undo.id, 'U0LEAD3', 'approve', CHANNEL)).state).toBe('succeeded');
    const back = await currentAcls(ec2, vpc.vpcId);
    for (const s of tried) expect(back.get(s)).toBe(fake);
  });

  it('subnets moved onto a tagged allow-all ACL while the run executes are named NOT isolated, and the run does not succeed', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 4, customAcls: 1 });
    const fake = await createTaggedAcl(ec2, vpc.vpcId, true);
    const tried = vpc.subnetIds.slice(2, 4);
    const run = await isolate(vpc.vpcId);
    duringRun = () => moveOnto(ec2, vpc, tried, fake);
    const done = await approve(run.id).finally(() => {
      duringRun = undefined;
    });
    expect(done.state).not.toBe('succeeded');
    expect(done.state).toBe('failed');
    const verify = (done.result as { verify: { ok: boolean; summary: string } }).verify;
    expect(verify.ok).toBe(false);
    expect(verify.summary).toContain('NOT isolated: ');
    for (const s of tried) expect(verify.summary).toContain(`${s} (on ${fake})`);
    expect(verify.summary).toContain(`${fake} is tagged as a quarantine but: it has rule 1 ingress allow`);
    for (const s of tried) expect(cardText(run.id)).toContain(`${s} (on ${fake})`);
    expect(t.replies.some((r) => r.runId === run.id && r.text.includes('NOT isolated'))).toBe(true);
    expect(await acceptedAsIsolated(done, vpc)).toBe(0);

    // A new request plans to move them off the attacker's ACL, and puts them on a real quarantine.
    const again = await isolate(vpc.vpcId);
    expect(cardText(again.id).match(/ec2:ReplaceNetworkAclAssociation/g)).toHaveLength(2);
    const fixed = await approve(again.id);
    expect(fixed.state).toBe('succeeded');
    const now = await currentAcls(ec2, vpc.vpcId);
    const acls = await vpcAcls(ec2, vpc.vpcId);
    for (const s of vpc.subnetIds)
      expect(rulesOf(acls.find((a) => a.NetworkAclId === now.get(s)))).toEqual(DENY_ALL);
    expect(await acceptedAsIsolated(fixed, vpc)).toBe(0);
  });

  it('a quarantine ACL opened after the plan left subnets on it: 2 subnets tried, 0 accepted (the run is superseded)', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 4, customAcls: 1 });
    // A real deny-all ACL tagged as a quarantine (an earlier isolation, say) holds two subnets.
    const earlier = await createTaggedAcl(ec2, vpc.vpcId, false);
    const tried = vpc.subnetIds.slice(0, 2);
    await moveOnto(ec2, vpc, tried, earlier);
    const run = await isolate(vpc.vpcId, { allow: '10.9.0.0/24' });
    // Its rules deny everything: the plan leaves those two where they are.
    expect(cardText(run.id).match(/ec2:ReplaceNetworkAclAssociation/g)).toHaveLength(2);
    expect(cardText(run.id)).toContain('already on an ACL whose rules deny all traffic');
    // After the plan, before the approval, the attacker opens that ACL.
    await openAcl(ec2, earlier);
    const done = await approve(run.id);
    expect(done.state).toBe('superseded');
    expect(await acceptedAsIsolated(done, vpc)).toBe(0);
    // The new request moves them too.
    await t.engine.idle();
    const [next] = await t.store.listRuns({ requester: 'U0RESP', limit: 1 });
    if (!next) throw new Error('no new request');
    expect(next.id).not.toBe(run.id);
    expect(cardText(next.id).match(/ec2:ReplaceNetworkAclAssociation/g)).toHaveLength(4);
  });

  it('a reused quarantine ACL opened between the recheck and the moves: the run is not succeeded, every subnet named', async () => {
    const vpc = await createTestVpc(ec2, { subnets: 3, customAcls: 1 });
    // An unused deny-all ACL left by an earlier run: the plan reuses it instead of creating one.
    const earlier = await createTaggedAcl(ec2, vpc.vpcId, false);
    const run = await isolate(vpc.vpcId);
    expect(JSON.stringify(run.plan)).toContain(`reuse ${earlier}`);
    afterRecheck = () => openAcl(ec2, earlier);
    const done = await approve(run.id).finally(() => {
      afterRecheck = undefined;
    });
    expect(done.state).not.toBe('succeeded');
    const verify = (done.result as { verify: { summary: string } }).verify;
    for (const s of vpc.subnetIds) expect(verify.summary).toContain(`${s} (on`);
    expect(verify.summary).toContain('NOT isolated');
    expect(await acceptedAsIsolated(done, vpc)).toBe(0);
  });
});
