/** The command grammar: positional arguments, key=value options, quoted values, and clear refusals. */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { InputInvalidError } from '../../src/errors.ts';
import { parseCommandText } from '../../src/runbooks/engine/command-grammar.ts';

describe('parseCommandText', () => {
  it('splits runbook, positionals and options', () => {
    expect(
      parseCommandText('disable-key AKIAIOSFODNN7EXAMPLE account=prod reason="leaked in a gist"'),
    ).toEqual({
      name: 'disable-key',
      args: {
        positional: ['AKIAIOSFODNN7EXAMPLE'],
        options: { account: 'prod', reason: 'leaked in a gist' },
      },
    });
  });

  it('treats empty text as help and accepts Slack curly quotes and escapes', () => {
    expect(parseCommandText('   ').name).toBe('help');
    expect(parseCommandText('x reason=\u201cin quotes\u201d').args.options.reason).toBe('in quotes');
    expect(parseCommandText('x reason="say \\"hi\\""').args.options.reason).toBe('say "hi"');
  });

  it.each([
    ['x reason="open', 'closing quote'],
    ['x a=1 a=2', 'given twice'],
    ['x =1', 'missing its name'],
    ['x "quoted"positional', 'space after a closing quote'],
    ['x ab"c', 'may only start a value'],
    ['"help"', 'not a runbook name'],
    ['x\u0007', 'control'],
    ['x \u202e', 'bidirectional'],
    [`x ${'a '.repeat(30)}`, 'too many arguments'],
    [`x ${'a'.repeat(1001)}`, 'limit is 1000'],
    ['x BAD_KEY=1', 'not an option name'],
  ])('refuses %j', (text, expected) => {
    expect(() => parseCommandText(text)).toThrow(InputInvalidError);
    expect(() => parseCommandText(text)).toThrow(expected);
  });

  it('property: any text parses or fails with InputInvalidError, never anything else', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: 'binary' }), (text) => {
        try {
          const parsed = parseCommandText(text);
          expect(parsed.name).toMatch(/^[a-z][a-z0-9-]{0,31}$/);
        } catch (error) {
          expect(error).toBeInstanceOf(InputInvalidError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
