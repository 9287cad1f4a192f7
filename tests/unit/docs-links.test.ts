/**
 * The documentation's relative links lead somewhere: every link in README.md and docs/**\/*.md names a
 * file or folder that exists (anchors are not checked), and every runbook has its page, linked from the
 * README's runbook table.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../scripts/import-graph.ts';
import { RUNBOOKS } from '../../src/runbooks/registry.ts';

/** README.md and every .md file under docs/, relative to the repository root. */
function markdownFiles(): string[] {
  const found = ['README.md'];
  const walk = (dir: string) => {
    for (const entry of readdirSync(join(REPO_ROOT, dir), { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) found.push(path);
    }
  };
  walk('docs');
  return found.sort();
}

/** The link targets of a page, outside code blocks and inline code, with their line numbers. */
function linkTargets(text: string): { target: string; line: number }[] {
  const lines = text.split('\n');
  const targets: { target: string; line: number }[] = [];
  let fenced = false;
  lines.forEach((raw, index) => {
    if (/^\s*(```|~~~)/.test(raw)) {
      fenced = !fenced;
      return;
    }
    if (fenced) return;
    const line = raw.replace(/`[^`]*`/g, '');
    for (const m of line.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      targets.push({ target: m[1] ?? '', line: index + 1 });
    const reference = /^\s*\[[^\]]+\]:\s*(\S+)/.exec(line);
    if (reference?.[1]) targets.push({ target: reference[1], line: index + 1 });
  });
  return targets;
}

/** Links that point nowhere, as `file:line → target`. */
function brokenLinks(file: string): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  return linkTargets(text)
    .filter(({ target }) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .filter(({ target }) => {
      const path = decodeURIComponent(target.split('#')[0] ?? '');
      const resolved = join(REPO_ROOT, dirname(file), path);
      return !relative(REPO_ROOT, resolved).startsWith('..') ? !existsSync(resolved) : true;
    })
    .map(({ target, line }) => `${file}:${line} → ${target}`);
}

describe('links in README.md and docs/', () => {
  it('every relative link names an existing file or folder', () => {
    const files = markdownFiles();
    expect(files.length).toBeGreaterThan(10);
    expect(files.flatMap(brokenLinks)).toEqual([]);
  });

  it('finds links outside code, and only there', () => {
    const page = [
      'See [config](configuration.md#reference) and [the repo](https://example.com).',
      '`[not a link](nowhere.md)` and [a folder](runbooks/)',
      '```',
      '[ Approve ](inside-a-code-block.md)',
      '```',
      '[ref]: ../README.md',
    ].join('\n');
    expect(linkTargets(page)).toEqual([
      { target: 'configuration.md#reference', line: 1 },
      { target: 'https://example.com', line: 1 },
      { target: 'runbooks/', line: 2 },
      { target: '../README.md', line: 6 },
    ]);
  });

  it('every runbook has its page under docs/runbooks/, linked from the README, and every page a runbook', () => {
    const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
    const ids = RUNBOOKS.map((r) => r.id);
    for (const id of ids) {
      expect(existsSync(join(REPO_ROOT, `docs/runbooks/${id}.md`)), `docs/runbooks/${id}.md`).toBe(true);
      expect(readme).toContain(`(docs/runbooks/${id}.md)`);
    }
    const pages = readdirSync(join(REPO_ROOT, 'docs/runbooks')).map((name) => name.replace(/\.md$/, ''));
    expect(pages.filter((page) => !ids.includes(page))).toEqual([]);
  });
});
