/**
 * Who a break-glass run is, attacked through `quell run` as a process against moto (behind a recording
 * proxy that sees every STS request) and through the App Home's Mark reviewed button. The operator is
 * whoever the base AWS credentials prove (STS GetCallerIdentity); `--as` is a note. Every test counts
 * attempts and acceptances: an acceptance is a run with an UpdateAccessKey call, a session whose
 * SourceIdentity is the impersonated name, or a recorded review.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateAccessKeyCommand, CreateUserCommand, type IAMClient } from '@aws-sdk/client-iam';
import { AssumeRoleCommand, STSClient } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { HOME_ACTION } from '../../src/slack/build-app-home.ts';
import { SqliteStore } from '../../src/store/sqlite-store.ts';
import {
  accountConfig,
  adminIam,
  createUserWithKey,
  keyStatus,
  randomAccountId,
} from '../support/aws-fixtures.ts';
import { type FaultProxy, startFaultProxy } from '../support/fault-proxy.ts';
import { homeButton } from '../support/slack-events.ts';
import { startTestQuell } from '../support/test-quell.ts';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

describe('break-glass identity: `quell run` as an attacker would use it', () => {
  const accountId = randomAccountId();
  const dir = mkdtempSync(join(tmpdir(), 'quell-identity-'));
  const dbFile = join(dir, 'quell.db');
  const account = accountConfig('prod', accountId);
  let iam: IAMClient;
  let proxy: FaultProxy;
  /** Base credentials of people in moto: IAM users, and sessions of a role they can assume. */
  const people: Record<string, Credentials> = {};

  const arnOf = (user: string) => `arn:aws:iam::${accountId}:user/${user}`;

  /** Writes a configuration with `approvals` and returns its path. */
  const configWith = (name: string, approvals: string[]) => {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(
      file,
      [
        'accounts:',
        `  - alias: ${account.alias}`,
        `    id: "${account.id}"`,
        `    roles: { read: ${account.roles.read}, respond: ${account.roles.respond} }`,
        'approvals:',
        '  approvers: [U0LEAD1, U0LEAD2]',
        ...approvals.map((line) => `  ${line}`),
        'channels: {}',
        'storage:',
        `  url: sqlite:${dbFile}`,
        '',
      ].join('\n'),
    );
    return file;
  };

  /** `quell run <args>` as a process with `who`'s AWS credentials and the configuration at `config`. */
  const quellRun = (config: string, who: Credentials, args: string[]) =>
    new Promise<Result>((resolve) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        QUELL_CONFIG: config,
        AWS_ENDPOINT_URL: proxy.url,
        AWS_ACCESS_KEY_ID: who.accessKeyId,
        AWS_SECRET_ACCESS_KEY: who.secretAccessKey,
        AWS_REGION: 'us-east-1',
        QUELL_LOG_LEVEL: 'silent',
      };
      delete env.AWS_SESSION_TOKEN;
      delete env.AWS_PROFILE;
      if (who.sessionToken) env.AWS_SESSION_TOKEN = who.sessionToken;
      // In the temporary directory: result files go to the working directory, never the repository.
      const bin = new URL('../../bin/quell.js', import.meta.url).pathname;
      execFile(process.execPath, [bin, 'run', ...args], { env, cwd: dir }, (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      });
    });

  const runIdOf = (result: Result) => /quell audit show --run (r[a-z2-7]{12})/.exec(result.stdout)?.[1];

  /** What happened to a run in the store: its record and its UpdateAccessKey calls. */
  const outcome = async (runId: string | undefined) => {
    const store = new SqliteStore(`sqlite:${dbFile}`);
    await store.migrate();
    try {
      if (!runId) return { run: undefined, updates: 0 };
      const entries = await store.listAudit({ runId });
      return {
        run: await store.getRun(runId),
        updates: entries.filter(
          (e) => e.type === 'aws.call' && (e.data as { operation?: string }).operation === 'UpdateAccessKey',
        ).length,
        entries,
      };
    } finally {
      await store.close();
    }
  };

  const sourceIdentitiesOf = (runId: string | undefined) =>
    proxy.requests
      .filter((r) => r.action === 'AssumeRole' && r.params.RoleSessionName === `quell-${runId}`)
      .map((r) => r.params.SourceIdentity);

  /** A session of role `oncall` named `sessionName`, as an SSO sign-in or `aws sts assume-role` gives. */
  const roleSession = async (sessionName: string): Promise<Credentials> => {
    const sts = new STSClient({
      region: 'us-east-1',
      endpoint: inject('motoUrl'),
      credentials: people.erin as Credentials,
    });
    try {
      const out = await sts.send(
        new AssumeRoleCommand({
          RoleArn: `arn:aws:iam::${accountId}:role/oncall`,
          RoleSessionName: sessionName,
        }),
      );
      const c = out.Credentials;
      if (!c?.AccessKeyId || !c.SecretAccessKey || !c.SessionToken) throw new Error('moto gave no session');
      return { accessKeyId: c.AccessKeyId, secretAccessKey: c.SecretAccessKey, sessionToken: c.SessionToken };
    } finally {
      sts.destroy();
    }
  };

  beforeAll(async () => {
    iam = await adminIam(accountId);
    for (const name of ['erin', 'oncall', 'frank']) {
      await iam.send(new CreateUserCommand({ UserName: name }));
      const key = (await iam.send(new CreateAccessKeyCommand({ UserName: name }))).AccessKey;
      if (!key?.AccessKeyId || !key.SecretAccessKey) throw new Error('moto gave no key');
      people[name] = { accessKeyId: key.AccessKeyId, secretAccessKey: key.SecretAccessKey };
    }
    proxy = await startFaultProxy(inject('motoUrl'));
  });
  afterAll(async () => {
    await proxy?.close();
    iam?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  it('--as someone else does not become the requester or SourceIdentity: 3 attempts, 0 sessions as U0LEAD1', async () => {
    const config = configWith('as', ['runbooks:', '  disable-key: { required: 1 }']);
    const victims = await Promise.all(['v-as-1', 'v-as-2', 'v-as-3'].map((u) => createUserWithKey(iam, u)));
    const sso = await roleSession('erin@example.com');
    const lookalike = await roleSession('U0LEAD1');
    const attempts = [
      await quellRun(config, people.erin as Credentials, [
        'disable-key',
        victims[0] ?? '',
        '--as',
        'U0LEAD1',
        '--yes',
      ]),
      await quellRun(config, sso, ['disable-key', victims[1] ?? '', '--as', 'U0LEAD1', '--yes']),
      // A role session can be given any name: one shaped like a Slack id is refused, not shown as that person.
      await quellRun(config, lookalike, ['disable-key', victims[2] ?? '', '--yes']),
    ];
    const runIds = attempts.map(runIdOf);
    const identities = runIds.map(sourceIdentitiesOf);
    expect(identities.flat()).not.toContain('U0LEAD1');

    // The IAM user: requester and every session are `erin`; --as is a note in the audit entry.
    expect(attempts[0]?.code).toBe(0);
    expect(identities[0]?.length).toBeGreaterThanOrEqual(2);
    expect(new Set(identities[0])).toEqual(new Set(['erin']));
    const first = await outcome(runIds[0]);
    expect(first.run).toMatchObject({ requester: 'erin', source: 'cli', breakGlass: true });
    expect(first.entries?.find((e) => e.type === 'command.received')).toMatchObject({
      actor: 'erin',
      data: { awsIdentity: arnOf('erin') },
    });
    expect(first.entries?.find((e) => e.type === 'run.confirmed')).toMatchObject({
      actor: 'erin',
      data: { operator: 'erin', awsIdentity: arnOf('erin'), as: 'U0LEAD1' },
    });
    expect(attempts[0]?.stdout).toMatch(/Requested by\s+erin \(CLI\)/);

    // The SSO-style session: the session name, as AWS recorded it.
    expect(attempts[1]?.code).toBe(0);
    expect(new Set(identities[1])).toEqual(new Set(['erin@example.com']));
    expect((await outcome(runIds[1])).run?.requester).toBe('erin@example.com');

    // The Slack-shaped session name: refused before any run exists.
    expect(attempts[2]?.code).toBe(1);
    expect(attempts[2]?.stderr).toContain('looks like a Slack id');
    expect(runIds[2]).toBeUndefined();
    expect(await keyStatus(iam, 'v-as-3', victims[2] ?? '')).toBe('Active');
  });

  it('a per-runbook requester list cannot be satisfied with --as: 3 attempts, 0 accepted; the listed person is', async () => {
    const listOnly = ['runbooks:', '  disable-key: { required: 1, requesters: [U0ONCALL] }'];
    // Without identities nobody is U0ONCALL from the CLI; with them, only the person they name.
    const bare = configWith('requesters-bare', listOnly);
    const config = configWith('requesters', [
      ...listOnly,
      'identities:',
      `  U0ONCALL: ["${arnOf('oncall')}"]`,
    ]);
    const victim = await createUserWithKey(iam, 'v-req');
    const attack = (file: string, who: Credentials) =>
      quellRun(file, who, ['disable-key', victim, '--as', 'U0ONCALL', '--yes']);
    // A role session named like the listed person's IAM user is still another identity.
    const namesake = await roleSession('oncall');
    const attempts = [
      await attack(bare, people.erin as Credentials),
      await attack(config, people.frank as Credentials),
      await attack(config, namesake),
    ];
    expect(attempts.map((a) => a.code)).toEqual([1, 1, 1]);
    for (const a of attempts) expect(a.stdout + a.stderr).toContain('--as does not count');
    let accepted = 0;
    for (const a of attempts) {
      const o = await outcome(runIdOf(a));
      if (o.updates > 0 || o.run?.state === 'succeeded') accepted++;
    }
    expect(accepted).toBe(0);
    expect(await keyStatus(iam, 'v-req', victim)).toBe('Active');
    expect(
      proxy.requests.filter((r) => r.action === 'UpdateAccessKey' && r.params.AccessKeyId === victim),
    ).toEqual([]);

    // The person the list names, proving their identity, runs it (without --as).
    const listed = await quellRun(config, people.oncall as Credentials, ['disable-key', victim, '--yes']);
    expect(listed.code).toBe(0);
    expect(await keyStatus(iam, 'v-req', victim)).toBe('Inactive');
    expect((await outcome(runIdOf(listed))).run?.requester).toBe('oncall');
  });

  it('the operator cannot review their own break-glass run under their Slack id: 4 attempts, 0 accepted', async () => {
    const identities = [
      'identities:',
      `  U0LEAD1: ["${arnOf('erin')}"]`,
      `  U0LEAD2: ["${arnOf('oncall')}"]`,
    ];
    const config = configWith('review', ['runbooks:', '  disable-key: { required: 1 }', ...identities]);
    const own = await createUserWithKey(iam, 'v-review');
    const stray = await createUserWithKey(iam, 'v-stray');
    // erin (U0LEAD1 in Slack) runs break-glass naming U0LEAD2, then tries to review it herself.
    const run = await quellRun(config, people.erin as Credentials, [
      'disable-key',
      own,
      '--as',
      'U0LEAD2',
      '--yes',
    ]);
    expect(run.code).toBe(0);
    const runId = runIdOf(run) ?? '';
    // frank's identity is given to nobody: nobody can be told apart from him, so nobody may review yet.
    const unattributed = await quellRun(config, people.frank as Credentials, ['disable-key', stray, '--yes']);
    expect(unattributed.code).toBe(0);
    const strayId = runIdOf(unattributed) ?? '';

    const t = await startTestQuell({
      accounts: [account],
      storage: { url: `sqlite:${dbFile}` },
      approvals: {
        approvers: ['U0LEAD1', 'U0LEAD2'],
        runbooks: { 'disable-key': { required: 1 } },
        identities: { U0LEAD1: [arnOf('erin')], U0LEAD2: [arnOf('oncall')] },
      },
    });
    try {
      const review = async (id: string, user: string) => {
        const before = t.slack.callsOf('views.publish').length;
        await homeButton(t.baseUrl, { actionId: HOME_ACTION.review, value: id, user });
        await t.slack.waitFor((calls) => calls.filter((c) => c.method === 'views.publish').length > before);
        await t.settle();
        return JSON.stringify(t.slack.callsOf('views.publish').at(-1)?.body.view);
      };
      const refusals = [
        await review(runId, 'U0LEAD1'),
        await review(runId, 'U0LEAD1'),
        await review(strayId, 'U0LEAD1'),
        await review(strayId, 'U0LEAD2'),
      ];
      const reviewed = async (id: string) =>
        (await t.quell.store.listAudit({ runId: id })).filter((e) => e.type === 'run.reviewed').length;
      expect((await reviewed(runId)) + (await reviewed(strayId))).toBe(0);
      expect((await t.quell.store.getRun(runId))?.reviewState).toBe('pending');
      expect((await t.quell.store.getRun(strayId))?.reviewState).toBe('pending');
      expect(refusals[0]).toContain('someone else has to review it');
      expect(refusals[3]).toContain('gives to nobody');

      // Someone else — the person the operator named with --as — may review it.
      await review(runId, 'U0LEAD2');
      expect((await t.quell.store.getRun(runId))?.reviewState).toBe('reviewed');
      expect(
        (await t.quell.store.listAudit({ runId })).filter((e) => e.type === 'run.reviewed'),
      ).toMatchObject([{ actor: 'U0LEAD2' }]);
    } finally {
      await t.close();
    }
  });
});
