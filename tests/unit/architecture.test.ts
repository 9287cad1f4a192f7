/**
 * The rules of the house: every import in src/ against the table in docs/architecture.md (the only copy
 * of the rules). A folder the table does not know, a stale row, or an import the table does not allow
 * fails with the file and line.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ImportFound,
  listSourceFiles,
  REPO_ROOT,
  readAllImports,
  readImports,
  targetOf,
  unitOf,
} from '../../scripts/import-graph.ts';

const DOC = 'docs/architecture.md';

/** One row of the rules table. */
interface Rule {
  unit: string;
  mayImport: string[];
  packages: string[];
  never: string[];
}

/** The table between `<!-- import-rules start -->` and `<!-- import-rules end -->`. */
function parseRules(page: string): Map<string, Rule> {
  const start = page.indexOf('<!-- import-rules start -->');
  const end = page.indexOf('<!-- import-rules end -->');
  if (start === -1 || end < start) throw new Error(`${DOC} has no <!-- import-rules start/end --> table`);
  const rows = page
    .slice(start, end)
    .split('\n')
    .filter((line) => line.startsWith('|'))
    .slice(2); // the header and the |---| line
  const cells = (cell: string | undefined) => [...(cell ?? '').matchAll(/`([^`]+)`/g)].map((m) => m[1] ?? '');
  const rules = new Map<string, Rule>();
  for (const row of rows) {
    const columns = row.split('|').slice(1, -1);
    if (columns.length !== 4) throw new Error(`${DOC}: a rules row needs 4 columns: ${row}`);
    const [unit] = cells(columns[0]);
    if (!unit) throw new Error(`${DOC}: a rules row names no folder or file: ${row}`);
    if (rules.has(unit)) throw new Error(`${DOC}: two rows for ${unit}`);
    rules.set(unit, {
      unit,
      mayImport: cells(columns[1]),
      packages: cells(columns[2]),
      never: cells(columns[3]),
    });
  }
  return rules;
}

/** `src/runbooks/*` matches `src/runbooks/` and `src/runbooks/engine/`; anything else matches itself. */
function matches(pattern: string, target: string): boolean {
  return pattern.endsWith('*') ? target.startsWith(pattern.slice(0, -1)) : pattern === target;
}

/** Every problem with the table itself, and every import it does not allow. */
function checkImports(rules: Map<string, Rule>, units: string[], imports: ImportFound[]): string[] {
  const problems: string[] = [];
  for (const unit of units) {
    if (!rules.has(unit))
      problems.push(`${unit} is not in the rules table of ${DOC}: add a row saying what it may import`);
  }
  for (const rule of rules.values()) {
    if (!units.includes(rule.unit))
      problems.push(`${DOC} has a row for ${rule.unit}, which no longer exists in src/: remove the row`);
    for (const allowed of [...rule.mayImport, ...rule.packages]) {
      const forbidding = rule.never.find((pattern) => matches(pattern, allowed));
      if (forbidding)
        problems.push(
          `${DOC}: ${rule.unit} may import ${allowed}, but its "never" column forbids ${forbidding}`,
        );
    }
  }
  for (const found of imports) {
    const from = unitOf(found.file);
    const where = `${found.file}:${found.line}`;
    if (found.specifier === undefined) {
      problems.push(`${where}: import() of something that is not a string literal cannot be checked`);
      continue;
    }
    const to = targetOf(found.file, found.specifier);
    if (to === from || to.startsWith('node:')) continue;
    const rule = rules.get(from);
    if (!rule) continue; // reported above
    const internal = found.specifier.startsWith('.');
    const allowed = internal
      ? rule.mayImport.includes(to)
      : rule.packages.some((pattern) => matches(pattern, to));
    const forbidding = rule.never.find((pattern) => matches(pattern, to));
    if (forbidding)
      problems.push(`${where}: ${from} never imports ${forbidding}, but imports '${found.specifier}'`);
    else if (!allowed)
      problems.push(
        `${where}: ${from} may not import ${to} ('${found.specifier}'); ${internal && !to.startsWith('src/') ? 'imports from src/ stay inside src/' : `allow it in ${DOC} or move the code`}`,
      );
  }
  return problems;
}

const rules = parseRules(readFileSync(join(REPO_ROOT, DOC), 'utf8'));
const units = [...new Set(listSourceFiles().map(unitOf))].sort();

describe('the rules of the house (docs/architecture.md)', () => {
  it('has a row for every folder and top-level file of src/, and every import in src/ keeps to it', () => {
    const imports = readAllImports();
    expect(imports.length).toBeGreaterThan(300);
    expect(checkImports(rules, units, imports)).toEqual([]);
  });

  it('states the rules the house is built on', () => {
    const never = (unit: string) => rules.get(unit)?.never ?? [];
    for (const unit of ['src/runbooks/', 'src/runbooks/engine/'])
      expect(never(unit)).toEqual(expect.arrayContaining(['@slack/*', 'src/slack/', 'src/cli/']));
    expect(never('src/slack/')).toEqual(expect.arrayContaining(['@aws-sdk/*', 'src/aws/']));
    for (const unit of ['src/store/', 'src/audit/', 'src/aws/'])
      expect(never(unit)).toEqual(expect.arrayContaining(['src/runbooks/*', 'src/slack/', 'src/cli/']));
    for (const rule of rules.values()) expect(rule.mayImport).not.toContain('src/cli/');
  });

  it('fails on a folder the table does not know, on a stale row, and on a forbidden or unlisted import', () => {
    const runbookFile = 'src/runbooks/new-runbook.ts';
    const imports = [
      ...readImports(runbookFile, "import { App } from '@slack/bolt';\nimport { z } from 'zod';\n"),
      ...readImports(runbookFile, "import { x } from '../slack/build-help.ts';\n"),
      ...readImports(runbookFile, "import { y } from '../cli/run-cli.ts';\n"),
      ...readImports('src/slack/new-handler.ts', "const m = await import('@aws-sdk/client-iam');\n"),
      ...readImports('src/store/new-store.ts', "export { z } from 'zod';\n"),
      ...readImports(
        'src/commands/parse.ts',
        "import { parse } from '../runbooks/engine/command-grammar.ts';\n",
      ),
      ...readImports('src/slack/lazy.ts', 'const m = await import(name);\n'),
    ];
    const problems = checkImports(
      rules,
      [...units.filter((u) => u !== 'src/main.ts'), 'src/commands/'],
      imports,
    );
    expect(problems).toEqual([
      `src/commands/ is not in the rules table of ${DOC}: add a row saying what it may import`,
      `${DOC} has a row for src/main.ts, which no longer exists in src/: remove the row`,
      "src/runbooks/new-runbook.ts:1: src/runbooks/ never imports @slack/*, but imports '@slack/bolt'",
      "src/runbooks/new-runbook.ts:1: src/runbooks/ never imports src/slack/, but imports '../slack/build-help.ts'",
      "src/runbooks/new-runbook.ts:1: src/runbooks/ never imports src/cli/, but imports '../cli/run-cli.ts'",
      "src/slack/new-handler.ts:1: src/slack/ never imports @aws-sdk/*, but imports '@aws-sdk/client-iam'",
      `src/store/new-store.ts:1: src/store/ may not import zod ('zod'); allow it in ${DOC} or move the code`,
      'src/slack/lazy.ts:1: import() of something that is not a string literal cannot be checked',
    ]);
  });

  it('fails on a row that allows what its own "never" column forbids', () => {
    const widened = new Map(rules);
    const slack = rules.get('src/slack/');
    if (!slack) throw new Error('no row for src/slack/');
    widened.set('src/slack/', { ...slack, mayImport: [...slack.mayImport, 'src/aws/'] });
    expect(checkImports(widened, units, [])).toEqual([
      `${DOC}: src/slack/ may import src/aws/, but its "never" column forbids src/aws/`,
    ]);
  });

  it('reads imports written across lines, side-effect and dynamic imports, and nothing in comments or strings', () => {
    const source = [
      "import {\n  a,\n  type B,\n} from './a.ts';", // line 1
      "import './side-effect.ts';", // line 5
      "export * from '../store/store.ts';", // line 6
      '// import { c } from "./commented.ts";', // line 7
      "/* export { d } from './block-commented.ts'; */", // line 8
      'const message = "import(\'./in-a-string.ts\')";', // line 9
      "const pattern = /import\\('x'\\)/; const half = 4 / 2;", // line 10
      'const text = `', // line 11
      "import { e } from './in-a-template.ts';", // line 12, inside the template
      ['$', '{text}`;'].join(''), // line 13: an expression, then the end of the template
      "const lazy = () => import('../audit/chain.ts');", // line 14
    ].join('\n');
    expect(readImports('src/runbooks/x.ts', source).map((i) => [i.line, i.kind, i.specifier])).toEqual([
      [1, 'static', './a.ts'],
      [5, 'static', './side-effect.ts'],
      [6, 'static', '../store/store.ts'],
      [14, 'dynamic', '../audit/chain.ts'],
    ]);
  });

  it('names units by folder, and top-level files by themselves', () => {
    expect(unitOf('src/runbooks/engine/engine.ts')).toBe('src/runbooks/engine/');
    expect(unitOf('src/config.ts')).toBe('src/config.ts');
    expect(targetOf('src/slack/build-help.ts', '../runbooks/define-runbook.ts')).toBe('src/runbooks/');
    expect(targetOf('src/slack/x.ts', '@slack/bolt')).toBe('@slack/bolt');
    expect(targetOf('src/aws/x.ts', '@aws-sdk/client-sts/dist-types/index.js')).toBe('@aws-sdk/client-sts');
    expect(existsSync(join(REPO_ROOT, 'src/runbooks/engine'))).toBe(true);
  });
});
