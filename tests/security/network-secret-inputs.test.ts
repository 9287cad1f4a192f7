/**
 * Bad input to isolate-vpc, restore-vpc and rotate-secret — near-miss ids, malformed CIDRs, hostile
 * strings, 10 kB arguments — fails with an InputInvalidError that says what was wrong, and nothing
 * reaches AWS: the engine is built over an AWS factory that counts (and refuses) every use.
 * Property-based with fast-check over every input schema.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { AwsClientFactory } from '../../src/aws/client-factory.ts';
import { ConfigSchema } from '../../src/config.ts';
import { InputInvalidError } from '../../src/errors.ts';
import { createLogger } from '../../src/logger.ts';
import { parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import { Engine } from '../../src/runbooks/engine/engine.ts';
import type { Requester } from '../../src/runbooks/engine/run-notifier.ts';
import { isolateVpc } from '../../src/runbooks/isolate-vpc.ts';
import { restoreVpc } from '../../src/runbooks/restore-vpc.ts';
import { rotateSecret } from '../../src/runbooks/rotate-secret.ts';
import type { Store } from '../../src/store/store.ts';

const VPC_ID = /^vpc-([0-9a-f]{8}|[0-9a-f]{17})$/;
const SECRET_ID =
  /^([A-Za-z0-9/_+=.@-]{1,512}|arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]{1,512})$/;

/** An engine whose AWS access, store and notifier all count and refuse: input checks must need none. */
function countingEngine() {
  const touched: string[] = [];
  const refuse = (what: string) =>
    new Proxy(
      {},
      {
        get(_target, prop) {
          touched.push(`${what}.${String(prop)}`);
          throw new Error(`${what}.${String(prop)} used while checking input`);
        },
      },
    );
  const engine = new Engine({
    config: ConfigSchema.parse({
      accounts: [
        {
          alias: 'prod',
          id: '111111111111',
          regions: ['us-east-1', 'eu-west-1'],
          roles: {
            read: 'arn:aws:iam::111111111111:role/quell-read',
            respond: 'arn:aws:iam::111111111111:role/quell-respond',
          },
        },
      ],
      approvals: { approvers: ['U0LEAD1'] },
      channels: { C0INCIDENT: { runbooks: ['*'], accounts: ['*'] } },
      storage: { url: 'sqlite::memory:' },
    }),
    store: refuse('store') as Store,
    audit: refuse('audit') as never,
    aws: refuse('aws') as AwsClientFactory,
    directory: refuse('directory') as never,
    notifier: refuse('notifier') as never,
    log: createLogger({ level: 'silent' }),
    runbooks: [isolateVpc, restoreVpc, rotateSecret],
  });
  return { engine, touched };
}

const requester: Requester = { user: 'U0RESP', channel: 'C0INCIDENT', source: 'slack' };

/** Parses like a typed command would be: grammar, then the runbook's schema and the engine's checks. */
function prepare(engine: Engine, text: string) {
  const parsed = parseCommandText(text);
  return engine.prepare(parsed.name, parsed.args, requester);
}

describe('isolate-vpc, restore-vpc and rotate-secret input', () => {
  it.each([
    ['isolate-vpc vpc-xyz', /VPC id is vpc- followed by 8 or 17 hexadecimal digits/],
    ['isolate-vpc vpc-0ABC1234', /8 or 17 hexadecimal/],
    ['isolate-vpc vpc-0abc12345', /8 or 17 hexadecimal/],
    ['isolate-vpc subnet-0abc1234', /VPC id/],
    ['isolate-vpc', /give exactly one VPC id/],
    ['isolate-vpc vpc-0abc1234 vpc-0abc1235', /too many positional arguments|exactly one/],
    ['isolate-vpc vpc-0abc1234 allow=10.0.0.0/33', /`allow=`: .*prefix length is a number from 0 to 32/],
    ['isolate-vpc vpc-0abc1234 allow=300.0.0.0/8', /`allow=`: .*300 is not an IPv4 number/],
    ['isolate-vpc vpc-0abc1234 allow=10.9.0.1/24', /host bits set: the network is 10\.9\.0\.0\/24/],
    ['isolate-vpc vpc-0abc1234 allow=0.0.0.0/0', /every address/],
    ['isolate-vpc vpc-0abc1234 allow=::/0', /every address/],
    ['isolate-vpc vpc-0abc1234 allow=2001:db8::/129', /0 to 128/],
    ['isolate-vpc vpc-0abc1234 allow=fe80::1%eth0/64', /zone index/],
    ['isolate-vpc vpc-0abc1234 allow=10.9.0.0', /no prefix length/],
    ['isolate-vpc vpc-0abc1234 force=yes', /force is `true` or `false`/],
    ['isolate-vpc vpc-0abc1234 account=nope', /unknown account `nope`/],
    ['isolate-vpc vpc-0abc1234 region=mars-1', /region/],
    ['isolate-vpc vpc-0abc1234 sneaky=1', /unknown option `sneaky=`/],
    ['isolate-vpc vpc-0abc1234 account="prod; rm -rf /"', /`account=`/],
    ['isolate-vpc "prod; rm -rf /"', /VPC id/],
    ['isolate-vpc prod; rm -rf /', /too many positional arguments|VPC id/],
    ['restore-vpc vpc-xyz', /VPC id/],
    ['restore-vpc vpc-0abc1234 allow=10.9.0.0/24', /unknown option `allow=`/],
    ['restore-vpc vpc-0abc1234 force=true', /unknown option `force=`/],
    ['rotate-secret', /give exactly one secret name or ARN/],
    ['rotate-secret "prod; rm -rf /"', /secret name .* or its full ARN/],
    ['rotate-secret prod/db$(id)', /secret name/],
    ['rotate-secret <!channel>', /secret name/],
    ['rotate-secret arn:aws:secretsmanager:us-east-1:1111:secret:x', /secret name/],
    ['rotate-secret arn:aws:secretsmanager:mars-east-9x:111111111111:secret:db-AbCdEf', /not an AWS region/],
    [
      'rotate-secret arn:aws:secretsmanager:eu-west-1:111111111111:secret:db-AbCdEf region=us-east-1',
      /the ARN is in eu-west-1, not us-east-1/,
    ],
    ['rotate-secret prod/db force=1', /force is `true` or `false`/],
  ])('refuses %s with a clear message and no AWS call', (text, message) => {
    const { engine, touched } = countingEngine();
    let error: unknown;
    try {
      prepare(engine, text);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(InputInvalidError);
    expect((error as Error).message).toMatch(message);
    expect(touched).toEqual([]);
  });

  it('refuses 10 kB arguments in every position of every schema (the grammar caps text at 1000 characters; the schemas hold on their own)', () => {
    const big = 'a'.repeat(10_000);
    const cases: [
      typeof isolateVpc | typeof restoreVpc | typeof rotateSecret,
      string[],
      Record<string, string>,
    ][] = [
      [isolateVpc, [big], {}],
      [isolateVpc, ['vpc-0abc1234'], { allow: big }],
      [isolateVpc, ['vpc-0abc1234'], { reason: big }],
      [isolateVpc, ['vpc-0abc1234'], { account: big }],
      [isolateVpc, ['vpc-0abc1234'], { force: big }],
      [restoreVpc, [big], {}],
      [rotateSecret, [big], {}],
      [rotateSecret, [`arn:aws:secretsmanager:us-east-1:111111111111:secret:${big}`], {}],
      [rotateSecret, ['prod/db'], { region: big }],
    ];
    for (const [runbook, positional, options] of cases) {
      expect(() => parseRunbookInput(runbook, { positional, options })).toThrow(InputInvalidError);
    }
    const { engine, touched } = countingEngine();
    expect(() => prepare(engine, `isolate-vpc ${'vpc-0abc1234'.padEnd(10_000, 'f')}`)).toThrow(
      /limit is 1000/,
    );
    expect(touched).toEqual([]);
  });

  it('property: any argument after isolate-vpc / restore-vpc parses to a well-formed VPC id or fails with InputInvalidError', () => {
    const { engine, touched } = countingEngine();
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.constantFrom('isolate-vpc', 'restore-vpc'),
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.stringMatching(/^vpc-[0-9a-fA-Fx]{6,19}$/),
          fc.constantFrom(
            'prod; rm -rf /',
            '`id`',
            '"',
            '=',
            'vpc-',
            'vpc-0abc1234',
            'vpc-0123456789abcdef0',
          ),
        ),
        (runbook, arg) => {
          try {
            const prepared = prepare(engine, `${runbook} ${arg}`);
            expect((prepared.input as { vpcId: string }).vpcId).toMatch(VPC_ID);
            accepted++;
          } catch (error) {
            expect(error).toBeInstanceOf(InputInvalidError);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(accepted).toBeGreaterThan(0); // the generator does produce valid ids
    expect(touched).toEqual([]);
  });

  it('property: any allow= value is a canonical CIDR other than /0, or an InputInvalidError naming allow=', () => {
    const { engine, touched } = countingEngine();
    const octet = fc.integer({ min: 0, max: 400 }).map(String);
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 60 }),
          fc
            .tuple(octet, octet, octet, octet, fc.integer({ min: -1, max: 40 }))
            .map(([a, b, c, d, p]) => `${a}.${b}.${c}.${d}/${p}`),
          fc.stringMatching(/^[0-9a-f:]{2,30}\/[0-9]{1,3}$/),
        ),
        (allow) => {
          try {
            const prepared = prepare(
              engine,
              `isolate-vpc vpc-0abc1234 allow="${allow.replace(/["\\]/g, '')}"`,
            );
            const cidr = (prepared.input as { allow: string }).allow;
            expect(cidr).toMatch(/^[0-9a-f.:]+\/\d{1,3}$/);
            expect(cidr.endsWith('/0')).toBe(false);
          } catch (error) {
            expect(error).toBeInstanceOf(InputInvalidError);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(touched).toEqual([]);
  });

  it('property: any argument after rotate-secret parses to a secret name or ARN, or fails with InputInvalidError', () => {
    const { engine, touched } = countingEngine();
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 120 }),
          fc.stringMatching(/^[A-Za-z0-9/_+=.@-]{1,40}$/),
          fc.stringMatching(
            /^arn:aws:secretsmanager:[a-z]{2}-[a-z]{4,9}-[0-9]:[0-9]{10,13}:secret:[a-z/]{1,20}$/,
          ),
          fc.constantFrom('prod; rm -rf /', '$(reboot)', '../../etc/passwd', '<@U0LEAD1>', 'vpc-xyz'),
        ),
        fc.constantFrom('', ' force=true', ' force=maybe', ' region=eu-west-1'),
        (arg, options) => {
          try {
            const prepared = prepare(engine, `rotate-secret ${arg}${options}`);
            expect((prepared.input as { secretId: string }).secretId).toMatch(SECRET_ID);
          } catch (error) {
            expect(error).toBeInstanceOf(InputInvalidError);
          }
        },
      ),
      { numRuns: 3000 },
    );
    expect(touched).toEqual([]);
  });
});
