/**
 * Follow-up buttons declared by runbooks: disable-key's "Look up this key's activity" reads the key from
 * the stored run and is refused on anything but a succeeded disable-key run (moved here from
 * trail.test.ts, where the button's arguments used to live); the card renders every runbook's
 * follow-ups the same way, carrying only the run id; a follow-up naming an unknown runbook is refused.
 */
import { describe, expect, it } from 'vitest';
import { RunStateConflictError } from '../../src/errors.ts';
import type { AnyRunbook } from '../../src/runbooks/define-runbook.ts';
import { disableKey } from '../../src/runbooks/disable-key.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';
import { listFollowUps, resolveFollowUp } from '../../src/runbooks/resolve-follow-up.ts';
import { trail } from '../../src/runbooks/trail.ts';
import { ACTION, type Block, buildRunCard } from '../../src/slack/build-run-card.ts';
import type { RunRecord } from '../../src/store/store.ts';

const run = (overrides: Partial<RunRecord>): RunRecord =>
  ({
    id: 'rabcdefghijkl',
    runbook: 'disable-key',
    kind: 'run',
    state: 'succeeded',
    accountAlias: 'prod',
    plan: {
      summary: 'Disable AKIAIOSFODNN7EXAMPLE',
      facts: [],
      calls: [],
      notes: [],
      material: null,
      data: { keyId: 'AKIAIOSFODNN7EXAMPLE' },
    },
    requester: 'U0RESP',
    reason: null,
    result: null,
    error: null,
    requiredApprovals: 1,
    breakGlass: false,
    reviewState: null,
    ...overrides,
  }) as RunRecord;

const lookUp = (r: RunRecord) => resolveFollowUp(RUNBOOKS, ACTION.trailKey, r);

describe("disable-key's lookup button", () => {
  it('is declared by disable-key, under the action id posted cards carry', () => {
    expect(listFollowUps(RUNBOOKS).map(({ owner, followUp }) => [owner.id, followUp.actionId])).toEqual([
      ['disable-key', ACTION.trailKey],
      ['disable-key', 'quell_revoke_role_sessions_1'],
      ['disable-key', 'quell_revoke_role_sessions_2'],
      ['disable-key', 'quell_revoke_role_sessions_3'],
    ]);
  });

  it('reads the key from the stored plan: the last 24 hours, in the same account', () => {
    expect(lookUp(run({}))).toEqual({
      runbook: 'trail',
      args: { positional: [], options: { key: 'AKIAIOSFODNN7EXAMPLE', since: '24h', account: 'prod' } },
    });
  });

  it('refuses anything but a succeeded disable-key run with a valid key on record', () => {
    expect(() => lookUp(run({ runbook: 'trail' }))).toThrow(RunStateConflictError);
    expect(() => lookUp(run({ runbook: 'trail' }))).toThrow('is not a succeeded `disable-key` run');
    expect(() => lookUp(run({ state: 'awaiting_approval' }))).toThrow(RunStateConflictError);
    expect(() => lookUp(run({ kind: 'undo' }))).toThrow(RunStateConflictError);
    expect(() => lookUp(run({ plan: { data: { keyId: 'AKIA; rm -rf /' } } }))).toThrow(
      /no access key on record/,
    );
  });
});

describe('follow-ups on the card', () => {
  const buttons = (r: RunRecord, runbook: AnyRunbook) =>
    buildRunCard({ run: r, decisions: [], runbook })
      .blocks.filter((b: Block) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string; text: { text: string } }[]);

  it("shows a runbook's follow-ups on its succeeded runs only, each carrying only the run id", () => {
    const offered = buttons(run({}), disableKey).filter((b) => b.action_id === ACTION.trailKey);
    expect(offered).toEqual([expect.objectContaining({ value: 'rabcdefghijkl' })]);
    expect(offered[0]?.text.text).toBe("Look up this key's activity");
    for (const other of [
      run({ state: 'failed' }),
      run({ kind: 'undo' }),
      run({ state: 'awaiting_approval' }),
    ]) {
      expect(buttons(other, disableKey).some((b) => b.action_id === ACTION.trailKey)).toBe(false);
    }
  });

  it("renders any runbook's declared follow-ups, with no runbook named in the card builder", () => {
    const custom = {
      ...trail,
      id: 'custom',
      followUps: [
        {
          actionId: 'quell_custom_again',
          label: 'Again',
          runbook: 'trail',
          args: () => ({ positional: [], options: {} }),
        },
      ],
    } as AnyRunbook;
    expect(buttons(run({ runbook: 'custom' }), custom).map((b) => [b.action_id, b.value])).toEqual([
      ['quell_custom_again', 'rabcdefghijkl'],
    ]);
  });

  it('refuses a follow-up that starts a runbook nobody registered', () => {
    const broken = {
      ...trail,
      id: 'broken',
      followUps: [
        {
          actionId: 'quell_broken',
          label: 'x',
          runbook: 'nope',
          args: () => ({ positional: [], options: {} }),
        },
      ],
    } as AnyRunbook;
    expect(() => listFollowUps([...RUNBOOKS, broken])).toThrow(/unknown runbook nope/);
  });
});

describe("disable-key's 'Revoke sessions of <role>' buttons", () => {
  const DEPLOY = 'arn:aws:iam::111111111111:role/app/deploy';
  const AUDIT = 'arn:aws:iam::222222222222:role/audit';
  const withRoles = (roles: unknown) =>
    run({
      result: {
        execute: { summary: 'Done', facts: [], data: { assumedRoles: { status: 'ok', roles } } },
      } as RunRecord['result'],
    });
  const revokeButtons = (r: RunRecord) =>
    buildRunCard({ run: r, decisions: [], runbook: disableKey })
      .blocks.filter((b: Block) => b.type === 'actions')
      .flatMap((b) => (b.elements ?? []) as { action_id: string; value: string; text: { text: string } }[])
      .filter((b) => b.action_id.startsWith('quell_revoke_role_sessions_'))
      .map((b) => [b.action_id, b.text.text, b.value]);

  it('offers one button per role the stored run recorded, named after the role, carrying only the run id', () => {
    expect(revokeButtons(withRoles([{ arn: DEPLOY }, { arn: AUDIT }]))).toEqual([
      ['quell_revoke_role_sessions_1', 'Revoke sessions of deploy', 'rabcdefghijkl'],
      ['quell_revoke_role_sessions_2', 'Revoke sessions of audit', 'rabcdefghijkl'],
    ]);
    expect(
      resolveFollowUp(RUNBOOKS, 'quell_revoke_role_sessions_2', withRoles([{ arn: DEPLOY }, { arn: AUDIT }])),
    ).toEqual({
      runbook: 'revoke-role-sessions',
      args: { positional: [AUDIT], options: {} },
    });
  });

  it('offers nothing without recorded roles, and refuses clicks on slots the run does not offer', () => {
    for (const r of [
      run({}),
      withRoles([]),
      withRoles('x'),
      withRoles([{ arn: '<!channel>' }]),
      withRoles([{ arn: `${DEPLOY};x` }]),
    ]) {
      expect(revokeButtons(r)).toEqual([]);
      expect(() => resolveFollowUp(RUNBOOKS, 'quell_revoke_role_sessions_1', r)).toThrow(
        'does not offer this button',
      );
    }
    expect(() =>
      resolveFollowUp(RUNBOOKS, 'quell_revoke_role_sessions_2', withRoles([{ arn: DEPLOY }])),
    ).toThrow(RunStateConflictError);
    expect(revokeButtons({ ...withRoles([{ arn: DEPLOY }]), state: 'failed' })).toEqual([]);
  });
});
