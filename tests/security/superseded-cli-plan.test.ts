/**
 * Issue 9.5, tried as it happens: an operator answers y to `quell run disable-key …` on a terminal, and the
 * world changes between that answer and the re-check before execution (here the key is deactivated by
 * someone else while the prompt waits). The re-check supersedes the confirmed plan; the new plan must be
 * asked about again, on the terminal, naming what changed, and a "n" must leave AWS exactly as it is.
 * The CLI runs in-process against moto with a scripted terminal, so the change lands at a known moment.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateAccessKeyCommand,
  CreateUserCommand,
  type IAMClient,
  UpdateAccessKeyCommand,
} from '@aws-sdk/client-iam';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BreakGlassIo, runBreakGlass } from '../../src/cli/run-break-glass.ts';
import { ConfigSchema } from '../../src/config.ts';
import { revokePolicyName } from '../../src/runbooks/disable-key.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  inlinePolicy,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';

describe('quell run: a plan superseded after the operator confirmed it', () => {
  const accountId = randomAccountId();
  const dir = mkdtempSync(join(tmpdir(), 'quell-supersede-'));
  const dbUrl = `sqlite:${join(dir, 'quell.db')}`;
  let iam: IAMClient;
  let operator: { id: string; secret: string };

  beforeAll(async () => {
    iam = await adminIam(accountId);
    // The operator's own base credentials: an IAM user, which STS GetCallerIdentity names.
    await iam.send(new CreateUserCommand({ UserName: 'oncall-erin' }));
    const key = (await iam.send(new CreateAccessKeyCommand({ UserName: 'oncall-erin' }))).AccessKey;
    operator = { id: key?.AccessKeyId ?? '', secret: key?.SecretAccessKey ?? '' };
  });
  afterAll(() => {
    iam?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Runs `work` with the operator's credentials as the default chain's (the CLI reads the environment). */
  async function asOperator<T>(work: () => Promise<T>): Promise<T> {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = operator.id;
    process.env.AWS_SECRET_ACCESS_KEY = operator.secret;
    try {
      return await work();
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  }

  it('asks again on the terminal naming what changed, and "n" runs nothing: 1 superseded plan, 0 run unasked', async () => {
    const keyId = await createUserWithKey(iam, 'supersede-alice');
    const config = ConfigSchema.parse({
      accounts: [accountConfig('prod', accountId)],
      approvals: { approvers: ['U0LEAD1'], runbooks: { 'disable-key': { required: 1 } } },
      channels: {},
      storage: { url: dbUrl },
    });
    let screen = '';
    const prompts: string[] = [];
    const io: BreakGlassIo = {
      isTty: true,
      out: (text) => {
        screen += text;
      },
      err: (text) => {
        screen += text;
      },
      ask: async (question) => {
        prompts.push(`${screen}${question}`);
        screen = '';
        if (prompts.length > 1) return 'n';
        // While the operator reads the plan, someone else deactivates the key: the plan they confirm is stale.
        await iam.send(
          new UpdateAccessKeyCommand({ UserName: 'supersede-alice', AccessKeyId: keyId, Status: 'Inactive' }),
        );
        return 'y';
      },
    };

    const code = await asOperator(() =>
      runBreakGlass(['disable-key', keyId, 'reason=stale plan', '--out', dir], config, io),
    );

    // Asked twice: the second prompt shows the new plan and what changed since the y.
    expect(prompts).toHaveLength(2);
    expect(prompts[1]).toContain('The world changed after you confirmed run');
    expect(prompts[1]).toContain('status: Active → Inactive');
    expect(prompts[1]).toContain('already Inactive');
    expect(prompts[1]).toContain('The plan CHANGED since you confirmed it');
    expect(code).toBe(1);
    expect(screen).toContain('Cancelled: nothing was run.');

    // Nothing ran: moto is as the other person left it, and no mutating call was even intended.
    expect(await keyStatus(iam, 'supersede-alice', keyId)).toBe('Inactive');
    expect(await inlinePolicy(iam, 'supersede-alice', revokePolicyName(keyId))).toBeNull();
    const store = new SqliteStore(dbUrl);
    await store.migrate();
    try {
      const entries = await store.listAudit();
      expect(entries.filter((e) => e.type === 'aws.intent')).toHaveLength(0);
      expect(entries.filter((e) => e.type === 'execute.started')).toHaveLength(0);
      const runs = await store.listRuns({ limit: 10 });
      expect(runs.map((r) => r.state).sort()).toEqual(['denied', 'superseded']);
      const confirmed = entries.filter((e) => e.type === 'run.confirmed');
      expect(confirmed).toHaveLength(1);
      expect(entries.filter((e) => e.type === 'run.cancelled')).toHaveLength(1);
    } finally {
      await store.close();
    }
  });
});
