/**
 * The command grammar shared by Slack and the CLI: `<runbook> [positional…] [key=value…]`, values may be
 * double-quoted (Slack's curly quotes count too). The tokenizer only splits; each runbook's zod schema
 * is the one parser of what the pieces mean.
 */
import { InputInvalidError } from '../../errors.ts';

/** A command split into its parts. */
export interface CommandArgs {
  positional: string[];
  options: Record<string, string>;
}

/** The whole command: which runbook, and its arguments. */
export interface ParsedCommand {
  name: string;
  args: CommandArgs;
}

/** Slack caps slash-command text at a few thousand characters; quell needs far less. */
export const MAX_COMMAND_LENGTH = 1000;
const MAX_TOKENS = 20;
const KEY = /^[a-z][a-z0-9-]{0,31}$/;
const NAME = /^[a-z][a-z0-9-]{0,31}$/;

/** Splits command text into the runbook name, positional arguments and key=value options. */
export function parseCommandText(text: string): ParsedCommand {
  if (text.length > MAX_COMMAND_LENGTH) {
    throw new InputInvalidError([
      `the command is ${text.length} characters long; the limit is ${MAX_COMMAND_LENGTH}`,
    ]);
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\u0000-\u0008\u000b-\u001f\u007f\u202a-\u202e\u2066-\u2069]/.test(text)) {
    throw new InputInvalidError(['the command contains control or bidirectional-override characters']);
  }
  const tokens = tokenize(text.replace(/[\u201c\u201d\u201e\u201f]/g, '"').trim());
  if (tokens.length > MAX_TOKENS)
    throw new InputInvalidError([`too many arguments (${tokens.length}; at most ${MAX_TOKENS})`]);
  const [first, ...rest] = tokens;
  const name = (first?.value ?? 'help').toLowerCase();
  if (first?.quoted || !NAME.test(name)) {
    throw new InputInvalidError([`\`${truncate(first?.value ?? '')}\` is not a runbook name`]);
  }
  const positional: string[] = [];
  const options: Record<string, string> = {};
  for (const token of rest) {
    if (token.key === undefined) {
      positional.push(token.value);
      continue;
    }
    const key = token.key.toLowerCase();
    if (!KEY.test(key)) throw new InputInvalidError([`\`${truncate(token.key)}\` is not an option name`]);
    if (Object.hasOwn(options, key)) throw new InputInvalidError([`\`${key}=\` is given twice`]);
    options[key] = token.value;
  }
  return { name, args: { positional, options } };
}

interface Token {
  key?: string;
  value: string;
  quoted: boolean;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] ?? '')) i++;
    if (i >= text.length) break;
    let key: string | undefined;
    let value = '';
    let quoted = false;
    // A bare word, possibly `key=`, possibly followed by a quoted value.
    while (i < text.length && !/\s/.test(text[i] ?? '')) {
      const ch = text[i] ?? '';
      if (ch === '=' && key === undefined && !quoted) {
        key = value;
        value = '';
        i++;
        continue;
      }
      if (ch === '"') {
        if (value !== '')
          throw new InputInvalidError(['a quote may only start a value (write key="some text")']);
        const end = readQuoted(text, i);
        value = end.value;
        quoted = true;
        i = end.next;
        if (i < text.length && !/\s/.test(text[i] ?? ''))
          throw new InputInvalidError(['put a space after a closing quote']);
        break;
      }
      value += ch;
      i++;
    }
    if (key === '') throw new InputInvalidError(['an option is missing its name before `=`']);
    tokens.push(key === undefined ? { value, quoted } : { key, value, quoted });
  }
  return tokens;
}

function readQuoted(text: string, start: number): { value: string; next: number } {
  let value = '';
  let i = start + 1;
  while (i < text.length) {
    const ch = text[i];
    if (ch === '\\' && (text[i + 1] === '"' || text[i + 1] === '\\')) {
      value += text[i + 1];
      i += 2;
      continue;
    }
    if (ch === '"') return { value, next: i + 1 };
    value += ch;
    i++;
  }
  throw new InputInvalidError(['a quoted value is missing its closing quote']);
}

function truncate(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
