/**
 * `npm run docs:iam`: writes the output of `quell iam-policy` into docs/iam.md, between the marker
 * comments `<!-- generated:<name> start … -->` and `<!-- generated:<name> end -->`, so that the IAM
 * policies in the documentation are the ones quell generates from the runbooks' declared actions.
 * tests/unit/docs-iam-policy.test.ts regenerates the blocks and fails when the committed page differs.
 *
 * The command is run in this process through the CLI's own entry point (`runCli`), with the bundled
 * quell.example.yaml as configuration and no `*_SECRET_ARN` variables, so the output does not depend on
 * the machine it runs on.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sid as statementIdOf } from '../src/aws/build-iam-policies.ts';
import { runCli } from '../src/cli/run-cli.ts';
import { RUNBOOKS } from '../src/runbooks/registry.ts';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');

/** The page the generated blocks live in, relative to the repository root. */
export const IAM_DOC = 'docs/iam.md';

/** The principal the documented trust policy names (the example of docs/iam.md). */
export const DOC_PRINCIPAL = 'arn:aws:iam::999999999999:role/quell-bot';

/** The command whose output the page shows, as a reader would type it. */
export const DOC_COMMAND = `QUELL_CONFIG=quell.example.yaml quell iam-policy --principal ${DOC_PRINCIPAL}`;

const SECRET_ARN_VARIABLES = [
  'SLACK_BOT_TOKEN_SECRET_ARN',
  'SLACK_APP_TOKEN_SECRET_ARN',
  'SLACK_SIGNING_SECRET_SECRET_ARN',
];

interface Statement {
  Sid?: string;
  Action?: string[];
}
interface IamPolicyOutput {
  readRole: { permissions: { Statement: Statement[] } };
  respondRole: { permissions: { Statement: Statement[] } };
}

/** Runs `quell iam-policy` as documented and returns what it printed on stdout. */
export async function runIamPolicy(): Promise<string> {
  const saved = Object.fromEntries(
    ['QUELL_CONFIG', ...SECRET_ARN_VARIABLES].map((name) => [name, process.env[name]]),
  );
  process.env.QUELL_CONFIG = join(ROOT, 'quell.example.yaml');
  for (const name of SECRET_ARN_VARIABLES) delete process.env[name];
  let printed = '';
  try {
    const code = await runCli(['iam-policy', '--principal', DOC_PRINCIPAL], (text) => {
      printed += text;
    });
    if (code !== 0) throw new Error(`quell iam-policy exited with ${code}`);
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  return printed;
}

/** `DisableKey` → `disable-key`: the runbook id a generated statement id comes from. */
function runbookIdOf(sid: string): string {
  return sid.replace(/[A-Z]/g, (c, at: number) => (at === 0 ? '' : '-') + c.toLowerCase());
}

/** The generated blocks, by marker name: the actions per runbook and role, and the full JSON. */
export async function generateIamBlocks(): Promise<Record<string, string>> {
  const json = await runIamPolicy();
  const output = JSON.parse(json) as IamPolicyOutput;
  // A runbook's actions may be split over several statements (its own, and one per `iam.limits` entry,
  // named after it): the table shows them together, by runbook.
  const runbookSids = RUNBOOKS.map((r) => statementIdOf(r.id)).sort((a, b) => b.length - a.length);
  const actionsByRunbook = (statements: Statement[]) => {
    const byRunbook = new Map<string, string[]>();
    for (const statement of statements) {
      const owner = runbookSids.find((id) => (statement.Sid ?? '').startsWith(id)) ?? statement.Sid ?? '';
      byRunbook.set(
        owner,
        [...new Set([...(byRunbook.get(owner) ?? []), ...(statement.Action ?? [])])].sort(),
      );
    }
    return byRunbook;
  };
  const read = actionsByRunbook(output.readRole.permissions.Statement);
  const respond = actionsByRunbook(output.respondRole.permissions.Statement);
  const sids = [...new Set([...read.keys(), ...respond.keys()])];
  const cell = (actions: string[] | undefined) =>
    actions && actions.length > 0 ? actions.map((a) => `\`${a}\``).join(', ') : '—';
  const table = [
    '| runbook | read role | respond role |',
    '|---|---|---|',
    ...sids.map((sid) => {
      const id = runbookIdOf(sid);
      return `| [\`${id}\`](runbooks/${id}.md) | ${cell(read.get(sid))} | ${cell(respond.get(sid))} |`;
    }),
  ].join('\n');
  return {
    'iam-actions-table': table,
    'iam-policy-json': [`\`\`\`sh\n${DOC_COMMAND}\n\`\`\``, '', `\`\`\`json\n${json.trimEnd()}\n\`\`\``].join(
      '\n',
    ),
  };
}

/** The page with each generated block replaced; throws when a block's markers are missing. */
export function renderIamDoc(page: string, blocks: Record<string, string>): string {
  let text = page;
  for (const [name, content] of Object.entries(blocks)) {
    const pattern = new RegExp(
      `(<!-- generated:${name} start[^>]*-->\\n)[\\s\\S]*?(<!-- generated:${name} end -->)`,
    );
    if (!pattern.test(text))
      throw new Error(
        `${IAM_DOC} has no markers for the generated block "${name}": add <!-- generated:${name} start (npm run docs:iam) --> and <!-- generated:${name} end --> on lines of their own`,
      );
    text = text.replace(pattern, (_, start: string, end: string) => `${start}${content}\n${end}`);
  }
  return text;
}

async function main(): Promise<void> {
  const path = join(ROOT, IAM_DOC);
  const before = readFileSync(path, 'utf8');
  const after = renderIamDoc(before, await generateIamBlocks());
  if (after === before) {
    process.stdout.write(`${IAM_DOC} is up to date with quell iam-policy\n`);
    return;
  }
  writeFileSync(path, after);
  process.stdout.write(`${IAM_DOC} updated from quell iam-policy\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
